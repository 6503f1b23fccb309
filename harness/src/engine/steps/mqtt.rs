//! The MQTT bench steps: set the bench's phase, wait for the device's session, watch that
//! no forbidden session happens, and probe the device's own broker.

use super::prelude::*;

impl Run<'_> {
    pub(super) fn bench_phase(&mut self, plain: &bool, tls: &TlsSetting, without_trusted_ca: &Untrusted) -> StepResult {
        if *tls == TlsSetting::Rotate {
            return self.bench_rotation(*plain, *without_trusted_ca);
        }
        let net = self.rig.net.as_mut().ok_or_else(no_bench)?;
        let old = *tls == TlsSetting::OldVersion;
        let configured = if old {
            net.configure_old_tls(*plain)?
        } else {
            net.configure(*plain, tls.variant())?
        };
        let what = if old {
            "only TLS 1.0".to_string()
        } else {
            tls.variant()
                .map(|v| v.describe().to_string())
                .unwrap_or_else(|| "it".into())
        };
        match configured {
            Some(phase) => Ok(format!(
                "bench phase {phase}: plaintext MQTT {}, TLS MQTT {}",
                if *plain { "on" } else { "off" },
                if old {
                    "offers only TLS 1.0 (then the valid certificate)".to_string()
                } else {
                    tls.variant()
                        .map(|v| format!("presents {}", v.describe()))
                        .unwrap_or_else(|| "blocked".into())
                }
            )),
            None if *without_trusted_ca == crate::config::scenario::Untrusted::End => Err(Stop::End(format!(
                "the scenario ends here: the bench cannot present {what} because the device trusts no CA the bench can issue from (network.mqtt.trust), so the later phases were not run; the verdict rests on the steps above"
            ))),
            None => Err(Stop::Skip(format!(
                "the bench cannot present {what}: the device trusts no CA the bench can issue from (declare network.mqtt.trust: bench_ca or maker_ca)"
            ))),
        }
    }

    pub(super) async fn wait_session(
        &mut self,
        listener: &ListenerName,
        reach: &Reach,
        within: &Duration,
        otherwise: &Ruling,
    ) -> StepResult {
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
                if *listener == ListenerName::MqttTls
                    && let Some(skip) = no_tls_at_all(&all, phase, within)
                {
                    return Err(skip);
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

    /// TLS-01..04 in one boot: the TLS listener presents the next man-in-the-middle identity
    /// on each new connection. A rotation already running is kept; if the device was powered
    /// on under it, the next `cycle_unless_fresh` may reuse that boot.
    fn bench_rotation(&mut self, plain: bool, without_trusted_ca: Untrusted) -> StepResult {
        let net = self.rig.net.as_mut().ok_or_else(no_bench)?;
        let Some((phase, kept)) = net.configure_rotation(plain)? else {
            let why = "the bench cannot present the man-in-the-middle identities beside a positive control: the device trusts no CA the bench can issue from";
            return Err(if without_trusted_ca == Untrusted::End {
                Stop::End(format!(
                    "the scenario ends here: {why}, so the later phases were not run; the verdict rests on the steps above"
                ))
            } else {
                Stop::Skip(format!("{why} (declare network.mqtt.trust: bench_ca or maker_ca)"))
            });
        };
        let names: Vec<&str> = net
            .rotation()
            .map(|r| r.variants().into_iter().map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let names = names.join(", ");
        if !kept {
            return Ok(format!(
                "bench phase {phase}: plaintext MQTT {}, TLS MQTT presents the next of {names} on each new connection",
                if plain { "on" } else { "off" }
            ));
        }
        if let Some((t, by)) = self.rig.state.booted_in(phase) {
            let how = format!("{by} powered the device on under this identity rotation (bench phase {phase})");
            self.rig.state.fresh_since(t, how);
        }
        Ok(format!(
            "bench phase {phase} kept: TLS MQTT goes on presenting the next of {names} on each new connection"
        ))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn no_session(
        &mut self,
        listener: &ListenerName,
        reach: &Reach,
        window: &Duration,
        on_match: &Ruling,
        require_attempts: &Option<(ListenerName, u32)>,
        until: &Option<(u32, Duration)>,
        identity: &Option<Template>,
    ) -> StepResult {
        use crate::bench::sessions::Session;
        // the attempts the check needs on `listener` (for a rotation: of its identity)
        let required = require_attempts.filter(|(l, _)| l == listener).map_or(1, |(_, n)| n);
        let (ident, until, full_why) = self.rotation_identity(identity, required, *until)?;
        let served = |s: &Session| ident.is_none_or(|v| s.identity == Some(v));
        let mut boots = 0u32;
        loop {
            let net = self.net()?;
            // a rotation's window counts from the rotation's start (or the fallback boot)
            let t0 = if ident.is_some() && boots == 0 {
                net.phase_started()
            } else {
                Instant::now()
            };
            let phase = net.phase();
            let dropped_before = net.log.dropped().0;
            let hit = |s: &Session| s.phase == phase && s.listener == *listener && served(s) && reached(s, *reach);
            // an attempt the device made and that ended without reaching `reach`
            let refused = |s: &Session| {
                s.phase == phase && s.listener == *listener && served(s) && s.closed.is_some() && !reached(s, *reach)
            };
            let on = format!("the {listener}{}", presented_as(ident, " presented ", ""));
            let (watched, early) = watch(&net.log, (t0, *window), until, &hit, &refused, on).await;
            let all = match watched {
                Ok(id) => {
                    // let the session go on a moment, so the evidence says how far it got
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    let s = net.log.snapshot().into_iter().find(|x| x.id == id);
                    // a rotation's finding is its identity's check
                    let mut outcome = on_match.clone();
                    if outcome.check.is_none() {
                        outcome.check = ident.and_then(|v| v.check()).and_then(crate::model::CheckId::parse);
                    }
                    return Err(judge(&outcome, &s.map(|s| s.describe()).unwrap_or_default()));
                }
                Err(all) => all,
            };
            let attempts = |l| {
                all.iter()
                    .filter(|s| s.phase == phase && s.listener == l && served(s))
                    .count()
            };
            let too_few = (attempts(*listener) as u32) < required;
            if too_few
                && *listener == ListenerName::MqttTls
                && let Some(skip) = no_tls_at_all(&all, phase, window)
            {
                return Err(skip);
            }
            if ident.is_some() && too_few && boots < required {
                // the device stopped trying with this identity (it holds a session, or tries
                // once per boot): a fresh boot; the rotation presents the wanted identity first
                boots += 1;
                self.power_step(&PowerAction::Cycle, None).await?;
                continue;
            }
            let in_phase: Vec<_> = all.iter().filter(|s| s.phase == phase).cloned().collect();
            // a connection the bench turned away for capacity might have gone on
            // to CONNECT: "nothing got through" would be the bench's doing
            if let Some(why) = capacity_refusals(&in_phase, dropped_before, net.log.dropped().0) {
                return Err(Stop::Error(format!(
                    "not decided: {why}, so \"nothing reached {reach:?}\" would not be the device's doing"
                )));
            }
            let watched_sessions: Vec<_> = in_phase.iter().filter(|s| served(s)).cloned().collect();
            // a session the bench could not take far enough decides nothing
            if let Some(s) = watched_sessions
                .iter()
                .find(|s| matches!(s.tls, Some(crate::bench::sessions::TlsOutcome::Undecided(_))))
            {
                return Err(Stop::Error(s.describe()));
            }
            let presented = presented_as(ident, " (connections presented ", ")");
            let after_boots = if boots > 0 {
                format!(" (after {boots} more boot(s): the device had stopped trying)")
            } else {
                String::new()
            };
            if let Some((l, min)) = require_attempts
                && (attempts(*l) as u32) < *min
            {
                return Err(Stop::Error(format!(
                    "the device made {} connection attempt(s) to the {l}{presented} within {window:?}{after_boots} (at least {min} needed), so the test did not happen",
                    attempts(*l)
                )));
            }
            return Ok(format!(
                "nothing reached {reach:?} on the {listener}{presented} within {}{}{after_boots}; seen: {}; {}",
                early.unwrap_or_else(|| format!(
                    "{window:?}{}",
                    if ident.is_some() && boots == 0 {
                        " since the rotation began"
                    } else {
                        ""
                    }
                )),
                full_why.map(|w| format!(" ({w})")).unwrap_or_default(),
                summarize(&watched_sessions, "no connection"),
                net.log.attribution.describe()
            ));
        }
    }

    /// The identity a `no_session` step watches for (`identity:`): asked of the rotation,
    /// enough times; the rotation's last window is watched in full (why, in words).
    fn rotation_identity(
        &mut self,
        identity: &Option<Template>,
        required: u32,
        until: Option<(u32, Duration)>,
    ) -> Result<Watched, Stop> {
        use crate::model::CertVariant;
        let ident = match identity {
            None => None,
            Some(t) => {
                let name = self.render(t, Quote::Raw)?;
                let v = name
                    .parse::<CertVariant>()
                    .ok()
                    .filter(|v| *v != CertVariant::Valid)
                    .ok_or_else(|| Stop::Error(format!("unknown identity {name:?}")))?;
                Some(v)
            }
        };
        let mut until = until;
        let mut full_why = None;
        if let Some(v) = ident {
            let net = self.net()?;
            let r = net.rotation().ok_or_else(|| {
                Stop::Error(
                    "no_session.identity needs an identity rotation (`bench: { mqtt_tls: rotate }`) before it".into(),
                )
            })?;
            if !r.variants().contains(&v) {
                return Err(Stop::Skip(format!(
                    "the bench cannot present {}: the device trusts no CA the bench can issue from",
                    v.describe()
                )));
            }
            r.want(v, required.max(until.map_or(0, |(n, _)| n)));
            if r.last_window() == Some(v) && until.is_some() {
                // the rotation's last window: a device that stops validating after many
                // failures meets this identity there, so it is watched in full
                until = None;
                full_why = Some(format!("{} is the rotation's last window, watched in full", v.as_str()));
            }
        }
        Ok((ident, until, full_why))
    }

    pub(super) async fn mqtt_connect(
        &mut self,
        tls: &bool,
        expect: &ConnectOutcome,
        within: &Duration,
        otherwise: &Ruling,
    ) -> StepResult {
        use crate::bench::probe::{self, Probe};
        use crate::config::scenario::ConnectOutcome;
        let b = self
            .rig
            .device
            .broker
            .clone()
            .ok_or_else(|| Stop::Error("the device profile declares no MQTT broker".into()))?;
        let vars = &self.rig.command_vars;
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
}

/// A device that made plaintext MQTT attempts and no TLS attempt in a phase does not use TLS
/// at all: the TLS checks do not apply (whether speaking in clear is a finding is COM-02's).
fn no_tls_at_all(all: &[crate::bench::sessions::Session], phase: u64, within: &Duration) -> Option<Stop> {
    let count = |l: ListenerName| all.iter().filter(|s| s.phase == phase && s.listener == l).count();
    let (tls_tries, plain_tries) = (count(ListenerName::MqttTls), count(ListenerName::MqttPlain));
    (tls_tries == 0 && plain_tries > 0).then(|| {
        Stop::Skip(format!(
            "the device does not use TLS on its MQTT channel: within {within:?} it made {plain_tries} plaintext MQTT connection attempt(s) and no TLS attempt; see COM-02 (plaintext-mqtt-rejection)"
        ))
    })
}

/// The sessions of a phase in a few lines: how many, then the last three in full.
fn summarize(sessions: &[crate::bench::sessions::Session], none: &str) -> String {
    if sessions.is_empty() {
        return none.to_string();
    }
    let last: Vec<String> = sessions.iter().rev().take(3).rev().map(|s| s.describe()).collect();
    format!("{} session(s); last: {}", sessions.len(), last.join(" | "))
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
    use crate::bench::sessions::TlsOutcome;
    use crate::config::scenario::Reach;
    use crate::model::ListenerName;
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

/// Watches the session log for a forbidden session (`hit`) until the window's end; with
/// `until` (n, minimum) the window ends once n attempts were refused after the minimum.
/// The forbidden session's id, or every session seen; why the window ended early.
async fn watch(
    log: &crate::bench::sessions::SessionLog,
    (t0, window): (Instant, Duration),
    until: Option<(u32, Duration)>,
    hit: &impl Fn(&crate::bench::sessions::Session) -> bool,
    refused: &impl Fn(&crate::bench::sessions::Session) -> bool,
    on: String,
) -> (Result<u64, Vec<crate::bench::sessions::Session>>, Option<String>) {
    let deadline = t0 + window;
    // the minimum window: only a forbidden session ends it
    let min_end = until.map_or(deadline, |(_, min)| (t0 + min).min(deadline));
    let mut watched = log
        .wait_until(min_end, |all| all.iter().find(|s| hit(s)).map(|s| Some(s.id)))
        .await;
    if watched.is_err()
        && let Some((n, _)) = until
    {
        // then the window ends as soon as the evidence is complete
        watched = log
            .wait_until(deadline, |all| {
                if let Some(s) = all.iter().find(|s| hit(s)) {
                    return Some(Some(s.id));
                }
                (all.iter().filter(|s| refused(s)).count() >= n as usize).then_some(None)
            })
            .await;
    }
    match watched {
        Ok(Some(id)) => (Ok(id), None),
        Ok(None) if t0.elapsed() >= window => (Err(log.snapshot()), None),
        Ok(None) => {
            let all = log.snapshot();
            let n = all.iter().filter(|s| refused(s)).count();
            (
                Err(all),
                Some(format!(
                    "{:.1?} (the window of at most {window:?} ended early: the device's {n} attempt(s) on {on} were all refused, the evidence was complete)",
                    t0.elapsed()
                )),
            )
        }
        Err(all) => (Err(all), None),
    }
}

/// `{lead}{identity}{close}`, or nothing without an identity.
fn presented_as(ident: Option<crate::model::CertVariant>, lead: &str, close: &str) -> String {
    ident
        .map(|v| format!("{lead}{}{close}", v.describe()))
        .unwrap_or_default()
}

/// The identity a `no_session` step watches for, its window's early end (attempts, minimum),
/// and why the window is watched in full when it is.
type Watched = (
    Option<crate::model::CertVariant>,
    Option<(u32, Duration)>,
    Option<String>,
);
