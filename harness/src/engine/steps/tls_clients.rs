//! TLS-01..04 for every TLS client of the device (issue 25): the bench answers every
//! connection the device opens, and is the man in the middle of each TLS one
//! (`gateway::intercept::Mitm`): per destination, the valid identity first (the positive
//! control), then the four a man in the middle would present. A client is judged per
//! destination, on what it did with each identity: completing a handshake with a bad one is
//! a FAIL; refusing them all counts only beside an accepted valid one.

use std::collections::BTreeMap;

use serde::Serialize;

use super::prelude::*;
use crate::bench::sessions::TlsOutcome;
use crate::gateway::intercept::{Intercepted, Kind, Offer};
use crate::model::CertVariant;
use crate::report::events::{Part, Verdict};

/// One connection of a destination, for `tls-clients.json`.
#[derive(Debug, Serialize)]
struct Attempt {
    at_ms: u128,
    identity: Offer,
    outcome: Option<TlsOutcome>,
    application_bytes: u64,
}

/// What one destination's client did.
#[derive(Debug, Default, Serialize)]
struct Destination {
    attempts: Vec<Attempt>,
    verdict: String,
}

/// The destination of an intercepted TLS connection: the name the client asked for, else
/// the address it connected to.
fn destination(r: &Intercepted) -> String {
    r.host
        .clone()
        .unwrap_or_else(|| r.to.rsplit_once(':').map_or(r.to.clone(), |(ip, _)| ip.to_string()))
}

/// The TLS connections the bench met as a man in the middle, by destination.
fn by_destination(records: &[Intercepted]) -> BTreeMap<String, Destination> {
    let mut out: BTreeMap<String, Destination> = BTreeMap::new();
    for r in records.iter().filter(|r| r.kind == Kind::Tls && !r.open) {
        let Some(identity) = r.identity else { continue };
        out.entry(destination(r)).or_default().attempts.push(Attempt {
            at_ms: r.at_ms,
            identity,
            outcome: r.tls.clone(),
            application_bytes: r.app_bytes,
        });
    }
    out
}

fn accepted(a: &Attempt) -> bool {
    matches!(a.outcome, Some(TlsOutcome::Established(_)))
}

/// Refused: the client ended the handshake (an offer the bench could not take far enough
/// to tell is neither, nor is a handshake that only went slow).
fn refused(a: &Attempt) -> bool {
    !accepted(a) && !matches!(a.outcome, Some(TlsOutcome::Undecided(_) | TlsOutcome::Stalled) | None)
}

const VALID: Offer = Offer::Cert(CertVariant::Valid);

/// How one destination came out.
enum Judged {
    Pass(String),
    Fail(String, &'static str),
    Undecided(String),
}

fn judge(name: &str, d: &Destination, identities: &[Offer]) -> Judged {
    let bad: Vec<&Attempt> = d
        .attempts
        .iter()
        .filter(|a| a.identity != VALID && accepted(a))
        .collect();
    if let Some(first) = bad.first() {
        let what: Vec<String> = bad
            .iter()
            .map(|a| {
                format!(
                    "{} ({}; {} bytes of application data followed)",
                    a.identity.describe(),
                    a.identity.check().unwrap_or("TLS"),
                    a.application_bytes
                )
            })
            .collect();
        return Judged::Fail(
            format!("{name}: the client completed a handshake with {}", what.join(", ")),
            first.identity.check().unwrap_or("TLS-01"),
        );
    }
    let tried = |v: Offer| d.attempts.iter().any(|a| a.identity == v);
    // an offer is decided once the client refused it (or, the valid one, took it)
    let decided = |v: Offer| {
        d.attempts
            .iter()
            .any(|a| a.identity == v && (refused(a) || accepted(a)))
    };
    let untried: Vec<&str> = identities
        .iter()
        .filter(|v| !decided(**v))
        .map(|v| v.as_str())
        .collect();
    if !identities.contains(&VALID) {
        return Judged::Undecided(format!(
            "{name}: the bench holds no CA this device trusts, so no valid certificate could be offered — its refusals of the others prove nothing (provision the bench CA: network.mqtt.trust)"
        ));
    }
    if !d.attempts.iter().any(|a| a.identity == VALID && accepted(a)) {
        return Judged::Undecided(if tried(VALID) {
            format!(
                "{name}: the client refused even the valid certificate from the bench CA (it trusts another CA: pinned, or the public web PKI), so its refusals of the others prove nothing"
            )
        } else {
            format!("{name}: the valid certificate was never offered")
        });
    }
    if !untried.is_empty() {
        return Judged::Undecided(format!(
            "{name}: not every offer was made and answered before the window ended (undecided: {})",
            untried.join(", ")
        ));
    }
    let refused: Vec<String> = d
        .attempts
        .iter()
        .filter(|a| a.identity != VALID)
        .map(|a| format!("{}: {:?}", a.identity.as_str(), a.outcome))
        .collect();
    Judged::Pass(format!(
        "{name}: the valid certificate was accepted, every other refused ({})",
        refused.join(", ")
    ))
}

/// Each identity offered to one destination as a part of its own
/// (`<identity>@<destination>`): the valid one PASSes when the client took it (the positive
/// control); a bad one FAILs its check when the client completed a handshake with it, PASSes
/// when the client refused it beside a taken valid one, and is ERROR otherwise (no positive
/// control, or never offered and answered before the window ended).
fn parts(name: &str, d: &Destination, identities: &[Offer]) -> Vec<Part> {
    let control = d.attempts.iter().any(|a| a.identity == VALID && accepted(a));
    identities
        .iter()
        .map(|&v| {
            let mine: Vec<&Attempt> = d.attempts.iter().filter(|a| a.identity == v).collect();
            let taken = mine.iter().find(|a| accepted(a));
            let refusal = mine.iter().find(|a| refused(a));
            let (verdict, reason) = match (v == VALID, taken, refusal) {
                (true, Some(a), _) => (
                    Verdict::Pass,
                    format!(
                        "the positive control: the client took the valid certificate from the bench CA ({} bytes of application data followed)",
                        a.application_bytes
                    ),
                ),
                (true, None, Some(a)) => (
                    Verdict::Error,
                    format!(
                        "the client refused even the valid certificate ({:?}): it trusts another CA, so its refusals prove nothing",
                        a.outcome
                    ),
                ),
                (false, Some(a), _) => (
                    Verdict::Fail,
                    format!(
                        "the client completed a handshake with {} and {} bytes of application data followed",
                        v.describe(),
                        a.application_bytes
                    ),
                ),
                (false, None, Some(a)) if control => (
                    Verdict::Pass,
                    format!(
                        "the client refused {} ({:?}) and took the valid certificate",
                        v.describe(),
                        a.outcome
                    ),
                ),
                (false, None, Some(_)) => (
                    Verdict::Error,
                    format!(
                        "the client refused {}, but took no valid certificate in the run (no positive control)",
                        v.describe()
                    ),
                ),
                (_, None, None) if mine.is_empty() => (
                    Verdict::Error,
                    "never offered: the client made no connection for it before the window ended".into(),
                ),
                (_, None, None) => (
                    Verdict::Error,
                    format!(
                        "offered, but the client neither took nor refused it ({:?})",
                        mine.last().and_then(|a| a.outcome.clone())
                    ),
                ),
            };
            Part {
                name: format!("{}@{name}", v.as_str()),
                verdict,
                check: v.check().map(str::to_string),
                reason: format!("{name}: {reason}"),
            }
        })
        .collect()
}

impl Run<'_> {
    /// `tls_clients`: waits until every destination the device talks TLS to has met every
    /// identity (or `within` passes), then judges each.
    pub(super) async fn tls_clients(&mut self, within: Duration) -> StepResult {
        let Some(icpt) = &self.rig.gateway.intercept else {
            return Err(Stop::Error(format!(
                "the bench does not answer this device's connections ({}), so its TLS clients meet no man in the middle",
                self.rig.gateway.error.clone().unwrap_or_else(|| {
                    "interception needs a namespace device and nftables: see the run's notes".into()
                })
            )));
        };
        let identities = icpt.mitm_identities();
        let deadline = Instant::now() + within;
        // a destination is decided when every identity met its client; a client that offered
        // only TLS 1.0 three times running meets only the old offer, and is decided on it
        let done = |all: &BTreeMap<String, Destination>| {
            !all.is_empty()
                && all.values().all(|d| {
                    (d.attempts.len() >= 3
                        && d.attempts
                            .iter()
                            .all(|a| a.identity == Offer::OldTls && a.outcome.is_some()))
                        || identities
                            .iter()
                            .all(|v| d.attempts.iter().any(|a| a.identity == *v && a.outcome.is_some()))
                })
        };
        let mut all = by_destination(&icpt.records().0);
        while !done(&all) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            all = by_destination(&icpt.records().0);
        }
        // TLS connections the bench could offer nothing: their clients were not tested
        let unmet: Vec<String> = icpt
            .records()
            .0
            .iter()
            .filter(|r| r.kind == Kind::Tls && !r.open && r.identity.is_none())
            .map(destination)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if all.is_empty() && unmet.is_empty() {
            return Err(Stop::Skip(format!(
                "the device opened no TLS connection within {within:?} other than to the bench's own servers (its MQTT broker and update server, judged by their own checks)"
            )));
        }
        let (mut passed, mut failed, mut undecided) = (Vec::new(), Vec::new(), Vec::new());
        let mut check = None;
        for (name, d) in &mut all {
            self.parts.extend(parts(name, d, &identities));
            let j = judge(name, d, &identities);
            d.verdict = match &j {
                Judged::Pass(w) | Judged::Undecided(w) => w.clone(),
                Judged::Fail(w, _) => w.clone(),
            };
            match j {
                Judged::Pass(w) => passed.push(w),
                Judged::Fail(w, c) => {
                    check.get_or_insert(c);
                    failed.push(w);
                }
                Judged::Undecided(w) => undecided.push(w),
            }
        }
        self.keep_evidence(
            "tls-clients.json",
            serde_json::to_string_pretty(&all).unwrap_or_default(),
        );
        if !failed.is_empty() {
            return Err(Stop::Fail {
                check: check.map(str::to_string),
                reason: format!(
                    "{}: a man in the middle is accepted — {}",
                    check.unwrap_or("TLS-01"),
                    failed.join("; ")
                ),
            });
        }
        self.parts.extend(unmet.iter().map(|name| Part {
            name: format!("unmet@{name}"),
            verdict: Verdict::Error,
            check: None,
            reason: format!(
                "{name}: the bench had no identity to offer this destination, so its client met no man in the middle"
            ),
        }));
        if !unmet.is_empty() {
            undecided.push(format!(
                "{} destination(s) met no man in the middle ({}{}: the bench had no identity to offer them)",
                unmet.len(),
                unmet.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if unmet.len() > 5 { ", …" } else { "" }
            ));
        }
        if !undecided.is_empty() {
            return Err(Stop::Error(format!("not decided: {}", undecided.join("; "))));
        }
        Ok(passed.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(identity: Offer, ok: bool) -> Attempt {
        Attempt {
            at_ms: 0,
            identity,
            outcome: Some(if ok {
                TlsOutcome::Established("TLSv1_3".into())
            } else {
                TlsOutcome::AlertReceived("BadCertificate".into())
            }),
            application_bytes: if ok { 120 } else { 0 },
        }
    }

    fn all() -> Vec<Offer> {
        std::iter::once(CertVariant::Valid)
            .chain(CertVariant::MITM)
            .map(Offer::Cert)
            .chain([Offer::OldTls])
            .collect()
    }

    #[test]
    fn a_destination_passes_only_beside_its_positive_control_and_fails_on_any_bad_identity() {
        let good = Destination {
            attempts: all().into_iter().map(|v| attempt(v, v == VALID)).collect(),
            verdict: String::new(),
        };
        assert!(matches!(judge("t.test", &good, &all()), Judged::Pass(_)));
        // accepts anything: fails on the first bad identity, naming each
        let lax = Destination {
            attempts: all().into_iter().map(|v| attempt(v, true)).collect(),
            verdict: String::new(),
        };
        match judge("t.test", &lax, &all()) {
            Judged::Fail(w, c) => {
                assert_eq!(c, "TLS-01");
                assert!(w.contains("(TLS-04;") && w.contains("120 bytes"), "{w}");
            }
            _ => panic!("a client that accepts anything fails"),
        }
        // refuses everything, the valid one too: no positive control
        let pinned = Destination {
            attempts: all().into_iter().map(|v| attempt(v, false)).collect(),
            verdict: String::new(),
        };
        assert!(
            matches!(judge("t.test", &pinned, &all()), Judged::Undecided(w) if w.contains("refused even the valid"))
        );
        // the bench holds no trusted CA: two identities only, never a pass
        let two = [
            Offer::Cert(CertVariant::SelfSigned),
            Offer::Cert(CertVariant::UntrustedCa),
        ];
        let some = Destination {
            attempts: two.iter().map(|v| attempt(*v, false)).collect(),
            verdict: String::new(),
        };
        assert!(matches!(judge("t.test", &some, &two), Judged::Undecided(_)));
        // a window that ended before every identity was offered
        let short = Destination {
            attempts: vec![
                attempt(VALID, true),
                attempt(Offer::Cert(CertVariant::SelfSigned), false),
            ],
            verdict: String::new(),
        };
        assert!(matches!(judge("t.test", &short, &all()), Judged::Undecided(w) if w.contains("undecided: wrong_host")));
        // a client that only went slow on the bad identities refused nothing
        let slow = Destination {
            attempts: all()
                .into_iter()
                .map(|v| {
                    let mut a = attempt(v, v == VALID);
                    if v != VALID {
                        a.outcome = Some(TlsOutcome::Stalled);
                    }
                    a
                })
                .collect(),
            verdict: String::new(),
        };
        assert!(matches!(judge("t.test", &slow, &all()), Judged::Undecided(_)));
        // an old client that goes on with TLS 1.0: TLS-05
        let old = Destination {
            attempts: all()
                .into_iter()
                .map(|v| attempt(v, v == VALID || v == Offer::OldTls))
                .collect(),
            verdict: String::new(),
        };
        assert!(matches!(judge("t.test", &old, &all()), Judged::Fail(w, "TLS-05") if w.contains("only TLS 1.0")));
    }

    /// The parts say per identity what the destination's verdict says as a whole: a FAIL
    /// part exactly when the destination fails (on that identity's check), all PASS exactly
    /// when it passes.
    #[test]
    fn each_identity_of_a_destination_is_a_part_agreeing_with_the_destination() {
        let worst = |ps: &[Part]| {
            if ps.iter().any(|p| p.verdict == Verdict::Fail) {
                Verdict::Fail
            } else if ps.iter().any(|p| p.verdict == Verdict::Error) {
                Verdict::Error
            } else {
                Verdict::Pass
            }
        };
        let good = Destination {
            attempts: all().into_iter().map(|v| attempt(v, v == VALID)).collect(),
            verdict: String::new(),
        };
        let ps = parts("t.test", &good, &all());
        assert_eq!(ps.len(), all().len());
        assert_eq!(ps[0].name, "valid@t.test");
        assert!(ps.iter().all(|p| p.verdict == Verdict::Pass), "{ps:?}");
        assert_eq!(ps[1].check.as_deref(), Some("TLS-01"));
        // TLS 1.0 only: the one part that fails is TLS-05's
        let old = Destination {
            attempts: all()
                .into_iter()
                .map(|v| attempt(v, v == VALID || v == Offer::OldTls))
                .collect(),
            verdict: String::new(),
        };
        let ps = parts("t.test", &old, &all());
        let failed: Vec<&str> = ps
            .iter()
            .filter(|p| p.verdict == Verdict::Fail)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(failed, ["old_tls@t.test"]);
        assert!(matches!(judge("t.test", &old, &all()), Judged::Fail(..)));
        // refuses everything: no part passes on a refusal without the positive control
        let pinned = Destination {
            attempts: all().into_iter().map(|v| attempt(v, false)).collect(),
            verdict: String::new(),
        };
        let ps = parts("t.test", &pinned, &all());
        assert!(ps.iter().all(|p| p.verdict == Verdict::Error), "{ps:?}");
        assert!(ps[1].reason.contains("no positive control"), "{}", ps[1].reason);
        // a window that ended early: the identities never offered are ERROR, named so
        let short = Destination {
            attempts: vec![
                attempt(VALID, true),
                attempt(Offer::Cert(CertVariant::SelfSigned), false),
            ],
            verdict: String::new(),
        };
        let ps = parts("t.test", &short, &all());
        assert_eq!(worst(&ps), Verdict::Error);
        assert_eq!(ps[1].verdict, Verdict::Pass);
        assert!(ps[2].reason.contains("never offered"), "{}", ps[2].reason);
        for (d, want) in [
            (&good, Verdict::Pass),
            (&old, Verdict::Fail),
            (&pinned, Verdict::Error),
            (&short, Verdict::Error),
        ] {
            let j = match judge("t.test", d, &all()) {
                Judged::Pass(_) => Verdict::Pass,
                Judged::Fail(..) => Verdict::Fail,
                Judged::Undecided(_) => Verdict::Error,
            };
            assert_eq!((j, worst(&parts("t.test", d, &all()))), (want, want));
        }
    }
}
