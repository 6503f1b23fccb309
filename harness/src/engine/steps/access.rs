//! Console access checks: who gets a command line on the console, and how a password
//! change is reached when the device does not force one (so PWD-07/08 are decided on their
//! own, never folded into PWD-01).

use std::time::{Duration, Instant};

use crate::config::scenario::LoginOutcome;
use crate::console::Wait;
use crate::engine::run::{Run, StepResult, Stop, console_lost};
use crate::engine::state::AtPrompt;

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
            .rig
            .device
            .factory
            .clone()
            .ok_or_else(|| Stop::Error("the device profile declares no factory credentials".into()))?;
        let spec = self.spec()?.clone();
        self.rig.current = Some(factory.clone());
        if self.remote_shell.is_none() && self.console_has_no_login() {
            return self.open_remote_password_change().await;
        }
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
                    self.rig.state.lost();
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

    /// The maker declares that the console has no login (`declarations.console_login:
    /// false`: a CLI on the UART, the account used over SSH or telnet).
    pub(super) fn console_has_no_login(&self) -> bool {
        self.rig
            .device
            .declarations
            .get("console_login")
            .is_some_and(|d| !d.applies())
    }

    /// The password is set over the network where the console has no login: a shell over
    /// the service with the maker's `password_command` (else the first SSH or telnet
    /// service, for a change forced at the first login), logged in with the factory
    /// credentials; `change_password` then runs the dialog there.
    async fn open_remote_password_change(&mut self) -> StepResult {
        use crate::config::services::ServiceKind;
        let services = &self.rig.device.services;
        let pick = services
            .iter()
            .find(|s| s.password_command.is_some())
            .or_else(|| {
                services
                    .iter()
                    .find(|s| matches!(s.kind, ServiceKind::Ssh | ServiceKind::Telnet))
            })
            .map(|s| s.name.clone());
        let Some(name) = pick else {
            return Err(Stop::Error(
                "not decided: the console has no login (declarations.console_login: false) and the profile declares no SSH or telnet service to set the password on: declare the service and its `password_command` (e.g. passwd); a device whose password cannot be changed at all declares `password_change: false` (AUT-02 then fails: EN 303 645 5.1-4)".into(),
            ));
        };
        let opened = self.remote_console(Some(&name)).await?;
        Ok(format!(
            "the console has no login (declared): the password is set over the network; {opened}"
        ))
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
        let shown = |s: &str| format!("{:?}", self.rig.redactor.redact(tail(s)));
        if found.index < 2 {
            if found.index == 0 {
                self.rig.state.saw(Some(AtPrompt::Login));
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

    /// `boot_break_in` (ATK-04): type the break-in keys from power-on; judge what comes.
    pub(super) async fn boot_break_in(&mut self) -> StepResult {
        let c = self.console()?;
        let spec = self.spec()?.clone();
        let bi = spec
            .boot_interrupt
            .clone()
            .ok_or_else(|| Stop::Error("the profile declares no console.boot_interrupt".into()))?;
        let p = &spec.prompts;
        let mut pats = vec![&bi.prompt, &p.login, &p.password, &p.shell];
        if let Some(pp) = &bi.password_prompt {
            pats.push(pp);
        }
        let window = bi.window.unwrap_or(spec.boot_time);
        let deadline = Instant::now() + window;
        let shown_keys = format!("{:?}", bi.send);
        let mut sent = 0u32;
        let found = loop {
            // a UART powered by the board may not be there yet: keep trying in the window
            if c.send(bi.send.as_bytes(), format!("{shown_keys} (boot break-in)"))
                .is_ok()
            {
                sent += 1;
            }
            let step = (Instant::now() + Duration::from_millis(100)).min(deadline);
            match c.expect(&pats, step, None).await.map_err(console_lost)? {
                Wait::Found(f) => break f,
                Wait::Timeout if Instant::now() >= deadline && sent == 0 => {
                    return Err(Stop::Error(format!(
                        "the console could not be written during the boot window of {window:?}: the break-in keys never reached the device"
                    )));
                }
                Wait::Timeout if Instant::now() >= deadline => {
                    return Err(Stop::Error(format!(
                        "neither a bootloader prompt nor the login prompt within {window:?} of typing {shown_keys} from power-on: cannot tell whether the boot can be broken into"
                    )));
                }
                Wait::Timeout => {}
            }
        };
        let shown = |s: &str| format!("{:?}", self.rig.redactor.redact(tail(s)));
        match found.index {
            1 | 2 => {
                self.rig.state.saw((found.index == 1).then_some(AtPrompt::Login));
                Ok(format!(
                    "typed {shown_keys} {sent} time(s) during boot; the boot went on and asked for credentials: {}",
                    shown(&found.text)
                ))
            }
            4 => Ok(format!(
                "typed {shown_keys} {sent} time(s) during boot; the bootloader asked for a password before any command: {}",
                shown(&found.text)
            )),
            i => {
                let what = if i == 0 { "a bootloader prompt" } else { "a shell" };
                let mut reason = format!(
                    "ATK-04: typing {shown_keys} during boot gave {what} without any credentials: {}",
                    shown(&format!("{}{}", found.before, found.text))
                );
                let command = if i == 0 {
                    bi.command.clone()
                } else {
                    spec.probe_command.clone()
                };
                if let Some(cmd) = command {
                    self.send_line(&c, &cmd)?;
                    let again = if i == 0 { &bi.prompt } else { &p.shell };
                    match c
                        .expect(&[again], Instant::now() + Duration::from_secs(10), None)
                        .await
                        .map_err(console_lost)?
                    {
                        Wait::Found(f) => reason.push_str(&format!(
                            "; it took the command `{cmd}` and answered {}",
                            shown(&format!("{}{}", f.before, f.text))
                        )),
                        Wait::Timeout => reason.push_str(&format!("; no prompt came back within 10s after `{cmd}`")),
                    }
                }
                Err(Stop::Fail {
                    check: Some("ATK-04".into()),
                    reason,
                })
            }
        }
    }
}
