//! The scenario engine: runs a validated scenario's steps against a device through the
//! console and power capabilities and decides a verdict. It names no transport type.

#[cfg(test)]
mod brute_force_tests;
mod evidence;
mod gate;
mod shell;
mod state;
mod steps;
#[cfg(test)]
mod tests;

use state::AtPrompt;
pub use state::BoardState;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use regex::bytes::Regex;

use crate::config::credentials::Credentials;
use crate::config::device::Device;
use crate::config::scenario::{JudgeVerdict, Pattern, PromptName, Ruling, Scenario};
use crate::config::template::{Quote, Template};
use crate::console::Console;
use crate::power::{Action, Power};
use crate::redact::{self, Redactor};
use crate::report::events::{Part, ScenarioResult, StepRecord, StepStatus, Verdict};

/// The rig: the device under test wired to its interfaces and benches, as the engine sees it,
/// and what the run knows of it.
#[derive(Debug)]
pub struct Rig {
    /// Where the board is (off, booting, at a prompt), its last boot and whether it is fresh:
    /// told and asked through its methods only.
    pub state: BoardState,
    pub device: Device,
    pub console: Option<Console>,
    pub power: Option<Box<dyn Power>>,
    pub redactor: Redactor,
    /// Values for `{{name}}` in commands (console, workdir, ...).
    pub command_vars: BTreeMap<String, String>,
    pub command_cwd: PathBuf,
    /// The credentials that should work now, as far as the run knows.
    pub current: Option<Credentials>,
    /// The network bench, when the device has a cloud the bench plays.
    pub net: Option<crate::bench::NetBench>,
    /// The update bench, when the profile declares how the device is updated.
    pub update: Option<crate::update::bench::UpdateBench>,
    /// The device's link: its namespace, the capture, the last port scan.
    pub gateway: crate::gateway::Gateway,
    /// Values planted on the device (`plant`), searched for on the wire, and when (the
    /// moment, and the number of the last frame the capture had seen then).
    pub planted: Vec<crate::gateway::canary::Canary>,
    pub planted_at: Option<(Instant, u64)>,
}

/// How a step ended when it did not simply succeed.
#[derive(Debug)]
enum Stop {
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
    fn into_reason(self) -> String {
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

type StepResult = Result<String, Stop>;

struct Run<'a> {
    /// Documentary findings awaiting a reviewer: the verdict is REVIEW if nothing failed.
    reviews: Vec<String>,
    rig: &'a mut Rig,
    vars: BTreeMap<String, String>,
    /// Files for the evidence folder (name, content; redacted when saved): the power-cut
    /// table of an update_power_loss step, a brute-force timeline.
    evidence: Vec<(String, String)>,
    /// Every remote login attempt of this testcase (remote-attempts.jsonl).
    attempts: Vec<steps::AttemptRecord>,
    /// When this testcase's first remote attempt began (attempt times count from it).
    remote_t0: Option<Instant>,
    /// A shell over the network that stands in for the serial console (`remote_console`).
    remote_shell: Option<RemoteShell>,
    /// Sessions held across a password change (`open_sessions`, judged by `sessions_ended`),
    /// and what each did, for `sessions.json`.
    held: Vec<steps::Held>,
    session_log: Vec<steps::SessionRecord>,
    /// Length of the update bench's request log when power was last applied: requests
    /// after it are the device's since that boot.
    power_mark: usize,
    /// The testcase's id (for the evidence of later testcases that reuse its boot).
    id: String,
    /// Parts decided on their own (each TLS destination and identity of `tls_clients`).
    parts: Vec<Part>,
}

/// A shell of the device over one of its network services, where the console's dialogs run.
struct RemoteShell {
    console: Console,
    /// The service's command that changes the password (instead of the console's).
    password_command: Option<String>,
    target: crate::remote::Target,
    user: String,
    /// The transcripts of earlier sessions of this testcase (a forced change ends one).
    earlier: String,
}

/// Whether a scenario can run on this device, decided before any step.
#[derive(Debug, Clone, PartialEq)]
pub enum Applicability {
    Run,
    /// NOT APPLICABLE with the reason (the maker's ICS or declaration, an absent interface).
    NotApplicable(String),
    /// A minimum requirement needs what the device lacks: FAIL with the reason.
    Fail {
        check: Option<String>,
        reason: String,
    },
}

/// The link checks on a device whose network the bench cannot see (the rating then lists
/// them as not run: `report::rating::NO_VIEW_OF_LINK` starts this text).
pub(crate) const NO_LINK: &str = "the bench has no view of the device's network: the profile declares no namespace (network.namespace, for an emulated device) and the lab names no capture interface (bench.capture_interface, for a board)";

impl Rig {
    /// The health probe: a power cycle, then the console must show its login or shell
    /// prompt within the profile's boot time. Boards without power control or console are
    /// taken as healthy (there is nothing to probe).
    pub async fn health(&mut self) -> Result<(), String> {
        let (Some(c), Some(spec)) = (self.console.clone(), self.device.console.clone()) else {
            return Ok(());
        };
        if self.power.is_none() {
            return Ok(());
        }
        self.power(Action::Cycle)
            .await
            .map_err(|e| format!("power cycle failed: {e}"))?;
        match shell::boot_prompt(&c, &spec)
            .await
            .map_err(|why| format!("the console was lost during the health probe: {why}"))?
        {
            Some(_) => Ok(()),
            None => Err(format!(
                "no login or shell prompt within the boot time of {:?} after a power cycle",
                spec.boot_time
            )),
        }
    }

    pub async fn power(&mut self, action: Action) -> Result<String, crate::power::PowerError> {
        self.state.switched(action);
        let Some(p) = &self.power else {
            return Err(crate::power::PowerError::NotConfigured);
        };
        if let Some(c) = &self.console
            && action != Action::On
        {
            c.marker(format!("power {action}"));
        }
        let out = p.switch(action).await;
        if let Some(c) = &self.console {
            // Whatever the board printed before this point belongs to its previous life.
            c.drain();
            if action != Action::Off {
                c.marker(format!("power {action} done"));
            }
        }
        out
    }
}

/// Runs one scenario and saves its evidence under `dir`. `step_done` sees each step.
pub async fn run_scenario(
    rig: &mut Rig,
    sc: &Scenario,
    dir: &Path,
    rel_dir: &str,
    step_done: impl FnMut(&StepRecord),
) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult::new(
        &sc.id,
        &sc.title,
        &sc.file.display().to_string(),
        Some(sc.evidences.clone()),
        Verdict::Pass,
    );
    match rig.gate(sc) {
        Applicability::Run => {}
        Applicability::NotApplicable(why) => {
            result.verdict = Verdict::NotApplicable;
            result.reason = Some(why);
            return result;
        }
        Applicability::Fail { check, reason } => {
            result.verdict = Verdict::Fail;
            result.check = check;
            result.reason = Some(reason);
            return result;
        }
    }
    let vars = scenario_vars(rig, sc);
    let marks = evidence::Marks::take(rig, sc);
    // the shell prompt the last testcase ended at is kept (checked again: console quiet since)
    rig.state.between_testcases();
    let mut run = Run {
        reviews: Vec::new(),
        rig,
        vars,
        evidence: Vec::new(),
        attempts: Vec::new(),
        remote_t0: None,
        remote_shell: None,
        held: Vec::new(),
        session_log: Vec::new(),
        power_mark: marks.update.unwrap_or(0),
        id: sc.id.clone(),
        parts: Vec::new(),
    };
    run.steps(sc, started + sc.timeout, &mut result, step_done).await;
    if result.verdict == Verdict::Pass && !run.reviews.is_empty() {
        result.verdict = Verdict::Review;
        result.reason = Some(run.reviews.join("; "));
    }
    if let Some(r) = run.remote_shell.take() {
        r.console.close();
        let text = r.console.with_transcript(|t| t.render_text(0, &run.rig.redactor));
        run.keep_evidence("remote-shell.txt", format!("{}{text}", r.earlier));
        // the serial console's prompt state is not the remote shell's
        run.rig.state.lost();
    }
    result.parts = std::mem::take(&mut run.parts)
        .into_iter()
        .map(|p| Part {
            reason: run.rig.redactor.redact(&p.reason),
            ..p
        })
        .collect();
    let mut extra = std::mem::take(&mut run.evidence);
    if !run.attempts.is_empty() {
        extra.insert(0, ("remote-attempts.jsonl".into(), evidence::jsonl(&run.attempts)));
    }
    run.rig.state.between_testcases();
    evidence::save(run.rig, sc, &marks, &extra, dir, rel_dir, &mut result);
    result.duration_ms = started.elapsed().as_millis();
    result
}

/// The scenario's variables: the factory credentials, its generated passwords (known to the
/// redactor before anything can print them), the rig's names, the image of a `for_each`.
fn scenario_vars(rig: &mut Rig, sc: &Scenario) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    if let Some(f) = &rig.device.factory {
        vars.insert("factory.user".to_string(), f.user.clone());
        vars.insert("factory.password".to_string(), f.password.clone());
        rig.redactor.add("factory.password", &f.password);
    }
    for (name, _, len) in &sc.variables {
        let v = redact::generate_password(*len);
        rig.redactor.add(name, &v);
        vars.insert(name.clone(), v);
    }
    for (k, v) in rig.net.as_ref().map(|n| n.vars()).unwrap_or_default() {
        vars.insert(k, v);
    }
    if let Some(inst) = &sc.instance
        && let Some(item) = &inst.item
    {
        vars.insert(inst.var.into(), item.clone());
    }
    vars
}

impl Run<'_> {
    /// Runs the steps in order until one decides the verdict (or ends the scenario); every
    /// step that ran is recorded.
    async fn steps(
        &mut self,
        sc: &Scenario,
        deadline: Instant,
        result: &mut ScenarioResult,
        mut step_done: impl FnMut(&StepRecord),
    ) {
        for (i, step) in sc.steps.iter().enumerate() {
            let at = format!("{}:{}", sc.file.display(), step.pos.line);
            if let Some(c) = &self.rig.console {
                c.marker(format!("step {}: {} ({at})", i + 1, step.kind.name()));
            }
            let t0 = Instant::now();
            let remaining = deadline.saturating_duration_since(t0);
            let res = match tokio::time::timeout(remaining, self.step(&step.kind)).await {
                Ok(r) => r,
                Err(_) => Err(Stop::Error(format!("scenario timeout of {:?} reached", sc.timeout))),
            };
            let (status, detail) = match &res {
                Ok(d) => (StepStatus::Ok, d.clone()),
                Err(Stop::Fail { reason, .. }) => (StepStatus::Fail, reason.clone()),
                Err(Stop::Error(e)) => (StepStatus::Error, e.clone()),
                Err(Stop::Skip(e)) => (StepStatus::Error, format!("not applicable: {e}")),
                Err(Stop::End(e)) => (StepStatus::Ok, e.clone()),
            };
            let rec = StepRecord {
                index: i + 1,
                name: step.kind.name().to_string(),
                at,
                status,
                detail: self.rig.redactor.redact(&detail),
                duration_ms: t0.elapsed().as_millis(),
            };
            step_done(&rec);
            result.steps.push(rec);
            let (verdict, check, reason) = match res {
                Ok(_) => continue,
                Err(Stop::End(_)) => break,
                Err(Stop::Fail { check, reason }) => (Verdict::Fail, check, reason),
                Err(Stop::Error(e)) => (Verdict::Error, None, e),
                Err(Stop::Skip(e)) => (Verdict::NotApplicable, None, e),
            };
            result.verdict = verdict;
            result.check = check;
            result.reason = Some(self.rig.redactor.redact(&reason));
            result.deciding_step = Some(i + 1);
            break;
        }
    }
}

/// What was offered, for messages: secrets appear by name only.
fn shown(redactor: &Redactor, s: &str) -> String {
    format!("{:?}", redactor.shown_send(s))
}

fn judge(o: &Ruling, seen: &str) -> Stop {
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
            check: o.check.clone(),
            reason,
        },
        JudgeVerdict::Error => Stop::Error(reason),
    }
}

/// The error of a network step run without a bench.
fn no_bench() -> Stop {
    Stop::Error("the network bench is not running".into())
}

impl Run<'_> {
    /// Keeps a file for the testcase's evidence folder (redacted when saved); a later file
    /// of the same name replaces an earlier one.
    fn keep_evidence(&mut self, name: &str, text: String) {
        self.evidence.retain(|(n, _)| n != name);
        self.evidence.push((name.to_string(), text));
    }

    fn net(&self) -> Result<&crate::bench::NetBench, Stop> {
        self.rig.net.as_ref().ok_or_else(no_bench)
    }

    fn console(&self) -> Result<Console, Stop> {
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
    fn password_command(&self, spec: &crate::config::console::ConsoleSpec) -> Option<String> {
        match &self.remote_shell {
            Some(r) => r.password_command.clone(),
            None => spec.password_command.clone(),
        }
    }

    fn spec(&self) -> Result<&crate::config::console::ConsoleSpec, Stop> {
        self.rig
            .device
            .console
            .as_ref()
            .ok_or_else(|| Stop::Error("the device has no console".into()))
    }

    fn render(&self, t: &Template, q: Quote) -> Result<String, Stop> {
        t.render(&self.vars, q).map_err(Stop::Error)
    }

    fn prompt(&self, name: PromptName) -> Result<Regex, Stop> {
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

    fn pattern(&self, p: &Pattern) -> Result<Regex, Stop> {
        match p {
            Pattern::Prompt(n) => self.prompt(*n),
            Pattern::Regex(t) => {
                let src = self.render(t, Quote::Regex)?;
                Regex::new(&src).map_err(|e| Stop::Error(format!("pattern became invalid after substitution: {e}")))
            }
        }
    }

    fn send_line(&self, c: &Console, text: &str) -> Result<(), Stop> {
        let nl = self.spec()?.newline.clone();
        let mut bytes = text.as_bytes().to_vec();
        bytes.extend_from_slice(nl.as_bytes());
        c.send(&bytes, format!("{}<Enter>", self.rig.redactor.shown_send(text)))
            .map_err(|e| Stop::Error(format!("cannot write to console: {e}")))
    }
}

/// A console that vanished mid-wait and was not back within its grace period: the wait
/// ends there (it may come back later; the transcript says when).
fn console_lost(why: String) -> Stop {
    Stop::Error(format!(
        "the console was lost during the wait ({why}) and was not back within its grace period, so the wait ended there (board dead, reset or unplugged?)"
    ))
}
