//! The update steps: offer an image and judge the device by what it does (the bench's
//! transfer log, its console, its version after a reboot), the automatic-check watch and
//! the power-cut loop.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use regex::bytes::Regex;

use crate::bench::http::HttpRequest;
use crate::model::CertVariant;

use crate::config::scenario::UpdateOutcome;
use crate::config::update::{Delivery, ImageName};
use crate::console::Wait;
use crate::engine::run::{Run, StepResult, Stop, console_lost};
use crate::model::template::{Quote, Template};
use crate::power::Action;
use crate::update::bench::{Image, UpdateBench};

/// What the device said about an offered image.
#[derive(Debug)]
enum Said {
    Refused(String),
    Installed(String),
    Nothing,
    /// The device restarted by itself before it said anything (its console went away and
    /// came back): the version after the reboot decides, there is nothing more to wait for.
    Rebooted,
}

impl Said {
    /// What the device said, for the evidence (secrets by name only).
    fn words(&self, redactor: &crate::redact::Redactor, spec: &crate::config::update::UpdateSpec) -> String {
        match self {
            Said::Refused(t) | Said::Installed(t) => {
                format!("the device said {:?}", redactor.redact(t.trim()))
            }
            Said::Rebooted => "the device restarted by itself before printing a decision".to_string(),
            Said::Nothing => format!(
                "the device printed no decision within {:?}{}",
                spec.decision_time,
                if spec.rejected.is_none() && spec.installed.is_none() {
                    " (the profile declares none: the version after a reboot decides)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// A wait through a man in the middle that saw no complete fetch: why (as `wait_fetched`
/// would say), and, when it ended once its evidence was complete, how.
struct NotFetched {
    why: Stop,
    early: Option<String>,
}

impl From<Stop> for NotFetched {
    fn from(why: Stop) -> Self {
        Self { why, early: None }
    }
}

/// Where in an update a power cut falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum CutPoint {
    Download,
    Install,
    AfterInstall,
}

/// One power cut, as recorded in the evidence.
#[derive(Debug, serde::Serialize)]
struct Cut {
    cut: u32,
    point: CutPoint,
    /// What the cut was timed against, e.g. "at 4096 of 8320 bytes sent".
    at: String,
    version_after: Option<String>,
}

/// `matched` and what follows it on the device's line (its reason: "update: refused:
/// signature invalid"), for the evidence; waits at most half a second for the line's end.
async fn rest_of_line(c: &crate::console::Console, matched: String) -> String {
    static EOL: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"[^\r\n]*\r?\n").expect("static pattern"));
    match c
        .expect(&[&EOL], Instant::now() + Duration::from_millis(500), None)
        .await
    {
        Ok(Wait::Found(f)) => {
            let rest: String = f.text.trim_end().chars().take(240).collect();
            format!("{matched}{rest}")
        }
        _ => matched,
    }
}

fn no_update() -> Stop {
    Stop::Error("the device profile declares no update section".into())
}

/// The transfers of `path` in `reqs`, in a line.
fn transfers(reqs: &[HttpRequest], path: &str) -> String {
    let of: Vec<String> = reqs
        .iter()
        .filter(|r| r.path == path)
        .map(|r| {
            format!(
                "{} {} -> {}, {} of {} bytes{}",
                r.method,
                r.path,
                r.status,
                r.bytes_sent,
                r.bytes_total,
                if r.completed { ", complete" } else { ", aborted" }
            )
        })
        .collect();
    if of.is_empty() {
        let other: Vec<String> = reqs.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        format!(
            "no request for {path}; {} other request(s){}",
            other.len(),
            if other.is_empty() {
                String::new()
            } else {
                format!(": {}", other.join(", "))
            }
        )
    } else {
        of.join("; ")
    }
}

/// Whether the device has fetched the whole of `len` bytes at `path`.
fn fetched_in_full(reqs: &[HttpRequest], path: &str, len: usize) -> bool {
    let ok: Vec<&HttpRequest> = reqs
        .iter()
        .filter(|r| r.path == path && r.method == "GET" && r.completed)
        .collect();
    ok.iter().any(|r| r.status == 200 && r.bytes_sent as usize == len)
        || ok
            .iter()
            .filter(|r| r.status == 206)
            .map(|r| r.bytes_sent as usize)
            .sum::<usize>()
            >= len.max(1)
}

impl Run<'_> {
    pub(super) fn updates(&mut self) -> Result<&mut UpdateBench, Stop> {
        self.rig.update.as_mut().ok_or_else(no_update)
    }

    /// Runs the profile's version command at the shell and reads the version.
    pub(super) async fn read_version(&mut self) -> Result<String, Stop> {
        let c = self.console()?;
        let (cmd, re) = {
            let u = self.updates()?;
            (u.spec.version_command.clone(), u.spec.version_pattern.clone())
        };
        let shell = self.spec()?.prompts.shell.clone();
        self.rig.state.lost();
        self.send_line(&c, &cmd)?;
        match c
            .expect(&[&re], Instant::now() + Duration::from_secs(15), None)
            .await
            .map_err(console_lost)?
        {
            Wait::Found(f) => {
                let v = f
                    .captures
                    .iter()
                    .find(|(k, _)| k == "version")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                // back at the prompt, so the next command starts clean (and, seen, the next
                // "get to a shell" needs no wait)
                if let Ok(Wait::Found(_)) = c.expect(&[&shell], Instant::now() + Duration::from_secs(5), None).await {
                    self.rig.state.saw_shell();
                }
                Ok(v.trim().to_string())
            }
            Wait::Timeout => Err(Stop::Error(format!(
                "`{cmd}` printed nothing matching /{}/ within 15s",
                re.as_str()
            ))),
        }
    }

    /// After power was applied: whether the device comes up to a shell and which version it
    /// runs; Err says why not (for the update checks, a device that does not work is FAIL).
    pub(super) async fn version_after_boot(&mut self) -> Result<String, String> {
        let r = match self.ensure_shell().await {
            Ok(_) => self.read_version().await,
            Err(e) => Err(e),
        };
        r.map_err(Stop::into_reason)
    }

    pub(super) async fn cycle(&mut self, why: &str) -> Result<(), Stop> {
        self.rig.state.lost();
        self.rig
            .power(Action::Cycle)
            .await
            .map(|_| ())
            .map_err(|e| Stop::Error(format!("power cycle ({why}) failed: {e}")))
    }

    /// Puts the baseline firmware back with the profile's restore command.
    pub(super) async fn restore(&mut self, baseline: &str, now: &str) -> Result<(), Stop> {
        let Some(r) = self.updates()?.spec.restore.clone() else {
            return Err(Stop::Error(format!(
                "the device left its baseline version {baseline} (now: {now}) after an earlier image, and the profile declares no update.restore to put the baseline back; the remaining images cannot be tested"
            )));
        };
        self.rig.state.lost();
        let _ = self.rig.power(Action::Off).await;
        crate::process::run(&r.command, &self.rig.command_vars, &self.rig.command_cwd, r.timeout)
            .await
            .map_err(|e| Stop::Error(format!("update.restore failed: {e}")))?;
        self.rig
            .power(Action::On)
            .await
            .map_err(|e| Stop::Error(format!("power on after restore failed: {e}")))?;
        self.ensure_shell().await?;
        let v = self.read_version().await?;
        if v != baseline {
            return Err(Stop::Error(format!(
                "after update.restore the device runs {v}, not the baseline {baseline}"
            )));
        }
        Ok(())
    }

    /// Makes sure the device runs its baseline version; returns it. Restores whenever the
    /// version is not the baseline, including when it cannot be read at all (an image that
    /// emptied the slot): the next image must not be tested against a broken device.
    pub(super) async fn at_baseline(&mut self) -> Result<String, Stop> {
        let known = self.updates()?.baseline.clone();
        let seen = match self.ensure_shell().await {
            Ok(_) => self.read_version().await,
            Err(e) => Err(e),
        };
        let base = match (seen, known) {
            (Ok(v), known) => {
                let base = known.unwrap_or_else(|| v.clone());
                self.updates()?.baseline = Some(base.clone());
                if v != base {
                    self.restore(&base, &v).await?;
                }
                base
            }
            (Err(e), None) => return Err(e),
            (Err(why), Some(base)) => {
                let why = why.into_reason();
                self.restore(&base, &format!("no readable version ({why})")).await?;
                base
            }
        };
        let valid = self.updates()?.spec.valid.version.clone();
        if base == valid {
            return Err(Stop::Error(format!(
                "the device already runs {base}, the version of the valid image (update.images.valid), so no update can be shown; supply a newer valid image or restore older firmware"
            )));
        }
        Ok(base)
    }

    /// Serves `img` and tells the device about it as the profile declares.
    async fn deliver(&mut self, img: &Image) -> Result<String, Stop> {
        let vars = self.rig.command_vars.clone();
        let (delivery, ivars) = {
            let u = self.updates()?;
            u.offer(img, &vars)?;
            let delivery =
                u.spec.delivery().cloned().ok_or_else(|| {
                    Stop::Error("the profile declares no update delivery path (update.delivery)".into())
                })?;
            (delivery, u.image_vars(img, &vars))
        };
        let render = |t: &Template| t.render(&ivars, Quote::Raw).map_err(Stop::Error);
        match &delivery {
            Delivery::Pull { manifest_path, .. } => Ok(format!(
                "delivered via pull: offered at {manifest_path} for the device to find"
            )),
            Delivery::Console { command } => {
                let c = self.console()?;
                let line = render(command)?;
                self.rig.state.lost();
                self.send_line(&c, &line)?;
                Ok(format!("delivered via console: typed {line:?} at the shell"))
            }
            Delivery::Mqtt { topic, message } => {
                let (topic, msg) = (render(topic)?, render(message)?);
                let net = self.rig.net.as_mut().ok_or_else(|| {
                    Stop::Error(
                        "update.delivery is mqtt but the profile declares no broker the bench plays (network.mqtt)"
                            .into(),
                    )
                })?;
                // the bench plays the device's broker, over TLS with a valid certificate
                if net.phase() == 0 && net.configure(false, Some(crate::model::CertVariant::Valid))?.is_none() {
                    return Err(Stop::Error(
                        "the bench cannot play the device's broker: the device trusts no CA the bench can issue from (network.mqtt.trust)".into(),
                    ));
                }
                let net = self.net()?;
                let deadline = Instant::now() + Duration::from_secs(30);
                // the device must be subscribed (it may still be connecting after boot)
                loop {
                    let n = net.publish(&topic, msg.as_bytes());
                    if n > 0 {
                        return Ok(format!("delivered via mqtt: published on {topic} to {n} subscriber(s)"));
                    }
                    if Instant::now() >= deadline {
                        return Err(Stop::Error(format!(
                            "no device subscribed to {topic} on the bench broker within 30s, so the update could not be delivered"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// Waits until the device has fetched all of `img`; the test happened only then.
    pub(super) async fn wait_fetched(&mut self, img: &Image, mark: usize, within: Duration) -> Result<String, Stop> {
        let log = self.updates()?.log.clone();
        let (path, len) = (img.path.clone(), img.data.len());
        match log
            .wait_until(Instant::now() + within, |all| {
                let since = all.get(mark..).unwrap_or_default();
                fetched_in_full(since, &path, len).then(|| transfers(since, &path))
            })
            .await
        {
            Ok(t) => Ok(t),
            Err(all) => Err(Stop::Error(format!(
                "the bench did not see the device fetch the whole image ({len} bytes at {path}) within {within:?}, so the test did not happen; bench saw: {}",
                transfers(all.get(mark..).unwrap_or_default(), &path)
            ))),
        }
    }

    /// Waits, through a man in the middle, until the device has fetched all of `img`, or
    /// stopped (3 s without a new handshake or request), or — with `until: (n, min)` — made
    /// `n` handshakes none of which asked for the image, once `min` has passed: the evidence
    /// is complete (`NotFetched::early` then says so).
    async fn wait_fetched_or_refused(
        &mut self,
        img: &Image,
        (mark, hs_mark): (usize, usize),
        within: Duration,
        until: Option<(u32, Duration)>,
    ) -> Result<String, NotFetched> {
        let log = self.updates()?.log.clone();
        let t0 = Instant::now();
        let deadline = t0 + within;
        let mut quiet_since: Option<(usize, Instant)> = None;
        loop {
            let reqs = log.snapshot();
            let since = reqs.get(mark..).unwrap_or_default();
            if fetched_in_full(since, &img.path, img.data.len()) {
                return Ok(transfers(since, &img.path));
            }
            let handshakes = log.handshakes().len().saturating_sub(hs_mark);
            let seen = handshakes + since.len();
            let now = Instant::now();
            if let Some((n, min)) = until
                && now.duration_since(t0) >= min.min(within)
                && handshakes >= n as usize
                && !since.iter().any(|r| r.path == img.path)
            {
                let early = format!(
                    "the wait ended early, after {:.1?} (at most {within:?}): {handshakes} handshake(s) with the bench, none asked for the image",
                    now.duration_since(t0)
                );
                return Err(NotFetched {
                    why: Stop::Error(early.clone()),
                    early: Some(early),
                });
            }
            match quiet_since {
                Some((n, t)) if n == seen && seen > 0 && now.duration_since(t) > Duration::from_secs(3) => {
                    return Err(Stop::Error("no complete fetch after the handshake".into()).into());
                }
                Some((n, _)) if n == seen => {}
                _ => quiet_since = Some((seen, now)),
            }
            if now >= deadline {
                return Ok(self.wait_fetched(img, mark, Duration::ZERO).await?);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(super) async fn update_image(
        &mut self,
        image: &Template,
        expect: UpdateOutcome,
        tls: Option<CertVariant>,
        until: Option<(u32, Duration)>,
    ) -> StepResult {
        let mitm = tls.filter(|v| *v != CertVariant::Valid);
        if let Some(v) = tls {
            self.updates()?.present(v).map_err(|e| Stop::Skip(e.to_string()))?;
        }
        let r = self.offer_image(image, expect, mitm.map(|v| (v, until))).await;
        if mitm.is_some() {
            self.updates()?.present(CertVariant::Valid)?;
        }
        r
    }

    /// `mitm`: the man in the middle the bench plays, and when its wait may end early.
    async fn offer_image(
        &mut self,
        image: &Template,
        expect: UpdateOutcome,
        mitm: Option<(CertVariant, Option<(u32, Duration)>)>,
    ) -> StepResult {
        let until = mitm.and_then(|(_, u)| u);
        let mitm = mitm.map(|(v, _)| v);
        let name_text = self.render(image, Quote::Raw)?;
        let name = {
            let spec = &self.updates()?.spec;
            ImageName::parse(&name_text, spec).ok_or_else(|| Stop::Error(format!("unknown image {name_text:?}")))?
        };
        let check = match (expect, mitm) {
            (_, Some(_)) => "UPD-09".to_string(),
            (UpdateOutcome::Installed, None) => "UPD-02".to_string(),
            (UpdateOutcome::Rejected, None) => name.check(),
        };
        if self.rig.power.is_none() {
            return Err(Stop::Error(
                "the update checks reboot the device and need power control".into(),
            ));
        }
        let before = self.at_baseline().await?;
        let vars = self.rig.command_vars.clone();
        let (img, mark, spec) = {
            let u = self.updates()?;
            let img = u.image(name.clone(), &vars).map_err(Stop::Error)?;
            (img, u.log.len(), u.spec.clone())
        };
        let c = self.console()?;
        c.marker(format!("offering image {} ({})", name.as_str(), name.describe()));
        let (how, fetched) = match self.fetch_offered(&img, mark, spec.decision_time, mitm, until).await? {
            std::ops::ControlFlow::Continue(f) => f,
            std::ops::ControlFlow::Break(done) => return Ok(done),
        };
        // What the device says about it. Only a refusal or an `installed` message counts;
        // `installing` is progress (a client may print it before it verifies).
        let said = self.hear_decision(&c, &spec).await?;
        self.updates()?.withdraw();
        let said_words = said.words(&self.rig.redactor, &spec);
        if expect == UpdateOutcome::Installed
            && let Said::Refused(_) = said
        {
            return Err(Stop::Fail {
                check: Some(check.clone()),
                reason: format!(
                    "{check}: the device refused the maker's valid image {}: {said_words}",
                    img.version
                ),
            });
        }
        if expect == UpdateOutcome::Installed && matches!(said, Said::Nothing) {
            // nothing says the install is over: give it the declared install time
            tokio::time::sleep(spec.install_time).await;
        }
        // reboot and look again
        self.cycle("after the update attempt").await?;
        let after = match self.version_after_boot().await {
            Ok(v) => v,
            Err(why) => {
                // (the next image's at_baseline restores the baseline: nothing readable there)
                return Err(Stop::Fail {
                    check: Some(check.clone()),
                    reason: format!(
                        "{check}: after being offered {} ({how}; bench: {fetched}; {said_words}) and a power cycle the device no longer works or no longer reports a version: {why}",
                        name.describe()
                    ),
                });
            }
        };
        let altered = img
            .altered
            .as_ref()
            .map(|a| format!("image: {a}; "))
            .unwrap_or_default();
        let evidence = format!("{altered}{how}; bench: {fetched}; {said_words}; version {before} -> {after}");
        match expect {
            UpdateOutcome::Rejected if after != before => Err(Stop::Fail {
                check: Some(check.clone()),
                reason: format!(
                    "{check}: the device installed {} (version {before} -> {after}); {evidence}",
                    name.describe()
                ),
            }),
            UpdateOutcome::Rejected if matches!(said, Said::Installed(_)) => Err(Stop::Fail {
                check: Some(check.clone()),
                reason: format!(
                    "{check}: the device reported installing {}; {evidence}",
                    name.describe()
                ),
            }),
            UpdateOutcome::Rejected => {
                self.rig.state.fresh_since(
                    Instant::now(),
                    format!(
                        "the update_image step ({}) power-cycled the device and saw it working",
                        name.describe()
                    ),
                );
                Ok(format!(
                    "refused {}: fetched in full, still running {before} after {:?} and a reboot, working; {evidence}",
                    name.describe(),
                    spec.decision_time
                ))
            }
            UpdateOutcome::Installed if after != img.version => Err(Stop::Fail {
                check: Some(check.clone()),
                reason: format!(
                    "{check}: the valid image {} was not installed (version {before} -> {after}); {evidence}",
                    img.version
                ),
            }),
            UpdateOutcome::Installed => Ok(format!("installed the valid image: {evidence}")),
        }
    }

    /// Offers the image and waits for the device to fetch it in full (through a man in the
    /// middle: or to refuse the handshake): how it was offered and what the bench saw. A
    /// refusal through a man in the middle ends the step there (`Break`, its result).
    async fn fetch_offered(
        &mut self,
        img: &Image,
        mark: usize,
        decision_time: Duration,
        mitm: Option<CertVariant>,
        until: Option<(u32, Duration)>,
    ) -> Result<std::ops::ControlFlow<String, (String, String)>, Stop> {
        let hs_mark = self.updates()?.log.handshakes().len();
        let how = self.deliver(img).await?;
        let fetched = match mitm {
            None => self
                .wait_fetched(img, mark, decision_time)
                .await
                .map_err(NotFetched::from),
            Some(_) => {
                self.wait_fetched_or_refused(img, (mark, hs_mark), decision_time, until)
                    .await
            }
        };
        let fetched = match fetched {
            Ok(f) => f,
            Err(nf) => {
                self.updates()?.withdraw();
                return match mitm {
                    Some(v) => self
                        .mitm_not_fetched(v, nf, img, (mark, hs_mark), &how)
                        .map(std::ops::ControlFlow::Break),
                    None => Err(nf.why),
                };
            }
        };
        let fetched = match mitm {
            Some(v) => format!("the device accepted {} and fetched: {fetched}", v.describe()),
            None => fetched,
        };
        Ok(std::ops::ControlFlow::Continue((how, fetched)))
    }

    /// The image was not fetched through a man in the middle: a refused handshake, or a
    /// completed one after which the device asked for nothing (a host-name check after the
    /// handshake), is the right answer; anything else stays as it was (`nf.why`).
    fn mitm_not_fetched(
        &mut self,
        v: CertVariant,
        nf: NotFetched,
        img: &Image,
        (mark, hs_mark): (usize, usize),
        how: &str,
    ) -> StepResult {
        let hs: Vec<_> = self.updates()?.log.handshakes().into_iter().skip(hs_mark).collect();
        let asked = self
            .updates()?
            .requests_since(mark)
            .iter()
            .any(|r| r.path == img.path && r.bytes_sent > 0);
        // a window that ended early says so in the evidence
        let early = nf.early.map(|m| format!("; {m}")).unwrap_or_default();
        if let Some(h) = hs.iter().find(|h| !h.established()) {
            return Ok(format!(
                "refused the update host presenting {}: handshake {} ({how}{early})",
                v.describe(),
                h.outcome
            ));
        }
        if !hs.is_empty() && !asked {
            return Ok(format!(
                "refused the update host presenting {}: {} handshake(s) completed, then the device closed without asking for the image (a host-name check after the handshake) ({how}{early})",
                v.describe(),
                hs.len()
            ));
        }
        match nf.why {
            Stop::Error(m) => Err(Stop::Error(format!("{m}; TLS handshakes seen: {}", hs.len()))),
            e => Err(e),
        }
    }

    /// Listens for the device's decision about an image it fetched: a refusal, an
    /// `installed` message, or nothing within the decision time. `installing` extends the
    /// wait by the install time but decides nothing.
    async fn hear_decision(
        &mut self,
        c: &crate::console::Console,
        spec: &crate::config::update::UpdateSpec,
    ) -> Result<Said, Stop> {
        let mut pats: Vec<&Regex> = Vec::new();
        let mut kinds: Vec<u8> = Vec::new();
        for (re, kind) in [(&spec.rejected, 0u8), (&spec.installed, 1), (&spec.installing, 2)] {
            if let Some(r) = re {
                pats.push(r);
                kinds.push(kind);
            }
        }
        let mut deadline = Instant::now() + spec.decision_time;
        let mut extended = false;
        let opened = c.reopened();
        loop {
            if c.reopened() != opened {
                return Ok(Said::Rebooted);
            }
            if pats.is_empty() {
                tokio::time::sleep(spec.decision_time).await;
                return Ok(Said::Nothing);
            }
            // looked at again every 250 ms: a console that went away and came back is a reboot
            let until = deadline.min(Instant::now() + Duration::from_millis(250));
            match c.expect(&pats, until, None).await.map_err(console_lost)? {
                Wait::Found(f) => match kinds[f.index] {
                    0 => return Ok(Said::Refused(rest_of_line(c, f.text).await)),
                    1 => return Ok(Said::Installed(rest_of_line(c, f.text).await)),
                    _ if !extended => {
                        // writing has begun (or the client says so before verifying)
                        deadline += spec.install_time;
                        extended = true;
                    }
                    _ => {}
                },
                Wait::Timeout if Instant::now() >= deadline => return Ok(Said::Nothing),
                Wait::Timeout => {}
            }
        }
    }

    /// UPD-01: the device asks for updates by itself within the declared interval.
    pub(super) async fn update_check(&mut self) -> StepResult {
        let boot = self.spec().map(|s| s.boot_time).unwrap_or(Duration::ZERO);
        let (log, path, interval) = {
            let u = self.updates()?;
            let Some((manifest_path, _)) = u.spec.pull() else {
                return Err(Stop::Skip(
                    "the device does not check for updates by itself (update.delivery declares no pull)".into(),
                ));
            };
            (u.log.clone(), manifest_path.to_string(), u.spec.check_interval)
        };
        let within = interval + boot;
        let t0 = Instant::now();
        let mark = self.power_mark;
        match log
            .wait_until(t0 + within, |all| {
                all.get(mark..)
                    .unwrap_or_default()
                    .iter()
                    .find(|r| r.path == path)
                    .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
            })
            .await
        {
            Ok(r) => Ok(format!(
                "with no user action since power was applied the device checked for updates ({r}) {:.1}s into the wait",
                t0.elapsed().as_secs_f64()
            )),
            Err(all) => Err(Stop::Fail {
                check: Some("UPD-01".into()),
                reason: format!(
                    "UPD-01: with no user action the device did not ask for {path} within {within:?} (declared interval {interval:?} + boot time); bench saw: {}",
                    transfers(all.get(mark..).unwrap_or_default(), &path)
                ),
            }),
        }
    }

    /// A cut during the download: waits until the bench has sent `want` bytes of the image
    /// (where it holds it); says where the cut lands.
    async fn cut_point_in_download(
        &mut self,
        img: &Image,
        mark: usize,
        want: u64,
        i: u32,
        spec: &crate::config::update::UpdateSpec,
    ) -> Result<String, Stop> {
        let log = self.updates()?.log.clone();
        let path = img.path.clone();
        log.wait_until(Instant::now() + spec.decision_time, |all| {
            all.get(mark..)
                .unwrap_or_default()
                .iter()
                .find(|r| r.path == path && (r.bytes_sent >= want || r.completed))
                .map(|r| format!("at {} of {} bytes sent", r.bytes_sent, r.bytes_total))
        })
        .await
        .map_err(|all| {
            Stop::Error(format!(
                "cut {}: the device did not fetch the image within {:?}: {}",
                i + 1,
                spec.decision_time,
                transfers(all.get(mark..).unwrap_or_default(), &path)
            ))
        })
    }

    /// A cut while installing (a random delay after `installing`, or after the download) or
    /// after it (at `installed`, or the install time after the download); says where.
    async fn cut_point_after_fetch(
        &mut self,
        img: &Image,
        mark: usize,
        point: CutPoint,
        spec: &crate::config::update::UpdateSpec,
        rng: &mut rand::rngs::StdRng,
    ) -> Result<String, Stop> {
        self.wait_fetched(img, mark, spec.decision_time).await?;
        let c = self.console()?;
        let (re, label) = match point {
            CutPoint::Install => (spec.installing.clone(), "installing"),
            _ => (spec.installed.clone(), "installed"),
        };
        let mut from = "the end of the download".to_string();
        if let Some(re) = re
            && let Ok(Wait::Found(_)) = c.expect(&[&re], Instant::now() + spec.decision_time, None).await
        {
            from = format!("the device said `{label}`");
        }
        let delay = if point == CutPoint::Install {
            let max = if spec.installing.is_some() {
                spec.install_time
            } else {
                spec.install_time.max(Duration::from_millis(10))
            };
            Duration::from_millis(rng.random_range(0..max.as_millis().max(1) as u64))
        } else if spec.installed.is_none() {
            spec.install_time
        } else {
            Duration::ZERO
        };
        tokio::time::sleep(delay).await;
        Ok(format!("{} ms after {from}", delay.as_millis()))
    }

    /// UPD-08: power cuts at random points of a valid update.
    pub(super) async fn power_loss(&mut self, cuts: u32, seed: Option<u64>) -> StepResult {
        let seed = seed.unwrap_or_else(rand::random);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        if self.rig.power.is_none() {
            return Err(Stop::Error("the power-loss check needs power control".into()));
        }
        let baseline = self.at_baseline().await?;
        let vars = self.rig.command_vars.clone();
        let (img, spec) = {
            let u = self.updates()?;
            (u.image(ImageName::Valid, &vars).map_err(Stop::Error)?, u.spec.clone())
        };
        let c = self.console()?;
        let mut record: Vec<Cut> = Vec::new();
        let points = [CutPoint::Download, CutPoint::Install, CutPoint::AfterInstall];
        for i in 0..cuts {
            let point = points[i as usize % points.len()];
            if i > 0 {
                let v = {
                    self.ensure_shell().await?;
                    self.read_version().await?
                };
                if v != baseline {
                    self.restore(&baseline, &v).await.map_err(|e| match e {
                        Stop::Error(why) => Stop::Error(format!("only {i} of {cuts} power cuts could be made: {why}")),
                        other => other,
                    })?;
                }
            }
            let mark = self.updates()?.log.len();
            let path = img.path.clone();
            let len = img.data.len();
            // a cut during the download: the bench holds the image after a random byte, so
            // the cut lands exactly there
            let want = (len as f64 * rng.random_range(0.1..0.9)) as u64;
            if point == CutPoint::Download {
                self.updates()?.hold(Some((&path, want)));
            }
            c.marker(format!("power cut {} of {cuts}: {point:?}", i + 1));
            let delivered = self.deliver(&img).await;
            if let Err(e) = delivered {
                self.updates()?.hold(None);
                return Err(e);
            }
            let at = match point {
                CutPoint::Download => self.cut_point_in_download(&img, mark, want, i, &spec).await,
                CutPoint::Install | CutPoint::AfterInstall => {
                    self.cut_point_after_fetch(&img, mark, point, &spec, &mut rng).await
                }
            };
            let at = match at {
                Ok(a) => a,
                Err(e) => {
                    self.updates()?.hold(None);
                    self.updates()?.withdraw();
                    return Err(e);
                }
            };
            self.rig.state.lost();
            let off = self.rig.power(Action::Off).await;
            self.updates()?.hold(None);
            off.map_err(|e| Stop::Error(format!("power off failed: {e}")))?;
            self.updates()?.withdraw();
            self.rig
                .power(Action::On)
                .await
                .map_err(|e| Stop::Error(format!("power on failed: {e}")))?;
            let after = self.version_after_boot().await;
            let cut_words = format!("cut {} of {cuts} ({point:?}, {at}; seed {seed})", i + 1);
            record.push(Cut {
                cut: i + 1,
                point,
                at,
                version_after: after.as_ref().ok().cloned(),
            });
            let lines: Vec<String> = record.iter().filter_map(|r| serde_json::to_string(r).ok()).collect();
            self.keep_evidence("power-cuts.jsonl", lines.join("\n") + "\n");
            match after {
                Ok(v) if v == baseline || v == img.version => {}
                Ok(v) => {
                    return Err(Stop::Fail {
                        check: Some("UPD-08".into()),
                        reason: format!(
                            "UPD-08: after power {cut_words} the device runs {v:?}, neither the old {baseline} nor the new {}",
                            img.version
                        ),
                    });
                }
                Err(why) => {
                    return Err(Stop::Fail {
                        check: Some("UPD-08".into()),
                        reason: format!(
                            "UPD-08: after power {cut_words} the device does not boot to a working console: {why}"
                        ),
                    });
                }
            }
        }
        let old = record
            .iter()
            .filter(|r| r.version_after.as_deref() == Some(baseline.as_str()))
            .count();
        Ok(format!(
            "{cuts} power cuts (seed {seed}): the device booted every time, {old} time(s) on the old version {baseline}, {} on the new {}",
            record.len() - old,
            img.version
        ))
    }
}
