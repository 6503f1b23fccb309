//! PWD-08 on sessions: what the old password opened must end with a password change.
//! `open_sessions` logs in, with the password that works now, on every shell the device
//! offers over the network (declared SSH and telnet services, and those the port scan
//! found), and — asked to — holds the serial console's shell too; each must answer a
//! harmless command (the positive control: a session that never worked proves nothing).
//! `sessions_ended`, after the change, types the same kind of command in each: a session
//! that still answers fails PWD-08, naming the interface and what ran. A web login with a
//! declared session page (`services[].session`) is held by its cookie: the page must
//! refuse it after the change.

use serde::Serialize;

use super::prelude::*;
use crate::console::Console;
use crate::remote::{ShellProbe, Target};

/// A session held across a password change.
pub(crate) struct Held {
    /// `telnet (telnet over TLS on …)`, or `the serial console`.
    pub(crate) what: String,
    /// None: the serial console (the bench's own, not a session of ours).
    pub(crate) console: Option<Console>,
    /// A web login's session: its service and the cookies the login set.
    pub(crate) web: Option<(Target, Vec<String>)>,
    /// When it was opened (and shown to work).
    pub(crate) opened: Instant,
    /// The shell prompt, when the profile declares one for it.
    pub(crate) prompt: Option<regex::bytes::Regex>,
}

/// One session's story, for `sessions.json`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionRecord {
    session: String,
    /// Milliseconds since the first session of the testcase was opened.
    opened_ms: u128,
    /// The command typed to tell a working shell, before and after the change.
    probes: Vec<String>,
    before_change: String,
    after_change: Option<String>,
}

/// How long a shell has to answer the probe command.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// Types a probe command into `c` and reports whether a shell answered it (its arithmetic,
/// or — a command line without it — its prompt back after the line), with the command
/// typed. Err when the session ended (the device closed it).
async fn probe(c: &Console, prompt: Option<&regex::bytes::Regex>) -> (Result<bool, String>, String) {
    let probe = ShellProbe::new();
    let line = probe.line.clone();
    (answered(c, prompt, probe).await, line)
}

async fn answered(c: &Console, prompt: Option<&regex::bytes::Regex>, probe: ShellProbe) -> Result<bool, String> {
    // a prompt already printed (the login's) is consumed first: only one after the probe counts
    if let Some(p) = prompt {
        let _ = c
            .expect(&[p], std::time::Instant::now() + Duration::from_millis(300), None)
            .await;
    }
    c.send(format!("{}\r", probe.line).as_bytes(), format!("{}<Enter>", probe.line))
        .map_err(|e| format!("the session took no more input: {e}"))?;
    let deadline = std::time::Instant::now() + ANSWER_WITHIN;
    let answer = probe.answer_pattern();
    let mut pats = vec![&answer];
    if let Some(p) = prompt {
        pats.push(p);
    }
    match c.expect(&pats, deadline, None).await? {
        Wait::Found(_) => Ok(true),
        Wait::Timeout => Ok(false),
    }
}

impl Run<'_> {
    /// `open_sessions`: a session with the current password on every network shell (and
    /// the serial console's shell with `console: true`), each shown to work.
    pub(super) async fn open_sessions(&mut self, console: bool) -> StepResult {
        let started = *self.remote_t0.get_or_insert_with(Instant::now);
        let right = self.bench.current.clone().ok_or_else(|| {
            Stop::Error("the run knows no working credentials (no factory credentials declared)".into())
        })?;
        let prompt = self.spec().ok().map(|s| s.prompts.shell.clone());
        let targets: Vec<Target> = match self.targets(true) {
            Ok(t) => t,
            Err(Stop::Skip(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut said = Vec::new();
        let mut not_shells = Vec::new();
        for t in targets {
            use crate::config::services::ServiceKind;
            let user = t.service.user.clone().unwrap_or_else(|| right.user.clone());
            if t.service.kind == ServiceKind::HttpForm && t.service.session.is_some() {
                self.hold_web(t, &user, &right.password, started, &mut said).await?;
                continue;
            }
            if !matches!(t.service.kind, ServiceKind::Ssh | ServiceKind::Telnet) {
                not_shells.push(format!(
                    "{} ({}{})",
                    t.service.name,
                    t.service.kind.name(),
                    if t.service.kind == ServiceKind::HttpForm {
                        ": declare its session page, services[].session"
                    } else {
                        ""
                    }
                ));
                continue;
            }
            let opened = tokio::time::timeout(
                t.attempt_limit(),
                crate::remote::shell_console(&t, &user, &right.password),
            )
            .await
            .map_err(|_| format!("no shell within {:?}", t.attempt_limit()))
            .and_then(|r| r);
            let c = match opened {
                Ok((c, _)) => c,
                Err(e) => {
                    return Err(Stop::Error(format!(
                        "not decided: no session could be opened on {} with the current password ({e}), so whether a change ends it cannot be seen",
                        t.describe()
                    )));
                }
            };
            let p = t.service.prompts.as_ref().map(|p| p.shell.clone()).or(prompt.clone());
            self.hold(t.describe(), Some(c), p, started, &mut said).await?;
        }
        if console {
            self.console_of_bench()?;
            let at_shell = matches!(self.at, Some(AtPrompt::Shell(_))) && self.remote_shell.is_none();
            if !at_shell {
                return Err(Stop::Error(
                    "the serial console is not at a shell: it cannot be held across the change (log in first)".into(),
                ));
            }
            self.hold("the serial console".into(), None, prompt.clone(), started, &mut said)
                .await?;
            // the probe used the prompt the engine knew it was at
            self.at = None;
        }
        if !not_shells.is_empty() {
            said.push(format!(
                "not held (their sessions are not followed): {}",
                not_shells.join(", ")
            ));
        }
        if self.held.is_empty() {
            said.push("no session could be held: the device offers no shell besides the console where the change is made; the refusal of the old password decides PWD-08".into());
        }
        Ok(said.join("; "))
    }

    /// Logs in through a web form, keeps the session cookies, and shows they open the
    /// declared session page (the positive control).
    async fn hold_web(
        &mut self,
        t: Target,
        user: &str,
        password: &str,
        started: Instant,
        said: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let what = t.describe();
        let cookies = crate::remote::http::form_session(&t, user, password)
            .await
            .map_err(|e| Stop::Error(format!("not decided: no web session could be opened on {what}: {e}")))?;
        let (alive, answer) = crate::remote::http::session_alive(&t, &cookies)
            .await
            .map_err(|e| Stop::Error(format!("not decided: {what}'s session page gave no answer: {e}")))?;
        if !alive {
            return Err(Stop::Error(format!(
                "not decided: the session {what}'s login set does not open its session page ({answer}), so its refusal after a change would prove nothing"
            )));
        }
        // the cookie is a secret of the run: never shown, never written
        for c in &cookies {
            if let Some((_, v)) = c.split_once('=') {
                self.bench.redactor.add("session cookie", v);
            }
        }
        self.session_log.push(SessionRecord {
            session: what.clone(),
            opened_ms: started.elapsed().as_millis(),
            probes: vec![format!("GET the session page with the login's cookie: {answer}")],
            before_change: "the session page opened (the session works)".into(),
            after_change: None,
        });
        said.push(format!(
            "{what}: the session cookie of a login with the current password opens its session page"
        ));
        self.held.push(Held {
            what,
            console: None,
            web: Some((t, cookies)),
            opened: Instant::now(),
            prompt: None,
        });
        Ok(())
    }

    /// Shows one session works (the positive control) and keeps it.
    async fn hold(
        &mut self,
        what: String,
        console: Option<Console>,
        prompt: Option<regex::bytes::Regex>,
        started: Instant,
        said: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let c = match &console {
            Some(c) => c.clone(),
            None => self
                .bench
                .console
                .clone()
                .ok_or_else(|| Stop::Error("the device has no console".into()))?,
        };
        let (answered, line) = probe(&c, prompt.as_ref()).await;
        if !answered.unwrap_or(false) {
            return Err(Stop::Error(format!(
                "not decided: {what} logged in with the current password but answered no command within {ANSWER_WITHIN:?}, so its silence after a change would prove nothing"
            )));
        }
        let opened_ms = started.elapsed().as_millis();
        self.session_log.push(SessionRecord {
            session: what.clone(),
            opened_ms,
            probes: vec![line],
            before_change: "a command ran (the session works)".into(),
            after_change: None,
        });
        said.push(format!(
            "{what}: a session opened with the current password runs commands"
        ));
        self.held.push(Held {
            what,
            console,
            web: None,
            opened: Instant::now(),
            prompt,
        });
        Ok(())
    }

    /// `sessions_ended` (PWD-08): after the change, every held session must be over.
    pub(super) async fn sessions_ended(&mut self) -> StepResult {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return Ok("no session was held across the change (see open_sessions)".into());
        }
        let mut alive = Vec::new();
        let mut said = Vec::new();
        for h in &held {
            if let Some((t, cookies)) = &h.web {
                let after = match crate::remote::http::session_alive(t, cookies).await {
                    Ok((true, answer)) => {
                        alive.push(format!(
                            "{} (its session cookie, from a login with the old password {:.1} s earlier) still opens the session page after the change ({answer})",
                            h.what,
                            h.opened.elapsed().as_secs_f64()
                        ));
                        format!("the session page still opened: {answer}")
                    }
                    Ok((false, answer)) => format!("the session page was refused: {answer}"),
                    Err(e) => {
                        return Err(Stop::Error(format!(
                            "not decided: {}'s session page gave no answer after the change: {e}",
                            h.what
                        )));
                    }
                };
                said.push(format!("{}: {after}", h.what));
                self.record_after(&h.what, after, None);
                continue;
            }
            let c = match &h.console {
                Some(c) => c.clone(),
                None => self.console_of_bench()?,
            };
            let (answer, line) = probe(&c, h.prompt.as_ref()).await;
            let after = match answer {
                Ok(true) => {
                    alive.push(format!(
                        "{} (opened with the old password {:.1} s earlier) still ran a command after the change (`{line}` was answered)",
                        h.what,
                        h.opened.elapsed().as_secs_f64()
                    ));
                    "a command ran: the session outlived the change".to_string()
                }
                Ok(false) => "no command ran: the session answers nothing".to_string(),
                Err(e) => format!("ended by the device ({e})"),
            };
            said.push(format!("{}: {after}", h.what));
            self.record_after(&h.what, after, Some(line));
            if let Some(c) = &h.console {
                c.close();
            }
        }
        self.keep_evidence(
            "sessions.json",
            serde_json::to_string_pretty(&self.session_log).unwrap_or_default(),
        );
        if !alive.is_empty() {
            return Err(Stop::Fail {
                check: Some("PWD-08".into()),
                reason: format!(
                    "PWD-08: a password change must end what the old password opened — {}",
                    alive.join("; ")
                ),
            });
        }
        Ok(said.join("; "))
    }

    /// What a held session did after the change, into its `sessions.json` record.
    fn record_after(&mut self, what: &str, after: String, probe: Option<String>) {
        if let Some(r) = self
            .session_log
            .iter_mut()
            .rev()
            .find(|r| r.session == what && r.after_change.is_none())
        {
            r.after_change = Some(after);
            r.probes.extend(probe);
        }
    }

    fn console_of_bench(&self) -> Result<Console, Stop> {
        self.bench
            .console
            .clone()
            .ok_or_else(|| Stop::Error("the device has no console".into()))
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("what", &self.what).finish()
    }
}
