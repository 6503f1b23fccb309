//! Remote password checks over the device's network services: factory credentials
//! (PWD-02), common default credentials (PWD-03), brute-force protection (PWD-09).
//!
//! Every attempt is recorded (time, service, user, which list entry or named password,
//! outcome, latency) in `remote-attempts.jsonl`; passwords are never written. A refusal
//! counts only when the device said so, and only beside a login that worked on the same
//! service in the same testcase (the positive control).

use std::time::{Duration, Instant};

use crate::config::credentials::Credentials;
use crate::config::scenario::{RemoteExpect, Ruling, SweepState};
use crate::engine::records::AttemptRecord;
use crate::engine::run::{Run, StepResult, Stop, judge};
use crate::model::template::{Quote, Template};
use crate::remote::{LoginAnswer, LoginDriver, Target, Tried};

/// The first attempts of a burst that a rate limit may let through ("after the first ten").
const FREE_ATTEMPTS: usize = 10;
/// How often a sweep segment may be redone after a lockout before the sweep gives up.
const MAX_REDO: u32 = 3;

fn words(o: &LoginAnswer) -> String {
    match o {
        LoginAnswer::Accepted => "logged in".into(),
        LoginAnswer::Rejected => "refused the login".into(),
        LoginAnswer::PasswordChange => "took the credentials and demanded a new password".into(),
        LoginAnswer::NoPasswords(offers) => format!("takes no passwords at all (it offers: {offers})"),
        LoginAnswer::Unanswered(why) => format!("gave no decision ({why})"),
    }
}

impl Run<'_> {
    /// The declared services, ports rendered.
    fn remote_targets(&self) -> Result<Vec<Target>, Stop> {
        self.targets(true)
    }

    /// The declared services, and with `found` those the port scan found undeclared.
    pub(super) fn targets(&self, found: bool) -> Result<Vec<Target>, Stop> {
        let services = &self.rig.device.services;
        let mut targets: Vec<Target> = services
            .iter()
            .filter(|s| s.kind.logs_in())
            .map(|s| Ok(Target::new(s.clone(), self.service_port(s)?)))
            .collect::<Result<_, Stop>>()?;
        if found {
            targets.extend(self.found_services(&targets));
        }
        if targets.is_empty() {
            return Err(Stop::Skip(match self.no_login_words() {
                Some(w) => format!("the device profile declares no remote login services ({w})"),
                None => "the device profile declares no remote login services".into(),
            }));
        }
        Ok(targets)
    }

    /// The declared services without a login, for the evidence of the password checks:
    /// `status (no_login, tcp/443) and coap (no_login, udp/5683): declared without a login, not tried`.
    pub(super) fn no_login_words(&self) -> Option<String> {
        let names: Vec<String> = self
            .rig
            .device
            .services
            .iter()
            .filter(|s| !s.kind.logs_in())
            .map(|s| {
                let port = s
                    .port
                    .render(&self.rig.command_vars, Quote::Raw)
                    .unwrap_or_else(|_| s.port.source().to_string());
                format!("{} ({}/{})", s.name, if s.udp { "udp" } else { "tcp" }, port.trim())
            })
            .collect();
        (!names.is_empty()).then(|| format!("{}: declared without a login (no_login), not tried", names.join(", ")))
    }

    /// A step's summary with the services it left out said first.
    fn with_no_login(&self, summary: String) -> String {
        match self.no_login_words() {
            Some(w) => format!("{w}; {summary}"),
            None => summary,
        }
    }

    /// Login services the run's port scan found that the profile does not declare (telnet,
    /// SSH, FTP, MQTT on the device's address): an attacker tries them too. Telnet needs the
    /// console's prompts to read its dialog; without them it is left out. A port declared
    /// `no_login` that answers as one of these is tried too: an attacker does not read the
    /// declaration.
    fn found_services(&self, declared: &[Target]) -> Vec<Target> {
        use crate::config::services::{RemotePrompts, Service, ServiceKind};
        let (Some(open), Some(host)) = (&self.rig.gateway.scan, self.rig.device.attribution.device) else {
            return Vec::new();
        };
        let prompts = self
            .rig
            .device
            .console
            .as_ref()
            .map(|c| RemotePrompts::from_console(&c.prompts));
        open.iter()
            .filter(|p| p.proto == "tcp" && !declared.iter().any(|t| t.port == p.port))
            .filter_map(|p| {
                let kind = match p.service.as_str() {
                    "telnet" if prompts.is_some() => ServiceKind::Telnet,
                    "ssh" => ServiceKind::Ssh,
                    "ftp" => ServiceKind::Ftp,
                    "mqtt" => ServiceKind::Mqtt,
                    _ => return None,
                };
                // nothing is declared of its protection: the sweep logs in with the right
                // password after every wrong one, so no lockout of 2 or more engages
                let mut service = Service::bare(
                    format!("{}-{} (found by the port scan)", p.service, p.port),
                    kind,
                    host,
                    p.port,
                    Duration::from_secs(10),
                );
                if kind == ServiceKind::Telnet {
                    service.prompts = prompts.clone();
                }
                Some(Target::new(service, p.port))
            })
            .collect()
    }

    /// A declared service's port, its template rendered for this run.
    pub(super) fn service_port(&self, s: &crate::config::services::Service) -> Result<u16, Stop> {
        if !s.host_known() {
            return Err(Stop::Error(format!(
                "service {}: the device's address is given when its network namespace is made, and this run has none (see the run's notes); nothing was sent",
                s.name
            )));
        }
        let text = s.port.render(&self.rig.command_vars, Quote::Raw).map_err(Stop::Error)?;
        text.trim()
            .parse::<u16>()
            .map_err(|_| Stop::Error(format!("service {}: port {text:?} is not a port number", s.name)))
    }

    /// The credentials that should work now (after the run's password change).
    /// `remote_console`: logs in over SSH (retrying while the device boots) and makes that
    /// shell the console of the following steps.
    pub(super) async fn remote_console(&mut self, service: Option<&str>) -> StepResult {
        let targets = self.remote_targets()?;
        let t = match service {
            Some(n) => targets
                .into_iter()
                .find(|t| t.service.name == n)
                .ok_or_else(|| Stop::Error(format!("the device profile declares no service named {n:?}")))?,
            None => targets
                .into_iter()
                .find(|t| t.service.password_command.is_some())
                .ok_or_else(|| {
                    Stop::Skip(
                        "the maker declares no remote password change (an SSH or telnet service with password_command)"
                            .into(),
                    )
                })?,
        };
        if !matches!(
            t.service.kind,
            crate::config::services::ServiceKind::Ssh | crate::config::services::ServiceKind::Telnet
        ) {
            return Err(Stop::Error(format!(
                "{} gives no shell: only an SSH or telnet shell can stand in for the console",
                t.describe()
            )));
        }
        let spec = self.spec().map_err(|_| {
            Stop::Error(
                "the password dialog's prompts come from console.prompts, which the device profile does not declare"
                    .into(),
            )
        })?;
        let boot = spec.boot_time;
        let right = self.right_credentials()?;
        let user = Self::remote_user(&t, &right);
        let deadline = Instant::now() + boot.max(Duration::from_secs(1));
        let (console, at_prompt) = loop {
            match crate::remote::shell_console(&t, &user, &right.password).await {
                Ok(c) => break c,
                Err(e) if Instant::now() >= deadline => {
                    return Err(Stop::Error(format!(
                        "no shell over {} as {user:?} within the boot time {boot:?}: {e}",
                        t.describe()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        // one stand-in console at a time: the one before ends here
        if let Some(old) = self.remote_shell.take() {
            old.console.close();
        }
        self.remote_shell = Some(crate::engine::run::RemoteShell {
            console,
            password_command: t.service.password_command.clone(),
            target: t.clone(),
            user: user.clone(),
            earlier: String::new(),
        });
        self.rig
            .state
            .saw(at_prompt.then(|| crate::engine::state::AtPrompt::Shell(Instant::now())));
        Ok(format!(
            "a shell over {} as {user:?}; the password dialogs run there{}",
            t.describe(),
            t.service
                .password_command
                .as_ref()
                .map(|c| format!(" (password command {c:?})"))
                .unwrap_or_default()
        ))
    }

    /// The remote shell's session ended (a forced change logs the user out): a new session
    /// with `password`. On success it replaces the old one, whose transcript is kept.
    pub(crate) async fn reopen_remote_shell(&mut self, password: &str) -> Result<(), String> {
        let Some(r) = &self.remote_shell else {
            return Err("no remote shell".into());
        };
        let (t, user) = (r.target.clone(), r.user.clone());
        let (console, at_prompt) = crate::remote::shell_console(&t, &user, password).await?;
        self.rig
            .state
            .saw(at_prompt.then(|| crate::engine::state::AtPrompt::Shell(Instant::now())));
        if let Some(r) = self.remote_shell.as_mut() {
            r.console.close();
            let text = r.console.with_transcript(|tr| tr.render_text(0, &self.rig.redactor));
            r.earlier.push_str(&text);
            r.console = console;
        }
        Ok(())
    }

    /// A login on the service whose shell stands in for the console: the driver judges it
    /// (a refusal in the device's words, a shell, a demand for a new password; no decision
    /// within `within` is an ERROR), and a shell becomes the console of the next steps.
    pub(crate) async fn remote_relogin(
        &mut self,
        user: &str,
        password: &str,
        within: Duration,
    ) -> Result<crate::config::scenario::LoginOutcome, Stop> {
        use crate::config::scenario::LoginOutcome;
        let Some(r) = self.remote_shell.as_mut() else {
            return Err(Stop::Error("no remote shell".into()));
        };
        // one session at a time: the one before ends here
        r.console.close();
        r.user = user.to_string();
        let t = r.target.clone();
        self.rig.state.lost();
        let o = self
            .decided_login(&t, user, password, "the password of this step", within)
            .await?;
        match o {
            LoginAnswer::Accepted => {
                self.reopen_remote_shell(password).await.map_err(|e| {
                    Stop::Error(format!(
                        "{} took the login, but no shell opened after it: {e}",
                        t.describe()
                    ))
                })?;
                Ok(LoginOutcome::Shell)
            }
            LoginAnswer::PasswordChange => Ok(LoginOutcome::PasswordChange),
            LoginAnswer::Rejected | LoginAnswer::NoPasswords(_) => Ok(LoginOutcome::Rejected),
            LoginAnswer::Unanswered(why) => Err(Stop::Error(format!(
                "{} gave no decision on a login: {why}",
                t.describe()
            ))),
        }
    }

    /// Ends the remote shell's session (the `logout` step where it stands in for the
    /// console); the next `login` opens a new one.
    pub(crate) fn remote_logout(&mut self) -> Option<String> {
        let r = self.remote_shell.as_mut()?;
        r.console.close();
        self.rig.state.lost();
        Some(format!("ended the session on {}", r.target.describe()))
    }

    fn right_credentials(&self) -> Result<Credentials, Stop> {
        self.rig
            .current
            .clone()
            .ok_or_else(|| Stop::Error("the run knows no working credentials (no factory credentials declared)".into()))
    }

    fn remote_user(t: &Target, c: &Credentials) -> String {
        t.service.user.clone().unwrap_or_else(|| c.user.clone())
    }

    /// The right password on `t`, recorded (a control, an unlock poll, the probe after a burst).
    async fn right_login(&mut self, t: &Target, right: &Credentials) -> Tried {
        let user = Self::remote_user(t, right);
        self.try_login(t, &user, &right.password, "the current password").await
    }

    /// One attempt, recorded.
    async fn try_login(&mut self, t: &Target, user: &str, password: &str, credential: &str) -> Tried {
        let started = *self.remote_t0.get_or_insert_with(Instant::now);
        let mut tried = t.attempt(user, password).await;
        // a device that echoes what it was sent must not put the password into the evidence:
        // the run's secrets and this attempt's password are redacted on the raw answer
        // (escape codes between letters, a cut through it), then it is escaped and shortened
        let safe = self
            .rig
            .redactor
            .redact_window(tried.detail.as_bytes(), &[("password", password)]);
        tried.detail = crate::remote::printable_tail(&String::from_utf8_lossy(&safe), 300);
        self.attempts.push(AttemptRecord {
            t_ms: started.elapsed().as_millis(),
            service: t.service.name.clone(),
            user: crate::remote::printable(user, 64),
            credential: credential.to_string(),
            outcome: tried.outcome.word(),
            latency_ms: tried.latency.as_millis(),
            detail: tried.detail.clone(),
        });
        tried
    }

    /// Tries until the service gives a decision or `within` passes (a booting device's
    /// service may not listen yet).
    async fn decided_login(
        &mut self,
        t: &Target,
        user: &str,
        password: &str,
        credential: &str,
        within: Duration,
    ) -> Result<LoginAnswer, Stop> {
        let deadline = Instant::now() + within;
        loop {
            let tried = self.try_login(t, user, password, credential).await;
            match tried.outcome {
                LoginAnswer::Unanswered(why) if Instant::now() >= deadline => {
                    return Err(Stop::Error(format!(
                        "{} gave no decision on a login within {within:?}: {why}",
                        t.describe()
                    )));
                }
                LoginAnswer::Unanswered(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                o => return Ok(o),
            }
        }
    }

    /// `remote_login`: this password on every declared service.
    pub(super) async fn remote_login(
        &mut self,
        password: &Template,
        expect: RemoteExpect,
        within: Duration,
        otherwise: &Ruling,
    ) -> StepResult {
        let targets = self.remote_targets()?;
        let pw = self.render(password, Quote::Raw)?;
        let label = password.source().to_string();
        let creds = self.right_credentials().unwrap_or(Credentials {
            user: String::new(),
            password: String::new(),
        });
        let mut seen = Vec::new();
        for t in &targets {
            let user = Self::remote_user(t, &creds);
            if user.is_empty() {
                return Err(Stop::Error(format!("no user to log in as on {}", t.describe())));
            }
            let o = self.decided_login(t, &user, &pw, &label, within).await?;
            let ok = match expect {
                // a service that takes no passwords: no password opens it, and there is no
                // refusal to control; the server's own list of methods is the evidence
                _ if matches!(o, LoginAnswer::NoPasswords(_)) => true,
                RemoteExpect::Accepted => o == LoginAnswer::Accepted,
                RemoteExpect::Rejected => o == LoginAnswer::Rejected,
                RemoteExpect::NoAccess => o != LoginAnswer::Accepted,
            };
            let line = format!("{} {} for {user:?} with {label}", t.describe(), words(&o));
            if !ok {
                return Err(judge(otherwise, &line));
            }
            seen.push(line);
        }
        Ok(self.with_no_login(seen.join("; ")))
    }

    /// Logs in with the right credentials until it works or `limit` passes. Returns when
    /// the last refusal and the first success came (since the call): the lockout lasted at
    /// least the first, at most the second. Only refusals in the device's words (or, where
    /// the maker declares a lockout that drops logins, undecided ones) count as locked. Polls from half the declared unlock time on,
    /// every twentieth of it (at least 0.5 s); undeclared: after 1 s, then doubling to 10 s.
    async fn wait_unlocked(
        &mut self,
        t: &Target,
        right: &Credentials,
        limit: Duration,
    ) -> Option<(Duration, Duration)> {
        let t0 = Instant::now();
        let (mut pause, step) = match t.service.unlock {
            Some(u) => (u / 2, Some((u / 20).max(Duration::from_millis(500)))),
            None => (Duration::from_secs(1), None),
        };
        let mut last_refused = Duration::ZERO;
        loop {
            let left = limit.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return None;
            }
            tokio::time::sleep(pause.min(left)).await;
            let at = t0.elapsed();
            let tried = self.right_login(t, right).await;
            match tried.outcome {
                LoginAnswer::Accepted => return Some((last_refused, at)),
                // the lockout lasted at least until the last login the device refused (or,
                // declared, dropped): an undecided poll proves nothing about it
                LoginAnswer::Rejected => last_refused = at,
                LoginAnswer::Unanswered(_) if t.service.while_locked == crate::config::services::WhileLocked::Drops => {
                    last_refused = at
                }
                _ => {}
            }
            pause = step.unwrap_or_else(|| (pause * 2).min(Duration::from_secs(10)));
        }
    }

    /// The positive control of a service: the right password logs in (once a lockout left
    /// by an earlier check, or shared with another service, has passed).
    async fn control(&mut self, t: &Target, right: &Credentials) -> Result<bool, Stop> {
        let user = Self::remote_user(t, right);
        let o = self
            .decided_login(
                t,
                &user,
                &right.password,
                "the current password",
                Duration::from_secs(60),
            )
            .await?;
        let o = match o {
            LoginAnswer::Rejected => {
                let limit = Self::unlock_limit(t, None);
                match self.wait_unlocked(t, right, limit).await {
                    Some(_) => LoginAnswer::Accepted,
                    None => o,
                }
            }
            o => o,
        };
        match o {
            LoginAnswer::Accepted => Ok(true),
            LoginAnswer::NoPasswords(_) => Ok(false),
            o => Err(Stop::Error(format!(
                "not decided: the positive control failed — {} {} with the current password (user {user:?}), so a refusal there would mean nothing",
                t.describe(),
                words(&o)
            ))),
        }
    }

    /// How long to wait for a locked service to take the right password again.
    fn unlock_limit(t: &Target, asked: Option<Duration>) -> Duration {
        asked.unwrap_or_else(|| match t.service.unlock {
            Some(u) => u + Duration::from_secs(60),
            None => Duration::from_secs(600),
        })
    }

    /// `credential_sweep` (PWD-03): the built-in list and the lab's on every service, in the
    /// state the steps before left (`current`) or in the state the device ships in
    /// (`factory`: right after `factory_reset`, where a botnet meets it).
    pub(super) async fn credential_sweep(&mut self, state: SweepState) -> StepResult {
        let targets = self.remote_targets()?;
        let right = self.right_credentials()?;
        let factory = state == SweepState::Factory;
        if factory
            && self
                .rig
                .device
                .factory
                .as_ref()
                .is_none_or(|f| f.user != right.user || f.password != right.password)
        {
            return Err(Stop::Error(
                "a factory-state sweep needs the device in factory state, and this scenario set a password before it: put `credential_sweep: { state: factory }` right after `factory_reset` and a power cycle".into(),
            ));
        }
        let when = sweep_when(factory);
        let list = crate::remote::defaults::entries(&self.rig.device.default_credentials);
        // the right login that paces the sweep: the current password logs in; in factory
        // state the factory credentials are taken (a shell, or a demand for a new password)
        let taken = |o: &LoginAnswer| *o == LoginAnswer::Accepted || (factory && *o == LoginAnswer::PasswordChange);
        let mut summary = Vec::new();
        for t in &targets {
            let paced = match self.sweep_control(t, &right, factory).await? {
                Control::NoPasswords => {
                    summary.push(format!(
                        "{} {when}: takes no passwords, so no default credentials can log in",
                        t.describe()
                    ));
                    continue;
                }
                Control::Paced => true,
                Control::Unpaced => false,
            };
            // the right login after every `after - 1` wrong ones keeps the declared
            // protection from engaging; a refusal counts only once a right login follows it.
            // Unpaced (the service refuses the factory credentials themselves before setup):
            // the whole list in one go, each answer taken as the device gave it
            let seg = if paced {
                (t.service.after.saturating_sub(1)).max(1) as usize
            } else {
                list.len().max(1)
            };
            let (mut i, mut lockouts, mut waited, mut redo) = (0usize, 0u32, Duration::ZERO, 0u32);
            let mut undecided: Vec<usize> = Vec::new();
            while i < list.len() {
                let end = (i + seg).min(list.len());
                let mut open = Vec::new();
                for (k, e) in list.iter().enumerate().take(end).skip(i) {
                    let tried = self.try_login(t, &e.user, &e.password, &e.label).await;
                    match tried.outcome {
                        LoginAnswer::Accepted | LoginAnswer::PasswordChange => {
                            return Err(default_login(t, &tried.outcome, e, when));
                        }
                        // no password works for this user: refused as surely as a refusal
                        LoginAnswer::Rejected | LoginAnswer::NoPasswords(_) => {}
                        LoginAnswer::Unanswered(_) => open.push(k),
                    }
                }
                if !paced {
                    undecided.extend(open);
                    i = end;
                    continue;
                }
                let check = self.right_login(t, &right).await;
                if taken(&check.outcome) {
                    undecided.extend(open);
                    i = end;
                    redo = 0;
                    continue;
                }
                // locked (or gone): the refusals since the last right login mean nothing
                lockouts += 1;
                redo += 1;
                if redo > MAX_REDO {
                    return Err(Stop::Error(format!(
                        "not decided: {} stopped taking the right password {when} after {} wrong attempt(s) {MAX_REDO} times in a row; {i} of {} entries decided. Declare the device's protection (services[].throttle.after)",
                        t.describe(),
                        end - i,
                        list.len()
                    )));
                }
                let limit = Self::unlock_limit(t, None);
                match self.wait_unlocked(t, &right, limit).await {
                    Some((_, d)) => waited += d,
                    None => {
                        return Err(Stop::Error(format!(
                            "not decided: the right password stopped working on {} during the sweep {when} and did not work again within {limit:?}; {i} of {} entries decided",
                            t.describe(),
                            list.len()
                        )));
                    }
                }
            }
            // entries the device did not answer get one more try, each followed by a right login
            self.retry_undecided(t, &right, &list, undecided, paced, factory)
                .await?;
            summary.push(swept(t, when, list.len(), paced, seg, lockouts, waited));
        }
        Ok(self.with_no_login(summary.join("; ")))
    }

    /// Entries the device did not answer get one more try, each followed by a right login
    /// (paced); any still without a decision make the sweep undecided.
    async fn retry_undecided(
        &mut self,
        t: &Target,
        right: &Credentials,
        list: &[crate::remote::defaults::Entry],
        undecided: Vec<usize>,
        paced: bool,
        factory: bool,
    ) -> Result<(), Stop> {
        let when = sweep_when(factory);
        let taken = |o: &LoginAnswer| *o == LoginAnswer::Accepted || (factory && *o == LoginAnswer::PasswordChange);
        let mut unresolved = 0;
        for k in undecided {
            let e = &list[k];
            let tried = self.try_login(t, &e.user, &e.password, &e.label).await;
            let confirmed = !paced || taken(&self.right_login(t, right).await.outcome);
            match tried.outcome {
                LoginAnswer::Accepted | LoginAnswer::PasswordChange => {
                    return Err(default_login(t, &tried.outcome, e, when));
                }
                LoginAnswer::Rejected | LoginAnswer::NoPasswords(_) if confirmed => {}
                _ => unresolved += 1,
            }
        }
        if unresolved > 0 {
            return Err(Stop::Error(format!(
                "not decided: {} gave no decision {when} on {unresolved} of {} default credentials, even when tried again",
                t.describe(),
                list.len()
            )));
        }
        Ok(())
    }

    /// Whether the sweep on `t` can be paced by the right login. After setup: the current
    /// password must log in (the positive control; [`Self::control`]). In factory state:
    /// the factory credentials must be taken (a shell, or a demand for a new password); a
    /// service that refuses them too takes no remote login before setup.
    async fn sweep_control(&mut self, t: &Target, right: &Credentials, factory: bool) -> Result<Control, Stop> {
        if !factory {
            return Ok(if self.control(t, right).await? {
                Control::Paced
            } else {
                Control::NoPasswords
            });
        }
        let user = Self::remote_user(t, right);
        let o = self
            .decided_login(
                t,
                &user,
                &right.password,
                "the factory password",
                Duration::from_secs(60),
            )
            .await?;
        Ok(match o {
            LoginAnswer::Accepted | LoginAnswer::PasswordChange => Control::Paced,
            LoginAnswer::NoPasswords(_) => Control::NoPasswords,
            _ => Control::Unpaced,
        })
    }

    /// `ssh_algorithms` (COM-03, SSH part): each SSH service's offer, read before any login.
    pub(super) async fn ssh_algorithms(&mut self) -> StepResult {
        let targets: Vec<Target> = self
            .remote_targets()?
            .into_iter()
            .filter(|t| t.service.kind == crate::config::services::ServiceKind::Ssh)
            .collect();
        let mut seen = Vec::new();
        let mut offers = Vec::new();
        for t in &targets {
            // a booting device may not listen yet
            let deadline = Instant::now() + Duration::from_secs(60);
            let offer = loop {
                match crate::remote::kexinit::offer(t.addr(), t.service.timeout).await {
                    Ok(o) => break o,
                    Err(e) if Instant::now() >= deadline => {
                        return Err(Stop::Error(format!(
                            "{}: no key-exchange offer read: {e}",
                            t.describe()
                        )));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            };
            offers.push(serde_json::json!({ "service": t.service.name, "offer": offer }));
            let weak = offer.weak();
            if !weak.is_empty() {
                self.keep_evidence(
                    "ssh-offers.json",
                    serde_json::to_string_pretty(&offers).unwrap_or_default(),
                );
                let named: Vec<String> = weak.iter().map(|(k, v)| format!("{k}: {}", v.join(", "))).collect();
                return Err(Stop::Fail {
                    check: Some("COM-03".into()),
                    reason: format!(
                        "COM-03: {} ({}) offers weak algorithms — {}",
                        t.describe(),
                        offer.ident,
                        named.join("; ")
                    ),
                });
            }
            seen.push(format!(
                "{} ({}): no weak algorithm among {} key exchange, {} host key, {} cipher and {} MAC algorithms",
                t.describe(),
                offer.ident,
                offer.kex.len(),
                offer.host_key.len(),
                offer.ciphers.len(),
                offer.macs.len()
            ));
        }
        self.keep_evidence(
            "ssh-offers.json",
            serde_json::to_string_pretty(&offers).unwrap_or_default(),
        );
        Ok(seen.join("; "))
    }

    /// `brute_force` (PWD-09): per service, a burst of wrong passwords, then the right one.
    pub(super) async fn brute_force(
        &mut self,
        attempts: u32,
        max_rate: u32,
        max_burst: Duration,
        unlock_within: Option<Duration>,
    ) -> StepResult {
        // declared services only: judging a lockout needs the maker's declared protection
        // (services[].throttle), which an undeclared service has not; ATK-01 names it
        let targets = self.targets(false)?;
        let right = self.right_credentials()?;
        let mut summary = Vec::new();
        for t in &targets {
            if !self.control(t, &right).await? {
                summary.push(format!(
                    "{}: takes no passwords, so there are none to guess",
                    t.describe()
                ));
                continue;
            }
            let mut b = Burst {
                t0: Instant::now(),
                nonce: rand::random(),
                user: Self::remote_user(t, &right),
                answers: Vec::new(),
                probes: Vec::new(),
                took: Duration::ZERO,
                first_undecided: None,
            };
            let verdict = match self.wrong_burst(t, &mut b, attempts, max_burst).await {
                Ok(()) => self.after_burst(t, &right, &mut b, max_rate, unlock_within).await,
                Err(e) => Err(e),
            };
            self.keep_evidence(
                &format!("brute-force-{}.svg", file_safe(&t.service.name)),
                crate::report::plot::timeline_svg(&t.describe(), &b.answers, &b.probes, max_rate, FREE_ATTEMPTS),
            );
            summary.push(verdict?);
        }
        Ok(self.with_no_login(summary.join("; ")))
    }

    /// Wrong passwords as fast as the service answers, up to `attempts` or `max_burst`; one
    /// that is taken is a FAIL at once. Only answers the device decided count: a burst the
    /// device left (mostly) unanswered measured nothing.
    async fn wrong_burst(&mut self, t: &Target, b: &mut Burst, attempts: u32, max_burst: Duration) -> Result<(), Stop> {
        for j in 0..attempts {
            if b.t0.elapsed() > max_burst {
                break;
            }
            let wrong = format!("cb-wrong-{:08x}-{j}", b.nonce);
            let tried = self.try_login(t, &b.user, &wrong, &format!("wrong #{}", j + 1)).await;
            b.record(&tried);
            if matches!(tried.outcome, LoginAnswer::Accepted | LoginAnswer::PasswordChange) {
                return Err(Stop::Fail {
                    check: Some("PWD-09".into()),
                    reason: format!(
                        "PWD-09: {} {} for a random wrong password (wrong #{}): the password is not checked",
                        t.describe(),
                        words(&tried.outcome),
                        j + 1
                    ),
                });
            }
        }
        b.took = b.t0.elapsed();
        Ok(())
    }

    /// An attempt the device held until certbench gave up is not a slowed guess: a burst
    /// with no refusal in the device's words, or with more than a tenth of it undecided,
    /// measured nothing (undecided attempts count as locked only where the maker declares
    /// a lockout that drops logins). When the service then answers nothing at all, wrong
    /// passwords took it down: a finding of its own.
    async fn burst_decided(&mut self, t: &Target, b: &Burst, limit: Duration) -> Result<(), Stop> {
        let n = b.answers.len();
        let decided = b.decided();
        let drops = t.service.while_locked == crate::config::services::WhileLocked::Drops;
        let undecided = if drops { 0 } else { n - decided };
        if decided > 0 && undecided * 10 <= n {
            return Ok(());
        }
        let why = b.first_undecided.clone().unwrap_or_default();
        match self.wait_answering(t, limit).await {
            None => Err(Stop::Fail {
                check: Some("PWD-09".into()),
                reason: format!(
                    "PWD-09: during {n} wrong passwords {} stopped answering ({why}) and gave no decision on any login for {:.0} s after: wrong passwords take the service down (denial of service), which is not a lockout",
                    t.describe(),
                    limit.as_secs_f64()
                ),
            }),
            Some(_) => Err(Stop::Error(format!(
                "not decided: {} gave no decision on {} of {n} wrong passwords ({why}): an unanswered guess is not a slowed one, so no rate can be measured (a lockout that drops connections must be declared: services[].throttle.while_locked: drops)",
                t.describe(),
                n - decided
            ))),
        }
    }

    /// After the burst: the right password either works (then the answers must have slowed
    /// below `max_rate`, across parallel connections too) or is locked out (then it must
    /// work again in time, and the lockout must come back after the declared number of
    /// wrong ones and last long enough).
    async fn after_burst(
        &mut self,
        t: &Target,
        right: &Credentials,
        b: &mut Burst,
        max_rate: u32,
        unlock_within: Option<Duration>,
    ) -> Result<String, Stop> {
        let n = b.answers.len();
        let burst = b.took;
        let rate = decided_rate(&b.answers);
        let limit = Self::unlock_limit(t, unlock_within);
        self.burst_decided(t, b, limit).await?;
        let after = self.right_login(t, right).await;
        b.probes.push((b.at(), after.outcome.word()));
        if after.outcome == LoginAnswer::Accepted {
            if rate > f64::from(max_rate) {
                return Err(pwd09(format!(
                    "{} answered {n} wrong passwords in {:.1} s ({rate:.0}/min after the first {FREE_ATTEMPTS}; the ceiling is {max_rate}/min) and took the right password right after: nothing slows a brute force",
                    t.describe(),
                    burst.as_secs_f64()
                )));
            }
            let sequential = format!(
                "{}: answers slowed to {rate:.1}/min over {n} wrong passwords ({:.0} s; ceiling {max_rate}/min); the right password worked right after",
                t.describe(),
                burst.as_secs_f64()
            );
            return self.parallel_burst(t, right, b, max_rate, limit, sequential).await;
        }
        self.locked(t, &after, n, limit).await?;
        // locked out: the right password must work again, and the lockout must come
        // soon enough and last long enough
        let unlocked = self.wait_unlocked(t, right, limit).await;
        b.probes
            .push((b.at(), if unlocked.is_some() { "accepted" } else { "rejected" }));
        match unlocked {
            None => Err(Stop::Fail {
                check: Some("PWD-09".into()),
                reason: format!(
                    "PWD-09: after {n} wrong passwords {} refused the right one and still did not take it {:.0} s later: a brute-force attempt locks the owner out (declare the unlock time in services[].throttle.unlock, or an unlock the lab can perform)",
                    t.describe(),
                    limit.as_secs_f64()
                ),
            }),
            Some((u1, _)) => self.relock(t, right, b, limit, u1, max_rate).await,
        }
    }

    /// The right password was not taken after wrong ones: a lockout only when the device
    /// said so (refused it in its words), or the maker declared that a locked service drops
    /// logins. A service that just stopped answering is a finding of its own when it never
    /// answers again (wrong passwords took it down), and undecided when it comes back.
    async fn locked(&mut self, t: &Target, after: &Tried, wrong: usize, limit: Duration) -> Result<(), Stop> {
        use crate::config::services::WhileLocked;
        match &after.outcome {
            LoginAnswer::Rejected => Ok(()),
            LoginAnswer::Unanswered(_) if t.service.while_locked == WhileLocked::Drops => Ok(()),
            LoginAnswer::Unanswered(why) => {
                let back = self.wait_answering(t, limit).await;
                Err(match back {
                    None => Stop::Fail {
                        check: Some("PWD-09".into()),
                        reason: format!(
                            "PWD-09: after {wrong} wrong passwords {} stopped answering ({why}) and gave no decision on any login for {:.0} s: wrong passwords take the service down (denial of service), which is not a lockout",
                            t.describe(),
                            limit.as_secs_f64()
                        ),
                    },
                    Some(d) => Stop::Error(format!(
                        "not decided: after {wrong} wrong passwords {} gave no decision on the right one ({why}) and answered again {:.1} s later: a dropped connection is not a lockout unless the maker declares it (services[].throttle.while_locked: drops)",
                        t.describe(),
                        d.as_secs_f64()
                    )),
                })
            }
            o => Err(Stop::Error(format!(
                "not decided: after {wrong} wrong passwords {} {} with the right password",
                t.describe(),
                words(o)
            ))),
        }
    }

    /// Polls with the right password until the service decides a login (any decision)
    /// or `limit` passes; how long that took.
    async fn wait_answering(&mut self, t: &Target, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        let right = self.right_credentials().ok()?;
        while t0.elapsed() < limit {
            tokio::time::sleep(Duration::from_secs(1).min(limit.saturating_sub(t0.elapsed()))).await;
            let tried = self.right_login(t, &right).await;
            if !matches!(tried.outcome, LoginAnswer::Unanswered(_)) {
                return Some(t0.elapsed());
            }
        }
        None
    }

    /// An attacker does not wait for one connection: wrong passwords on [`PARALLEL`]
    /// connections at once for [`PARALLEL_WINDOW`] (at most [`PARALLEL_ATTEMPTS`] in all),
    /// the rate counted across them. A device that slows each connection but not the
    /// guesses as a whole fails; one whose lockout engages is judged as a lockout.
    async fn parallel_burst(
        &mut self,
        t: &Target,
        right: &Credentials,
        b: &mut Burst,
        max_rate: u32,
        limit: Duration,
        sequential: String,
    ) -> Result<String, Stop> {
        let t0 = Instant::now();
        let started = *self.remote_t0.get_or_insert(t0);
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..PARALLEL {
            let (t, user, nonce, count) = (t.clone(), b.user.clone(), b.nonce, count.clone());
            tasks.spawn(async move {
                let mut out = Vec::new();
                while t0.elapsed() < PARALLEL_WINDOW {
                    let k = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if k >= PARALLEL_ATTEMPTS {
                        break;
                    }
                    let wrong = format!("cb-wrong-{nonce:08x}-p{k}");
                    let at = started.elapsed();
                    let tried = t.attempt(&user, &wrong).await;
                    out.push((c, k, at, t0.elapsed().as_secs_f64(), wrong, tried));
                }
                out
            });
        }
        let mut results = Vec::new();
        while let Some(r) = tasks.join_next().await {
            results.extend(r.unwrap_or_default());
        }
        results.sort_by(|x, y| x.3.total_cmp(&y.3));
        let offset = b.at() - t0.elapsed().as_secs_f64();
        let mut answers = Vec::new();
        for (c, k, at, done, wrong, mut tried) in results {
            let safe = self
                .rig
                .redactor
                .redact_window(tried.detail.as_bytes(), &[("password", &wrong)]);
            tried.detail = crate::remote::printable_tail(&String::from_utf8_lossy(&safe), 300);
            self.attempts.push(AttemptRecord {
                t_ms: at.as_millis(),
                service: t.service.name.clone(),
                user: crate::remote::printable(&b.user, 64),
                credential: format!("wrong #p{} (parallel, connection {})", k + 1, c + 1),
                outcome: tried.outcome.word(),
                latency_ms: tried.latency.as_millis(),
                detail: tried.detail.clone(),
            });
            if matches!(tried.outcome, LoginAnswer::Accepted | LoginAnswer::PasswordChange) {
                return Err(Stop::Fail {
                    check: Some("PWD-09".into()),
                    reason: format!(
                        "PWD-09: {} {} for a random wrong password on a parallel connection: the password is not checked",
                        t.describe(),
                        words(&tried.outcome)
                    ),
                });
            }
            b.answers.push((offset + done, tried.outcome.word()));
            answers.push((done, tried.outcome.word()));
        }
        let rate = decided_rate(&answers);
        let decided = answers.iter().filter(|a| a.1 == "rejected").count();
        let after = self.right_login(t, right).await;
        b.probes.push((b.at(), after.outcome.word()));
        if after.outcome == LoginAnswer::Accepted {
            if rate > f64::from(max_rate) {
                return Err(pwd09(format!(
                    "{} slows each connection but not the guesses: on {PARALLEL} connections at once it refused {decided} wrong passwords in {:.1} s ({rate:.0}/min after the first {FREE_ATTEMPTS}; the ceiling is {max_rate}/min) and took the right password right after",
                    t.describe(),
                    t0.elapsed().as_secs_f64()
                )));
            }
            return Ok(format!(
                "{sequential}; on {PARALLEL} connections at once {decided} wrong passwords were refused in {:.1} s ({rate:.1}/min after the first {FREE_ATTEMPTS})",
                t0.elapsed().as_secs_f64()
            ));
        }
        // the guesses across connections engaged the lockout: it must end
        self.locked(t, &after, answers.len(), limit).await?;
        match self.wait_unlocked(t, right, limit).await {
            Some((u, _)) => Ok(format!(
                "{sequential}; {PARALLEL} connections at once engaged a lockout after {decided} refused wrong passwords; the right password worked again {:.1} s later",
                u.as_secs_f64()
            )),
            None => Err(Stop::Fail {
                check: Some("PWD-09".into()),
                reason: format!(
                    "PWD-09: after wrong passwords on {PARALLEL} parallel connections {} refused the right one and still did not take it {:.0} s later: a brute-force attempt locks the owner out",
                    t.describe(),
                    limit.as_secs_f64()
                ),
            }),
        }
    }

    /// The unlock login reset the count: the declared limit (else ten) wrong passwords must
    /// engage the lockout again, and how long it then lasts is the lockout an attacker pays
    /// for every k guesses.
    async fn relock(
        &mut self,
        t: &Target,
        right: &Credentials,
        b: &mut Burst,
        limit: Duration,
        u1: Duration,
        max_rate: u32,
    ) -> Result<String, Stop> {
        let n = b.answers.len();
        let k = t.service.after as usize;
        let cycle0 = Instant::now();
        for j in 0..k {
            let wrong = format!("cb-wrong-{:08x}-k{j}", b.nonce);
            let user = b.user.clone();
            let tried = self.try_login(t, &user, &wrong, &format!("wrong #{}", n + j + 1)).await;
            b.record(&tried);
        }
        let t_k = cycle0.elapsed();
        let again = self.right_login(t, right).await;
        b.probes.push((b.at(), again.outcome.word()));
        if again.outcome == LoginAnswer::Accepted {
            return Err(Stop::Fail {
                check: Some("PWD-09".into()),
                reason: format!(
                    "PWD-09: {} locked out after the burst (for {:.1} s more), but after {k} wrong passwords (services[].throttle.after, default 10) it took the right one at once: the lockout engages later than declared",
                    t.describe(),
                    u1.as_secs_f64()
                ),
            });
        }
        self.locked(t, &again, k, limit).await?;
        let unlocked = self.wait_unlocked(t, right, limit).await;
        b.probes
            .push((b.at(), if unlocked.is_some() { "accepted" } else { "rejected" }));
        let Some((u, u_max)) = unlocked else {
            return Err(Stop::Fail {
                check: Some("PWD-09".into()),
                reason: format!(
                    "PWD-09: after {k} wrong passwords {} refused the right one and still did not take it {:.0} s later: a few wrong guesses lock the owner out",
                    t.describe(),
                    limit.as_secs_f64()
                ),
            });
        };
        // the lockout lasted at least `u` (the last refused try): the bound uses that, so a
        // coarse poll never flatters
        let cycle = (t_k + u).as_secs_f64().max(0.001);
        let bound = k as f64 / cycle * 60.0;
        if bound > f64::from(max_rate) {
            Err(Stop::Fail {
                check: Some("PWD-09".into()),
                reason: format!(
                    "PWD-09: {} locks out after {k} wrong passwords, but only for {:.1}–{:.1} s: up to {bound:.0} guesses/min (ceiling {max_rate}/min)",
                    t.describe(),
                    u.as_secs_f64(),
                    u_max.as_secs_f64()
                ),
            })
        } else {
            Ok(format!(
                "{}: {n} wrong passwords in {:.1} s, then the right one was refused (locked) and worked again {:.1} s later; {k} wrong ones lock it again for {:.1}–{:.1} s: at most {bound:.1} guesses/min (ceiling {max_rate}/min)",
                t.describe(),
                b.took.as_secs_f64(),
                u1.as_secs_f64(),
                u.as_secs_f64(),
                u_max.as_secs_f64()
            ))
        }
    }
}

/// One service's brute force as it went: the wrong passwords' answers and the right
/// password's probes (seconds since the burst began, outcome word), for the verdict and the
/// timeline plot.
struct Burst {
    t0: Instant,
    nonce: u32,
    user: String,
    answers: Vec<(f64, &'static str)>,
    probes: Vec<(f64, &'static str)>,
    /// How long the burst of wrong passwords took.
    took: Duration,
    /// Why the first undecided attempt got no decision.
    first_undecided: Option<String>,
}

impl Burst {
    fn at(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn record(&mut self, tried: &Tried) {
        self.answers.push((self.at(), tried.outcome.word()));
        if let (LoginAnswer::Unanswered(why), None) = (&tried.outcome, &self.first_undecided) {
            self.first_undecided = Some(why.clone());
        }
    }

    /// Wrong passwords the device refused in its own words.
    fn decided(&self) -> usize {
        self.answers.iter().filter(|a| a.1 == "rejected").count()
    }
}

/// PWD-09's FAIL with its reason.
fn pwd09(why: String) -> Stop {
    Stop::Fail {
        check: Some("PWD-09".into()),
        reason: format!("PWD-09: {why}"),
    }
}

/// Connections a parallel brute force opens at once.
const PARALLEL: usize = 8;
/// How long the parallel burst lasts, and how many wrong passwords it makes at most.
const PARALLEL_WINDOW: Duration = Duration::from_secs(20);
const PARALLEL_ATTEMPTS: usize = 100;

/// Refusals per minute after the first [`FREE_ATTEMPTS`] (over all when fewer were made),
/// counting only the answers the device decided: an attempt it left unanswered is no guess
/// it slowed.
fn decided_rate(answers: &[(f64, &str)]) -> f64 {
    let times: Vec<f64> = answers.iter().filter(|a| a.1 == "rejected").map(|a| a.0).collect();
    let n = times.len();
    if n == 0 {
        return 0.0;
    }
    let from = if n > FREE_ATTEMPTS + 1 { FREE_ATTEMPTS } else { 0 };
    let span = times[n - 1] - if from == 0 { 0.0 } else { times[from - 1] };
    let count = (n - from) as f64;
    if span > 0.0 { count / span * 60.0 } else { f64::INFINITY }
}

/// How a service's sweep is paced.
enum Control {
    /// A right login follows every few wrong ones.
    Paced,
    /// The service refused the factory credentials before setup: nothing to pace with.
    Unpaced,
    /// It takes no passwords at all.
    NoPasswords,
}

/// PWD-03's FAIL: a list entry got in (or was taken, pending a new password), `when` saying
/// in which state of the device.
fn default_login(t: &Target, o: &LoginAnswer, e: &crate::remote::defaults::Entry, when: &str) -> Stop {
    Stop::Fail {
        check: Some("PWD-03".into()),
        reason: format!(
            "PWD-03: {when}, {} {} for the common default credentials {} (user {:?}, a password from the published list): a universal default login",
            t.describe(),
            words(o),
            e.label,
            e.user
        ),
    }
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .take(40)
        .collect()
}

/// One service's sweep, in words.
fn swept(t: &Target, when: &str, n: usize, paced: bool, seg: usize, lockouts: u32, waited: Duration) -> String {
    if paced {
        format!(
            "{} {when}: all {} default credentials refused (paced: a right login after every {seg} wrong one(s){})",
            t.describe(),
            n,
            if lockouts > 0 {
                format!("; {lockouts} lockout(s) waited out, {:.0} s", waited.as_secs_f64())
            } else {
                String::new()
            }
        )
    } else {
        format!(
            "{} {when}: all {} default credentials refused, and the factory credentials too (the service takes no remote login before setup), so these refusals could not be paced against a lockout; its accounts are swept again, paced, after setup",
            t.describe(),
            n
        )
    }
}

/// When a sweep runs, in words.
fn sweep_when(factory: bool) -> &'static str {
    if factory {
        "before setup (factory state)"
    } else {
        "after setup"
    }
}
