//! PRV-02 and PRV-03 (6-2, 6-3): consent and its withdrawal, seen on the wire. Three
//! phases on one timeline, each watched for the same window: after setup without consent,
//! after the user gives it, after the user withdraws it (both typed at the shell as the
//! maker declares). In each, what the device sent to each declared destination: names it
//! looked up (the bench is its name server) and flows it opened, named by their TLS server
//! name or HTTP Host, with their bytes. A destination the maker says needs consent,
//! contacted before consent fails PRV-02, after withdrawal PRV-03. The phase with consent is
//! the positive control: if no consent-based destination is contacted then, the device's
//! silence before and after shows nothing, and the check is undecided.

use std::collections::BTreeMap;

use regex::bytes::Regex;
use serde::Serialize;

use super::prelude::*;
use crate::gateway::flows::{Flow, Side};
use crate::model::privacy::{ConsoleAction, Destination};

/// After the withdrawal is acknowledged, a moment for a request already under way.
const GRACE: Duration = Duration::from_secs(2);

/// Where a phase starts and ends: capture frame numbers and DNS log positions.
#[derive(Debug, Clone, Copy)]
struct Mark {
    frame: u64,
    query: usize,
}

/// What the device sent one destination in one phase.
#[derive(Debug, Default, Clone, Serialize)]
struct Volume {
    lookups: usize,
    flows: usize,
    bytes: u64,
    /// The first frame of the first flow (a Wireshark `frame.number`).
    first_frame: Option<u64>,
}

impl Volume {
    fn contacted(&self) -> bool {
        self.lookups > 0 || self.flows > 0
    }

    fn describe(&self) -> String {
        let frame = self.first_frame.map_or(String::new(), |f| format!(", first frame {f}"));
        format!(
            "{} lookups, {} flows, {} bytes{frame}",
            self.lookups, self.flows, self.bytes
        )
    }
}

#[derive(Debug, Serialize)]
struct Phase {
    name: &'static str,
    /// destination host → what it got
    destinations: BTreeMap<String, Volume>,
}

/// The server name a device-opened flow was meant for: TLS SNI or the HTTP Host header.
fn flow_name(f: &Flow) -> Option<String> {
    let (client, _) = f.client_server();
    if let Some(sni) = crate::tlswire::client_hello_sni(&client.head) {
        return Some(sni.to_ascii_lowercase());
    }
    let text = String::from_utf8_lossy(&client.head);
    text.split("\r\n").skip(1).take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("host").then(|| {
            let v = v.trim();
            v.rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map_or(v, |(h, _)| h)
                .to_ascii_lowercase()
        })
    })
}

/// The phases as a chart: bytes per declared destination per phase.
fn plot(declared: &[Destination], phases: &[Phase]) -> String {
    let names: Vec<&str> = phases.iter().map(|p| p.name).collect();
    let volumes: Vec<(String, Vec<crate::report::plot::PhaseVolume>)> = declared
        .iter()
        .map(|d| {
            let per: Vec<_> = phases
                .iter()
                .map(|p| {
                    p.destinations
                        .get(&d.host)
                        .map_or((0, 0, 0), |v| (v.bytes, v.flows, v.lookups))
                })
                .collect();
            (d.host.clone(), per)
        })
        .collect();
    crate::report::plot::consent_svg("consent phases", &names, &volumes)
}

/// The verdict on the three phases (before consent, with it, after withdrawal) for the
/// destinations that `needing` consent.
fn verdict(phases: &[Phase; 3], needing: &[String], window: Duration, withdrawn: &str) -> StepResult {
    let contacted = |p: &Phase| -> Vec<String> {
        needing
            .iter()
            .filter_map(|h| {
                let v = p.destinations.get(h)?;
                v.contacted().then(|| format!("{h} ({})", v.describe()))
            })
            .collect()
    };
    let (before, with, after) = (contacted(&phases[0]), contacted(&phases[1]), contacted(&phases[2]));
    let mut fails = Vec::new();
    if !before.is_empty() {
        fails.push(format!(
            "PRV-02 (6-2): before the user gave consent the device contacted {} in {window:?} after setup",
            before.join(", ")
        ));
    }
    if !after.is_empty() {
        fails.push(format!(
            "PRV-03 (6-3): after the user withdrew consent ({withdrawn}) the device still contacted {} in {window:?}",
            after.join(", ")
        ));
    }
    if !fails.is_empty() {
        let check = if before.is_empty() { "PRV-03" } else { "PRV-02" };
        return Err(Stop::Fail {
            check: Some(check.into()),
            reason: format!("{} (consent-phases.json)", fails.join("; ")),
        });
    }
    if with.is_empty() {
        return Err(Stop::Error(format!(
            "not decided: with consent given the device contacted none of {} in {window:?}, so its silence before consent and after withdrawal shows nothing (a longer window, or a device that sends when it has consent)",
            needing.join(", ")
        )));
    }
    let table: Vec<String> = phases
        .iter()
        .map(|p| {
            let cells: Vec<String> = p
                .destinations
                .iter()
                .map(|(h, v)| format!("{h}: {}", v.describe()))
                .collect();
            format!("{} — {}", p.name, cells.join("; "))
        })
        .collect();
    Ok(format!(
        "consent kept on the wire: {} contacted only with consent ({}), not before it was given nor after it was withdrawn, {window:?} each; {}",
        needing.join(", "),
        with.join(", "),
        table.join(" | ")
    ))
}

impl Run<'_> {
    fn mark(&self) -> Result<Mark, Stop> {
        let (Some(cap), Some(dns)) = (&self.rig.gateway.capture, &self.rig.gateway.dns) else {
            return Err(self.link_error());
        };
        let query = dns.log.lock().unwrap_or_else(|p| p.into_inner()).queries.len();
        Ok(Mark {
            frame: cap.snapshot().0.packets,
            query,
        })
    }

    /// What each declared destination got between two marks.
    fn tally(&self, declared: &[Destination], from: Mark, to: Mark) -> Result<BTreeMap<String, Volume>, Stop> {
        let (Some(cap), Some(dns)) = (&self.rig.gateway.capture, &self.rig.gateway.dns) else {
            return Err(self.link_error());
        };
        let mut out: BTreeMap<String, Volume> = declared.iter().map(|d| (d.host.clone(), Volume::default())).collect();
        let covering = |name: &str| declared.iter().find(|d| d.covers(name)).map(|d| d.host.clone());
        {
            let log = dns.log.lock().unwrap_or_else(|p| p.into_inner());
            let end = to.query.min(log.queries.len());
            for q in log.queries.get(from.query..end).unwrap_or_default() {
                if q.kind == "PTR" {
                    continue;
                }
                if let Some(v) = covering(&q.name).and_then(|h| out.get_mut(&h)) {
                    v.lookups += 1;
                }
            }
        }
        let (table, _) = cap.snapshot();
        for f in table.flows.iter().filter(|f| f.opened_by == Side::Device) {
            let Some(&first) = f.packets.first() else { continue };
            if first <= from.frame || first > to.frame {
                continue;
            }
            let Some(host) = flow_name(f).and_then(|n| covering(&n)) else {
                continue;
            };
            if let Some(v) = out.get_mut(&host) {
                v.flows += 1;
                v.bytes += f.payload();
                v.first_frame = Some(v.first_frame.map_or(first, |x| x.min(first)));
            }
        }
        Ok(out)
    }

    /// Types the user's consent action at the shell; ERROR unless the device took it.
    pub(super) async fn consent_action(&mut self, a: &ConsoleAction, what: &str) -> Result<String, Stop> {
        let out = self
            .shell_output(&a.console, Duration::from_secs(15), &format!("consent was not {what}"))
            .await?;
        let accepted = Regex::new(&a.accepted).map_err(|e| Stop::Error(e.to_string()))?;
        if !accepted.is_match(out.as_bytes()) {
            return Err(Stop::Error(format!(
                "consent could not be {what}: the device answered `{}` with {}, not what the profile declares",
                a.console,
                shown(&self.rig.redactor, out.trim())
            )));
        }
        Ok(format!("`{}`", a.console))
    }

    /// `consent`: three phases, then the verdict.
    pub(in crate::engine) async fn consent(&mut self, window: Duration) -> StepResult {
        let declared = self.rig.device.destinations.clone().unwrap_or_default();
        let needing: Vec<String> = declared.iter().filter(|d| d.consent).map(|d| d.host.clone()).collect();
        let Some(consent) = self.rig.device.consent.clone().filter(|_| !needing.is_empty()) else {
            return Err(Stop::Skip(
                "the maker declares no destination contacted only with the user's consent (privacy.destinations[].consent): 6-2 and 6-3 are not tested".into(),
            ));
        };
        if consent.default_on {
            return Err(Stop::Fail {
                check: Some("PRV-02".into()),
                reason: format!(
                    "PRV-02 (6-2): consent is on at the factory (privacy.consent.default: on): {} are contacted before the user gave it",
                    needing.join(", ")
                ),
            });
        }
        let setup = self.ensure_shell().await?;
        let a0 = self.mark()?;
        tokio::time::sleep(window).await;
        let a1 = self.mark()?;
        let given = self.consent_action(&consent.give, "given").await?;
        let b0 = self.mark()?;
        tokio::time::sleep(window).await;
        let b1 = self.mark()?;
        let withdrawn = self.consent_action(&consent.withdraw, "withdrawn").await?;
        tokio::time::sleep(GRACE).await;
        let c0 = self.mark()?;
        tokio::time::sleep(window).await;
        let c1 = self.mark()?;
        let phases = [
            Phase {
                name: "before consent",
                destinations: self.tally(&declared, a0, a1)?,
            },
            Phase {
                name: "with consent",
                destinations: self.tally(&declared, b0, b1)?,
            },
            Phase {
                name: "after withdrawal",
                destinations: self.tally(&declared, c0, c1)?,
            },
        ];
        self.keep_evidence(
            "consent-phases.json",
            serde_json::to_string_pretty(&serde_json::json!({
                "window_s": window.as_secs_f64(),
                "setup": setup,
                "given": given,
                "withdrawn": withdrawn,
                "grace_s": GRACE.as_secs_f64(),
                "phases": phases,
            }))
            .unwrap_or_default(),
        );
        self.keep_evidence("consent-phases.svg", plot(&declared, &phases));
        verdict(&phases, &needing, window, &withdrawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_say_what_was_seen() {
        let v = Volume {
            lookups: 2,
            flows: 1,
            bytes: 512,
            first_frame: Some(40),
        };
        assert!(v.contacted());
        assert_eq!(v.describe(), "2 lookups, 1 flows, 512 bytes, first frame 40");
        assert!(!Volume::default().contacted());
    }

    fn phases(before: Volume, with: Volume, after: Volume) -> [Phase; 3] {
        let one = |name, v: Volume| Phase {
            name,
            destinations: [("stats.example".to_string(), v)].into_iter().collect(),
        };
        [
            one("before consent", before),
            one("with consent", with),
            one("after withdrawal", after),
        ]
    }

    fn seen(flows: usize) -> Volume {
        Volume {
            lookups: 1,
            flows,
            bytes: 100 * flows as u64,
            first_frame: Some(7),
        }
    }

    /// Silence counts only beside the consented phase's flow; contact outside it fails
    /// whatever the rest shows.
    #[test]
    fn the_verdict_needs_the_consented_flow_to_pass() {
        let need = vec!["stats.example".to_string()];
        let w = Duration::from_secs(10);
        assert!(
            verdict(
                &phases(Volume::default(), seen(2), Volume::default()),
                &need,
                w,
                "`off`"
            )
            .is_ok()
        );
        match verdict(
            &phases(Volume::default(), Volume::default(), Volume::default()),
            &need,
            w,
            "`off`",
        ) {
            Err(Stop::Error(e)) => assert!(e.starts_with("not decided"), "{e}"),
            other => panic!("{other:?}"),
        }
        match verdict(&phases(seen(1), seen(2), Volume::default()), &need, w, "`off`") {
            Err(Stop::Fail { check, reason }) => {
                assert_eq!(check.as_deref(), Some("PRV-02"));
                assert!(
                    reason.contains("stats.example (1 lookups, 1 flows, 100 bytes, first frame 7)"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        // a flow after withdrawal fails even when none was seen with consent
        match verdict(
            &phases(Volume::default(), Volume::default(), seen(1)),
            &need,
            w,
            "`off`",
        ) {
            Err(Stop::Fail { check, reason }) => {
                assert_eq!(check.as_deref(), Some("PRV-03"));
                assert!(
                    reason.starts_with("PRV-03 (6-3): after the user withdrew consent (`off`)"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
