//! COM-03 for the device's TLS endpoints: each must answer a current client (the positive
//! control) and refuse SSL 3.0, TLS 1.0, TLS 1.1 and the NULL, EXPORT, RC4, 3DES and anonymous
//! cipher suites. The offers are hand-built ClientHellos (`tlswire`): only the
//! server's first answer is needed, no handshake is completed. Then the certificate each
//! presents to a current client is read and judged (`tlscert`): valid now, a strong key and
//! signature, and a key no other unit given by the lab holds.

use std::net::SocketAddr;

use super::prelude::*;
use crate::tlscert;
use crate::tlswire::{self, Answer, Hello, LEGACY, SSL3, TLS10, TLS11, TLS12, WEAK};

/// How long one offer may wait for its connection, and then for the answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One probe and what came back, for the evidence.
#[derive(Debug, serde::Serialize)]
struct Probe {
    endpoint: String,
    offered: String,
    answer: String,
    accepted: bool,
}

/// The certificate an endpoint presented, for the evidence (tls-certificates.json).
#[derive(Debug, serde::Serialize)]
struct Presented {
    endpoint: String,
    /// The evidence file with the certificate itself.
    file: Option<String>,
    judged: Option<tlscert::Judged>,
    /// Why it could not be read or judged.
    error: Option<String>,
}

fn words(a: &Result<Answer, String>) -> String {
    match a {
        Ok(Answer::Hello { version, suite }) => format!(
            "ServerHello: {} with {}",
            tlswire::version_name(*version),
            tlswire::suite_name(*suite)
        ),
        Ok(Answer::Alert(d)) => format!("alert {d}"),
        Ok(Answer::Closed) => "closed without answering".into(),
        Ok(Answer::NotTls) => "an answer that is not TLS".into(),
        Err(e) => format!("no answer: {e}"),
    }
}

impl Run<'_> {
    /// The device's TLS endpoints: declared services with `tls: true`, its broker's TLS port.
    async fn tls_endpoints(&self) -> Result<Vec<(String, SocketAddr)>, Stop> {
        let mut out = Vec::new();
        for s in self.rig.device.services.iter().filter(|s| s.tls) {
            let port = self.service_port(s)?;
            out.push((format!("{} ({}:{port})", s.name, s.host), SocketAddr::new(s.host, port)));
        }
        if let Some(b) = &self.rig.device.broker {
            let vars = &self.rig.command_vars;
            let host = b.host.render(vars, Quote::Raw).map_err(Stop::Error)?;
            let port = b.tls_port.render(vars, Quote::Raw).map_err(Stop::Error)?;
            let addr = tokio::net::lookup_host(format!("{host}:{}", port.trim()))
                .await
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| Stop::Error(format!("the broker's TLS address {host}:{port} does not resolve")))?;
            out.push((format!("MQTT broker TLS ({addr})"), addr));
        }
        Ok(out)
    }

    /// `tls_config` (COM-03): every TLS endpoint, old protocols and weak suites.
    pub(super) async fn tls_config(&mut self, within: Duration) -> StepResult {
        let endpoints = self.tls_endpoints().await?;
        let mut probes: Vec<Probe> = Vec::new();
        let mut findings = Vec::new();
        let mut passed = Vec::new();
        let mut presented: Vec<Presented> = Vec::new();
        let mut undecided = Vec::new();
        let others = self.rig.device.other_unit_certificates.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        for (name, addr) in &endpoints {
            let control = positive_control(*addr, within).await.map_err(|why| {
                Stop::Error(format!(
                    "{name}: no answer to a current TLS 1.2/1.3 client, so its configuration cannot be judged: {why}"
                ))
            })?;
            probes.push(Probe {
                endpoint: name.clone(),
                offered: "TLS 1.3/1.2, current suites (positive control)".into(),
                answer: words(&Ok(control.clone())),
                accepted: true,
            });
            let mut found = old_protocols(name, *addr, &mut probes).await;
            let weak = weak_suites(name, *addr, &mut probes).await;
            if !weak.is_empty() {
                found.push(format!("accepts the weak suite(s) {}", weak.join(", ")));
            }
            // the certificate a current client is shown
            let judged = match tlscert::fetch(crate::bench::provider(), *addr, PROBE_TIMEOUT).await {
                Ok(chain) => {
                    let file = format!("tls-certificate-{}.pem", presented.len() + 1);
                    self.keep_evidence(&file, tlscert::to_pem(&chain[0]));
                    let j = tlscert::judge(&chain[0], now, &others);
                    presented.push(Presented {
                        endpoint: name.clone(),
                        file: Some(file),
                        judged: j.as_ref().ok().cloned(),
                        error: j.as_ref().err().cloned(),
                    });
                    j
                }
                Err(e) => {
                    presented.push(Presented {
                        endpoint: name.clone(),
                        file: None,
                        judged: None,
                        error: Some(e.clone()),
                    });
                    Err(e)
                }
            };
            let cert_words = match &judged {
                Ok(j) => {
                    found.extend(j.findings.iter().cloned());
                    format!(
                        "certificate {}, {}, valid until {}, {}",
                        j.key,
                        j.signature,
                        j.not_after,
                        if others.is_empty() {
                            "not compared with another unit (the lab gave none)".to_string()
                        } else {
                            format!("its key differs from the {} other unit certificate(s)", others.len())
                        }
                    )
                }
                Err(e) => {
                    undecided.push(format!("{name}: its certificate could not be read: {e}"));
                    String::new()
                }
            };
            if found.is_empty() {
                passed.push(format!(
                    "{name}: {} for a current client; SSL 3.0, TLS 1.0, TLS 1.1 and the weak suites refused{}",
                    words(&Ok(control)),
                    if cert_words.is_empty() {
                        String::new()
                    } else {
                        format!("; {cert_words}")
                    }
                ));
            } else {
                findings.push(format!("{name} {}", found.join(", ")));
            }
        }
        self.keep_evidence(
            "tls-config.json",
            serde_json::to_string_pretty(&probes).unwrap_or_default(),
        );
        self.keep_evidence(
            "tls-certificates.json",
            serde_json::to_string_pretty(&presented).unwrap_or_default(),
        );
        if findings.is_empty() && !undecided.is_empty() {
            Err(Stop::Error(format!(
                "COM-03 not decided: {} (protocols and suites: {})",
                undecided.join("; "),
                if passed.is_empty() {
                    "see tls-config.json".to_string()
                } else {
                    passed.join("; ")
                }
            )))
        } else if findings.is_empty() {
            Ok(passed.join("; "))
        } else {
            Err(Stop::Fail {
                check: Some("COM-03".into()),
                reason: format!("COM-03: {}", findings.join("; ")),
            })
        }
    }
}

/// SSL 3.0, TLS 1.0 and TLS 1.1 offered one at a time: each the endpoint agrees to, in words.
async fn old_protocols(name: &str, addr: SocketAddr, probes: &mut Vec<Probe>) -> Vec<String> {
    let mut found = Vec::new();
    for old in [SSL3, TLS10, TLS11] {
        let hello = Hello {
            version: old,
            suites: LEGACY,
            sni: None,
            versions: &[],
            bare: old == SSL3,
        };
        let a = tlswire::probe(addr, &hello, PROBE_TIMEOUT).await;
        // silence or a close is no acceptance: only a ServerHello agrees to the version
        let accepted = matches!(a, Ok(Answer::Hello { version, .. }) if version <= TLS11);
        if let Ok(Answer::Hello { version, suite }) = a
            && accepted
        {
            found.push(format!(
                "accepts {} ({})",
                tlswire::version_name(version),
                tlswire::suite_name(suite)
            ));
        }
        probes.push(Probe {
            endpoint: name.to_string(),
            offered: format!("{} only", tlswire::version_name(old)),
            answer: words(&a),
            accepted,
        });
    }
    found
}

/// Every weak suite the endpoint takes: the rest offered again after each one chosen.
async fn weak_suites(name: &str, addr: SocketAddr, probes: &mut Vec<Probe>) -> Vec<String> {
    let mut offer: Vec<u16> = WEAK.to_vec();
    let mut weak = Vec::new();
    while !offer.is_empty() {
        let hello = Hello {
            version: TLS12,
            suites: &offer,
            sni: None,
            versions: &[],
            bare: false,
        };
        let a = tlswire::probe(addr, &hello, PROBE_TIMEOUT).await;
        let chosen = match a {
            Ok(Answer::Hello { suite, .. }) if offer.contains(&suite) => Some(suite),
            _ => None,
        };
        probes.push(Probe {
            endpoint: name.to_string(),
            offered: format!(
                "TLS 1.2 with only {} NULL/EXPORT/RC4/3DES/anonymous suites",
                offer.len()
            ),
            answer: words(&a),
            accepted: chosen.is_some(),
        });
        let Some(suite) = chosen else { break };
        weak.push(tlswire::suite_name(suite));
        offer.retain(|s| *s != suite);
    }
    weak
}

/// A current client's hello, retried while the device may still be starting: the endpoint
/// must choose TLS 1.2 or 1.3.
async fn positive_control(addr: SocketAddr, within: Duration) -> Result<Answer, String> {
    let deadline = Instant::now() + within;
    let modern = Hello::modern(None);
    loop {
        let a = tlswire::probe(addr, &modern, PROBE_TIMEOUT).await;
        if let Ok(Answer::Hello { version, .. }) = a
            && version >= TLS12
        {
            return a;
        }
        if Instant::now() >= deadline {
            return Err(words(&a));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
