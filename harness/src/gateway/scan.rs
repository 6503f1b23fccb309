//! The device's open ports (ATK-01): a TCP connect scan of all 65 535 ports with bounded
//! concurrency, UDP probes carrying real requests for the usual IoT services, and what
//! each open port says (its banner, or its answer to a TLS or HTTP probe).
//!
//! Only ever pointed at the device under test: the caller passes the device's own address.

use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Connections in flight at once on a fast link; fewer on a slow one and in retries.
const CONCURRENCY: usize = 512;
/// The shortest and longest wait for a port to accept or refuse.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Ports knocked first to measure the link (round-trip time, loss), and how long each may
/// take to answer.
const LINK_SAMPLE: usize = 24;
const LINK_PROBE_WAIT: Duration = Duration::from_secs(5);
/// Rounds of retries for ports that gave no answer, and the most ports a retry round
/// takes: past it, the silence is a filter's, not a slow link's.
const RETRY_ROUNDS: u32 = 3;
const MAX_RETRIED: usize = 4096;
const BANNER_WAIT: Duration = Duration::from_millis(2000);
/// The connect timeout of the identification probes (banner, TLS, HTTP).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// One open port and what it is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenPort {
    pub proto: &'static str,
    pub port: u16,
    /// telnet, ssh, ftp, smtp, http, https (TLS), mqtt, dns, ntp, snmp, ssdp, mdns, coap, unknown
    pub service: String,
    /// What the port said first (printable excerpt).
    pub banner: String,
    /// The bytes the banner was made from (at most 256), raw: the caller redacts them
    /// before it makes them printable ([`OpenPort::shown`]).
    #[serde(skip)]
    pub said: Vec<u8>,
    /// For HTTP: the redirect target when it sends the client to HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirects_to_https: Option<bool>,
}

impl OpenPort {
    /// Keeps what the port said: raw, and as a printable banner.
    fn say(&mut self, b: &[u8]) {
        self.said = b[..b.len().min(256)].to_vec();
        self.banner = printable(b);
    }

    /// The banner as a report shows it: `redact` applied to the raw bytes first (a secret
    /// with escape codes between its letters is still found), then made printable.
    pub fn shown(&self, redact: impl Fn(&[u8]) -> Vec<u8>) -> String {
        if self.said.is_empty() {
            return self.banner.clone();
        }
        printable(&redact(&self.said))
    }

    /// A management protocol that carries credentials or commands in clear.
    pub fn plaintext_management(&self) -> bool {
        match self.service.as_str() {
            "telnet" | "ftp" => true,
            "http" => self.redirects_to_https != Some(true),
            _ => false,
        }
    }
}

/// How one port answered a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knock {
    /// It accepted (SYN-ACK).
    Open,
    /// It refused (RST): the host answered, nothing listens.
    Refused,
    /// Neither within the wait: dropped, filtered, or lost on a slow link.
    Silent,
}

/// Knocks on one TCP port: the real one connects; tests give a scripted link.
pub trait Knocker: Clone + Send + Sync + 'static {
    fn knock(&self, port: u16, wait: Duration) -> impl std::future::Future<Output = Knock> + Send;
}

/// TCP connect to the device's address.
#[derive(Debug, Clone, Copy)]
pub struct Tcp(pub IpAddr);

impl Knocker for Tcp {
    async fn knock(&self, port: u16, wait: Duration) -> Knock {
        match tokio::time::timeout(wait, TcpStream::connect(SocketAddr::new(self.0, port))).await {
            Ok(Ok(_)) => Knock::Open,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Knock::Refused,
            // another error (unreachable, reset): no decision about the port
            Ok(Err(_)) | Err(_) => Knock::Silent,
        }
    }
}

/// What the link looked like before the sweep.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Link {
    /// The slowest answer among the sample ports (accept or refuse), if any answered.
    pub rtt_ms: Option<u64>,
    /// Sample ports that gave no answer, of [`LINK_SAMPLE`].
    pub silent: usize,
    /// The wait per port the first round used (from `rtt_ms`), and its concurrency.
    pub wait_ms: u64,
    pub concurrency: usize,
}

/// The TCP sweep: open ports, how many refused, which stayed silent after every retry.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    pub open: Vec<u16>,
    pub refused: u32,
    pub silent: Vec<u16>,
    pub link: Link,
    /// Retry rounds made, and ports found open only in a retry.
    pub retry_rounds: u32,
    pub found_in_retry: Vec<u16>,
}

/// Knocks on `ports` with bounded concurrency; each port's answer.
async fn knock_all<K: Knocker>(k: &K, ports: &[u16], wait: Duration, concurrency: usize) -> Vec<(u16, Knock)> {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut out = Vec::with_capacity(ports.len());
    for &port in ports {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let k = k.clone();
        tasks.spawn(async move {
            let _p = permit;
            (port, k.knock(port, wait).await)
        });
        // keep the set small
        while tasks.len() > concurrency * 2 {
            if let Some(Ok(r)) = tasks.join_next().await {
                out.push(r);
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok(r) = r {
            out.push(r);
        }
    }
    out
}

/// Measures the link, sweeps `ports` with a wait fitted to it, and knocks again — longer,
/// fewer at a time — on every port that gave no answer, so a slow or lossy link does not
/// make a listening port look closed.
pub async fn sweep<K: Knocker>(k: &K, ports: std::ops::RangeInclusive<u16>) -> Sweep {
    let all: Vec<u16> = ports.collect();
    // the link: a spread of ports, a few at a time, each given a generous wait
    let step = (all.len() / LINK_SAMPLE).max(1);
    let sample: Vec<u16> = all.iter().step_by(step).take(LINK_SAMPLE).copied().collect();
    let mut timed = Vec::new();
    {
        let sem = Arc::new(tokio::sync::Semaphore::new(8));
        let mut tasks = tokio::task::JoinSet::new();
        for &port in &sample {
            let (k, sem) = (k.clone(), sem.clone());
            tasks.spawn(async move {
                let _p = sem.acquire_owned().await;
                let t0 = tokio::time::Instant::now();
                let r = k.knock(port, LINK_PROBE_WAIT).await;
                (r, t0.elapsed())
            });
        }
        while let Some(Ok(r)) = tasks.join_next().await {
            timed.push(r);
        }
    }
    let answered: Vec<Duration> = timed
        .iter()
        .filter(|(r, _)| *r != Knock::Silent)
        .map(|(_, d)| *d)
        .collect();
    let rtt = answered.iter().max().copied();
    let wait = rtt
        .map(|r| (r * 4 + Duration::from_millis(250)).clamp(MIN_CONNECT_TIMEOUT, MAX_CONNECT_TIMEOUT))
        .unwrap_or(MIN_CONNECT_TIMEOUT);
    // a slow link is not flooded: what is in flight must fit in a few round trips
    let concurrency = match rtt {
        Some(r) if r > Duration::from_millis(200) => CONCURRENCY / 8,
        _ => CONCURRENCY,
    };
    let mut out = Sweep {
        link: Link {
            rtt_ms: rtt.map(|d| d.as_millis() as u64),
            silent: timed.len() - answered.len(),
            wait_ms: wait.as_millis() as u64,
            concurrency,
        },
        ..Sweep::default()
    };
    let mut silent = Vec::new();
    let tally = |out: &mut Sweep, results: Vec<(u16, Knock)>, silent: &mut Vec<u16>, retry: bool| {
        for (p, r) in results {
            match r {
                Knock::Open => {
                    out.open.push(p);
                    if retry {
                        out.found_in_retry.push(p);
                    }
                }
                Knock::Refused => out.refused += 1,
                Knock::Silent => silent.push(p),
            }
        }
    };
    let first = knock_all(k, &all, wait, concurrency).await;
    tally(&mut out, first, &mut silent, false);
    let (mut wait, mut concurrency) = (wait, concurrency);
    while !silent.is_empty() && silent.len() <= MAX_RETRIED && out.retry_rounds < RETRY_ROUNDS {
        out.retry_rounds += 1;
        wait = (wait * 2).min(MAX_CONNECT_TIMEOUT);
        concurrency = (concurrency / 4).max(8);
        silent.sort_unstable();
        let again = std::mem::take(&mut silent);
        let results = knock_all(k, &again, wait, concurrency).await;
        tally(&mut out, results, &mut silent, true);
    }
    out.open.sort_unstable();
    silent.sort_unstable();
    out.silent = silent;
    out
}

/// TCP ports that accept a connection, ascending, and how many ports refused (RST): a
/// refusal shows the host answered, so an empty result means "nothing listens" only when
/// something was refused.
pub async fn tcp_open(host: IpAddr, ports: std::ops::RangeInclusive<u16>) -> (Vec<u16>, u32) {
    let s = sweep(&Tcp(host), ports).await;
    (s.open, s.refused)
}

fn printable(b: &[u8]) -> String {
    super::flows::excerpt(b, 120).trim_end_matches('.').to_string()
}

/// What an open TCP port is: first its own words, then a TLS probe, then an HTTP probe.
pub async fn identify_tcp(host: IpAddr, port: u16) -> OpenPort {
    let addr = SocketAddr::new(host, port);
    let mut p = OpenPort {
        proto: "tcp",
        port,
        service: "unknown".into(),
        banner: String::new(),
        said: Vec::new(),
        redirects_to_https: None,
    };
    // 1. a banner sent unasked
    if let Some(b) = exchange(addr, None, BANNER_WAIT, |b| !b.is_empty()).await
        && !b.is_empty()
    {
        p.say(&b);
        p.service = name_banner(&b).unwrap_or("unknown").into();
        return p;
    }
    // 2. a TLS server answers a ClientHello with a handshake record
    if let Some(b) = exchange(addr, Some(&client_hello(None)), BANNER_WAIT * 2, |b| b.len() >= 5).await {
        if b.len() >= 3 && (b[0] == 0x16 || b[0] == 0x15) && b[1] == 3 {
            p.service = "https".into();
            p.banner = "TLS handshake".into();
            return p;
        }
        if let Some(name) = name_banner(&b) {
            p.service = name.into();
            p.say(&b);
            return p;
        }
    }
    // 3. an HTTP server answers a request
    let req = format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: certbench-scan\r\n\r\n");
    let headers_read = |b: &[u8]| b.windows(4).any(|w| w == b"\r\n\r\n");
    if let Some(b) = exchange(addr, Some(req.as_bytes()), BANNER_WAIT * 2, headers_read).await {
        if b.starts_with(b"HTTP/") {
            let text = String::from_utf8_lossy(&b);
            p.service = "http".into();
            p.say(text.lines().next().unwrap_or("").as_bytes());
            let status = text.split_whitespace().nth(1).unwrap_or("");
            let to_https = status.starts_with('3')
                && text.lines().any(|l| {
                    let l = l.to_ascii_lowercase();
                    l.starts_with("location:") && l.contains("https://")
                });
            p.redirects_to_https = Some(to_https);
        } else if b.first() == Some(&0x20) {
            p.service = "mqtt".into();
        } else if !b.is_empty() {
            p.service = name_banner(&b).unwrap_or("unknown").into();
            p.say(&b);
        }
    }
    p
}

/// A service named by its first words.
fn name_banner(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"SSH-") {
        Some("ssh")
    } else if b.len() >= 2 && b[0] == 0xff && (0xfb..=0xfe).contains(&b[1]) {
        Some("telnet")
    } else if b.starts_with(b"220") && b.windows(4).any(|w| w.eq_ignore_ascii_case(b"SMTP")) {
        Some("smtp")
    } else if b.starts_with(b"220") {
        Some("ftp")
    } else if b.windows(6).any(|w| w.eq_ignore_ascii_case(b"login:")) {
        // a raw login prompt without telnet negotiation: still a clear-text console
        Some("telnet")
    } else {
        None
    }
}

/// Connects, sends `request` (if any) and reads what comes within `wait`, or until `enough`
/// says the answer is complete; None if the connection failed.
async fn exchange(
    addr: SocketAddr,
    request: Option<&[u8]>,
    wait: Duration,
    enough: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let mut s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    if let Some(r) = request {
        s.write_all(r).await.ok()?;
    }
    let mut buf = vec![0u8; 2048];
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + wait;
    while got < buf.len() {
        match tokio::time::timeout_at(deadline, s.read(&mut buf[got..])).await {
            Ok(Ok(n)) if n > 0 => {
                got += n;
                if enough(&buf[..got]) {
                    break;
                }
            }
            _ => break,
        }
    }
    buf.truncate(got);
    Some(buf)
}

/// A minimal TLS 1.2/1.3 ClientHello that any TLS server answers (with a server name when
/// given; a GREASE version as browsers send, RFC 8701).
pub(crate) fn client_hello(sni: Option<&str>) -> Vec<u8> {
    crate::tlswire::Hello::modern(sni).bytes()
}

/// (port, service, a request its servers answer)
fn udp_probes() -> Vec<(u16, &'static str, Vec<u8>)> {
    let mut dns = vec![0xcb, 0x01, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    dns.extend_from_slice(b"\x07example\x00\x00\x01\x00\x01");
    let mut mdns = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    mdns.extend_from_slice(b"\x09_services\x07_dns-sd\x04_udp\x05local\x00\x00\x0c\x00\x01");
    let mut ntp = vec![0u8; 48];
    ntp[0] = 0x23;
    // SNMPv2c get sysDescr.0, community "public"
    let snmp = vec![
        0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x1c, 0x02, 0x04, 0x12,
        0x34, 0x56, 0x78, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01,
        0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
    ];
    let ssdp =
        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n"
            .to_vec();
    // CoAP GET /.well-known/core
    let coap = b"\x40\x01\x7a\x01\xbb.well-known\x04core".to_vec();
    vec![
        (53, "dns", dns),
        (123, "ntp", ntp),
        (161, "snmp", snmp),
        (1900, "ssdp", ssdp),
        (5353, "mdns", mdns),
        (5683, "coap", coap),
    ]
}

/// UDP services that answer their protocol's request.
pub async fn udp_open(host: IpAddr) -> Vec<OpenPort> {
    let mut out = Vec::new();
    for (port, service, req) in udp_probes() {
        let bind: SocketAddr = if host.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let Ok(sock) = UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.connect(SocketAddr::new(host, port)).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 1500];
        // two tries: a lost datagram is not a closed port
        for _ in 0..2 {
            if sock.send(&req).await.is_err() {
                break;
            }
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(700), sock.recv(&mut buf)).await {
                let mut p = OpenPort {
                    proto: "udp",
                    port,
                    service: service.into(),
                    banner: String::new(),
                    said: Vec::new(),
                    redirects_to_https: None,
                };
                p.say(&buf[..n.min(120)]);
                out.push(p);
                break;
            }
        }
    }
    out
}

/// How long each part of a scan took, and what the sweep could not decide.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanTimes {
    pub tcp_sweep_ms: u128,
    /// Ports that refused the connection (the host answered on them).
    pub refused: u32,
    pub identify_ms: u128,
    pub udp_ms: u128,
    /// The link as measured before the sweep.
    pub link: Link,
    /// Retry rounds for ports that gave no answer, and the ports found open only then.
    pub retry_rounds: u32,
    pub found_in_retry: Vec<u16>,
    /// TCP ports that neither accepted nor refused after every retry: not observed.
    pub no_answer: Vec<u16>,
}

/// The whole scan: every TCP port, identified, and the UDP probes.
pub async fn scan(host: IpAddr) -> (Vec<OpenPort>, ScanTimes) {
    let mut out = Vec::new();
    let t = std::time::Instant::now();
    let sw = sweep(&Tcp(host), 1..=65_535).await;
    let tcp_sweep_ms = t.elapsed().as_millis();
    let t = std::time::Instant::now();
    for &port in &sw.open {
        out.push(identify_tcp(host, port).await);
    }
    let identify_ms = t.elapsed().as_millis();
    let t = std::time::Instant::now();
    out.extend(udp_open(host).await);
    (
        out,
        ScanTimes {
            tcp_sweep_ms,
            refused: sw.refused,
            identify_ms,
            udp_ms: t.elapsed().as_millis(),
            link: sw.link,
            retry_rounds: sw.retry_rounds,
            found_in_retry: sw.found_in_retry,
            no_answer: sw.silent,
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A scripted link: every port answers after `latency` (23 is open, the rest refuse),
    /// `lost_once` ports lose their first knock, `filtered` ports never answer.
    #[derive(Clone)]
    struct Scripted {
        latency: Duration,
        lost_once: Vec<u16>,
        filtered: Vec<u16>,
        seen: Arc<std::sync::Mutex<std::collections::HashMap<u16, u32>>>,
    }

    impl Scripted {
        fn new(latency_ms: u64, lost_once: &[u16], filtered: &[u16]) -> Self {
            Self {
                latency: Duration::from_millis(latency_ms),
                lost_once: lost_once.to_vec(),
                filtered: filtered.to_vec(),
                seen: Default::default(),
            }
        }
    }

    impl Knocker for Scripted {
        async fn knock(&self, port: u16, wait: Duration) -> Knock {
            let n = {
                let mut g = self.seen.lock().unwrap();
                let n = g.entry(port).or_default();
                *n += 1;
                *n
            };
            let lost = self.filtered.contains(&port) || (n == 1 && self.lost_once.contains(&port));
            if lost || self.latency > wait {
                tokio::time::sleep(wait).await;
                return Knock::Silent;
            }
            tokio::time::sleep(self.latency).await;
            if port == 23 { Knock::Open } else { Knock::Refused }
        }
    }

    #[test]
    fn a_banner_is_redacted_on_its_raw_bytes_before_it_is_made_printable() {
        let r = crate::redact::Redactor::default();
        r.add("device_password", "hunter2-long");
        let mut p = OpenPort {
            proto: "tcp",
            port: 23,
            service: "telnet".into(),
            banner: String::new(),
            said: Vec::new(),
            redirects_to_https: None,
        };
        p.say(b"motd: h\x1b[1mun\x1b[0mter2-long\r\nlogin: ");
        assert!(
            p.banner.contains("h.[1mun"),
            "made printable alone it hides the secret from a match"
        );
        let shown = p.shown(|b| r.redact_window(b, &[]));
        assert!(
            shown.contains("<secret:device_password>") && !shown.contains("ter2"),
            "{shown}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_link_gets_waits_fitted_to_it_and_no_port_is_missed() {
        // 2.5 s to answer: a fixed 1.5 s wait would have called every port closed
        let s = sweep(&Scripted::new(2500, &[], &[]), 1..=3000).await;
        assert_eq!(s.open, vec![23]);
        assert!(s.silent.is_empty(), "{:?}", s.silent.len());
        assert_eq!(s.refused, 2999);
        assert_eq!(s.link.rtt_ms, Some(2500));
        assert!(s.link.wait_ms >= 10_000, "{:?}", s.link);
        assert!(s.link.concurrency < CONCURRENCY, "a slow link is not flooded");
    }

    #[tokio::test(start_paused = true)]
    async fn a_port_whose_first_knock_was_lost_is_found_by_a_retry() {
        let s = sweep(&Scripted::new(5, &[23, 80], &[]), 1..=3000).await;
        assert_eq!(s.open, vec![23]);
        assert_eq!(s.found_in_retry, vec![23]);
        assert!(s.silent.is_empty());
        assert!(s.retry_rounds >= 1);
    }

    #[tokio::test(start_paused = true)]
    async fn ports_that_never_answer_are_reported_not_called_closed() {
        let filtered: Vec<u16> = (1000..=1010).collect();
        let s = sweep(&Scripted::new(5, &[], &filtered), 1..=3000).await;
        assert_eq!(s.silent, filtered);
        assert_eq!(s.retry_rounds, RETRY_ROUNDS);
    }

    #[tokio::test]
    async fn a_real_port_that_drops_syns_is_silent_not_closed() {
        // a listener whose accept queue is full: the kernel drops further SYNs unanswered
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        sock.listen(0).unwrap();
        let port = sock.local_addr().unwrap().as_socket().unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut held = Vec::new();
        for _ in 0..4 {
            if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
                held.push(c);
            }
        }
        let s = sweep(&Tcp(IpAddr::from([127, 0, 0, 1])), port..=port).await;
        assert_eq!(s.silent, vec![port], "{s:?}");
        assert!(s.open.is_empty());
        drop(sock);
    }

    #[tokio::test]
    async fn open_ports_are_found_and_named_by_what_they_say() {
        let telnet = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tp, hp) = (telnet.local_addr().unwrap().port(), http.local_addr().unwrap().port());
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = telnet.accept().await else { return };
                let _ = s.write_all(b"\xff\xfd\x18\xff\xfb\x01").await;
            }
        });
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = http.accept().await else { return };
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
            }
        });
        let host = IpAddr::from([127, 0, 0, 1]);
        let lo = tp.min(hp);
        let hi = tp.max(hp);
        let (open, _) = tcp_open(host, lo..=hi).await;
        assert!(open.contains(&tp) && open.contains(&hp), "{open:?}");
        let t = identify_tcp(host, tp).await;
        assert_eq!(t.service, "telnet");
        assert!(t.plaintext_management());
        let h = identify_tcp(host, hp).await;
        assert_eq!(h.service, "http");
        assert_eq!(h.redirects_to_https, Some(false));
        assert!(h.plaintext_management());
        // a closed port answers with a refusal: the positive control of an empty scan
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(tcp_open(host, closed..=closed).await, (vec![], 1));
    }
}
