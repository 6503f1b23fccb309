//! Console steps: send, expect, expect nothing, log in, change the password, log out.

use super::prelude::*;

impl Run<'_> {
    pub(super) fn send(&mut self, bytes: &SendBytes) -> StepResult {
        let c = self.console()?;
        self.rig.state.lost();
        match bytes {
            SendBytes::Line(t) => {
                let s = self.render(t, Quote::Raw)?;
                self.send_line(&c, &s)?;
                Ok(format!("sent {}", shown(&self.rig.redactor, &s)))
            }
            SendBytes::Text(t) => {
                let s = self.render(t, Quote::Raw)?;
                c.send(s.as_bytes(), self.rig.redactor.redact(&s))
                    .map_err(|e| Stop::Error(format!("cannot write to console: {e}")))?;
                Ok(format!("sent {}", shown(&self.rig.redactor, &s)))
            }
            SendBytes::Raw(b) => {
                c.send(b, format!("bytes {b:02x?}"))
                    .map_err(|e| Stop::Error(format!("cannot write to console: {e}")))?;
                Ok(format!("sent {} bytes", b.len()))
            }
            SendBytes::Key(k) => {
                let nl = self.spec()?.newline.clone();
                c.send(&k.bytes(&nl), format!("<{k:?}>"))
                    .map_err(|e| Stop::Error(format!("cannot write to console: {e}")))?;
                Ok(format!("sent key {k:?}"))
            }
        }
    }

    pub(super) async fn expect(&mut self, pattern: &Pattern, within: &Duration, on_timeout: &Ruling) -> StepResult {
        let c = self.console()?;
        let re = self.pattern(pattern)?;
        match c
            .expect(&[&re], Instant::now() + *within, None)
            .await
            .map_err(console_lost)?
        {
            Wait::Found(f) => {
                for (k, v) in &f.captures {
                    self.vars.insert(k.clone(), v.clone());
                }
                Ok(format!("matched {:?}", self.rig.redactor.redact(&f.text)))
            }
            Wait::Timeout => Err(judge(
                on_timeout,
                &format!("no match for /{}/ within {within:?}", re.as_str()),
            )),
        }
    }

    pub(super) async fn expect_none(&mut self, pattern: &Pattern, window: &Duration, on_match: &Ruling) -> StepResult {
        let c = self.console()?;
        let re = self.pattern(pattern)?;
        match c.expect_none(&re, *window).await {
            None => Ok(format!("/{}/ did not appear within {window:?}", re.as_str())),
            Some(text) => Err(judge(
                on_match,
                &format!("device printed {:?}", self.rig.redactor.redact(&text)),
            )),
        }
    }

    pub(super) async fn login_step(
        &mut self,
        user: &Template,
        password: &Template,
        expect: &LoginOutcome,
        otherwise: &Ruling,
        within: &Option<Duration>,
    ) -> StepResult {
        let user = self.render(user, Quote::Raw)?;
        let password = self.render(password, Quote::Raw)?;
        let spec = self.spec()?;
        let within = within.unwrap_or(spec.boot_time + Duration::from_secs(30));
        let outcome = self.login(&user, &password, within).await?;
        if outcome == *expect {
            if outcome == LoginOutcome::Shell {
                self.rig.current = Some(crate::config::credentials::Credentials {
                    user: user.clone(),
                    password: password.clone(),
                });
            }
            Ok(format!(
                "login as {:?}: {}",
                self.rig.redactor.redact(&user),
                login_words(outcome)
            ))
        } else {
            Err(judge(otherwise, login_words(outcome)))
        }
    }

    pub(super) async fn change_password_step(
        &mut self,
        new: &Template,
        expect: &ChangeOutcome,
        otherwise: &Ruling,
        within: &Duration,
    ) -> StepResult {
        let new = self.render(new, Quote::Raw)?;
        let outcome = self.change_password(&new, *within).await?;
        let offered = shown(&self.rig.redactor, &new);
        if outcome == *expect {
            Ok(format!("offered {offered}: {}", change_words(outcome)))
        } else {
            Err(judge(
                otherwise,
                &format!("offered {offered}, the device {}", change_words(outcome)),
            ))
        }
    }

    pub(super) async fn logout(&mut self, within: &Duration) -> StepResult {
        if let Some(words) = self.remote_logout() {
            return Ok(words);
        }
        let c = self.console()?;
        let spec = self.spec()?.clone();
        self.send_line(&c, &spec.logout)?;
        match c
            .expect(&[&spec.prompts.login], Instant::now() + *within, None)
            .await
            .map_err(console_lost)?
        {
            Wait::Found(_) => {
                // keep the login prompt for the next login step
                self.rig.state.saw(Some(AtPrompt::Login));
                Ok("logged out".into())
            }
            Wait::Timeout => Err(Stop::Error(format!(
                "no login prompt within {within:?} after `{}`",
                spec.logout
            ))),
        }
    }
}

fn login_words(o: LoginOutcome) -> &'static str {
    match o {
        LoginOutcome::Shell => "the device gave a shell",
        LoginOutcome::PasswordChange => "the device demanded a new password",
        LoginOutcome::Rejected => "the device refused the credentials",
    }
}

fn change_words(o: ChangeOutcome) -> &'static str {
    match o {
        ChangeOutcome::Accepted => "accepted it",
        ChangeOutcome::Rejected => "refused it",
    }
}
