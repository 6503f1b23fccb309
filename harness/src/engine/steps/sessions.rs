//! PWD-08 on sessions: what the old password opened must end with a password change.
//! `open_sessions` logs in, with the password that works now, on every shell the device
//! offers over the network (declared SSH and telnet services, and those the port scan
//! found), and — asked to — holds the serial console's shell too; each must answer a
//! harmless command (the positive control: a session that never worked proves nothing).
//! `sessions_ended`, after the change, types the same kind of command in each: a session
//! that still answers fails PWD-08, naming the interface and what ran. A web login with a
//! declared session page (`services[].session`) is held by its cookie: the page must
//! refuse it after the change. A connection to the device's own MQTT broker (`kind: mqtt`)
//! is held open: after the change the broker must have dropped it, or drop it on its next
//! publish — a PUBACK, or the message delivered, is a session that outlived the change.

use super::prelude::*;
use crate::console::Console;
use crate::engine::records::{Channel, Held, SessionRecord};
use crate::remote::{ShellProbe, Target};

/// How long a shell has to answer the probe command.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// What a session did with a probe command.
#[derive(Debug, Clone, PartialEq)]
enum Probed {
    /// A shell answered it (its arithmetic, or — a command line without it — its prompt
    /// back after the line).
    Ran,
    /// The session asks for credentials instead (it was logged out, or the line was taken
    /// as a password).
    LoggedOut,
    /// The device closed the session (why).
    Closed(String),
    /// Nothing came: neither an answer nor an end.
    Silent,
}

/// Types a probe command into `c` and reads what the session did with it; the command
/// typed.
async fn probe(c: &Console, prompt: Option<&regex::bytes::Regex>) -> (Probed, String) {
    let probe = ShellProbe::new();
    let line = probe.line.clone();
    let got = match answered(c, prompt, probe).await {
        Ok(Some(0)) => Probed::Ran,
        Ok(Some(1)) => Probed::LoggedOut,
        Ok(Some(_)) => Probed::Ran,
        Ok(None) => Probed::Silent,
        Err(e) => Probed::Closed(e),
    };
    (got, line)
}

/// Which pattern matched: 0 the answer, 1 a credential prompt, 2 the shell prompt.
async fn answered(
    c: &Console,
    prompt: Option<&regex::bytes::Regex>,
    probe: ShellProbe,
) -> Result<Option<usize>, String> {
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
    let mut pats = vec![&answer, crate::remote::credential_prompt()];
    if let Some(p) = prompt {
        pats.push(p);
    }
    match c.expect(&pats, deadline, None).await? {
        Wait::Found(f) => Ok(Some(f.index)),
        // a session that ended before the wait began is not a quiet one
        Wait::Timeout if !c.connected() => Err("the device closed the session".into()),
        Wait::Timeout => Ok(None),
    }
}

impl Run<'_> {
    /// `open_sessions`: a session with the current password on every network shell (and
    /// the serial console's shell with `console: true`), each shown to work.
    pub(super) async fn open_sessions(&mut self, console: bool) -> StepResult {
        let started = *self.remote_t0.get_or_insert_with(Instant::now);
        let right = self.rig.current.clone().ok_or_else(|| {
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
            if t.service.kind == ServiceKind::Mqtt {
                self.hold_mqtt(t, &user, &right.password, started, &mut said).await?;
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
            let at_shell = matches!(self.rig.state.prompt(), Some(AtPrompt::Shell(_))) && self.remote_shell.is_none();
            if !at_shell {
                return Err(Stop::Error(
                    "the serial console is not at a shell: it cannot be held across the change (log in first)".into(),
                ));
            }
            self.hold("the serial console".into(), None, prompt.clone(), started, &mut said)
                .await?;
            // the probe used the prompt the engine knew it was at
            self.rig.state.lost();
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
                self.rig.redactor.add("session cookie", v);
            }
        }
        said.push(format!(
            "{what}: the session cookie of a login with the current password opens its session page"
        ));
        self.keep_held(
            what,
            Channel::Web(Box::new(t), cookies),
            started,
            format!("GET the session page with the login's cookie: {answer}"),
            "the session page opened (the session works)",
        );
        Ok(())
    }

    /// Logs in to the device's broker, keeps the connection, and shows it carries a message
    /// (the positive control: PUBACK, and the message back on its own subscription when the
    /// broker granted one).
    async fn hold_mqtt(
        &mut self,
        t: Target,
        user: &str,
        password: &str,
        started: Instant,
        said: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let what = t.describe();
        let mut held = crate::remote::mqtt::Held::open(&t, user, password, t.attempt_limit())
            .await
            .map_err(|e| {
                Stop::Error(format!(
                    "not decided: no MQTT connection could be opened on {what} with the current password ({e}), so whether a change ends it cannot be seen"
                ))
            })?;
        let x = held.exchange(ANSWER_WITHIN).await;
        if !(x.acked && (x.echoed || !held.echoes)) {
            return Err(Stop::Error(format!(
                "not decided: {what} accepted a login with the current password but did not carry a message on it ({}), so a refusal after a change would prove nothing",
                x.describe()
            )));
        }
        let subscription = if held.echoes {
            format!("subscribed to {}", held.topic)
        } else {
            format!(
                "the broker refused a subscription to {}: PUBACK alone tells a working connection",
                held.topic
            )
        };
        said.push(format!(
            "{what}: a connection logged in with the current password carries messages ({})",
            x.describe()
        ));
        self.keep_held(
            what,
            Channel::Mqtt(Box::new(held)),
            started,
            format!(
                "CONNECT with the current password; {subscription}; PUBLISH (QoS 1) on it: {}",
                x.describe()
            ),
            "a message was carried (the connection works)",
        );
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
                .rig
                .console
                .clone()
                .ok_or_else(|| Stop::Error("the device has no console".into()))?,
        };
        let (answered, line) = probe(&c, prompt.as_ref()).await;
        if answered != Probed::Ran {
            return Err(Stop::Error(format!(
                "not decided: {what} logged in with the current password but answered no command within {ANSWER_WITHIN:?}, so its silence after a change would prove nothing"
            )));
        }
        said.push(format!(
            "{what}: a session opened with the current password runs commands"
        ));
        self.keep_held(
            what,
            Channel::Shell(console, prompt),
            started,
            line,
            "a command ran (the session works)",
        );
        Ok(())
    }

    /// Keeps a session shown to work, and its story so far for `sessions.json`.
    fn keep_held(&mut self, what: String, channel: Channel, started: Instant, probe: String, before: &str) {
        self.session_log.push(SessionRecord {
            session: what.clone(),
            opened_ms: started.elapsed().as_millis(),
            probes: vec![probe],
            before_change: before.into(),
            after_change: None,
        });
        self.held.push(Held {
            what,
            channel,
            opened: Instant::now(),
        });
    }

    /// `sessions_ended` (PWD-08): after the change, every held session must be over.
    pub(super) async fn sessions_ended(&mut self) -> StepResult {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return Ok("no session was held across the change (see open_sessions)".into());
        }
        let mut alive = Vec::new();
        let mut silent = Vec::new();
        let mut said = Vec::new();
        for mut h in held {
            let (after, line) = match &mut h.channel {
                Channel::Web(t, cookies) => {
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
                    (after, None)
                }
                Channel::Mqtt(m) => {
                    let x = m.exchange(ANSWER_WITHIN).await;
                    let after = if x.carried() {
                        alive.push(format!(
                            "{} (an MQTT connection logged in with the old password {:.1} s earlier) still carried a message after the change ({})",
                            h.what,
                            h.opened.elapsed().as_secs_f64(),
                            x.describe()
                        ));
                        format!("still carried a message: {}", x.describe())
                    } else if let Some(why) = &x.closed {
                        format!("ended by the device ({why})")
                    } else {
                        silent.push(h.what.clone());
                        format!("{} within {ANSWER_WITHIN:?}", x.describe())
                    };
                    (after, Some(format!("PUBLISH (QoS 1) on {}", m.topic)))
                }
                Channel::Shell(console, prompt) => {
                    let c = match console {
                        Some(c) => c.clone(),
                        None => self.console_of_bench()?,
                    };
                    let (answer, line) = probe(&c, prompt.as_ref()).await;
                    let after = match answer {
                        Probed::Ran => {
                            alive.push(format!(
                                "{} (opened with the old password {:.1} s earlier) still ran a command after the change (`{line}` was answered)",
                                h.what,
                                h.opened.elapsed().as_secs_f64()
                            ));
                            "a command ran: the session outlived the change".to_string()
                        }
                        Probed::LoggedOut => "logged out: the session asks for credentials again".to_string(),
                        Probed::Closed(e) => format!("ended by the device ({e})"),
                        // a session that only went quiet may be slow, not over: no PASS from silence
                        Probed::Silent => {
                            silent.push(h.what.clone());
                            format!("neither ran the command nor ended within {ANSWER_WITHIN:?}")
                        }
                    };
                    if let Some(c) = console {
                        c.close();
                    }
                    (after, Some(line))
                }
            };
            said.push(format!("{}: {after}", h.what));
            self.record_after(&h.what, after, line);
        }
        self.keep_evidence(
            "sessions.json",
            serde_json::to_string_pretty(&self.session_log).unwrap_or_default(),
        );
        if alive.is_empty() && !silent.is_empty() {
            return Err(Stop::Error(format!(
                "not decided: after the change {} neither worked nor ended (no answer, no login prompt, not closed within {ANSWER_WITHIN:?}): a quiet session may be a slow one",
                silent.join(", ")
            )));
        }
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
        self.rig
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(line: &str) -> Option<u64> {
        let e = line.strip_prefix("echo $((")?.strip_suffix("))")?;
        let (a, b) = e.split_once('+')?;
        Some(a.parse::<u64>().ok()? + b.parse::<u64>().ok()?)
    }

    async fn probed(script: crate::console::fake::Script) -> Probed {
        let (c, _feed) = crate::console::fake::console(script);
        let prompt = regex::bytes::Regex::new(r"\$ $").expect("regex");
        probe(&c, Some(&prompt)).await.0
    }

    #[tokio::test]
    async fn a_probe_tells_a_working_shell_a_logout_an_end_and_silence_apart() {
        let shell = probed(Box::new(|l: &str| {
            format!("{}\r\n$ ", sum_of(l).unwrap_or(0)).into_bytes()
        }))
        .await;
        assert_eq!(shell, Probed::Ran);
        let cli = probed(Box::new(|l: &str| format!("{l}\r\nunknown command\r\n$ ").into_bytes())).await;
        assert_eq!(
            cli,
            Probed::Ran,
            "a command line without arithmetic: its prompt came back"
        );
        let out = probed(Box::new(|_: &str| b"\r\nsession ended\r\nlogin: ".to_vec())).await;
        assert_eq!(out, Probed::LoggedOut);
        // the words of an end without one, then nothing: silence, not an end
        let quiet = probed(Box::new(|_: &str| Vec::new())).await;
        assert_eq!(quiet, Probed::Silent);
        // a session the device closes when the line comes
        let slot: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<crate::console::Feed>>>> = Default::default();
        let s2 = slot.clone();
        let (c, feed) = crate::console::fake::console(Box::new(move |_: &str| {
            if let Some(f) = s2.lock().expect("slot").as_ref() {
                f.event("the telnet session ended".into(), Some(false));
            }
            Vec::new()
        }));
        *slot.lock().expect("slot") = Some(feed);
        assert!(matches!(probe(&c, None).await.0, Probed::Closed(_)));
    }
}
