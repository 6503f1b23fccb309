//! The network checks over the device's link: COM-01 (every flow encrypted, or declared
//! exempt) and ATK-01 (only declared services listen).

use crate::engine::run::{Run, StepResult, Stop};
use crate::gateway::flows::{self, Flow, Protocol, Side};
use crate::gateway::scan::OpenPort;
use crate::model::template::Quote;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

/// Flows named in a failure's reason (all are in flows.json).
const NAMED: usize = 5;
/// Rows of flows.json and destinations.txt; past them the file says how many it left out.
const MAX_ROWS: usize = 2_000;

/// Clear-text protocols COM-01 allows on every device (its allowlist: address
/// configuration, name resolution, time, local discovery). A maker's
/// `network.plaintext_exempt` adds to it, with the maker's reason.
const ALLOWLIST: &[&str] = &["dhcp", "dns", "ntp", "mdns"];

/// How one flow was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "lowercase")] // (destinations.txt's words)
enum Judged {
    Encrypted,
    Exempt,
    /// An HTTP answer that only sends the client to HTTPS.
    RedirectToHttps,
    NoData,
    Plaintext,
    Unknown,
}

fn judge(f: &Flow, p: &Protocol, exempt: &std::collections::BTreeMap<String, String>) -> Judged {
    match p {
        Protocol::NoData => Judged::NoData,
        // unidentified, but readable: clear text whatever protocol it claims to be
        Protocol::Unknown { clear_text: true, .. } => Judged::Plaintext,
        Protocol::Unknown { .. } => Judged::Unknown,
        p if !p.is_plaintext() => Judged::Encrypted,
        p if exempt.contains_key(p.name()) => Judged::Exempt,
        Protocol::Http if redirects_only(f) => Judged::RedirectToHttps,
        _ => Judged::Plaintext,
    }
}

/// A plain-HTTP exchange whose server only answered with a redirect to https:// (and the
/// client sent no body): what a device's port 80 should do.
fn redirects_only(f: &Flow) -> bool {
    let (c, s) = f.client_server();
    let head = String::from_utf8_lossy(&s.head).to_ascii_lowercase();
    let status_3xx = head.starts_with("http/1.") && head.split_whitespace().nth(1).is_some_and(|c| c.starts_with('3'));
    let to_https = head
        .lines()
        .any(|l| l.starts_with("location:") && l.contains("https://"));
    let request = String::from_utf8_lossy(&c.head).to_ascii_lowercase();
    let no_body = request.starts_with("get ") || request.starts_with("head ");
    status_3xx && to_https && no_body
}

impl Run<'_> {
    pub(super) fn link_error(&self) -> Stop {
        Stop::Error(
            self.rig
                .gateway
                .error
                .clone()
                .unwrap_or_else(|| "the bench does not see the device's link".into()),
        )
    }

    /// `traffic` (COM-01): judge every flow of the run so far, once the capture has watched
    /// the device for at least `observe`.
    pub(super) async fn traffic(&mut self, observe: Duration) -> StepResult {
        let Some(started) = self.rig.gateway.capture.as_ref().map(|c| c.started) else {
            return Err(self.link_error());
        };
        // the capture has watched the device since the run began (every boot of it): only
        // what is missing of `observe` is waited for
        tokio::time::sleep(observe.saturating_sub(started.elapsed())).await;
        let covered = started.elapsed();
        let Some(cap) = &self.rig.gateway.capture else {
            return Err(self.link_error());
        };
        let (table, stats) = cap.snapshot();
        // passwords the device sent the bench are secrets in excerpts too
        if let Some(n) = &self.rig.net {
            for s in n.log.secrets() {
                self.rig.redactor.add("device.password", &s);
            }
        }
        let file = cap
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let saved = capture_words(&stats, &file, covered);
        // positive control: the capture saw the device at all
        if table.device_packets == 0 {
            return Err(Stop::Error(format!(
                "the capture saw no packet from the device ({saved}): nothing can be judged — is the device connected and powered?"
            )));
        }
        let mut exempt: std::collections::BTreeMap<String, String> = ALLOWLIST
            .iter()
            .map(|p| (p.to_string(), "COM-01 allowlist".to_string()))
            .collect();
        exempt.extend(self.rig.device.plaintext_exempt.clone());
        let conversations = group(&table, &exempt, &self.rig.redactor);
        let silent = table
            .flows
            .iter()
            .filter(|f| f.sent.payload == 0 && (f.opened_by == Side::Peer || f.payload() == 0))
            .count();
        let json = flows_json(&table, &exempt, &self.rig.redactor);
        self.keep_evidence("flows.json", json);
        let (intercepted, _) = self.keep_interception_evidence();
        self.keep_evidence(
            "destinations.txt",
            destinations(&table, &conversations, silent, &intercepted),
        );
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for c in &conversations {
            *counts.entry(c.protocol.as_str()).or_default() += c.flows;
        }
        let exempt_used: Vec<String> = exempt
            .iter()
            .filter(|(k, _)| counts.contains_key(k.as_str()))
            .map(|(k, why)| format!("{k} ({why})"))
            .collect();
        let summary = format!(
            "{} flows with application data from the device in {} conversations — {}; {silent} connection attempts it sent nothing on (a scan, a refused port); {saved}{}",
            conversations.iter().map(|c| c.flows).sum::<usize>(),
            conversations.len(),
            counts
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            if exempt_used.is_empty() {
                String::new()
            } else {
                format!("; clear text allowed: {}", exempt_used.join("; "))
            }
        );
        // positive control: the device said something (an RST to a scan is not talking)
        if conversations.is_empty() {
            return Err(Stop::Error(format!(
                "the device sent no application data on its link this run ({} packets from it, none carrying data): with nothing to judge, COM-01 cannot pass — is the device connected and set up? {saved}",
                table.device_packets
            )));
        }
        // ... and to a service, not only to the network's infrastructure
        if conversations.iter().all(|c| ALLOWLIST.contains(&c.protocol.as_str())) {
            return Err(Stop::Error(format!(
                "the device's only application data this run was address configuration, name resolution or time ({}): none of its own communication was seen, so COM-01 cannot pass. {saved}",
                counts.keys().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        // what the device would have sent where the bench could not see it
        let unobserved = unobserved(&table, &intercepted);
        if table.dropped_flows > 0 {
            return Err(dropped_flows(&table, &summary));
        }
        let failing: Vec<&Conversation> = conversations.iter().filter(|c| c.judged == Judged::Plaintext).collect();
        if !failing.is_empty() {
            let reason = plaintext_reason(&failing, &summary);
            return Err(Stop::Fail {
                check: Some("COM-01".into()),
                reason,
            });
        }
        if !unobserved.is_empty() {
            let n = unobserved.len();
            let shown: Vec<String> = unobserved.into_iter().take(NAMED).collect();
            return Err(Stop::Error(format!(
                "not decided: {n} connection(s) the device opened were not observed — {}{}: what they would have carried is unknown, so COM-01 cannot pass ({}). {summary}",
                shown.join("; "),
                if n > NAMED { "; …" } else { "" },
                if self.rig.gateway.intercept.is_some() {
                    "the bench answers every connection; these were refused or unanswered by a peer, or the device kept silent on them"
                } else {
                    "the bench does not intercept this device's connections (no namespace, or nftables unavailable: see the run's notes)"
                }
            )));
        }
        for c in conversations.iter().filter(|c| c.judged == Judged::Unknown) {
            self.reviews.push(format!("COM-01: {}", c.describe()));
        }
        Ok(summary)
    }

    /// Keeps what the bench answered on the device's other connections (intercepted.jsonl,
    /// the host names it gave redacted) and the time requests it answered
    /// (ntp-queries.jsonl); returns the connections and how many were not recorded.
    fn keep_interception_evidence(&mut self) -> (Vec<crate::gateway::intercept::Intercepted>, u64) {
        let (mut intercepted, intercepted_dropped) = self
            .rig
            .gateway
            .intercept
            .as_ref()
            .map(|i| i.records())
            .unwrap_or_default();
        // the host names the device gave are its bytes: redacted before any file shows them
        for r in &mut intercepted {
            if let Some(h) = &r.host {
                r.host =
                    Some(String::from_utf8_lossy(&self.rig.redactor.redact_window(h.as_bytes(), &[])).into_owned());
            }
        }
        if self.rig.gateway.intercept.is_some() {
            self.keep_evidence(
                "intercepted.jsonl",
                intercepted_jsonl(&intercepted, intercepted_dropped, &self.rig.redactor),
            );
        }
        // the device's time requests the bench answered (its clock is the bench's)
        if let Some((queries, more)) = self
            .rig
            .gateway
            .intercept
            .as_ref()
            .and_then(|i| i.ntp.as_ref())
            .map(|n| n.queries())
            .filter(|(q, _)| !q.is_empty())
        {
            let mut text: String = queries
                .iter()
                .filter_map(|q| serde_json::to_string(q).ok())
                .map(|l| l + "\n")
                .collect();
            if more > 0 {
                text.push_str(&format!("{{\"more_queries_counted_only\":{more}}}\n"));
            }
            self.keep_evidence("ntp-queries.jsonl", text);
        }
        (intercepted, intercepted_dropped)
    }

    /// The ports the profile declares the device listens on.
    fn declared_ports(&self) -> Result<BTreeSet<(&'static str, u16)>, Stop> {
        let mut set = BTreeSet::new();
        for s in &self.rig.device.services {
            set.insert((if s.udp { "udp" } else { "tcp" }, self.service_port(s)?));
        }
        if let Some(b) = &self.rig.device.broker {
            for t in [&b.tls_port, &b.plain_port] {
                if let Ok(p) = t
                    .render(&self.rig.command_vars, Quote::Raw)
                    .map(|x| x.trim().parse::<u16>())
                    && let Ok(p) = p
                {
                    set.insert(("tcp", p));
                }
            }
        }
        Ok(set)
    }

    /// `port_scan` (ATK-01): what listens on the device's address, against what is declared.
    pub(super) async fn port_scan(&mut self) -> StepResult {
        if self.rig.gateway.capture.is_none() && self.rig.gateway.net.is_none() {
            return Err(self.link_error());
        }
        let Some(host) = self.rig.device.attribution.device else {
            return Err(Stop::Error(
                "the device's address is not known (network.namespace or network.address): certbench scans only the device under test".into(),
            ));
        };
        refuse_shared(host)?;
        let declared = self.declared_ports()?;
        let (mut open, times) = crate::gateway::scan::scan(host).await;
        // what the device said, redacted on its raw bytes before it is made printable
        for p in &mut open {
            p.banner = p.shown(|b| self.rig.redactor.redact_window(b, &[]));
        }
        // positive control: the device answered at all (an open port or a refusal), else
        // an empty result would only say it was unreachable
        if open.iter().all(|p| p.proto != "tcp") && times.refused == 0 {
            return Err(Stop::Error(format!(
                "no TCP port of {host} answered (none open, none refused within the connect timeout): the device is not reachable, so its open ports are unknown"
            )));
        }
        self.keep_evidence(
            "open-ports.json",
            serde_json::to_string_pretty(&open).unwrap_or_default(),
        );
        self.keep_evidence("scan.json", serde_json::to_string_pretty(&times).unwrap_or_default());
        let undeclared: Vec<&OpenPort> = open.iter().filter(|p| !declared.contains(&(p.proto, p.port))).collect();
        let list = |ports: &[&OpenPort]| -> String {
            ports
                .iter()
                .map(|p| {
                    format!(
                        "{}/{} ({}{})",
                        p.port,
                        p.proto,
                        p.service,
                        if p.banner.is_empty() {
                            String::new()
                        } else {
                            format!(", says \"{}\"", p.banner)
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let all: Vec<&OpenPort> = open.iter().collect();
        let link = match times.link.rtt_ms {
            Some(r) => format!(
                "link: slowest answer {r} ms, {} of the sample ports silent; {} ms a port, {} at a time",
                times.link.silent, times.link.wait_ms, times.link.concurrency
            ),
            None => format!("link: no sample port answered; {} ms a port", times.link.wait_ms),
        };
        let retried = if times.retry_rounds > 0 {
            format!(
                "; {} retry round(s) for ports that gave no answer{}",
                times.retry_rounds,
                if times.found_in_retry.is_empty() {
                    String::new()
                } else {
                    format!(" (found open only then: {:?})", times.found_in_retry)
                }
            )
        } else {
            String::new()
        };
        let summary = format!(
            "scanned 65535 TCP ports of {host} in {:.1}s ({link}{retried}; naming the open ones {:.1}s, 6 UDP services {:.1}s): {} open{}",
            times.tcp_sweep_ms as f64 / 1000.0,
            times.identify_ms as f64 / 1000.0,
            times.udp_ms as f64 / 1000.0,
            open.len(),
            if open.is_empty() {
                String::new()
            } else {
                format!(" — {}", list(&all))
            }
        );
        self.rig.gateway.scan = Some(open.clone());
        if !undeclared.is_empty() {
            return Err(Stop::Fail {
                check: Some("ATK-01".into()),
                reason: format!(
                    "ATK-01: {} port(s) listen that the profile does not declare (services) — {}. {summary}",
                    undeclared.len(),
                    list(&undeclared)
                ),
            });
        }
        // a port that neither accepted nor refused was not observed: the scan cannot say
        // nothing undeclared listens there
        if !times.no_answer.is_empty() {
            let n = times.no_answer.len();
            let some: Vec<String> = times.no_answer.iter().take(12).map(u16::to_string).collect();
            let ports = format!("{}{}", some.join(", "), if n > 12 { ", …" } else { "" });
            match &self.rig.device.firewall_drops {
                Some(why) => self.reviews.push(format!(
                    "ATK-01: {n} TCP port(s) gave no answer and were not observed ({ports}); the maker declares a firewall that drops: {why}"
                )),
                None => {
                    return Err(Stop::Error(format!(
                        "not decided: {n} TCP port(s) of {host} neither accepted nor refused a connection, even after {} retry round(s) with longer waits ({ports}; scan.json lists them): whether something listens there is unknown. A device whose firewall drops connections to closed ports: declare network.firewall_drops. {summary}",
                        times.retry_rounds
                    )));
                }
            }
        }
        Ok(summary)
    }
}

/// A loopback or unspecified address is shared with this machine: what listens there may
/// be the bench itself, so a scan would judge the wrong host.
fn refuse_shared(host: IpAddr) -> Result<(), Stop> {
    if host.is_loopback() || host.is_unspecified() {
        return Err(Stop::Error(format!(
            "the device's address {host} is shared with this machine (loopback): its open ports cannot be told from the bench's — give the device its own address (network.namespace, or a real board's address)"
        )));
    }
    Ok(())
}

fn numbers(v: &[u64]) -> String {
    v.iter().map(|n| format!("#{n}")).collect::<Vec<_>>().join(" ")
}

/// The flows of one kind with one peer: (transport, opener, peer, peer port, protocol).
#[derive(Debug)]
struct Conversation {
    transport: crate::model::Transport,
    opened_by: Side,
    peer: IpAddr,
    peer_name: Option<String>,
    peer_port: u16,
    /// The device's port when the peer opened (its service), else None (many).
    device_port: Option<u16>,
    protocol: String,
    detail: String,
    /// TLS flows whose handshake completed (both sides sent application records).
    completed: usize,
    judged: Judged,
    flows: usize,
    sent: u64,
    received: u64,
    payload: u64,
    data_packets: Vec<u64>,
    excerpt: String,
    entropy: f64,
}

impl Conversation {
    fn describe(&self) -> String {
        let peer = match &self.peer_name {
            Some(n) => format!("{n} ({}):{}", self.peer, self.peer_port),
            None => format!("{}:{}", self.peer, self.peer_port),
        };
        let t: &str = self.transport.into();
        let route = match self.opened_by {
            Side::Device => format!("device → {peer}"),
            Side::Peer => format!("{} → device:{}", self.peer, self.device_port.unwrap_or(0)),
        };
        let what = match self.judged {
            Judged::Unknown => format!(
                "unidentified protocol, entropy {:.1} bits/byte{}",
                self.entropy,
                if self.entropy >= 7.0 {
                    " (looks encrypted or compressed)"
                } else {
                    " (looks like clear text or structured data)"
                }
            ),
            _ if self.protocol == "unknown" => "an unidentified protocol carrying readable text".to_string(),
            _ => format!("{} in clear", self.protocol.to_uppercase()),
        };
        format!(
            "{t} {route}: {what}, {} connection(s), {} bytes of application data (packets {}): \"{}\"",
            self.flows,
            self.payload,
            numbers(&self.data_packets),
            self.excerpt
        )
    }
}

/// Groups the flows that carry the device's communication (it opened them, or it answered)
/// into conversations, each judged.
fn group(
    table: &flows::FlowTable,
    exempt: &std::collections::BTreeMap<String, String>,
    redactor: &crate::redact::Redactor,
) -> Vec<Conversation> {
    let mut out: Vec<Conversation> = Vec::new();
    type Key = (
        crate::model::Transport,
        Side,
        IpAddr,
        u16,
        Option<u16>,
        &'static str,
        Judged,
    );
    let mut index: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    for f in &table.flows {
        // a peer's probe the device never answered is not the device's communication
        if f.payload() == 0 || (f.opened_by == Side::Peer && f.sent.payload == 0) {
            continue;
        }
        let p = flows::classify(f);
        let j = judge(f, &p, exempt);
        let device_port = (f.opened_by == Side::Peer).then_some(f.device_port);
        // the bench's connections to a service come from ever new ports: one conversation
        let peer_port = if f.opened_by == Side::Peer { 0 } else { f.peer_port };
        let key = (f.transport, f.opened_by, f.peer, peer_port, device_port, p.name(), j);
        let i = match index.get(&key) {
            Some(&i) => i,
            None => {
                index.insert(key, out.len());
                let sample = f.sample();
                out.push(Conversation {
                    transport: f.transport,
                    opened_by: f.opened_by,
                    peer: f.peer,
                    peer_name: table.names.get(&f.peer).map(|n| n.join("|")),
                    peer_port,
                    device_port,
                    protocol: p.name().into(),
                    detail: match &p {
                        flows::Protocol::Tls { version, sni, .. } => format!(
                            "{version}{}",
                            sni.as_ref().map(|s| format!(", SNI {s}")).unwrap_or_default()
                        ),
                        _ => String::new(),
                    },
                    completed: 0,
                    judged: j,
                    flows: 0,
                    sent: 0,
                    received: 0,
                    payload: 0,
                    data_packets: Vec::new(),
                    excerpt: flows::excerpt(&redactor.redact_window(sample, &[]), 80),
                    entropy: match p {
                        flows::Protocol::Unknown { entropy, .. } => entropy,
                        _ => 0.0,
                    },
                });
                out.len() - 1
            }
        };
        let c = &mut out[i];
        c.flows += 1;
        if matches!(p, flows::Protocol::Tls { completed: true, .. }) {
            c.completed += 1;
        }
        c.sent += f.sent.bytes;
        c.received += f.received.bytes;
        c.payload += f.payload();
        if c.data_packets.len() < 4 {
            c.data_packets
                .extend(f.data_packets().into_iter().take(4 - c.data_packets.len()));
        }
    }
    out
}

/// The bench's intercepted connections, one JSON object a line (device bytes redacted).
fn intercepted_jsonl(
    records: &[crate::gateway::intercept::Intercepted],
    dropped: u64,
    redactor: &crate::redact::Redactor,
) -> String {
    let mut out = String::new();
    for r in records.iter().take(MAX_ROWS) {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        v["first"] = serde_json::json!(
            r.first
                .as_ref()
                .map(|f| flows::excerpt(&redactor.redact_window(f.as_bytes(), &[]), 120))
        );
        v["excerpt"] = serde_json::json!(flows::excerpt(&redactor.redact_window(&r.head, &[]), 96));
        out.push_str(&v.to_string());
        out.push('\n');
    }
    if records.len() > MAX_ROWS || dropped > 0 {
        let _ = writeln!(
            out,
            "{}",
            serde_json::json!({"not_listed": records.len().saturating_sub(MAX_ROWS) as u64 + dropped})
        );
    }
    out
}

/// Every flow that carried application data, one JSON object each.
fn flows_json(
    table: &flows::FlowTable,
    exempt: &std::collections::BTreeMap<String, String>,
    redactor: &crate::redact::Redactor,
) -> String {
    let with_data = table.flows.iter().filter(|f| f.payload() > 0).count();
    let mut rows: Vec<serde_json::Value> = table
        .flows
        .iter()
        .filter(|f| f.payload() > 0)
        .take(MAX_ROWS)
        .map(|f| {
            let p = flows::classify(f);
            let sample = f.sample();
            serde_json::json!({
                "transport": f.transport,
                "device_port": f.device_port,
                "peer": f.peer.to_string(),
                "peer_names": table.names.get(&f.peer),
                "peer_port": f.peer_port,
                "opened_by": f.opened_by,
                "protocol": p,
                "judged": judge(f, &p, exempt),
                "device_answered": f.opened_by == Side::Device || f.sent.payload > 0,
                "bytes_sent": f.sent.bytes,
                "bytes_received": f.received.bytes,
                "payload_sent": f.sent.payload,
                "payload_received": f.received.payload,
                "packets": f.packets,
                "data_packets": f.data_packets(),
                "excerpt": flows::excerpt(&redactor.redact_window(sample, &[]), 80),
            })
        })
        .collect();
    if with_data > MAX_ROWS || table.dropped_flows > 0 {
        rows.push(serde_json::json!({
            "not_listed": with_data.saturating_sub(MAX_ROWS),
            "not_stored_past_the_table_limit": table.dropped_flows,
        }));
    }
    serde_json::to_string_pretty(&rows).unwrap_or_default()
}

/// Every destination the device talked to: what a privacy reviewer reads.
fn destinations(
    table: &flows::FlowTable,
    conversations: &[Conversation],
    silent: usize,
    intercepted: &[crate::gateway::intercept::Intercepted],
) -> String {
    let mut out = String::from("# Every conversation of the device on its link (from the run's capture)\n");
    let _ = writeln!(
        out,
        "{:<5} {:<44} {:<14} {:<29} {:>6} {:>10} {:>10}  detail",
        "proto", "route", "protocol", "judged", "flows", "sent", "received"
    );
    for c in conversations.iter().take(MAX_ROWS) {
        let peer = match &c.peer_name {
            Some(n) => format!("{n} ({}):{}", c.peer, c.peer_port),
            None => format!("{}:{}", c.peer, c.peer_port),
        };
        let route = match c.opened_by {
            Side::Device => format!("device → {peer}"),
            Side::Peer => format!("{} → device:{}", c.peer, c.device_port.unwrap_or(0)),
        };
        let _ = writeln!(
            out,
            "{:<5} {:<44} {:<14} {:<29} {:>6} {:>10} {:>10}  {}",
            <&str>::from(c.transport),
            route,
            c.protocol,
            <&str>::from(c.judged),
            c.flows,
            c.sent,
            c.received,
            if c.protocol == "tls" {
                format!("{}, {} of {} handshakes completed", c.detail, c.completed, c.flows)
            } else {
                c.detail.clone()
            }
        );
    }
    if conversations.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "… and {} more conversations (flows.json)",
            conversations.len() - MAX_ROWS
        );
    }
    if !intercepted.is_empty() {
        // by destination and what the bench did: the device's view of its "cloud"
        // (destination, how it began, what the bench did) -> (connections, bytes each way, hosts)
        type Row = (usize, u64, u64, BTreeSet<String>);
        let mut by: std::collections::BTreeMap<(String, String, String), Row> = Default::default();
        for r in intercepted {
            let kind: &str = r.kind.into();
            let e = by
                .entry((r.to.clone(), kind.to_string(), r.answered.clone()))
                .or_default();
            e.0 += 1;
            e.1 += r.bytes_from_device;
            e.2 += r.bytes_to_device;
            if let Some(h) = &r.host
                && e.3.len() < 4
            {
                e.3.insert(h.clone());
            }
        }
        let _ = writeln!(
            out,
            "\n# What the bench answered: every other connection the device opened (intercepted.jsonl)\n{:<24} {:<8} {:>6} {:>10} {:>10}  {:<28} answered",
            "to", "began", "conns", "from dev", "to dev", "host named"
        );
        for ((to, kind, answered), (n, from, back, hosts)) in by.iter().take(MAX_ROWS) {
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "{to:<24} {kind:<8} {n:>6} {from:>10} {back:>10}  {:<28} {answered}",
                if hosts.is_empty() {
                    "-".to_string()
                } else {
                    hosts.join(",")
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{silent} connection attempts the device sent nothing on (port scan, refused ports) are not listed.\n{} packets on the link, {} from the device, {} between other hosts (not the device's)",
        table.packets, table.device_packets, table.foreign_packets
    );
    out
}

/// What the capture saw, in words for the evidence.
fn capture_words(stats: &crate::gateway::capture::CaptureStats, file: &str, covered: Duration) -> String {
    format!(
        "capture {file} on {} over {:.0} s: {} packets, {} saved ({:.1} of {} MiB){}{}",
        stats.interface,
        covered.as_secs_f64(),
        stats.packets,
        stats.saved_packets,
        stats.saved_bytes as f64 / 1048576.0,
        stats.limit_bytes >> 20,
        if stats.unsaved_packets > 0 {
            format!(", {} packets past the limit not saved", stats.unsaved_packets)
        } else {
            String::new()
        },
        if stats.kernel_drops > 0 {
            format!(", {} dropped by the kernel before capture", stats.kernel_drops)
        } else {
            String::new()
        }
    )
}

/// The connections the device opened whose payload the bench could not see: refused or
/// unanswered by a peer, or accepted by the bench and kept silent.
fn unobserved(table: &flows::FlowTable, intercepted: &[crate::gateway::intercept::Intercepted]) -> Vec<String> {
    let mut unobserved: Vec<String> = Vec::new();
    for f in &table.flows {
        if let Some(why) = f.unobserved() {
            let name = table
                .names
                .get(&f.peer)
                .map(|n| format!("{} ", n.join("|")))
                .unwrap_or_default();
            unobserved.push(format!(
                "tcp device → {name}{}:{} ({why}, packets {})",
                f.peer,
                f.peer_port,
                numbers(&f.packets)
            ));
        }
    }
    for r in intercepted {
        let waited = r.accepted.map(|t| t.elapsed()).unwrap_or_default();
        if r.held_silent {
            unobserved.push(format!("tcp device → {} (accepted by the bench: {})", r.to, r.answered));
        } else if r.open && r.bytes_from_device == 0 && waited > crate::gateway::intercept::FIRST_BYTES {
            unobserved.push(format!(
                "tcp device → {} (accepted by the bench {:.0} s ago, still open, nothing sent)",
                r.to,
                waited.as_secs_f64()
            ));
        }
    }
    unobserved
}

/// Flows past the table's limits were counted, not judged: the verdict is not decided.
fn dropped_flows(table: &flows::FlowTable, summary: &str) -> Stop {
    let peers: Vec<String> = table
        .dropped_by_peer
        .iter()
        .take(NAMED)
        .map(|((t, a), n)| format!("{n} {} to/from {a}", <&str>::from(*t)))
        .collect();
    Stop::Error(format!(
        "{summary}; {} flows past the table's limits ({} flows, {} of them with data, per board) were counted, not judged ({}{})",
        table.dropped_flows,
        flows::MAX_FLOWS,
        flows::MAX_DATA_FLOWS,
        peers.join(", "),
        if table.dropped_by_peer.len() > NAMED {
            ", …"
        } else {
            ""
        }
    ))
}

/// COM-01's reason: the conversations in clear (the first few), and the summary.
fn plaintext_reason(failing: &[&Conversation], summary: &str) -> String {
    let more = failing.len().saturating_sub(NAMED);
    let mut reason = format!(
        "COM-01: application data in clear — {}",
        failing[..failing.len().min(NAMED)]
            .iter()
            .map(|c| c.describe())
            .collect::<Vec<_>>()
            .join("; ")
    );
    if more > 0 {
        let _ = write!(reason, "; and {more} more (destinations.txt)");
    }
    let _ = write!(reason, ". {summary}");
    reason
}
