//! The scenario engine: runs a validated scenario's steps against a device through the
//! console and power capabilities and decides a verdict. It names no transport type.

mod access;
mod remote;
mod traffic;
mod update;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regex::bytes::Regex;

use crate::config::device::{Device, Login};
use crate::config::scenario::{
    ChangeOutcome, Interface, JudgeVerdict, LoginOutcome, Outcome, Pattern, PowerAction, PromptName, Scenario,
    SendBytes, StepKind,
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
    attempts: Vec<remote::AttemptRecord>,
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

    async fn step(&mut self, kind: &StepKind) -> StepResult {
        // a fresh boot counts only for the step right after the one that made it
        let fresh = self.bench.fresh.take();
        match kind {
            StepKind::Power(a) => {
                let action = match a {
                    PowerAction::On => Action::On,
                    PowerAction::Off => Action::Off,
                    PowerAction::Cycle => Action::Cycle,
                    PowerAction::CycleUnlessFresh => match fresh {
                        Some((t, by)) => {
                            return Ok(format!(
                                "power cycle skipped: {by} power-cycled the device and saw it working {:.1?} ago, and nothing was done to it since",
                                t.elapsed()
                            ));
                        }
                        None => Action::Cycle,
                    },
                };
                self.at = None;
                self.bench
                    .power(action)
                    .await
                    .map_err(|e| Stop::Error(format!("power {action} failed: {e}")))?;
                // requests from here on are the new boot's (none from the previous life can
                // count; a device checking periodically is seen at its next check)
                if let Some(u) = &self.bench.update {
                    self.power_mark = u.log.len();
                }
                Ok(format!("power {action}"))
            }
            StepKind::Sleep(d) => {
                tokio::time::sleep(*d).await;
                Ok(format!("slept {d:?}"))
            }
            StepKind::Send { bytes } => {
                let c = self.console()?;
                self.at = None;
                match bytes {
                    SendBytes::Line(t) => {
                        let s = self.render(t, Quote::Raw)?;
                        self.send_line(&c, &s)?;
                        Ok(format!("sent {}", shown(&self.bench.redactor, &s)))
                    }
                    SendBytes::Text(t) => {
                        let s = self.render(t, Quote::Raw)?;
                        c.send(s.as_bytes(), self.bench.redactor.redact(&s))
                            .map_err(|e| Stop::Error(format!("cannot write to console: {e}")))?;
                        Ok(format!("sent {}", shown(&self.bench.redactor, &s)))
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
            StepKind::Expect {
                pattern,
                within,
                on_timeout,
            } => {
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
                        Ok(format!("matched {:?}", self.bench.redactor.redact(&f.text)))
                    }
                    Wait::Timeout => Err(judge(
                        on_timeout,
                        &format!("no match for /{}/ within {within:?}", re.as_str()),
                    )),
                }
            }
            StepKind::ExpectNone {
                pattern,
                window,
                on_match,
            } => {
                let c = self.console()?;
                let re = self.pattern(pattern)?;
                match c.expect_none(&re, *window).await {
                    None => Ok(format!("/{}/ did not appear within {window:?}", re.as_str())),
                    Some(text) => Err(judge(
                        on_match,
                        &format!("device printed {:?}", self.bench.redactor.redact(&text)),
                    )),
                }
            }
            StepKind::Login {
                user,
                password,
                expect,
                otherwise,
                within,
            } => {
                let user = self.render(user, Quote::Raw)?;
                let password = self.render(password, Quote::Raw)?;
                let spec = self.spec()?;
                let within = within.unwrap_or(spec.boot_time + Duration::from_secs(30));
                let outcome = self.login(&user, &password, within).await?;
                if outcome == *expect {
                    if outcome == LoginOutcome::Shell {
                        self.bench.current = Some(Login {
                            user: user.clone(),
                            password: password.clone(),
                        });
                    }
                    Ok(format!(
                        "login as {:?}: {}",
                        self.bench.redactor.redact(&user),
                        login_words(outcome)
                    ))
                } else {
                    Err(judge(otherwise, login_words(outcome)))
                }
            }
            StepKind::ChangePassword {
                new,
                expect,
                otherwise,
                within,
            } => {
                let new = self.render(new, Quote::Raw)?;
                let outcome = self.change_password(&new, *within).await?;
                let offered = shown(&self.bench.redactor, &new);
                if outcome == *expect {
                    Ok(format!("offered {offered}: {}", change_words(outcome)))
                } else {
                    Err(judge(
                        otherwise,
                        &format!("offered {offered}, the device {}", change_words(outcome)),
                    ))
                }
            }
            StepKind::Logout { within } => {
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
                        self.at = Some(AtPrompt::Login);
                        Ok("logged out".into())
                    }
                    Wait::Timeout => Err(Stop::Error(format!(
                        "no login prompt within {within:?} after `{}`",
                        spec.logout
                    ))),
                }
            }
            StepKind::Bench {
                plain,
                tls,
                without_trusted_ca,
            } => {
                let net = self.bench.net.as_mut().ok_or_else(no_bench)?;
                match net.configure(*plain, tls.variant()).map_err(Stop::Error)? {
                    Some(phase) => Ok(format!(
                        "bench phase {phase}: plaintext MQTT {}, TLS MQTT {}",
                        if *plain { "on" } else { "off" },
                        tls.variant()
                            .map(|v| format!("presents {}", v.describe()))
                            .unwrap_or_else(|| "blocked".into())
                    )),
                    None if *without_trusted_ca == crate::config::scenario::Untrusted::End => Err(Stop::End(format!(
                        "the scenario ends here: the bench cannot present {} because the device trusts no CA the bench can issue from (network.mqtt.trust), so the later phases were not run; the verdict rests on the steps above",
                        tls.variant().map(|v| v.describe()).unwrap_or("it")
                    ))),
                    None => Err(Stop::Skip(format!(
                        "the bench cannot present {}: the device trusts no CA the bench can issue from (declare network.mqtt.trust: bench_ca or maker_ca)",
                        tls.variant().map(|v| v.describe()).unwrap_or("it")
                    ))),
                }
            }
            StepKind::WaitSession {
                listener,
                reach,
                within,
                otherwise,
            } => {
                let net = self.net()?;
                let deadline = Instant::now() + *within;
                let phase = net.phase();
                let dropped_before = net.log.dropped().0;
                let in_phase = |s: &crate::bench::sessions::Session| s.phase == phase && s.listener == *listener;
                match net
                    .log
                    .wait_until(deadline, |all| {
                        all.iter()
                            .find(|s| in_phase(s) && reached(s, *reach))
                            .map(|s| s.describe())
                    })
                    .await
                {
                    Ok(described) => Ok(described),
                    Err(all) => {
                        use crate::bench::sessions::ListenerName;
                        let count =
                            |l: ListenerName| all.iter().filter(|s| s.phase == phase && s.listener == l).count();
                        let (tls_tries, plain_tries) = (count(ListenerName::MqttTls), count(ListenerName::MqttPlain));
                        if *listener == ListenerName::MqttTls && tls_tries == 0 && plain_tries > 0 {
                            // the device does not speak TLS at all: the TLS checks do not apply;
                            // whether speaking in clear is a finding is COM-02's to decide
                            return Err(Stop::Skip(format!(
                                "the device does not use TLS on its MQTT channel: within {within:?} it made {plain_tries} plaintext MQTT connection attempt(s) and no TLS attempt; see COM-02 (plaintext-mqtt-rejection)"
                            )));
                        }
                        let seen: Vec<_> = all.into_iter().filter(|s| in_phase(s)).collect();
                        if let Some(why) = capacity_refusals(&seen, dropped_before, net.log.dropped().0) {
                            return Err(Stop::Error(format!(
                                "not decided: {why}, so the bench cannot tell how far the device would have got"
                            )));
                        }
                        let summary = summarize(&seen, &format!("no connection to the {listener} within {within:?}"));
                        Err(judge(otherwise, &summary))
                    }
                }
            }
            StepKind::NoSession {
                listener,
                reach,
                window,
                on_match,
                require_attempts,
                until,
            } => {
                let net = self.net()?;
                let t0 = Instant::now();
                let deadline = t0 + *window;
                let phase = net.phase();
                let dropped_before = net.log.dropped().0;
                let hit = |s: &crate::bench::sessions::Session| {
                    s.phase == phase && s.listener == *listener && reached(s, *reach)
                };
                // an attempt the device made and that ended without reaching `reach`
                let refused = |s: &crate::bench::sessions::Session| {
                    s.phase == phase && s.listener == *listener && s.closed.is_some() && !reached(s, *reach)
                };
                // the minimum window: only a forbidden session ends it
                let min_end = until.map_or(deadline, |(_, min)| (t0 + min).min(deadline));
                let mut watched = net
                    .log
                    .wait_until(min_end, |all| all.iter().find(|s| hit(s)).map(|s| Some(s.id)))
                    .await;
                if watched.is_err()
                    && let Some((n, _)) = *until
                {
                    // then the window ends as soon as the evidence is complete
                    watched = net
                        .log
                        .wait_until(deadline, |all| {
                            if let Some(s) = all.iter().find(|s| hit(s)) {
                                return Some(Some(s.id));
                            }
                            (all.iter().filter(|s| refused(s)).count() >= n as usize).then_some(None)
                        })
                        .await;
                }
                let (watched, early) = match watched {
                    Ok(Some(id)) => (Ok(id), None),
                    Ok(None) => {
                        let all = net.log.snapshot();
                        let n = all.iter().filter(|s| refused(s)).count();
                        (
                            Err(all),
                            Some(format!(
                                "{:.1?} (the window of at most {window:?} ended early: the device's {n} attempt(s) on the {listener} were all refused, the evidence was complete)",
                                t0.elapsed()
                            )),
                        )
                    }
                    Err(all) => (Err(all), None),
                };
                match watched {
                    Ok(id) => {
                        // let the session go on a moment, so the evidence says how far it got
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        let s = net.log.snapshot().into_iter().find(|x| x.id == id);
                        Err(judge(on_match, &s.map(|s| s.describe()).unwrap_or_default()))
                    }
                    Err(all) => {
                        let attempts = |l| all.iter().filter(|s| s.phase == phase && s.listener == l).count();
                        let in_phase: Vec<_> = all.iter().filter(|s| s.phase == phase).cloned().collect();
                        // a connection the bench turned away for capacity might have gone on
                        // to CONNECT: "nothing got through" would be the bench's doing
                        if let Some(why) = capacity_refusals(&in_phase, dropped_before, net.log.dropped().0) {
                            return Err(Stop::Error(format!(
                                "not decided: {why}, so \"nothing reached {reach:?}\" would not be the device's doing"
                            )));
                        }
                        if let Some((l, min)) = require_attempts
                            && (attempts(*l) as u32) < *min
                        {
                            return Err(Stop::Error(format!(
                                "the device made {} connection attempt(s) to the {l} within {window:?} (at least {min} needed), so the test did not happen",
                                attempts(*l)
                            )));
                        }
                        Ok(format!(
                            "nothing reached {reach:?} on the {listener} within {}; seen: {}; {}",
                            early.unwrap_or_else(|| format!("{window:?}")),
                            summarize(&in_phase, "no connection"),
                            net.log.attribution.describe()
                        ))
                    }
                }
            }
            StepKind::Document { kind, check } => self.document(*kind, check),
            StepKind::Shell => self.ensure_shell().await,
            StepKind::OpenPasswordChange => self.open_password_change().await,
            StepKind::ConsoleAccess => self.console_access().await,
            StepKind::BootBreakIn => self.boot_break_in().await,
            StepKind::UpdateImage { image, expect, tls } => self.update_image(image, *expect, *tls).await,
            StepKind::UpdateCheck => self.update_check().await,
            StepKind::UpdatePowerLoss { cuts, seed } => self.power_loss(*cuts, *seed).await,
            StepKind::DebugLocked => self.debug_check(false).await,
            StepKind::DebugSecrets => self.debug_check(true).await,
            StepKind::RemoteLogin {
                password,
                expect,
                within,
                otherwise,
            } => self.remote_login(password, *expect, *within, otherwise).await,
            StepKind::CredentialSweep => self.credential_sweep().await,
            StepKind::SshAlgorithms => self.ssh_algorithms().await,
            StepKind::Traffic { observe } => self.traffic(*observe).await,
            StepKind::PortScan => self.port_scan().await,
            StepKind::BruteForce {
                attempts,
                max_rate,
                max_burst,
                unlock_within,
            } => self.brute_force(*attempts, *max_rate, *max_burst, *unlock_within).await,
            StepKind::MqttConnect {
                tls,
                expect,
                within,
                otherwise,
            } => {
                use crate::bench::probe::{self, Probe};
                use crate::config::scenario::ConnectOutcome;
                let b = self
                    .bench
                    .device
                    .broker
                    .clone()
                    .ok_or_else(|| Stop::Error("the device profile declares no MQTT broker".into()))?;
                let vars = &self.bench.command_vars;
                let render = |t: &Template| t.render(vars, Quote::Raw).map_err(Stop::Error);
                let host = render(&b.host)?;
                let port_text = render(if *tls { &b.tls_port } else { &b.plain_port })?;
                let port: u16 = port_text
                    .trim()
                    .parse()
                    .map_err(|_| Stop::Error(format!("broker port {port_text:?} is not a port number")))?;
                let ca = if *tls { Some(render(&b.ca_cert)?) } else { None };
                let target = format!(
                    "the device's {} MQTT port {host}:{port}",
                    if *tls { "TLS" } else { "plaintext" }
                );
                let deadline = Instant::now() + *within;
                loop {
                    let left = deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(500));
                    let p = probe::connect(&host, port, ca.as_deref(), left.min(Duration::from_secs(10)))
                        .await
                        .map_err(Stop::Error)?;
                    let got = if p == Probe::Accepted || matches!(p, Probe::Answered(_)) && !*tls {
                        ConnectOutcome::Accepted
                    } else {
                        ConnectOutcome::Refused
                    };
                    if got == *expect {
                        return Ok(p.describe(&target));
                    }
                    // a booting device may not listen yet: retry while acceptance is expected
                    if *expect == ConnectOutcome::Refused || Instant::now() >= deadline {
                        return Err(judge(otherwise, &p.describe(&target)));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            StepKind::FactoryReset => {
                let Some(reset) = self.bench.device.factory_reset.clone() else {
                    return Err(Stop::Error("the profile declares no factory_reset method".into()));
                };
                let out = crate::power::external::run_command(
                    &reset.command,
                    &self.bench.command_vars,
                    &self.bench.command_cwd,
                    reset.timeout,
                )
                .await
                .map_err(|e| Stop::Error(format!("factory reset failed: {e}")))?;
                self.bench.current = self.bench.device.factory.clone();
                self.at = None;
                Ok(format!("factory reset done {}", out.trim()).trim().to_string())
            }
        }
    }

    /// A documentary check: automatic findings decide FAIL; otherwise a reviewer's
    /// sign-off for this check and this exact document decides, or the check awaits REVIEW.
    fn document(&mut self, kind: crate::config::scenario::DocKind, check: &str) -> StepResult {
        use crate::config::scenario::DocKind;
        let d = &self.bench.device.documents;
        let (path, what) = match kind {
            DocKind::SecurityTxt => (&d.security_txt, "security.txt"),
            DocKind::DisclosurePolicy => (&d.disclosure_policy, "vulnerability disclosure policy"),
            DocKind::SupportPeriod => (&d.support_period, "support period statement"),
            DocKind::PrivacyPolicy => (&d.privacy_policy, "privacy policy"),
        };
        let fail = |reason: String| Stop::Fail {
            check: Some(check.to_string()),
            reason: format!("{check}: {reason}"),
        };
        let Some(path) = path.clone() else {
            return Err(fail(
                format!("the maker supplied no {what} (profile documents.{kind:?})")
                    .replace("SecurityTxt", "security_txt")
                    .replace("DisclosurePolicy", "disclosure_policy")
                    .replace("SupportPeriod", "support_period")
                    .replace("PrivacyPolicy", "privacy_policy"),
            ));
        };
        // bounded by the bytes actually read: a document is text of a few pages
        const MAX_DOCUMENT: u64 = 1 << 20;
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_DOCUMENT + 1), &mut bytes))
            .map_err(|e| Stop::Error(format!("cannot read the {what} {}: {e}", path.display())))?;
        if bytes.len() as u64 > MAX_DOCUMENT {
            return Err(Stop::Error(format!(
                "the {what} {} is larger than {MAX_DOCUMENT} bytes: not a document a reviewer reads",
                path.display()
            )));
        }
        let text = String::from_utf8_lossy(&bytes);
        let now = time::OffsetDateTime::now_utc();
        let findings = match kind {
            DocKind::SecurityTxt => crate::docs::security_txt(&text, now),
            DocKind::DisclosurePolicy => crate::docs::disclosure_policy(&text),
            DocKind::SupportPeriod => crate::docs::support_period(&text, now),
            DocKind::PrivacyPolicy => crate::docs::privacy_policy(&text),
        };
        let sha = crate::util::sha256_hex(&bytes);
        if !findings.missing.is_empty() {
            return Err(fail(format!(
                "the {what} ({}) lacks: {}",
                path.display(),
                findings.missing.join("; ")
            )));
        }
        let notes = if findings.notes.is_empty() {
            String::new()
        } else {
            format!(" (notes: {})", findings.notes.join("; "))
        };
        let signoff = self.bench.device.signoffs.iter().find(|s| {
            s.check == check
                && s.document_sha256
                    .as_deref()
                    .is_none_or(|h| h.eq_ignore_ascii_case(&sha))
        });
        match signoff {
            Some(s) if s.decision == crate::docs::Decision::Pass => Ok(format!(
                "{what}: automatic checks passed; signed off PASS by {} on {}: {}{notes}",
                s.reviewer, s.date, s.comment
            )),
            Some(s) => Err(fail(format!(
                "reviewer {} decided FAIL on {}: {}",
                s.reviewer, s.date, s.comment
            ))),
            None => {
                self.reviews.push(format!(
                    "{check}: the {what} passed the automatic checks; a reviewer must judge it (sign-off for document SHA-256 {sha}){notes}"
                ));
                Ok(format!("{what}: automatic checks passed; awaiting review{notes}"))
            }
        }
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

impl Run<'_> {
    /// The debug-port checks, run off the executor (drivers are synchronous).
    async fn debug_check(&mut self, secrets: bool) -> StepResult {
        use crate::debug::Finding;
        let spec = self
            .bench
            .device
            .debug
            .clone()
            .ok_or_else(|| Stop::Error("the device profile declares no debug port".into()))?;
        let mut port = spec.open(&self.bench.command_vars).map_err(Stop::Error)?;
        let check = if secrets { "ATK-05" } else { "ATK-03" };
        let needles: Vec<(String, Vec<u8>)> = self
            .bench
            .redactor
            .secrets()
            .into_iter()
            .map(|(n, v)| (n, v.into_bytes()))
            .collect();
        let finding = tokio::task::spawn_blocking(move || {
            if secrets {
                let mut ranges = spec.ram.clone();
                ranges.extend(spec.flash.iter().copied());
                crate::debug::check_secrets(port.as_mut(), &ranges, &needles).0
            } else {
                crate::debug::check_locked(port.as_mut(), &spec.flash)
            }
        })
        .await
        .map_err(|e| Stop::Error(format!("the debug check stopped: {e}")))?;
        match finding {
            Finding::Pass(m) => Ok(m),
            Finding::Fail(m) => Err(Stop::Fail {
                check: Some(check.into()),
                reason: format!("{check}: {m}"),
            }),
            Finding::Skip(m) => Err(Stop::Skip(m)),
            Finding::Error(m) => Err(Stop::Error(m)),
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

/// The sessions of a phase in a few lines: how many, then the last three in full.
fn summarize(sessions: &[crate::bench::sessions::Session], none: &str) -> String {
    if sessions.is_empty() {
        return none.to_string();
    }
    let last: Vec<String> = sessions.iter().rev().take(3).rev().map(|s| s.describe()).collect();
    format!("{} session(s); last: {}", sessions.len(), last.join(" | "))
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

/// Why sessions of the device were not let in during a window: refused for capacity (those
/// listed), or not even recorded because the log was full.
fn capacity_refusals(
    sessions: &[crate::bench::sessions::Session],
    dropped_before: u64,
    dropped_now: u64,
) -> Option<String> {
    let refused: Vec<_> = sessions.iter().filter(|s| s.refused.is_some()).collect();
    let lost = dropped_now.saturating_sub(dropped_before);
    if refused.is_empty() && lost == 0 {
        return None;
    }
    let mut why = Vec::new();
    if let Some(first) = refused.first() {
        why.push(format!(
            "the bench refused {} of the device's connection(s) for capacity (first: {})",
            refused.len(),
            first.describe()
        ));
    }
    if lost > 0 {
        why.push(format!(
            "{lost} connection(s) of the device were refused because the session log was full"
        ));
    }
    Some(why.join("; "))
}

/// Whether a bench session got at least as far as `reach`.
fn reached(s: &crate::bench::sessions::Session, reach: crate::config::scenario::Reach) -> bool {
    use crate::bench::sessions::{ListenerName, TlsOutcome};
    use crate::config::scenario::Reach;
    match reach {
        Reach::Attempt => true,
        Reach::Tls => match s.listener {
            ListenerName::MqttTls => matches!(s.tls, Some(TlsOutcome::Established(_))),
            ListenerName::MqttPlain => !s.refused_by_bench && s.refused.is_none(),
        },
        Reach::AppData => s.bytes_in > 0 && !s.refused_by_bench && s.refused.is_none(),
        Reach::Connect => s.connect.is_some(),
        Reach::Publish => s.publish_count() > 0,
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
