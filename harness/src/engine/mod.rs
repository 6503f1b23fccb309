//! The scenario engine: runs a validated scenario's steps against a device through the
//! console and power capabilities and decides a verdict. It names no transport type.

mod steps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regex::bytes::Regex;

use crate::config::device::{Device, Login};
use crate::config::scenario::{
    ChangeOutcome, Interface, JudgeVerdict, LoginOutcome, Outcome, Pattern, PromptName, Scenario,
};
use crate::config::template::{Quote, Template};
use crate::console::{Console, Wait};
use crate::power::{Action, Power};
use crate::redact::{self, Redactor};
use crate::report::events::{ScenarioResult, StepRecord, StepStatus, Verdict};

/// The bench as the engine sees it: the device, its interfaces and what the run knows.
#[derive(Debug)]
pub struct Bench {
    /// The device was power-cycled and seen working at this instant, by this step (cleared by
    /// any later step but a `cycle_unless_fresh` power step).
    pub fresh: Option<(Instant, String)>,
    /// The shell prompt was seen (and consumed) at this instant, at the end of a testcase.
    pub at_shell: Option<Instant>,
    pub device: Device,
    pub console: Option<Console>,
    pub power: Option<Box<dyn Power>>,
    pub redactor: Redactor,
    /// Values for `{{name}}` in commands (console, workdir, ...).
    pub command_vars: BTreeMap<String, String>,
    pub command_cwd: PathBuf,
    /// The credentials that should work now, as far as the run knows.
    pub current: Option<Login>,
    /// The network bench, when the device has a cloud the bench plays.
    pub net: Option<crate::bench::NetBench>,
    /// The update bench, when the profile declares how the device is updated.
    pub update: Option<crate::update::bench::UpdateBench>,
    /// The device's link: its namespace, the capture, the last port scan.
    pub gateway: crate::gateway::Gateway,
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

type StepResult = Result<String, Stop>;

/// The prompt the device is known to be waiting at (already consumed from the buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
enum AtPrompt {
    Login,
    NewPassword,
    CurrentPassword,
    /// At the shell prompt, seen at this instant: still true while the console stays quiet.
    Shell(Instant),
}

struct Run<'a> {
    /// Documentary findings awaiting a reviewer: the verdict is REVIEW if nothing failed.
    reviews: Vec<String>,
    bench: &'a mut Bench,
    vars: BTreeMap<String, String>,
    at: Option<AtPrompt>,
    /// Files for the evidence folder (name, content; redacted when saved): the power-cut
    /// table of an update_power_loss step, a brute-force timeline.
    evidence: Vec<(String, String)>,
    /// Every remote login attempt of this testcase (remote-attempts.jsonl).
    attempts: Vec<steps::AttemptRecord>,
    /// When this testcase's first remote attempt began (attempt times count from it).
    remote_t0: Option<Instant>,
    /// Length of the update bench's request log when power was last applied: requests
    /// after it are the device's since that boot.
    power_mark: usize,
}

/// Whether a scenario can run on this device, decided before any step.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
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

/// Minimum requirement 2 (automatic security updates) needs an update mechanism: a
/// device without one fails the update checks instead of skipping them.
const NO_UPDATE_MECHANISM: &str = "the device has no update mechanism (its profile declares no `update` section); minimum requirement 2 (automatic security updates) needs one. If the maker states that the provisions do not apply, declare them in `ics.not_applicable` with the reason";

impl Bench {
    /// Whether the scenario runs, is NOT APPLICABLE, or fails at once because the device
    /// lacks an interface a minimum requirement needs.
    pub fn gate(&self, sc: &Scenario) -> Gate {
        // the maker's ICS first: a check whose provisions are all declared not applicable
        let provs: Vec<&str> = sc.evidences.provisions.iter().map(|p| p.value.as_str()).collect();
        if !provs.is_empty() && provs.iter().all(|p| self.device.not_applicable.contains_key(*p)) {
            let reasons: Vec<String> = provs
                .iter()
                .map(|p| format!("{p}: {}", self.device.not_applicable[*p]))
                .collect();
            return Gate::NotApplicable(format!("not applicable per the maker's ICS ({})", reasons.join("; ")));
        }
        // (update-mitm only judges an update channel that exists: NOT APPLICABLE without one,
        // so a missing mechanism never counts against requirement 1)
        let needs_update = sc
            .requires
            .interfaces
            .iter()
            .any(|i| matches!(i, Interface::Update | Interface::UpdatePull));
        if needs_update && self.device.update.is_none() {
            let checks: Vec<&str> = sc.evidences.checks.iter().map(|c| c.value.as_str()).collect();
            return Gate::Fail {
                check: (!checks.is_empty()).then(|| checks.join("+")),
                reason: format!("{}: {NO_UPDATE_MECHANISM}", checks.join("+")),
            };
        }
        if sc.requires.interfaces.contains(&Interface::MqttTls)
            && let Some(decl) = &self.device.mqtt_tls
            && !decl.applies()
        {
            return Gate::NotApplicable(format!(
                "the maker declares that the MQTT channel does not use TLS{}; COM-02 (plaintext-mqtt-rejection) decides whether it speaks in clear",
                decl.reason().map(|r| format!(": {r}")).unwrap_or_default()
            ));
        }
        for i in &sc.requires.interfaces {
            let missing = match i {
                Interface::MqttTls => None,
                Interface::BootInterrupt => self
                    .device
                    .console
                    .as_ref()
                    .is_none_or(|c| c.boot_interrupt.is_none())
                    .then_some("the profile declares no bootloader break-in (console.boot_interrupt: the keys a person would type during boot and the bootloader's prompt)"),
                Interface::Console => self
                    .console
                    .is_none()
                    .then_some("the device profile declares no console"),
                Interface::Power => self.power.is_none().then_some("no power control is configured"),
                Interface::FactoryCredentials => self
                    .device
                    .factory
                    .is_none()
                    .then_some("the device profile declares no factory credentials"),
                Interface::FactoryReset => self
                    .device
                    .factory_reset
                    .is_none()
                    .then_some("no factory_reset method is configured"),
                Interface::MqttBench => self
                    .net
                    .is_none()
                    .then_some("the device profile declares no MQTT cloud (network.mqtt)"),
                Interface::MqttBroker => self
                    .device
                    .broker
                    .is_none()
                    .then_some("the device profile declares no MQTT broker on the device (network.broker)"),
                Interface::Update => self
                    .update
                    .is_none()
                    .then_some("the device profile declares no update method (update)"),
                Interface::UpdatePull => match &self.update {
                    None => Some("the device profile declares no update method (update)"),
                    Some(u) if u.spec.pull().is_none() => {
                        Some("the device does not check for updates by itself (update.delivery is not pull)")
                    }
                    Some(_) => None,
                },
                Interface::Debug => self
                    .device
                    .debug
                    .is_none()
                    .then_some("the device profile declares no debug port (debug)"),
                Interface::Ssh => (!self
                    .device
                    .services
                    .iter()
                    .any(|s| s.kind == crate::config::services::ServiceKind::Ssh))
                .then_some("the device profile declares no SSH service (services: kind ssh)"),
                Interface::Link => self.device.link.is_none().then_some(NO_LINK),
                Interface::RemoteLogin => self.device.services.is_empty().then_some(
                    "the device profile declares no remote login services (services: telnet, web login, its MQTT broker)",
                ),
                Interface::UpdateHttps => match &self.update {
                    None => Some("the device profile declares no update method (update)"),
                    Some(u) if u.spec.scheme != crate::update::Scheme::Https => Some(
                        "the device fetches updates over plain HTTP (update.scheme); tampering in transit is covered by the signature checks of update-corrupt-image",
                    ),
                    Some(u) if u.https.is_none() => Some(
                        "the device trusts no CA the bench can issue from (update.trust), so no positive control over HTTPS is possible",
                    ),
                    Some(_) => None,
                },
                Interface::MqttTrustedCa => (!self.net.as_ref().is_some_and(|n| n.has_trusted_ca())).then_some(
                    "the device trusts no CA the bench can issue from (network.mqtt.trust), so no positive control is possible",
                ),
            };
            if let Some(m) = missing {
                return Gate::NotApplicable(m.to_string());
            }
        }
        for d in &sc.requires.declarations {
            match self.device.declarations.get(d) {
                None => return Gate::NotApplicable(format!("the device profile does not declare `{d}`")),
                Some(decl) if !decl.applies() => {
                    return Gate::NotApplicable(match decl.reason() {
                        Some(r) => format!("the maker declares `{d}` does not apply: {r}"),
                        None => format!("the maker declares `{d}: false`"),
                    });
                }
                Some(_) => {}
            }
        }
        Gate::Run
    }

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
        let nl = spec.newline.clone().into_bytes();
        match c
            .expect(
                &[&spec.prompts.login, &spec.prompts.shell],
                Instant::now() + spec.boot_time,
                Some((spec.wake_after, nl.as_slice())),
            )
            .await
            .map_err(|why| format!("the console was lost during the health probe: {why}"))?
        {
            Wait::Found(_) => Ok(()),
            Wait::Timeout => Err(format!(
                "no login or shell prompt within the boot time of {:?} after a power cycle",
                spec.boot_time
            )),
        }
    }

    pub async fn power(&mut self, action: Action) -> Result<String, String> {
        // whatever prompt the device was at, it is not there after this
        self.at_shell = None;
        let Some(p) = &self.power else {
            return Err("no power control is configured".into());
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
    bench: &mut Bench,
    sc: &Scenario,
    dir: &Path,
    rel_dir: &str,
    mut step_done: impl FnMut(&StepRecord),
) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult::new(
        &sc.id,
        &sc.title,
        &sc.file.display().to_string(),
        Some(sc.evidences.clone()),
        Verdict::Pass,
    );
    match bench.gate(sc) {
        Gate::Run => {}
        Gate::NotApplicable(why) => {
            result.verdict = Verdict::NotApplicable;
            result.reason = Some(why);
            return result;
        }
        Gate::Fail { check, reason } => {
            result.verdict = Verdict::Fail;
            result.check = check;
            result.reason = Some(reason);
            return result;
        }
    }
    let mut vars = BTreeMap::new();
    if let Some(f) = &bench.device.factory {
        vars.insert("factory.user".to_string(), f.user.clone());
        vars.insert("factory.password".to_string(), f.password.clone());
        bench.redactor.add("factory.password", &f.password);
    }
    for (name, _, len) in &sc.variables {
        let v = redact::generate_password(*len);
        bench.redactor.add(name, &v);
        vars.insert(name.clone(), v);
    }
    let mark = bench.console.as_ref().map(|c| {
        c.drain();
        c.marker(format!("scenario {} begins", sc.id));
        c.with_transcript(|t| t.mark())
    });
    let deadline = started + sc.timeout;
    let first_phase = bench.net.as_ref().map(|n| n.phase() + 1);
    for (k, v) in bench.net.as_ref().map(|n| n.vars()).unwrap_or_default() {
        vars.insert(k, v);
    }
    if let Some(inst) = &sc.instance
        && let Some(item) = &inst.item
    {
        vars.insert("image".into(), item.clone());
    }
    let update_mark = bench.update.as_ref().map(|u| u.log.len());
    let update_all_mark = bench.update.as_ref().map(|u| u.log.all().len());
    let handshake_mark = bench.update.as_ref().map(|u| u.log.handshakes().len());
    // the shell prompt the last testcase ended at (checked again: console quiet since)
    let at = bench.at_shell.take().map(AtPrompt::Shell);
    let mut run = Run {
        reviews: Vec::new(),
        bench,
        vars,
        at,
        evidence: Vec::new(),
        attempts: Vec::new(),
        remote_t0: None,
        power_mark: update_mark.unwrap_or(0),
    };
    for (i, step) in sc.steps.iter().enumerate() {
        let at = format!("{}:{}", sc.file.display(), step.pos.line);
        if let Some(c) = &run.bench.console {
            c.marker(format!("step {}: {} ({at})", i + 1, step.kind.name()));
        }
        let t0 = Instant::now();
        let remaining = deadline.saturating_duration_since(t0);
        let res = match tokio::time::timeout(remaining, run.step(&step.kind)).await {
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
            detail: run.bench.redactor.redact(&detail),
            duration_ms: t0.elapsed().as_millis(),
        };
        step_done(&rec);
        result.steps.push(rec);
        if let Err(Stop::End(_)) = res {
            break;
        }
        if let Err(stop) = res {
            let (verdict, check, reason) = match stop {
                Stop::Fail { check, reason } => (Verdict::Fail, check, reason),
                Stop::Error(e) => (Verdict::Error, None, e),
                Stop::Skip(e) => (Verdict::NotApplicable, None, e),
                Stop::End(_) => continue,
            };
            result.verdict = verdict;
            result.check = check;
            result.reason = Some(run.bench.redactor.redact(&reason));
            result.deciding_step = Some(i + 1);
            break;
        }
    }
    if result.verdict == Verdict::Pass && !run.reviews.is_empty() {
        result.verdict = Verdict::Review;
        result.reason = Some(run.reviews.join("; "));
    }
    let mut extra = std::mem::take(&mut run.evidence);
    if !run.attempts.is_empty() {
        let lines: String = run
            .attempts
            .iter()
            .filter_map(|a| serde_json::to_string(a).ok())
            .map(|l| l + "\n")
            .collect();
        extra.insert(0, ("remote-attempts.jsonl".into(), lines));
    }
    if let Some(AtPrompt::Shell(t)) = run.at {
        run.bench.at_shell = Some(t);
    }
    let bench = run.bench;
    let mut save = |name: &str, text: &str| {
        if std::fs::create_dir_all(dir).is_ok() && std::fs::write(dir.join(name), bench.redactor.redact(text)).is_ok() {
            result.evidence_files.push(format!("{rel_dir}/{name}"));
        }
    };
    for (name, text) in &extra {
        save(name, text);
    }
    if let (Some(u), Some(mark)) = (&bench.update, update_all_mark) {
        // every peer's requests: each record says whose it was (`origin`)
        let reqs: Vec<_> = u.log.all().into_iter().skip(mark).collect();
        if !reqs.is_empty() {
            let mut lines: String = reqs
                .iter()
                .filter_map(|r| serde_json::to_string(r).ok())
                .map(|l| l + "\n")
                .collect();
            lines.push_str(&not_recorded(u.log.dropped()));
            save("update-requests.jsonl", &lines);
        }
        let hs = u.log.handshakes();
        let hs = hs.get(handshake_mark.unwrap_or(0)..).unwrap_or_default();
        if !hs.is_empty() {
            let lines: String = hs
                .iter()
                .filter_map(|h| serde_json::to_string(h).ok())
                .map(|l| l + "\n")
                .collect();
            save("update-handshakes.jsonl", &lines);
        }
    }
    if let (Some(net), Some(first)) = (&bench.net, first_phase)
        && net.phase() >= first
    {
        // every peer's sessions: each record says whose it was (`origin`)
        let lines: String = net
            .log
            .all()
            .iter()
            .filter(|s| s.phase >= first)
            .filter_map(|s| serde_json::to_string(s).ok())
            .map(|l| l + "\n")
            .chain([not_recorded(net.log.dropped())])
            .collect();
        if std::fs::create_dir_all(dir).is_ok()
            && std::fs::write(dir.join("bench-sessions.jsonl"), bench.redactor.redact(&lines)).is_ok()
        {
            result.evidence_files.push(format!("{rel_dir}/bench-sessions.jsonl"));
        }
    }
    if let (Some(c), Some(mark)) = (&bench.console, mark) {
        c.marker(format!("scenario {} ends: {}", sc.id, result.verdict));
        let (text, raw, tail) = c.with_transcript(|t| {
            (
                t.render_text(mark, &bench.redactor),
                t.render_raw(mark, &bench.redactor),
                t.tail_text(mark, 3000, &bench.redactor),
            )
        });
        result.excerpt = tail;
        if std::fs::create_dir_all(dir).is_ok() {
            if std::fs::write(dir.join("console.log"), text).is_ok() {
                result.evidence_files.push(format!("{rel_dir}/console.log"));
            }
            if std::fs::write(dir.join("console.raw"), raw).is_ok() {
                result.evidence_files.push(format!("{rel_dir}/console.raw"));
            }
        }
    }
    result.duration_ms = started.elapsed().as_millis();
    result
}

/// What was offered, for messages: secrets appear by name only.
fn shown(redactor: &Redactor, s: &str) -> String {
    format!("{:?}", redactor.shown_send(s))
}

fn judge(o: &Outcome, seen: &str) -> Stop {
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
    fn net(&self) -> Result<&crate::bench::NetBench, Stop> {
        self.bench.net.as_ref().ok_or_else(no_bench)
    }

    fn console(&self) -> Result<Console, Stop> {
        self.bench
            .console
            .clone()
            .ok_or_else(|| Stop::Error("the device has no console".into()))
    }

    fn spec(&self) -> Result<&crate::config::device::ConsoleSpec, Stop> {
        self.bench
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
        c.send(&bytes, format!("{}<Enter>", self.bench.redactor.shown_send(text)))
            .map_err(|e| Stop::Error(format!("cannot write to console: {e}")))
    }

    /// Logs in with the profile's prompts; returns what the device did.
    async fn login(&mut self, user: &str, password: &str, within: Duration) -> Result<LoginOutcome, Stop> {
        let c = self.console()?;
        let spec = self.spec()?.clone();
        let p = &spec.prompts;
        let deadline = Instant::now() + within;
        let wake_bytes = spec.newline.clone().into_bytes();
        let wake = Some((spec.wake_after, wake_bytes.as_slice()));
        // 1. reach the login prompt (log out of a shell we find on the way)
        if self.at.take() != Some(AtPrompt::Login) {
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
                            "still at a shell after `{}`; cannot reach the login prompt",
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
                    self.at = Some(AtPrompt::Login);
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
                self.at = kinds[f.index];
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
    async fn change_password(&mut self, new: &str, within: Duration) -> Result<ChangeOutcome, Stop> {
        let c = self.console()?;
        let spec = self.spec()?.clone();
        let p = &spec.prompts;
        if p.new_password.is_none() {
            return Err(Stop::Error(
                "the device profile defines no `new_password` prompt".into(),
            ));
        }
        let current = self
            .bench
            .current
            .clone()
            .ok_or_else(|| Stop::Error("no current credentials are known to log in again".into()))?;
        let deadline = Instant::now() + within;
        let mut sent_new = false;
        let mut relogins = 0;
        // at a shell, the declared password command opens the dialog (once per change)
        let mut command = spec.password_command.clone();
        match self.at.take() {
            Some(AtPrompt::NewPassword) => {
                self.send_line(&c, new)?;
                sent_new = true;
            }
            Some(AtPrompt::CurrentPassword) => self.send_line(&c, &current.password)?,
            Some(AtPrompt::Login) => {
                self.send_line(&c, &current.user)?;
                relogins += 1;
            }
            // at a shell: the password command below opens the dialog
            Some(AtPrompt::Shell(_)) | None => {}
        }
        // order matters for ties: the more specific prompts first
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
        let pats: Vec<&Regex> = table.iter().map(|(r, _)| *r).collect();
        let life = c.reopened();
        loop {
            let answer = c.expect(&pats, deadline, None).await.map_err(console_lost)?;
            if c.reopened() != life {
                return Err(Stop::Error(
                    "the console was lost and came back during the password-change dialog (the board reset, or its USB-UART re-enumerated), so the device's answer cannot be judged".into(),
                ));
            }
            let f = match answer {
                Wait::Found(f) => f,
                Wait::Timeout => {
                    return Err(Stop::Error(format!(
                        "the password-change dialog did not finish within {within:?}{}",
                        if sent_new {
                            ""
                        } else {
                            " (the new password was never asked for)"
                        }
                    )));
                }
            };
            match table[f.index].1 {
                D::Confirm => self.send_line(&c, new)?,
                D::Current => self.send_line(&c, &current.password)?,
                D::New if sent_new => {
                    self.at = Some(AtPrompt::NewPassword);
                    return Ok(ChangeOutcome::Rejected);
                }
                D::New => {
                    self.send_line(&c, new)?;
                    sent_new = true;
                }
                D::Rejected if sent_new => return Ok(ChangeOutcome::Rejected),
                D::Rejected | D::ChangeMessage => {}
                D::Shell if sent_new => {
                    self.bench.current = Some(Login {
                        user: current.user.clone(),
                        password: new.to_string(),
                    });
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
                    self.at = Some(AtPrompt::Login);
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
}

/// A console that vanished mid-wait and did not come back: the board is dead or unplugged.
fn console_lost(why: String) -> Stop {
    Stop::Error(format!(
        "the console was lost and did not come back: {why} (board dead or unplugged?)"
    ))
}

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

/// The line a bounded log ends with when it had to stop recording: how many more it saw.
fn not_recorded((device, others): (u64, u64)) -> String {
    if device == 0 && others == 0 {
        return String::new();
    }
    format!(
        "{}\n",
        serde_json::json!({ "not_recorded": { "device": device, "other_peers": others,
            "why": format!("the log holds at most {} records, {} of them other peers'; later ones were only counted",
                crate::bench::peers::RECORDS_MAX, crate::bench::peers::OTHER_RECORDS_MAX) } })
    )
}
