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

/// Connections in flight at once.
const CONCURRENCY: usize = 512;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
const BANNER_WAIT: Duration = Duration::from_millis(2000);

/// One open port and what it is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenPort {
    pub proto: &'static str,
    pub port: u16,
    /// telnet, ssh, ftp, smtp, http, https (TLS), mqtt, dns, ntp, snmp, ssdp, mdns, coap, unknown
    pub service: String,
    /// What the port said first (printable excerpt).
    pub banner: String,
    /// For HTTP: the redirect target when it sends the client to HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirects_to_https: Option<bool>,
}

impl OpenPort {
    /// A management protocol that carries credentials or commands in clear.
    pub fn plaintext_management(&self) -> bool {
        match self.service.as_str() {
            "telnet" | "ftp" => true,
            "http" => self.redirects_to_https != Some(true),
            _ => false,
        }
    }
}

/// TCP ports that accept a connection, ascending, and how many ports refused (RST): a
/// refusal shows the host answered, so an empty result means "nothing listens" only when
/// something was refused.
pub async fn tcp_open(host: IpAddr, ports: std::ops::RangeInclusive<u16>) -> (Vec<u16>, u32) {
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let mut open = Vec::new();
    let mut refused = 0u32;
    let mut tally = |r: Result<Result<u16, bool>, tokio::task::JoinError>| match r {
        Ok(Ok(p)) => open.push(p),
        Ok(Err(true)) => refused += 1,
        _ => {}
    };
    for port in ports {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        tasks.spawn(async move {
            let _p = permit;
            let addr = SocketAddr::new(host, port);
            // Err(true): refused, the host answered; Err(false): no answer
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(port),
                Ok(Err(e)) => Err(e.kind() == std::io::ErrorKind::ConnectionRefused),
                Err(_) => Err(false),
            }
        });
        // keep the set small
        while tasks.len() > CONCURRENCY * 2 {
            if let Some(r) = tasks.join_next().await {
                tally(r);
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        tally(r);
    }
    open.sort_unstable();
    (open, refused)
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
        redirects_to_https: None,
    };
    // 1. a banner sent unasked
    if let Some(b) = exchange(addr, None, BANNER_WAIT, |b| !b.is_empty()).await
        && !b.is_empty()
    {
        p.banner = printable(&b);
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
            p.banner = printable(&b);
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
            p.banner = printable(text.lines().next().unwrap_or("").as_bytes());
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
            p.banner = printable(&b);
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
                out.push(OpenPort {
                    proto: "udp",
                    port,
                    service: service.into(),
                    banner: printable(&buf[..n.min(120)]),
                    redirects_to_https: None,
                });
                break;
            }
        }
    }
    out
}

/// How long each part of a scan took.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ScanTimes {
    pub tcp_sweep_ms: u128,
    /// Ports that refused the connection (the host answered on them).
    pub refused: u32,
    pub identify_ms: u128,
    pub udp_ms: u128,
}

/// The whole scan: every TCP port, identified, and the UDP probes.
pub async fn scan(host: IpAddr) -> (Vec<OpenPort>, ScanTimes) {
    let mut out = Vec::new();
    let t = std::time::Instant::now();
    let (open, refused) = tcp_open(host, 1..=65_535).await;
    let tcp_sweep_ms = t.elapsed().as_millis();
    let t = std::time::Instant::now();
    for port in open {
        out.push(identify_tcp(host, port).await);
    }
    let identify_ms = t.elapsed().as_millis();
    let t = std::time::Instant::now();
    out.extend(udp_open(host).await);
    (
        out,
        ScanTimes {
            tcp_sweep_ms,
            refused,
            identify_ms,
            udp_ms: t.elapsed().as_millis(),
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
