//! A DHCP server for a real board's link (lab `bench.dhcp: true`, RFC 2131/2132): the board
//! gets its declared address (`bench.device_address`) with the bench as its router and name
//! server, so its names resolve at the bench and every flow crosses the captured link, with
//! no change to the lab's own DHCP. Only the board's MAC (`bench.device_mac`) is answered: a
//! server that leased to every host on a lab segment would take other machines' traffic.
//! Every message is recorded (dhcp.jsonl): a device's host name, vendor class and requested
//! options are what it tells the network about itself.
//!
//! certbench serves DHCP itself rather than starting dnsmasq: it must answer exactly one MAC
//! with exactly one address, record every request for the evidence, and stop with the run;
//! nothing else on the lab machine needs configuring, and no lab dependency is added.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};

/// Messages kept in the record (later ones are counted).
const MAX_RECORDS: usize = 10_000;
const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// What the board is given.
#[derive(Debug, Clone)]
pub struct Lease {
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    /// The bench's address on the link: server identifier, router and name server.
    pub server: Ipv4Addr,
    pub prefix: u8,
    pub seconds: u32,
}

/// One message the bench saw, and what it did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub at_ms: u128,
    pub mac: String,
    /// DISCOVER, REQUEST, ...
    pub kind: String,
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
    pub requested_address: Option<String>,
    /// The options the client asked for (option 55), by number.
    pub parameters: Vec<u8>,
    /// "OFFER 192.168.7.20", "ACK ...", "NAK: ...", "ignored: ...".
    pub answer: String,
}

#[derive(Debug, Default)]
pub struct DhcpLog {
    pub events: Vec<Event>,
    pub dropped: u64,
    pub malformed: u64,
}

/// A client message, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub xid: [u8; 4],
    pub flags: [u8; 2],
    pub ciaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Option 53.
    pub kind: u8,
    pub requested: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
    pub parameters: Vec<u8>,
}

fn kind_name(k: u8) -> String {
    match k {
        1 => "DISCOVER".into(),
        2 => "OFFER".into(),
        3 => "REQUEST".into(),
        4 => "DECLINE".into(),
        5 => "ACK".into(),
        6 => "NAK".into(),
        7 => "RELEASE".into(),
        8 => "INFORM".into(),
        k => format!("type {k}"),
    }
}

pub fn mac_text(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub use crate::util::parse_mac;

fn printable(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(64)
        .collect()
}

/// Parses a BOOTREQUEST from an Ethernet client; anything else is None.
pub fn parse(p: &[u8]) -> Option<Message> {
    if p.len() < 240 || p[0] != 1 || p[1] != 1 || p[2] != 6 || p[236..240] != MAGIC {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]);
    let mut m = Message {
        xid: [p[4], p[5], p[6], p[7]],
        flags: [p[10], p[11]],
        ciaddr: ip(12),
        chaddr: [p[28], p[29], p[30], p[31], p[32], p[33]],
        kind: 0,
        requested: None,
        server_id: None,
        hostname: None,
        vendor_class: None,
        parameters: Vec::new(),
    };
    let mut at = 240;
    while at < p.len() {
        let code = p[at];
        if code == 0 {
            at += 1;
            continue;
        }
        if code == 255 {
            break;
        }
        let len = *p.get(at + 1)? as usize;
        let v = p.get(at + 2..at + 2 + len)?;
        match (code, len) {
            (53, 1) => m.kind = v[0],
            (50, 4) => m.requested = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
            (54, 4) => m.server_id = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
            (12, _) => m.hostname = Some(printable(v)),
            (60, _) => m.vendor_class = Some(printable(v)),
            (55, _) => m.parameters = v.to_vec(),
            _ => {}
        }
        at += 2 + len;
    }
    (m.kind != 0).then_some(m)
}

/// A BOOTREPLY of `kind` (OFFER, ACK, NAK) to `m`.
pub fn reply(m: &Message, kind: u8, lease: &Lease) -> Vec<u8> {
    let mut r = vec![0u8; 240];
    r[0] = 2;
    r[1] = 1;
    r[2] = 6;
    r[4..8].copy_from_slice(&m.xid);
    r[10..12].copy_from_slice(&m.flags);
    if kind != 6 {
        r[12..16].copy_from_slice(&m.ciaddr.octets());
        r[16..20].copy_from_slice(&lease.address.octets());
        r[20..24].copy_from_slice(&lease.server.octets());
    }
    r[28..34].copy_from_slice(&m.chaddr);
    r[236..240].copy_from_slice(&MAGIC);
    r.extend_from_slice(&[53, 1, kind]);
    r.extend_from_slice(&[54, 4]);
    r.extend_from_slice(&lease.server.octets());
    if kind != 6 {
        let mask = mask(lease.prefix);
        r.extend_from_slice(&[51, 4]);
        r.extend_from_slice(&lease.seconds.to_be_bytes());
        r.extend_from_slice(&[1, 4]);
        r.extend_from_slice(&mask.to_be_bytes());
        r.extend_from_slice(&[3, 4]);
        r.extend_from_slice(&lease.server.octets());
        r.extend_from_slice(&[6, 4]);
        r.extend_from_slice(&lease.server.octets());
    }
    r.push(255);
    // BOOTP's minimum message size
    if r.len() < 300 {
        r.resize(300, 0);
    }
    r
}

/// What the server answers to `m`: the reply kind (or None) and the words for the record.
pub fn decide(m: &Message, lease: &Lease) -> (Option<u8>, String) {
    if m.chaddr != lease.mac {
        return (None, "ignored: not the device's MAC".into());
    }
    match m.kind {
        1 => (Some(2), format!("OFFER {}", lease.address)),
        3 => {
            if m.server_id.is_some_and(|s| s != lease.server) {
                return (None, "ignored: the device chose another server's offer".into());
            }
            let wanted = m.requested.or((m.ciaddr != Ipv4Addr::UNSPECIFIED).then_some(m.ciaddr));
            match wanted {
                Some(a) if a == lease.address => (Some(5), format!("ACK {}", lease.address)),
                Some(a) => (
                    Some(6),
                    format!("NAK: asked for {a}, the device's address is {}", lease.address),
                ),
                None => (Some(6), "NAK: no address asked for".into()),
            }
        }
        k => (None, format!("recorded ({})", kind_name(k))),
    }
}

/// A running DHCP server; stops when dropped.
#[derive(Debug)]
pub struct DhcpServer {
    pub log: Arc<Mutex<DhcpLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DhcpServer {
    /// Serves on UDP port 67 of `iface` only (SO_BINDTODEVICE, so no other link is answered).
    pub fn start(iface: &str, lease: Lease) -> std::io::Result<DhcpServer> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.bind_device(Some(iface.as_bytes()))?;
        s.set_reuse_address(true)?;
        s.set_broadcast(true)?;
        s.set_nonblocking(true)?;
        s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67).into())?;
        let sock = tokio::net::UdpSocket::from_std(s.into())?;
        let log = Arc::new(Mutex::new(DhcpLog::default()));
        let l = log.clone();
        let t0 = std::time::Instant::now();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, _from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let Some(m) = parse(&buf[..n]) else {
                    if let Ok(mut g) = l.lock() {
                        g.malformed += 1;
                    }
                    continue;
                };
                let (kind, answer) = decide(&m, &lease);
                if let Some(k) = kind {
                    let r = reply(&m, k, &lease);
                    // the client has no address yet: broadcast on the link (RFC 2131 4.1)
                    let to = if m.ciaddr != Ipv4Addr::UNSPECIFIED && k == 5 {
                        SocketAddrV4::new(m.ciaddr, 68)
                    } else {
                        SocketAddrV4::new(Ipv4Addr::BROADCAST, 68)
                    };
                    let _ = sock.send_to(&r, to).await;
                }
                if let Ok(mut g) = l.lock() {
                    if g.events.len() < MAX_RECORDS {
                        g.events.push(Event {
                            at_ms: t0.elapsed().as_millis(),
                            mac: mac_text(&m.chaddr),
                            kind: kind_name(m.kind),
                            hostname: m.hostname.clone(),
                            vendor_class: m.vendor_class.clone(),
                            requested_address: m.requested.map(|a| a.to_string()),
                            parameters: m.parameters.clone(),
                            answer,
                        });
                    } else {
                        g.dropped += 1;
                    }
                }
            }
        });
        Ok(DhcpServer { log, task })
    }

    /// The record, one JSON object per line.
    pub fn jsonl(&self) -> String {
        let g = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = crate::util::jsonl(&g.events);
        if g.dropped > 0 || g.malformed > 0 {
            out.push_str(&format!(
                "{{\"dropped\":{},\"malformed\":{}}}\n",
                g.dropped, g.malformed
            ));
        }
        out
    }
}

/// The first IPv4 address and prefix of `iface` (`ip -o -4 addr show dev IFACE`).
pub fn interface_address(iface: &str) -> Result<(Ipv4Addr, u8), String> {
    let text = super::netns::ip(&["-o", "-4", "addr", "show", "dev", iface]).map_err(|e| e.to_string())?;
    super::netns::inet_addresses(&text)
        .into_iter()
        .next()
        .ok_or_else(|| format!("{iface} has no IPv4 address: give the bench's end of the board's link one"))
}

/// The netmask of a prefix length, as a number.
fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// Whether `a` and `b` share the first `prefix` bits.
pub fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    u32::from(a) & mask(prefix) == u32::from(b) & mask(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease {
            mac: [2, 0, 0, 0, 0, 0x20],
            address: Ipv4Addr::new(198, 19, 254, 2),
            server: Ipv4Addr::new(198, 19, 254, 1),
            prefix: 29,
            seconds: 3600,
        }
    }

    fn request(kind: u8, mac: [u8; 6], opts: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[0] = 1;
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&[1, 2, 3, 4]);
        p[28..34].copy_from_slice(&mac);
        p[236..240].copy_from_slice(&MAGIC);
        p.extend_from_slice(&[53, 1, kind]);
        p.extend_from_slice(opts);
        p.push(255);
        p
    }

    #[test]
    fn the_devices_mac_gets_its_address_others_nothing() {
        let l = lease();
        let d = parse(&request(1, l.mac, &[12, 4, b'b', b'o', b'a', b'r', 55, 3, 1, 3, 6])).expect("parses");
        assert_eq!(d.hostname.as_deref(), Some("boar"));
        assert_eq!(d.parameters, vec![1, 3, 6]);
        let (k, why) = decide(&d, &l);
        assert_eq!((k, why.as_str()), (Some(2), "OFFER 198.19.254.2"));
        let offer = reply(&d, 2, &l);
        assert_eq!(&offer[16..20], &[198, 19, 254, 2]);
        assert!(offer.windows(6).any(|w| w == [1, 4, 255, 255, 255, 248]), "mask /29");
        assert!(offer.windows(6).any(|w| w == [6, 4, 198, 19, 254, 1]), "DNS: the bench");
        let other = parse(&request(1, [2, 0, 0, 0, 0, 0x99], &[])).expect("parses");
        assert_eq!(decide(&other, &l).0, None);
        // REQUEST for the offered address, for another, for another server's offer
        let ok = parse(&request(3, l.mac, &[50, 4, 198, 19, 254, 2, 54, 4, 198, 19, 254, 1])).expect("parses");
        assert_eq!(decide(&ok, &l).0, Some(5));
        let wrong = parse(&request(3, l.mac, &[50, 4, 10, 0, 0, 9])).expect("parses");
        assert_eq!(decide(&wrong, &l).0, Some(6));
        let elsewhere = parse(&request(3, l.mac, &[50, 4, 198, 19, 254, 2, 54, 4, 10, 0, 0, 1])).expect("parses");
        assert_eq!(decide(&elsewhere, &l).0, None);
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert!(parse(&[]).is_none());
        assert!(parse(&[1u8; 239]).is_none());
        let mut p = request(1, [0; 6], &[]);
        p[236] = 0;
        assert!(parse(&p).is_none(), "no magic cookie");
        // an option running past the end
        let mut p = request(1, [0; 6], &[]);
        p.pop();
        p.extend_from_slice(&[12, 200, b'x']);
        assert!(parse(&p).is_none());
        assert_eq!(parse_mac("02:00:00:00:00:20"), Some([2, 0, 0, 0, 0, 0x20]));
        assert_eq!(parse_mac("02-00-00-00-00-2"), None);
        assert!(same_subnet(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 1), 24));
        assert!(!same_subnet(Ipv4Addr::new(10, 0, 1, 9), Ipv4Addr::new(10, 0, 0, 1), 24));
    }
}
