//! One testcase's run: what its steps share (`Run`), how a step ends (`Stop`), and the
//! helpers every step uses — the console, the prompts, the judged outcome.

use std::collections::BTreeMap;
use std::time::Instant;

use regex::bytes::Regex;

use super::records::{AttemptRecord, Held, SessionRecord};
use super::rig::Rig;
use crate::config::scenario::{JudgeVerdict, Pattern, PromptName, Ruling};
use crate::console::Console;
use crate::model::template::{Quote, Template};
use crate::redact::Redactor;
use crate::report::events::Part;

/// How a step ended when it did not simply succeed.
#[derive(Debug)]
pub(super) enum Stop {
    Fail {
        check: Option<String>,
        reason: String,
    },
    Error(String),
    /// What the check needs is missing (e.g. a trusted CA): NOT APPLICABLE with the reason.
    Skip(String),
    /// The scenario ends here and keeps what its earlier steps decided (the step says why
    /// the rest could not run).
    End(String),
}

impl Stop {
    /// What the step said, whatever the outcome.
    pub(super) fn into_reason(self) -> String {
        match self {
            Stop::Error(m) | Stop::Fail { reason: m, .. } | Stop::Skip(m) | Stop::End(m) => m,
        }
    }
}

/// A harness-side failure (a bench, a command, power) is inconclusive: ERROR with its text.
macro_rules! harness_errors_are_inconclusive {
    ($($t:ty),*) => {$(
        impl From<$t> for Stop {
            fn from(e: $t) -> Self {
                Stop::Error(e.to_string())
            }
        }
    )*};
}
harness_errors_are_inconclusive!(
    crate::bench::BenchError,
    crate::process::ProcessError,
    crate::power::PowerError
);

pub(super) type StepResult = Result<String, Stop>;

pub(super) struct Run<'a> {
    /// Documentary findings awaiting a reviewer: the verdict is REVIEW if nothing failed.
    pub(super) reviews: Vec<String>,
    pub(super) rig: &'a mut Rig,
    pub(super) vars: BTreeMap<String, String>,
    /// Files for the evidence folder (name, content; redacted when saved): the power-cut
    /// table of an update_power_loss step, a brute-force timeline.
    pub(super) evidence: Vec<(String, String)>,
    /// Every remote login attempt of this testcase (remote-attempts.jsonl).
    pub(super) attempts: Vec<AttemptRecord>,
    /// When this testcase's first remote attempt began (attempt times count from it).
    pub(super) remote_t0: Option<Instant>,
    /// A shell over the network that stands in for the serial console (`remote_console`).
    pub(super) remote_shell: Option<RemoteShell>,
    /// Sessions held across a password change (`open_sessions`, judged by `sessions_ended`),
    /// and what each did, for `sessions.json`.
    pub(super) held: Vec<Held>,
    pub(super) session_log: Vec<SessionRecord>,
    /// Length of the update bench's request log when power was last applied: requests
    /// after it are the device's since that boot.
    pub(super) power_mark: usize,
    /// The testcase's id (for the evidence of later testcases that reuse its boot).
    pub(super) id: String,
    /// Parts decided on their own (each TLS destination and identity of `tls_clients`).
    pub(super) parts: Vec<Part>,
}

/// A shell of the device over one of its network services, where the console's dialogs run.
pub(super) struct RemoteShell {
    pub(super) console: Console,
    /// The service's command that changes the password (instead of the console's).
    pub(super) password_command: Option<String>,
    pub(super) target: crate::remote::Target,
    pub(super) user: String,
    /// The transcripts of earlier sessions of this testcase (a forced change ends one).
    pub(super) earlier: String,
}

/// What was offered, for messages: secrets appear by name only.
pub(super) fn shown(redactor: &Redactor, s: &str) -> String {
    format!("{:?}", redactor.shown_send(s))
}

pub(super) fn judge(o: &Ruling, seen: &str) -> Stop {
    let reason = o.reason.replace("{{outcome}}", seen);
    let reason = if o.reason.contains("{{outcome}}") {
        reason
    } else {
        format!("{reason} (seen: {seen})")
    };
    let reason = match &o.check {
        Some(c) => format!("{c}: {reason}"),
        None => reason,
    };
    match o.verdict {
        JudgeVerdict::Fail => Stop::Fail {
            check: o.check.map(|c| c.to_string()),
            reason,
        },
        JudgeVerdict::Error => Stop::Error(reason),
    }
}

/// The error of a network step run without a bench.
pub(super) fn no_bench() -> Stop {
    Stop::Error("the network bench is not running".into())
}

impl Run<'_> {
    /// Keeps a file for the testcase's evidence folder (redacted when saved); a later file
    /// of the same name replaces an earlier one.
    pub(super) fn keep_evidence(&mut self, name: &str, text: String) {
        self.evidence.retain(|(n, _)| n != name);
        self.evidence.push((name.to_string(), text));
    }

    pub(super) fn net(&self) -> Result<&crate::bench::NetBench, Stop> {
        self.rig.net.as_ref().ok_or_else(no_bench)
    }

    pub(super) fn console(&self) -> Result<Console, Stop> {
        if let Some(r) = &self.remote_shell {
            return Ok(r.console.clone());
        }
        self.rig
            .console
            .clone()
            .ok_or_else(|| Stop::Error("the device has no console".into()))
    }

    /// The command that opens a password change at the shell: the remote shell's service's,
    /// else the console's.
    pub(super) fn password_command(&self, spec: &crate::config::console::ConsoleSpec) -> Option<String> {
        match &self.remote_shell {
            Some(r) => r.password_command.clone(),
            None => spec.password_command.clone(),
        }
    }

    pub(super) fn spec(&self) -> Result<&crate::config::console::ConsoleSpec, Stop> {
        self.rig
            .device
            .console
            .as_ref()
            .ok_or_else(|| Stop::Error("the device has no console".into()))
    }

    pub(super) fn render(&self, t: &Template, q: Quote) -> Result<String, Stop> {
        t.render(&self.vars, q).map_err(Stop::Error)
    }

    pub(super) fn prompt(&self, name: PromptName) -> Result<Regex, Stop> {
        let p = &self.spec()?.prompts;
        let missing = |what: &str| Stop::Error(format!("the device profile defines no `{what}` prompt"));
        Ok(match name {
            PromptName::Login => p.login.clone(),
            PromptName::Password => p.password.clone(),
            PromptName::Shell => p.shell.clone(),
            PromptName::LoginRejected => p.login_rejected.clone(),
            PromptName::PasswordChange => p.password_change.clone().ok_or_else(|| missing("password_change"))?,
            PromptName::PasswordRejected => p
                .password_rejected
                .clone()
                .ok_or_else(|| missing("password_rejected"))?,
        })
    }

    pub(super) fn pattern(&self, p: &Pattern) -> Result<Regex, Stop> {
        match p {
            Pattern::Prompt(n) => self.prompt(*n),
            Pattern::Regex(t) => {
                let src = self.render(t, Quote::Regex)?;
                Regex::new(&src).map_err(|e| Stop::Error(format!("pattern became invalid after substitution: {e}")))
            }
        }
    }

    pub(super) fn send_line(&self, c: &Console, text: &str) -> Result<(), Stop> {
        let nl = self.spec()?.newline.clone();
        let mut bytes = text.as_bytes().to_vec();
        bytes.extend_from_slice(nl.as_bytes());
        c.send(&bytes, format!("{}<Enter>", self.rig.redactor.shown_send(text)))
            .map_err(|e| Stop::Error(format!("cannot write to console: {e}")))
    }
}

/// A console that vanished mid-wait and was not back within its grace period: the wait
/// ends there (it may come back later; the transcript says when).
pub(super) fn console_lost(why: String) -> Stop {
    Stop::Error(format!(
        "the console was lost during the wait ({why}) and was not back within its grace period, so the wait ended there (board dead, reset or unplugged?)"
    ))
}
