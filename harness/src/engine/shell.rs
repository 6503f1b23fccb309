//! The shell strategy: where the console is — booting, at the login prompt, inside a
//! password-change dialog, at the shell — and how to get from there to a shell. Login,
//! password change, "get to a shell" and the health probe's "login or shell prompt within
//! the boot time" all go through here.

use std::time::{Duration, Instant};

use regex::bytes::Regex;

use super::run::{Run, Stop, console_lost};
use super::state::{AtPrompt, boot_prompt};
use crate::config::common::Prompts;
use crate::config::credentials::Credentials;
use crate::config::scenario::{ChangeOutcome, LoginOutcome};
use crate::console::{Console, Wait};

/// How long one wait in a remote shell's password dialog lasts before the session is looked
/// at again.
const REMOTE_SLICE: Duration = Duration::from_secs(1);

/// What the device shows during a password-change dialog.
#[derive(Debug, Clone, Copy)]
enum Dialog {
    Confirm,
    Current,
    New,
    Rejected,
    Shell,
    LoginRejected,
    Login,
    Password,
    ChangeMessage,
}

/// Which password-change prompt is which, in the order ties are broken: the more specific
/// prompts first.
fn dialog(p: &Prompts) -> Vec<(&Regex, Dialog)> {
    use Dialog as D;
    let mut table: Vec<(&Regex, Dialog)> = Vec::new();
    let optional = [
        (&p.confirm_password, D::Confirm),
        (&p.current_password, D::Current),
        (&p.new_password, D::New),
        (&p.password_rejected, D::Rejected),
    ];
    for (re, d) in optional.iter() {
        if let Some(re) = re {
            table.push((re, *d));
        }
    }
    table.extend([
        (&p.shell, D::Shell),
        (&p.login_rejected, D::LoginRejected),
        (&p.login, D::Login),
        (&p.password, D::Password),
    ]);
    if let Some(m) = &p.password_change {
        table.push((m, D::ChangeMessage));
    }
    table
}

impl Run<'_> {
    /// Gets to the shell with the credentials the run knows. A forced password change is
    /// answered with a generated strong password (kept secret, remembered for later logins).
    pub(super) async fn ensure_shell(&mut self) -> Result<String, Stop> {
        let c = self.console()?;
        let spec = self.spec()?.clone();
        let within = spec.boot_time + Duration::from_secs(30);
        // the shell prompt was consumed a moment ago and the device has printed nothing
        // since: it is still waiting there, no wake-up needed
        if let Some(AtPrompt::Shell(seen)) = self.rig.state.prompt() {
            if c.quiet_since(seen) {
                return Ok("at the shell (prompt seen, console quiet since)".into());
            }
            self.rig.state.lost();
        }
        if self.rig.state.prompt().is_none() {
            match boot_prompt(&c, &spec).await.map_err(console_lost)? {
                Some(AtPrompt::Login) => self.rig.state.saw(Some(AtPrompt::Login)),
                Some(_) => {
                    self.rig.state.saw_shell();
                    return Ok("at the shell".into());
                }
                None => {
                    return Err(Stop::Error(format!(
                        "no login or shell prompt within the boot time of {:?}",
                        spec.boot_time
                    )));
                }
            }
        }
        let Some(cur) = self.rig.current.clone() else {
            return Err(Stop::Error(
                "the device asks for a login but the profile gives no credentials".into(),
            ));
        };
        let mut outcome = self.login(&cur.user, &cur.password, within).await?;
        let mut reverted = "";
        // a device that keeps the password in RAM, or a lab reflash (update.restore), is back
        // at its factory password after power is removed: said, never taken silently
        let factory = self.rig.device.factory.clone().filter(|f| *f != cur);
        if let (LoginOutcome::Rejected, Some(f)) = (&outcome, factory) {
            let c = self.console()?;
            c.marker("the run's password was refused: trying the factory credentials".to_string());
            outcome = self.login(&f.user, &f.password, within).await?;
            if outcome != LoginOutcome::Rejected {
                self.rig.current = Some(f.clone());
                reverted = " (the device no longer took the password this run set: it was back at its factory password, as after a factory reset)";
            }
        }
        let cur = self.rig.current.clone().unwrap_or(cur);
        match outcome {
            LoginOutcome::Shell => {
                self.rig.state.saw_shell();
                Ok(format!("logged in as {:?}{reverted}", cur.user))
            }
            LoginOutcome::Rejected => Err(Stop::Error(format!(
                "the device refused the credentials the run knows for {:?}",
                cur.user
            ))),
            LoginOutcome::PasswordChange => {
                let new = crate::redact::generate_password(20);
                self.rig.redactor.add("device_password", &new);
                match self.change_password(&new, within).await? {
                    crate::config::scenario::ChangeOutcome::Accepted => {
                        self.rig.current = Some(Credentials {
                            user: cur.user.clone(),
                            password: new,
                        });
                        Ok(format!(
                            "logged in as {:?}; set a generated password when the device asked{reverted}",
                            cur.user
                        ))
                    }
                    crate::config::scenario::ChangeOutcome::Rejected => Err(Stop::Error(
                        "the device refused a strong generated password at its forced change".into(),
                    )),
                }
            }
        }
    }

    /// Types `cmd` at the shell (the run must be there) and returns what the device printed
    /// before the shell prompt came back (the echoed command included); ERROR naming
    /// `what` when the prompt does not come back within `within`.
    pub(super) async fn shell_output(&mut self, cmd: &str, within: Duration, what: &str) -> Result<String, Stop> {
        let c = self.console()?;
        let shell = self.spec()?.prompts.shell.clone();
        self.rig.state.lost();
        self.send_line(&c, cmd)?;
        match c
            .expect(&[&shell], Instant::now() + within, None)
            .await
            .map_err(console_lost)?
        {
            Wait::Found(f) => {
                self.rig.state.saw_shell();
                Ok(f.before)
            }
            Wait::Timeout => Err(Stop::Error(format!(
                "`{}` did not bring the shell prompt back within {within:?}: {what}",
                self.rig.redactor.redact(cmd)
            ))),
        }
    }

    /// Logs in with the profile's prompts; returns what the device did.
    pub(super) async fn login(&mut self, user: &str, password: &str, within: Duration) -> Result<LoginOutcome, Stop> {
        if self.remote_shell.is_some() {
            return self.remote_relogin(user, password, within).await;
        }
        let c = self.console()?;
        let spec = self.spec()?.clone();
        let p = &spec.prompts;
        let deadline = Instant::now() + within;
        let wake_bytes = spec.newline.clone().into_bytes();
        let wake = Some((spec.wake_after, wake_bytes.as_slice()));
        // 1. reach the login prompt (log out of a shell we find on the way)
        if self.rig.state.take_prompt() != Some(AtPrompt::Login) {
            let mut logged_out = false;
            loop {
                match c
                    .expect(&[&p.login, &p.shell], deadline, wake)
                    .await
                    .map_err(console_lost)?
                {
                    Wait::Found(f) if f.index == 0 => break,
                    Wait::Found(_) if !logged_out => {
                        self.send_line(&c, &spec.logout)?;
                        logged_out = true;
                    }
                    Wait::Found(_) => {
                        return Err(Stop::Error(format!(
                            "still at a shell after `{}`; cannot reach the login prompt. A console without a login (a CLI on the UART, the account used over SSH or telnet): declare `declarations.console_login: false` and the service where the password is set (its `password_command`)",
                            spec.logout
                        )));
                    }
                    Wait::Timeout => {
                        return Err(Stop::Error(format!("no login prompt within {within:?}")));
                    }
                }
            }
        }
        let life = c.reopened();
        let same_life = |c: &Console| {
            if c.reopened() == life {
                Ok(())
            } else {
                Err(Stop::Error(
                    "the console was lost and came back during the login dialog (the board reset, or its USB-UART re-enumerated), so the device's answer to the credentials cannot be judged".into(),
                ))
            }
        };
        self.send_line(&c, user)?;
        // 2. the password prompt, or a shell straight away
        let answer = c
            .expect(&[&p.password, &p.shell, &p.login_rejected, &p.login], deadline, None)
            .await
            .map_err(console_lost)?;
        same_life(&c)?;
        match answer {
            Wait::Found(f) => match f.index {
                0 => {}
                1 => return Ok(LoginOutcome::Shell),
                2 => return Ok(LoginOutcome::Rejected),
                _ => {
                    self.rig.state.saw(Some(AtPrompt::Login));
                    return Ok(LoginOutcome::Rejected);
                }
            },
            Wait::Timeout => {
                return Err(Stop::Error(format!(
                    "no password prompt within {within:?} after the user name"
                )));
            }
        }
        self.send_line(&c, password)?;
        // 3. what the device makes of it
        let mut pats: Vec<&Regex> = vec![&p.shell, &p.login_rejected, &p.login];
        let mut kinds: Vec<Option<AtPrompt>> = vec![None, None, Some(AtPrompt::Login)];
        if let Some(r) = &p.new_password {
            pats.push(r);
            kinds.push(Some(AtPrompt::NewPassword));
        }
        if let Some(r) = &p.current_password {
            pats.push(r);
            kinds.push(Some(AtPrompt::CurrentPassword));
        }
        if let Some(r) = &p.password_change {
            pats.push(r);
            kinds.push(None);
        }
        let answer = c.expect(&pats, deadline, None).await.map_err(console_lost)?;
        same_life(&c)?;
        match answer {
            Wait::Found(f) => {
                self.rig.state.saw(kinds[f.index]);
                Ok(match f.index {
                    0 => LoginOutcome::Shell,
                    1 | 2 => LoginOutcome::Rejected,
                    _ => LoginOutcome::PasswordChange,
                })
            }
            Wait::Timeout => Err(Stop::Error(format!("no answer to the credentials within {within:?}"))),
        }
    }

    /// Answers the password-change dialog with `new`, logging in again with the current
    /// credentials if the device dropped back to its login prompt.
    pub(super) async fn change_password(&mut self, new: &str, within: Duration) -> Result<ChangeOutcome, Stop> {
        let c = self.console()?;
        let spec = self.spec()?.clone();
        let p = &spec.prompts;
        if p.new_password.is_none() {
            return Err(Stop::Error(
                "the device profile defines no `new_password` prompt".into(),
            ));
        }
        let current = self
            .rig
            .current
            .clone()
            .ok_or_else(|| Stop::Error("no current credentials are known to log in again".into()))?;
        let deadline = Instant::now() + within;
        // at a shell, the declared password command opens the dialog (once per change)
        let mut command = self.password_command(&spec);
        let (mut sent_new, mut relogins) = self.answer_where_it_waits(&c, new, &current, &mut command)?;
        use Dialog as D;
        let table = dialog(p);
        let pats: Vec<&Regex> = table.iter().map(|(r, _)| *r).collect();
        let mut c = c;
        let mut life = c.reopened();
        loop {
            // a remote shell whose session ended (a forced change logs out): what the device
            // decided is seen by logging in again
            if self.remote_shell.is_some() && !c.connected() {
                if sent_new {
                    return self.decided_by_logging_in(new, &current).await;
                }
                self.reopen_remote_shell(&current.password)
                    .await
                    .map_err(|e| Stop::Error(format!("the remote session ended and no new one opened: {e}")))?;
                c = self.console()?;
                life = c.reopened();
                command = self.password_command(&spec);
                if let Some(AtPrompt::Shell(t)) = self.rig.state.take_prompt()
                    && c.quiet_since(t)
                    && let Some(cmd) = command.take()
                {
                    self.send_line(&c, &cmd)?;
                }
                continue;
            }
            // a remote session may end between the check above and the wait: the wait
            // never saw it connected, so it would not notice; short slices bring the
            // check round again
            let slice = if self.remote_shell.is_some() {
                deadline.min(Instant::now() + REMOTE_SLICE)
            } else {
                deadline
            };
            let answer = match c.expect(&pats, slice, None).await {
                Ok(Wait::Timeout) if Instant::now() < deadline => continue,
                Ok(a) => a,
                // the session ended: decided above, on the next turn
                Err(_) if self.remote_shell.is_some() => continue,
                Err(e) => return Err(console_lost(e)),
            };
            if c.reopened() != life {
                return Err(Stop::Error(
                    "the console was lost and came back during the password-change dialog (the board reset, or its USB-UART re-enumerated), so the device's answer cannot be judged".into(),
                ));
            }
            let f = match answer {
                Wait::Found(f) => f,
                Wait::Timeout => return Err(unfinished(within, sent_new)),
            };
            match table[f.index].1 {
                D::Confirm => self.send_line(&c, new)?,
                D::Current => self.send_line(&c, &current.password)?,
                D::New if sent_new => {
                    self.rig.state.saw(Some(AtPrompt::NewPassword));
                    return Ok(ChangeOutcome::Rejected);
                }
                D::New => {
                    self.send_line(&c, new)?;
                    sent_new = true;
                }
                D::Rejected if sent_new => return Ok(ChangeOutcome::Rejected),
                D::Rejected | D::ChangeMessage => {}
                D::Shell if sent_new => {
                    self.rig.current = Some(Credentials {
                        user: current.user.clone(),
                        password: new.to_string(),
                    });
                    // the dialog ended at the shell prompt, just consumed: the next step
                    // needs no wake-up
                    self.rig.state.saw_shell();
                    return Ok(ChangeOutcome::Accepted);
                }
                D::Shell => match command.take() {
                    Some(cmd) => self.send_line(&c, &cmd)?,
                    None => {
                        return Err(Stop::Error(
                            "the device gave a shell without a password-change dialog".into(),
                        ));
                    }
                },
                D::LoginRejected => {
                    return Err(Stop::Error(
                        "the device refused the current credentials when logging in again".into(),
                    ));
                }
                D::Login if sent_new => {
                    self.rig.state.saw(Some(AtPrompt::Login));
                    return Ok(ChangeOutcome::Rejected);
                }
                D::Login => {
                    relogins += 1;
                    if relogins > 3 {
                        return Err(Stop::Error("the device keeps returning to its login prompt".into()));
                    }
                    self.send_line(&c, &current.user)?;
                }
                D::Password => self.send_line(&c, &current.password)?,
            }
        }
    }

    /// Answers the prompt the device is known to wait at (the new password, the current
    /// one, the login, or the password command at a quiet shell): whether the new password
    /// went out, and how many logins were made.
    fn answer_where_it_waits(
        &mut self,
        c: &Console,
        new: &str,
        current: &Credentials,
        command: &mut Option<String>,
    ) -> Result<(bool, u32), Stop> {
        let (mut sent_new, mut relogins) = (false, 0);
        match self.rig.state.take_prompt() {
            Some(AtPrompt::NewPassword) => {
                self.send_line(c, new)?;
                sent_new = true;
            }
            Some(AtPrompt::CurrentPassword) => self.send_line(c, &current.password)?,
            Some(AtPrompt::Login) => {
                self.send_line(c, &current.user)?;
                relogins += 1;
            }
            // at a shell whose prompt was already read (and nothing printed since): the
            // password command opens the dialog
            Some(AtPrompt::Shell(t)) if c.quiet_since(t) => {
                if let Some(cmd) = command.take() {
                    self.send_line(c, &cmd)?;
                }
            }
            // the password command goes out when the shell prompt shows
            Some(AtPrompt::Shell(_)) | None => {}
        }
        Ok((sent_new, relogins))
    }

    /// The remote session ended after the new password went out: the password that logs in
    /// again says what the device decided.
    async fn decided_by_logging_in(&mut self, new: &str, current: &Credentials) -> Result<ChangeOutcome, Stop> {
        if self.reopen_remote_shell(new).await.is_ok() {
            self.rig.current = Some(Credentials {
                user: current.user.clone(),
                password: new.to_string(),
            });
            return Ok(ChangeOutcome::Accepted);
        }
        match self.reopen_remote_shell(&current.password).await {
            Ok(()) => Ok(ChangeOutcome::Rejected),
            Err(e) => Err(Stop::Error(format!(
                "after the password dialog the session ended and neither the new nor the current password logs in again: {e}"
            ))),
        }
    }
}

/// The dialog did not finish in time (and whether the new password was asked for).
fn unfinished(within: Duration, sent_new: bool) -> Stop {
    Stop::Error(format!(
        "the password-change dialog did not finish within {within:?}{}",
        if sent_new {
            ""
        } else {
            " (the new password was never asked for)"
        }
    ))
}
