//! Console access checks: who gets a command line on the console, and how a password
//! change is reached when the device does not force one (so PWD-07/08 are decided on their
//! own, never folded into PWD-01).

use std::time::{Duration, Instant};

use super::{AtPrompt, Run, StepResult, Stop, console_lost};
use crate::config::scenario::LoginOutcome;
use crate::console::Wait;

/// How much of what the device printed goes into a finding.
const EXCERPT: usize = 300;

fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(EXCERPT);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

impl Run<'_> {
    /// `open_password_change`: from factory state, reach a password-change dialog.
    pub(super) async fn open_password_change(&mut self) -> StepResult {
        let factory = self
            .bench
            .device
            .factory
            .clone()
            .ok_or_else(|| Stop::Error("the device profile declares no factory credentials".into()))?;
        let spec = self.spec()?.clone();
        self.bench.current = Some(factory.clone());
        let outcome = self
            .login(
                &factory.user,
                &factory.password,
                spec.boot_time + Duration::from_secs(30),
            )
            .await?;
        match outcome {
            LoginOutcome::PasswordChange => {
                Ok("the factory login demanded a new password: the password-change dialog is open".into())
            }
            LoginOutcome::Shell => match &spec.password_command {
                Some(cmd) => {
                    let c = self.console()?;
                    self.send_line(&c, cmd)?;
                    self.at = None;
                    Ok(format!(
                        "the factory login gave a shell (no forced change); started the declared password command `{cmd}`"
                    ))
                }
                None => Err(Stop::Error(
                    "not decided: the factory login gives a shell at once (no forced change, see PWD-01) and the profile declares no `console.password_command` (e.g. passwd) to change the password with"
                        .into(),
                )),
            },
            LoginOutcome::Rejected => Err(Stop::Error(
                "the device refused its factory credentials after a factory reset, so no password-change dialog could be opened"
                    .into(),
            )),
        }
    }

    /// `console_access` (ATK-02): without credentials, what does the console offer?
    pub(super) async fn console_access(&mut self) -> StepResult {
        let c = self.console()?;
        let spec = self.spec()?.clone();
        let p = &spec.prompts;
        let mut pats = vec![&p.login, &p.password, &p.shell];
        if let Some(cli) = &spec.cli_prompt {
            pats.push(cli);
        }
        let nl = spec.newline.clone().into_bytes();
        let deadline = Instant::now() + spec.boot_time;
        let found = match c
            .expect(&pats, deadline, Some((spec.wake_after, nl.as_slice())))
            .await
            .map_err(console_lost)?
        {
            Wait::Found(f) => f,
            Wait::Timeout => {
                return Err(Stop::Error(format!(
                    "no login, password, shell or CLI prompt within the boot time of {:?}: cannot tell whether the console asks for credentials",
                    spec.boot_time
                )));
            }
        };
        let shown = |s: &str| format!("{:?}", self.bench.redactor.redact(tail(s)));
        if found.index < 2 {
            if found.index == 0 {
                self.at = Some(AtPrompt::Login);
            }
            return Ok(format!(
                "the console asks for credentials before any command: {}",
                shown(&found.text)
            ));
        }
        let what = if found.index == 2 { "a shell" } else { "a command line" };
        let mut reason = format!(
            "ATK-02: the console offered {what} without any credentials: {}",
            shown(&format!("{}{}", found.before, found.text))
        );
        if let Some(cmd) = &spec.probe_command {
            self.send_line(&c, cmd)?;
            let back = c
                .expect(&pats[2..], Instant::now() + Duration::from_secs(10), None)
                .await
                .map_err(console_lost)?;
            match back {
                Wait::Found(f) => reason.push_str(&format!(
                    "; it took the command `{cmd}` and answered {}",
                    shown(&format!("{}{}", f.before, f.text))
                )),
                Wait::Timeout => reason.push_str(&format!("; no prompt came back within 10s after `{cmd}`")),
            }
        }
        Err(Stop::Fail {
            check: Some("ATK-02".into()),
            reason,
        })
    }
}
