//! PRV-04 (6-4): personal data reaches only the destinations declared to receive it. After
//! `plant`, what the device sends is read where the bench can read it — the PUBLISH
//! payloads on the bench's broker (which ends the device's TLS: the bench plays its cloud)
//! and the HTTP requests the bench's catch-all answered, in clear or after the device
//! accepted the bench's certificate — and each planted value is searched for in it, in
//! every encoding the wire search knows. A value found at a host that no declared
//! destination covers, or one not declared to receive that item, fails, naming the item,
//! the host and the message. Ciphertext the bench cannot read is counted, never judged.
//! Nothing readable at all: undecided. Where the maker declares a destination receives a
//! planted item, that receipt is the positive control (the search sees the device's data):
//! not seen, undecided. Where consent is declared, the owner's consent is given for the
//! window (every declared flow may run) and withdrawn after it.

use serde::Serialize;

use super::prelude::*;
use crate::config::scenario::{TlsSetting, Untrusted};
use crate::gateway::canary::{Canary, Encoding, forms};
use crate::model::privacy::Destination;

/// One message the bench could read: to whom, how it was seen, its bytes.
#[derive(Debug)]
pub(super) struct Readable {
    pub(super) host: String,
    pub(super) via: String,
    pub(super) bytes: Vec<u8>,
}

/// A planted value found in a readable message.
#[derive(Debug, Clone, Serialize, PartialEq)]
struct Finding {
    item: String,
    host: String,
    /// The first message that carried it, and how many did.
    via: String,
    messages: usize,
    encoding: Encoding,
    /// A declared destination covers the host and receives the item.
    declared: bool,
}

/// The encoding in which `value` appears in `hay`, if it does (text forms case-insensitively,
/// base64 exactly, as the wire search matches).
pub(super) fn found_in(hay: &[u8], value: &str) -> Option<Encoding> {
    let (text, exact) = forms(value);
    let lower = hay.to_ascii_lowercase();
    let has = |h: &[u8], n: &[u8]| !n.is_empty() && h.windows(n.len()).any(|w| w == n);
    text.into_iter()
        .find(|(_, b)| has(&lower, &b.to_ascii_lowercase()))
        .or_else(|| exact.into_iter().find(|(_, b)| has(hay, b)))
        .map(|(e, _)| e)
}

/// A host as a destination names it: an HTTP Host header's port and an IPv6 address's
/// brackets dropped, lower case.
fn host_only(h: &str) -> String {
    let h = h.trim();
    let h = match h.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match h.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => h,
        },
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// Every planted value in every readable message, judged against the declarations.
fn findings(readable: &[Readable], planted: &[Canary], destinations: &[Destination]) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for r in readable {
        for c in planted {
            let Some(encoding) = found_in(&r.bytes, &c.value) else {
                continue;
            };
            let declared = destinations
                .iter()
                .any(|d| d.covers(&r.host) && d.receives.contains(&c.name));
            match out.iter_mut().find(|f| f.item == c.name && f.host == r.host) {
                Some(f) => f.messages += 1,
                None => out.push(Finding {
                    item: c.name.clone(),
                    host: r.host.clone(),
                    via: r.via.clone(),
                    messages: 1,
                    encoding,
                    declared,
                }),
            }
        }
    }
    out
}

/// `recipients.json`: what was readable and what was found (names, never values).
/// Each finding that reached a host not declared to receive it, in words.
fn undeclared(found: &[Finding], destinations: &[Destination]) -> Vec<String> {
    found
        .iter()
        .filter(|f| !f.declared)
        .map(|f| {
            format!(
                "{} reached {}, {}, in {} message(s) (the first: {}, {})",
                f.item,
                f.host,
                if destinations.iter().any(|d| d.covers(&f.host)) {
                    "declared, but not to receive it"
                } else {
                    "a host the maker does not declare"
                },
                f.messages,
                f.via,
                <&str>::from(f.encoding)
            )
        })
        .collect()
}

/// What the bench read and could not, for every verdict's message.
fn scope_words(
    readable: &[Readable],
    broker: Option<String>,
    consented: Option<&str>,
    unreadable_count: usize,
    unreadable_hosts: &[String],
    not_kept: u64,
) -> String {
    let bytes: usize = readable.iter().map(|r| r.bytes.len()).sum();
    format!(
        "{} readable messages ({bytes} bytes) since the values were planted{}{}{}{}",
        readable.len(),
        broker.map(|b| format!("; {b}")).unwrap_or_default(),
        match consented {
            Some(how) => format!(", with the owner's consent given ({how}) for the window"),
            None => String::new(),
        },
        if unreadable_hosts.is_empty() {
            String::new()
        } else {
            format!(
                "; {unreadable_count} TLS connection(s) the bench could not read, to {} (destinations and volumes only)",
                unreadable_hosts.join(", ")
            )
        },
        if not_kept > 0 {
            format!("; {not_kept} payloads past the bench's memory bound not searched")
        } else {
            String::new()
        }
    )
}

#[derive(Debug, Serialize)]
struct Evidence<'a> {
    readable: Vec<(&'a str, &'a str, usize)>,
    findings: &'a [Finding],
    unreadable_tls: &'a [String],
    payloads_not_kept: u64,
}

impl Run<'_> {
    /// `recipients`: after `observe` from the planting, the readable messages searched.
    pub(in crate::engine) async fn recipients(&mut self, observe: Duration) -> StepResult {
        let planted = self.rig.planted.clone();
        let Some(since) = self.rig.planted_at.map(|p| p.0).filter(|_| !planted.is_empty()) else {
            return Err(Stop::Error(
                "nothing was planted (no `personal_data` declared, or no `plant` step before): no value whose recipients could be seen".into(),
            ));
        };
        let destinations = self.rig.device.destinations.clone().unwrap_or_default();
        // the bench's broker presents the valid certificate (where the device trusts a CA the
        // bench issues from), so the device's next sessions to its cloud are readable; a
        // device that trusts none is read only where else the bench can
        let broker = if self.rig.net.is_some() {
            match self.bench_phase(&true, &TlsSetting::Valid, &Untrusted::NotApplicable) {
                Ok(said) => Some(said),
                Err(Stop::Skip(why)) => Some(format!("the broker's messages are not read: {why}")),
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        // with the owner's consent every declared flow may run: the window sees them all
        let consented = match self.rig.device.consent.clone() {
            Some(c) => {
                self.ensure_shell().await?;
                Some((self.consent_action(&c.give, "given").await?, c.withdraw))
            }
            None => None,
        };
        // the window runs from the planting, or from the consent when it was given
        let waited = if consented.is_some() {
            Duration::ZERO
        } else {
            since.elapsed()
        };
        tokio::time::sleep(observe.saturating_sub(waited)).await;
        if let Some((_, withdraw)) = &consented {
            self.consent_action(withdraw, "withdrawn").await?;
        }
        let (readable, unreadable, not_kept) = self.readable_since(since);
        let found = findings(&readable, &planted, &destinations);
        let unreadable_count = unreadable.len();
        let mut unreadable_hosts: Vec<String> = unreadable;
        unreadable_hosts.sort();
        unreadable_hosts.dedup();
        self.keep_evidence(
            "recipients.json",
            serde_json::to_string_pretty(&Evidence {
                readable: readable
                    .iter()
                    .map(|r| (r.host.as_str(), r.via.as_str(), r.bytes.len()))
                    .collect(),
                findings: &found,
                unreadable_tls: &unreadable_hosts,
                payloads_not_kept: not_kept,
            })
            .unwrap_or_default(),
        );
        let scope = scope_words(
            &readable,
            broker,
            consented.as_ref().map(|c| c.0.as_str()),
            unreadable_count,
            &unreadable_hosts,
            not_kept,
        );
        let bad = undeclared(&found, &destinations);
        if !bad.is_empty() {
            return Err(Stop::Fail {
                check: Some("PRV-04".into()),
                reason: format!(
                    "PRV-04 (6-4): personal data went where the maker does not say it goes: {} ({scope})",
                    bad.join("; ")
                ),
            });
        }
        if readable.is_empty() {
            return Err(Stop::Error(format!(
                "not decided: nothing the device sent within {observe:?} of the planting was readable by the bench ({scope}), so where its data goes cannot be seen"
            )));
        }
        let expected: Vec<String> = destinations
            .iter()
            .flat_map(|d| {
                d.receives
                    .iter()
                    .filter(|r| planted.iter().any(|p| &&p.name == r))
                    .map(|r| format!("{r} to {}", d.host))
            })
            .collect();
        let allowed: Vec<String> = found
            .iter()
            .map(|f| {
                format!(
                    "{} to {} in {} message(s) (the first: {})",
                    f.item, f.host, f.messages, f.via
                )
            })
            .collect();
        if !expected.is_empty() && allowed.is_empty() {
            return Err(Stop::Error(format!(
                "not decided: no planted value was found in what the bench read, not even where the maker says it goes ({}); the search may not see the device's data ({scope})",
                expected.join(", ")
            )));
        }
        Ok(if allowed.is_empty() {
            format!(
                "no destination is declared to receive personal data and none of {} was found in what the device sent: {scope}",
                planted.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            )
        } else {
            format!(
                "personal data reached only its declared recipients: {} ({scope})",
                allowed.join("; ")
            )
        })
    }

    /// The device's readable messages since `since` (the broker's payloads, the catch-all's
    /// HTTP requests), the hosts of TLS connections the bench could not read, and how many
    /// payloads were past the memory bound.
    pub(super) fn readable_since(&self, since: Instant) -> (Vec<Readable>, Vec<String>, u64) {
        let mut readable = Vec::new();
        let mut not_kept = 0;
        if let Some(net) = &self.rig.net {
            let declared_host = self.rig.device.mqtt.as_ref().map(|m| m.host.clone());
            let (payloads, dropped) = net.log.payloads_since(since);
            not_kept = dropped;
            for p in payloads {
                let Some(host) = p.sni.clone().or_else(|| declared_host.clone()) else {
                    continue;
                };
                readable.push(Readable {
                    host: host_only(&host),
                    via: format!(
                        "MQTT PUBLISH on {:?} to the bench's broker, session #{}",
                        p.topic, p.session
                    ),
                    bytes: p.bytes,
                });
            }
        }
        let mut unreadable = Vec::new();
        if let Some(icpt) = &self.rig.gateway.intercept {
            for r in icpt.records().0 {
                if r.accepted.is_none_or(|a| a < since) {
                    continue;
                }
                let host = host_only(r.host.as_deref().unwrap_or(&r.to));
                if r.data.is_empty() {
                    if r.kind == crate::gateway::intercept::Kind::Tls {
                        unreadable.push(host);
                    }
                    continue;
                }
                let how = if r.kind == crate::gateway::intercept::Kind::Tls {
                    "after the device accepted the bench's certificate"
                } else {
                    "in clear"
                };
                let line =
                    String::from_utf8_lossy(r.data.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default());
                readable.push(Readable {
                    host,
                    via: format!("{} to {}, {how}", crate::remote::target::printable(&line, 120), r.to),
                    bytes: r.data,
                });
            }
        }
        (readable, unreadable, not_kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::personal::Class;
    use crate::model::privacy::Purpose;

    fn dest(host: &str, receives: &[&str]) -> Destination {
        Destination {
            host: host.into(),
            purpose: Purpose::Telemetry,
            consent: false,
            receives: receives.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn hosts_are_named_without_ports() {
        assert_eq!(host_only("Stats.Example.com:8080"), "stats.example.com");
        assert_eq!(host_only("stats.example.com."), "stats.example.com");
        assert_eq!(host_only("192.0.2.10:80"), "192.0.2.10");
        assert_eq!(host_only("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_only("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn a_value_is_declared_only_where_its_destination_receives_it() {
        let planted = [
            Canary {
                name: "owner_email".into(),
                class: Class::Personal,
                value: "x7q2@owner.example".into(),
            },
            Canary {
                name: "wifi_psk".into(),
                class: Class::Security,
                value: "Psk7GhQ2wZx9Lm4aBcD1".into(),
            },
        ];
        let msg = |host: &str, body: &str| Readable {
            host: host.into(),
            via: format!("to {host}"),
            bytes: body.as_bytes().to_vec(),
        };
        let readable = [
            msg("broker.acme.example", r#"{"owner":"X7Q2@owner.example"}"#),
            msg("stats.acme.example", "e=x7q2%40owner.example"),
            msg("ads.other.example", "cHNrN0doUTJ3Wng5TG00YUJjRDE="),
            msg("broker.acme.example", "nothing personal"),
        ];
        let destinations = [
            dest("broker.acme.example", &["owner_email"]),
            dest("stats.acme.example", &[]),
        ];
        let f = findings(&readable, &planted, &destinations);
        let got: Vec<(&str, &str, bool)> = f
            .iter()
            .map(|f| (f.item.as_str(), f.host.as_str(), f.declared))
            .collect();
        assert_eq!(
            got,
            vec![
                ("owner_email", "broker.acme.example", true),
                ("owner_email", "stats.acme.example", false),
            ]
        );
        assert_eq!(f[1].encoding, Encoding::Percent);
        // base64 of the PSK with a different case: exact forms only, so not this one...
        assert_eq!(found_in(b"cHNrN0doUTJ3Wng5TG00YUJjRDE=", "Psk7GhQ2wZx9Lm4aBcD1"), None);
        // ...but its own base64 is found
        assert_eq!(
            found_in(b"x UHNrN0doUTJ3Wng5TG00YUJjRDE= y", "Psk7GhQ2wZx9Lm4aBcD1"),
            Some(Encoding::Base64)
        );
    }
}
