//! The device's name server: on the bench's end of the device's link, certbench answers
//! the device's DNS queries itself and records every one. Names the run needs (the MQTT
//! cloud host, the update host) and every other name resolve to the bench (offline there
//! is no upstream to ask: the bench is the sinkhole, and what the device then sends there
//! is captured and judged like everything else). A lab that wants real answers for other
//! names gives its upstream resolver in `bench.dns_upstream`: every name but the bench's
//! own is then asked there and the answer relayed (and recorded).
//!
//! Plain UDP DNS (RFC 1035): A queries get the bench's IPv4 address, AAAA and everything
//! else an empty NOERROR answer; malformed queries are counted and dropped, never answered
//! with anything built from their bytes beyond the question.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Queries kept in the record (later ones are counted).
const MAX_RECORDS: usize = 10_000;

/// One query the device made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Query {
    pub at_ms: u128,
    pub from: String,
    pub name: String,
    /// A, AAAA, ... (the numeric type when unknown)
    pub kind: String,
    /// The address given, if any.
    pub answer: Option<String>,
}

#[derive(Debug, Default)]
pub struct DnsLog {
    pub queries: Vec<Query>,
    pub dropped: u64,
    pub malformed: u64,
}

/// A running name server; stops when dropped.
#[derive(Debug)]
pub struct DnsServer {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<DnsLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn kind_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        28 => "AAAA".into(),
        5 => "CNAME".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        33 => "SRV".into(),
        65 => "HTTPS".into(),
        t => t.to_string(),
    }
}

/// The question of a standard query: (name, type, end of the question section).
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    if q.len() < 12 || q[2] & 0x80 != 0 || (q[2] >> 3) & 0xf != 0 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut name = String::new();
    loop {
        let len = *q.get(at)? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        // no compression in a question we answer
        if len > 63 || name.len() > 253 {
            return None;
        }
        let label = q.get(at + 1..at + 1 + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        at += 1 + len;
    }
    let kind = u16::from_be_bytes([*q.get(at)?, *q.get(at + 1)?]);
    Some((name, kind, at + 4))
}

/// The answer to a query: the question echoed, one A record for A queries.
pub fn answer(q: &[u8], addr: Ipv4Addr) -> Option<(Vec<u8>, String, u16)> {
    let (name, kind, end) = question(q)?;
    let mut r = Vec::with_capacity(end + 16);
    r.extend_from_slice(&q[..2]);
    // QR, opcode 0, AA, RD copied; RA; NOERROR
    r.push(0x84 | (q[2] & 0x01));
    r.push(0x80);
    r.extend_from_slice(&[0, 1, 0, u8::from(kind == 1), 0, 0, 0, 0]);
    r.extend_from_slice(&q[12..end]);
    if kind == 1 {
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&addr.octets());
    }
    Some((r, name, kind))
}

/// Which names the bench answers itself, and where the rest go.
#[derive(Debug, Clone, Default)]
pub struct Resolve {
    /// Names that resolve to the bench whatever the upstream says (the hosts the bench
    /// plays: the MQTT cloud, the update server), lower case.
    pub bench_names: Vec<String>,
    /// The lab's resolver (`bench.dns_upstream`): every other name is asked there and its
    /// answer relayed; without one every name resolves to the bench (the sinkhole).
    pub upstream: Option<SocketAddr>,
}

/// How long the upstream may take before the device is told SERVFAIL.
const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// SERVFAIL for `q` (the question echoed): the upstream did not answer.
fn servfail(q: &[u8], end: usize) -> Vec<u8> {
    let mut r = q[..end].to_vec();
    r[2] = 0x80 | (q[2] & 0x01);
    r[3] = 0x82;
    r[6..12].copy_from_slice(&[0; 6]);
    r
}

/// Asks `upstream` the device's own query; the answer counts only when it is a response
/// to the same id and question.
async fn forward(q: &[u8], end: usize, upstream: SocketAddr) -> Result<Vec<u8>, String> {
    let bind: SocketAddr = if upstream.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .map_err(|e| format!("{e}"))?;
    let s = tokio::net::UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    s.send_to(q, upstream).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, s.recv_from(&mut buf))
            .await
            .map_err(|_| format!("no answer from {upstream} within {UPSTREAM_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        let r = &buf[..n];
        if from == upstream && n >= end && r[..2] == q[..2] && r[2] & 0x80 != 0 && r[12..end] == q[12..end] {
            return Ok(r.to_vec());
        }
    }
}

impl DnsServer {
    /// Serves on `bind`:53: the bench's names (and, without an upstream, every name) get
    /// `answer_addr`; the others are asked upstream.
    pub async fn start(bind: Ipv4Addr, answer_addr: Ipv4Addr, resolve: Resolve) -> std::io::Result<DnsServer> {
        let sock = Arc::new(tokio::net::UdpSocket::bind((bind, 53)).await?);
        let addr = sock.local_addr()?;
        let log = Arc::new(Mutex::new(DnsLog::default()));
        let l = log.clone();
        let t0 = std::time::Instant::now();
        // one query, what it was answered, into the record
        let record = move |l: &Arc<Mutex<DnsLog>>,
                           at_ms: u128,
                           from: SocketAddr,
                           name: String,
                           kind: u16,
                           answer: Option<String>| {
            let q = Query {
                at_ms,
                from: from.to_string(),
                name,
                kind: kind_name(kind),
                answer,
            };
            if let Ok(mut g) = l.lock() {
                if g.queries.len() < MAX_RECORDS {
                    g.queries.push(q);
                } else {
                    g.dropped += 1;
                }
            }
        };
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let q = buf[..n].to_vec();
                let Some((name, kind, end)) = question(&q) else {
                    if let Ok(mut g) = l.lock() {
                        g.malformed += 1;
                    }
                    continue;
                };
                let at_ms = t0.elapsed().as_millis();
                let ours = resolve.bench_names.iter().any(|b| b.trim_end_matches('.') == name);
                match resolve.upstream {
                    Some(up) if !ours => {
                        // asked upstream, without holding up the device's other lookups
                        let (sock, l) = (sock.clone(), l.clone());
                        tokio::spawn(async move {
                            let (reply, said) = match forward(&q, end, up).await {
                                Ok(r) => {
                                    let got: Vec<String> = super::flows::dns_answers(&r)
                                        .into_iter()
                                        .map(|(a, _)| a.to_string())
                                        .collect();
                                    let rcode = r[3] & 0x0f;
                                    let said = match (rcode, got.is_empty()) {
                                        (0, false) => format!("upstream: {}", got.join(" ")),
                                        (0, true) => "upstream: no address".to_string(),
                                        (3, _) => "upstream: no such name".to_string(),
                                        (2, _) => "upstream: server failure".to_string(),
                                        (5, _) => "upstream: refused".to_string(),
                                        (c, _) => format!("upstream: rcode {c}"),
                                    };
                                    (r, said)
                                }
                                Err(e) => (servfail(&q, end), format!("upstream failed ({e}): SERVFAIL")),
                            };
                            let _ = sock.send_to(&reply, from).await;
                            record(&l, at_ms, from, name, kind, Some(said));
                        });
                    }
                    _ => {
                        let Some((reply, _, _)) = answer(&q, answer_addr) else {
                            continue;
                        };
                        let _ = sock.send_to(&reply, from).await;
                        record(
                            &l,
                            at_ms,
                            from,
                            name,
                            kind,
                            (kind == 1).then(|| answer_addr.to_string()),
                        );
                    }
                }
            }
        });
        Ok(DnsServer { addr, log, task })
    }

    /// The record as JSON lines.
    pub fn jsonl(&self) -> String {
        let g = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = crate::util::jsonl(&g.queries);
        if g.dropped > 0 || g.malformed > 0 {
            out.push_str(&format!(
                "{{\"not_recorded\":{},\"malformed_dropped\":{}}}\n",
                g.dropped, g.malformed
            ));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn query(name: &str, kind: u16) -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&kind.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn a_queries_get_the_bench_and_the_answer_parses_back() {
        let bench = Ipv4Addr::new(198, 18, 0, 1);
        let (r, name, kind) = answer(&query("Broker.Example.test", 1), bench).unwrap();
        assert_eq!((name.as_str(), kind), ("broker.example.test", 1));
        let got = super::super::flows::dns_answers(&r);
        assert_eq!(got, vec![(std::net::IpAddr::V4(bench), "Broker.Example.test".into())]);
        // AAAA: an empty NOERROR answer (the device falls back to IPv4)
        let (r, _, _) = answer(&query("x.test", 28), bench).unwrap();
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 0);
    }

    #[test]
    fn responses_and_garbage_are_not_answered() {
        let bench = Ipv4Addr::new(198, 18, 0, 1);
        let mut resp = query("x.test", 1);
        resp[2] |= 0x80;
        assert!(answer(&resp, bench).is_none());
        for n in 0..300usize {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let _ = answer(&junk, bench);
        }
        let mut long = query("a.test", 1);
        long[12] = 200;
        assert!(answer(&long, bench).is_none());
    }
}
