//! The flow table: every TCP/UDP conversation the device took part in, and what protocol
//! it spoke, identified from the bytes (never from the port alone).
//!
//! Each packet is parsed once (Ethernet, optional VLAN tags, IPv4/IPv6, TCP/UDP) and added
//! to its flow: counts, the first packet numbers, the first bytes each side sent. No
//! stream reassembly: the head of a direction is its payload in arrival order, which is
//! what protocol identification needs. Memory is bounded: at most `MAX_FLOWS` flows, of
//! them `MAX_DATA_FLOWS` with data, and `HEAD` bytes per direction.

use crate::model::Transport;
use std::collections::HashMap;
use std::net::IpAddr;

/// Bytes kept from the start of each direction of a flow.
pub const HEAD: usize = 512;
/// Flows kept per board (two full port scans fit: a flow without data costs ≈ 350 bytes);
/// later ones are counted (by peer, see [`FlowTable::dropped_by_peer`]), not stored, and
/// the traffic check that meets them ERRORs saying so.
pub const MAX_FLOWS: usize = 200_000;
/// Of those, flows that carry application data (their first bytes are kept, ≈ 1.5 KiB a
/// flow): a flood of one-packet flows stops being stored here, ≈ 25 MiB a board.
pub const MAX_DATA_FLOWS: usize = 16_384;
/// Peers the summary of dropped flows names.
const MAX_DROPPED_PEERS: usize = 64;
/// Packet numbers kept per flow (the first ones, for the report).
const KEEP_PACKETS: usize = 8;

/// A parsed packet's addressing and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet<'a> {
    pub transport: Transport,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// TCP flags (0 for UDP).
    pub flags: u8,
    /// TCP sequence number (0 for UDP).
    pub seq: u32,
    pub payload: &'a [u8],
}

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Parses an Ethernet frame down to its TCP or UDP payload; anything else is None.
pub fn parse(frame: &[u8]) -> Option<Packet<'_>> {
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    at += 2;
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = u16::from_be_bytes([*frame.get(at + 2)?, *frame.get(at + 3)?]);
        at += 4;
    }
    let ip = frame.get(at..)?;
    let (src, dst, proto, l4) = match ethertype {
        0x0800 => {
            let ihl = ((*ip.first()? & 0x0f) as usize) * 4;
            if ip.first()? >> 4 != 4 || ihl < 20 {
                return None;
            }
            let total = u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]) as usize;
            // a fragment other than the first carries no transport header
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
            if frag != 0 {
                return None;
            }
            let end = total.clamp(ihl, ip.len());
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), ip[9], ip.get(ihl..end)?)
        }
        0x86dd => {
            if ip.first()? >> 4 != 6 {
                return None;
            }
            let plen = u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]) as usize;
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let end = (40 + plen).min(ip.len());
            (IpAddr::from(s), IpAddr::from(d), ip[6], ip.get(40..end)?)
        }
        _ => return None,
    };
    match proto {
        6 => {
            let off = ((*l4.get(12)? >> 4) as usize) * 4;
            Some(Packet {
                transport: Transport::Tcp,
                src,
                sport: u16::from_be_bytes([l4[0], l4[1]]),
                dst,
                dport: u16::from_be_bytes([l4[2], l4[3]]),
                flags: *l4.get(13)?,
                seq: u32::from_be_bytes(l4.get(4..8)?.try_into().ok()?),
                payload: l4.get(off.max(20)..)?,
            })
        }
        17 => Some(Packet {
            transport: Transport::Udp,
            src,
            sport: u16::from_be_bytes([*l4.first()?, *l4.get(1)?]),
            dst,
            dport: u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]),
            flags: 0,
            seq: 0,
            payload: l4.get(8..)?,
        }),
        _ => None,
    }
}

/// Who opened a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Device,
    Peer,
}

/// What one side of a flow sent.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Direction {
    pub packets: u64,
    pub bytes: u64,
    /// Application bytes (TCP/UDP payload).
    pub payload: u64,
    /// The first application bytes, in arrival order.
    #[serde(skip)]
    pub head: Vec<u8>,
    /// Numbers (1-based, as in the pcapng) of the first packets carrying payload.
    pub data_packets: Vec<u64>,
    /// TLS record types seen at the start of a segment (20..=23).
    #[serde(skip)]
    pub tls_records: u8,
    /// TCP: every flag this side set (SYN, RST, …), OR-ed.
    #[serde(skip)]
    pub tcp_flags: u8,
    /// UDP: the kinds its datagrams were identified as, each by port and structure (a bit
    /// per [`datagram::Kind`]), and how many matched none.
    #[serde(skip)]
    pub udp_kinds: u16,
    pub unidentified_datagrams: u64,
    /// Of those, how many carried readable text.
    pub text_datagrams: u64,
    /// The first unidentified datagram (at most half of [`HEAD`]), for the verdict's excerpt.
    #[serde(skip)]
    pub unidentified: Vec<u8>,
}

impl Direction {
    /// One UDP datagram of this direction, identified on its own (`quic`: the flow already
    /// began with a QUIC long header, so short-header packets of ciphertext are QUIC too).
    fn add_datagram(&mut self, ports: [u16; 2], payload: &[u8], quic: bool) {
        use super::datagram::{Kind, clear_text, kind, plausible_ciphertext};
        if payload.is_empty() {
            return;
        }
        let k = kind(ports, payload).or_else(|| {
            (quic && payload[0] & 0xc0 == 0x40 && payload.len() >= 21 && plausible_ciphertext(&payload[1..]))
                .then_some(Kind::Quic)
        });
        match k {
            Some(k) => self.udp_kinds |= k.bit(),
            None => {
                self.unidentified_datagrams += 1;
                if clear_text(payload).is_some() {
                    self.text_datagrams += 1;
                }
                if self.unidentified.is_empty() {
                    self.unidentified = payload[..payload.len().min(HEAD / 2)].to_vec();
                }
            }
        }
    }

    fn add(&mut self, number: u64, len: usize, payload: &[u8]) {
        self.packets += 1;
        self.bytes += len as u64;
        if payload.is_empty() {
            return;
        }
        self.payload += payload.len() as u64;
        if self.data_packets.len() < KEEP_PACKETS {
            self.data_packets.push(number);
        }
        if self.head.len() < HEAD {
            let n = (HEAD - self.head.len()).min(payload.len());
            self.head.extend_from_slice(&payload[..n]);
        }
        if payload.len() >= 5 && (20..=23).contains(&payload[0]) && payload[1] == 3 && payload[2] <= 4 {
            self.tls_records |= 1 << (payload[0] - 20);
        }
    }
}

/// One conversation of the device (TCP connection or UDP exchange).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Flow {
    pub transport: Transport,
    pub device_port: u16,
    pub peer: IpAddr,
    pub peer_port: u16,
    pub opened_by: Side,
    /// Packet numbers (1-based) of the flow's first packets.
    pub packets: Vec<u64>,
    /// From the device.
    pub sent: Direction,
    /// To the device.
    pub received: Direction,
    /// Its data came when the table's data slots were full: counted as dropped, not judged.
    #[serde(skip)]
    pub unfollowed: bool,
}

impl Flow {
    /// (client, server) directions: the opener is the client.
    pub fn client_server(&self) -> (&Direction, &Direction) {
        match self.opened_by {
            Side::Device => (&self.sent, &self.received),
            Side::Peer => (&self.received, &self.sent),
        }
    }

    pub fn payload(&self) -> u64 {
        self.sent.payload + self.received.payload
    }

    /// The bytes that show what the flow carried: a UDP flow's first unidentified datagram,
    /// else the client's first bytes (the server's when the client sent none).
    pub fn sample(&self) -> &[u8] {
        let (c, s) = self.client_server();
        for d in [c, s] {
            if !d.unidentified.is_empty() {
                return &d.unidentified;
            }
        }
        if c.head.is_empty() { &s.head } else { &c.head }
    }

    /// Why the bench could not see what this flow would have carried: a TCP connection the
    /// device opened and sent nothing on because its peer refused it (a reset, no SYN-ACK)
    /// or never answered. None for every other flow.
    pub fn unobserved(&self) -> Option<&'static str> {
        if self.transport != Transport::Tcp || self.opened_by != Side::Device || self.sent.payload > 0 {
            return None;
        }
        if self.received.packets == 0 {
            Some("unanswered")
        } else if self.received.tcp_flags & RST != 0 && self.received.tcp_flags & SYN == 0 {
            Some("refused")
        } else {
            None
        }
    }

    pub fn data_packets(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .sent
            .data_packets
            .iter()
            .chain(&self.received.data_packets)
            .copied()
            .collect();
        v.sort_unstable();
        v.truncate(KEEP_PACKETS);
        v
    }
}

/// (transport, the device's address, its port, the peer, the peer's port)
type Key = (Transport, IpAddr, u16, IpAddr, u16);

/// All flows of the device on its link, built packet by packet.
#[derive(Debug, Clone)]
pub struct FlowTable {
    pub device: Option<IpAddr>,
    pub flows: Vec<Flow>,
    index: HashMap<Key, usize>,
    /// Names the device looked up, by the address the answer gave (from DNS answers seen;
    /// several when a sinkhole answers every name with one address).
    pub names: HashMap<IpAddr, Vec<String>>,
    /// Every packet seen (the last packet's number).
    pub packets: u64,
    /// Packets the device sent (any protocol, ARP included): the positive control.
    pub device_packets: u64,
    /// The source MAC addresses of the frames the device sent (at most 16: what the device
    /// shows the world of its hardware, for PWD-05).
    pub device_macs: std::collections::BTreeSet<[u8; 6]>,
    /// TCP/UDP packets between other hosts on the link (never the device's).
    pub foreign_packets: u64,
    /// Flows not stored (or no longer followed) because the table was full.
    pub dropped_flows: u64,
    /// Flows stored that carry application data.
    pub data_flows: usize,
    /// Of those, how many went to each peer (transport, address; the first
    /// [`MAX_DROPPED_PEERS`] peers), for the message that says what was not judged.
    pub dropped_by_peer: Vec<((Transport, IpAddr), u64)>,
}

impl FlowTable {
    pub fn new(device: Option<IpAddr>) -> Self {
        Self {
            device,
            flows: Vec::new(),
            index: HashMap::new(),
            names: HashMap::new(),
            packets: 0,
            device_packets: 0,
            device_macs: Default::default(),
            foreign_packets: 0,
            dropped_flows: 0,
            data_flows: 0,
            dropped_by_peer: Vec::new(),
        }
    }

    /// Adds one captured frame (`number` is its 1-based position in the capture).
    pub fn add(&mut self, number: u64, frame: &[u8], from_device_link: bool) {
        self.packets = number;
        if from_device_link
            && self.device_macs.len() < 16
            && let Some(src) = frame.get(6..12)
        {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(src);
            self.device_macs.insert(mac);
        }
        let Some(p) = parse(frame) else {
            if from_device_link {
                self.device_packets += 1;
            }
            return;
        };
        let out_key = (p.transport, p.src, p.sport, p.dst, p.dport);
        let in_key = (p.transport, p.dst, p.dport, p.src, p.sport);
        let outbound = match self.device {
            Some(d) if p.src == d => true,
            Some(d) if p.dst == d => false,
            Some(_) => {
                self.foreign_packets += 1;
                return;
            }
            // no address known: a known flow keeps its sides; a new one is the sender's
            None if self.index.contains_key(&in_key) => false,
            None => self.index.contains_key(&out_key) || from_device_link,
        };
        if outbound {
            self.device_packets += 1;
        }
        let key = if outbound { out_key } else { in_key };
        if p.transport == Transport::Udp && !outbound && (p.sport == 53 || p.sport == 5353) {
            for (addr, name) in dns_answers(p.payload) {
                let names = self.names.entry(addr).or_default();
                if !names.contains(&name) && names.len() < 8 {
                    names.push(name);
                }
            }
        }
        let data_full = self.data_flows >= MAX_DATA_FLOWS && !p.payload.is_empty();
        let i = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                if self.flows.len() >= MAX_FLOWS || data_full {
                    self.drop_flow(p.transport, key.3);
                    return;
                }
                // TCP: the SYN's sender opened it; otherwise whoever spoke first
                let device_opened = if p.transport == Transport::Tcp && p.flags & (SYN | ACK) == SYN | ACK {
                    !outbound
                } else {
                    outbound
                };
                self.flows.push(Flow {
                    transport: p.transport,
                    device_port: key.2,
                    peer: key.3,
                    peer_port: key.4,
                    opened_by: if device_opened { Side::Device } else { Side::Peer },
                    packets: Vec::new(),
                    sent: Direction::default(),
                    received: Direction::default(),
                    unfollowed: false,
                });
                self.index.insert(key, self.flows.len() - 1);
                self.flows.len() - 1
            }
        };
        let f = &self.flows[i];
        if f.payload() == 0 && !p.payload.is_empty() {
            // the flow starts carrying data: it needs a data slot, or is no longer followed
            if f.unfollowed {
                return;
            }
            if data_full {
                self.flows[i].unfollowed = true;
                self.drop_flow(p.transport, key.3);
                return;
            }
            self.data_flows += 1;
        }
        let f = &mut self.flows[i];
        if f.packets.len() < KEEP_PACKETS {
            f.packets.push(number);
        }
        if p.transport == Transport::Udp {
            let quic_bit = super::datagram::Kind::Quic.bit();
            let quic = (f.sent.udp_kinds | f.received.udp_kinds) & quic_bit != 0;
            let ports = [f.device_port, f.peer_port];
            if outbound {
                f.sent.add_datagram(ports, p.payload, quic);
            } else {
                f.received.add_datagram(ports, p.payload, quic);
            }
        }
        let d = if outbound { &mut f.sent } else { &mut f.received };
        d.tcp_flags |= p.flags;
        d.add(number, frame.len(), p.payload);
    }
}

impl FlowTable {
    /// Counts a flow the table does not store or follow, by peer.
    fn drop_flow(&mut self, transport: Transport, peer: IpAddr) {
        self.dropped_flows += 1;
        let key = (transport, peer);
        let room = self.dropped_by_peer.len() < MAX_DROPPED_PEERS;
        match self.dropped_by_peer.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None if room => self.dropped_by_peer.push((key, 1)),
            None => {}
        }
    }
}

/// A protocol as identified from a flow's bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tls {
        /// The ClientHello's highest offered version, e.g. "TLS 1.3".
        version: String,
        sni: Option<String>,
        /// Both sides sent encrypted application records.
        completed: bool,
    },
    Dtls,
    Ssh,
    Quic,
    Mqtt,
    Http,
    Telnet,
    Ftp,
    Smtp,
    Coap,
    Dns,
    Mdns,
    Ntp,
    Dhcp,
    Ssdp,
    Syslog,
    /// Bytes no rule recognised: judged by a person, with an entropy estimate — unless
    /// they carry readable text, which is clear text whatever protocol it is.
    Unknown {
        entropy: f64,
        clear_text: bool,
    },
    /// No application bytes either way (a refused or idle connection).
    NoData,
}

impl Protocol {
    /// Short lower-case name, as the maker's exemptions list it.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Tls { .. } => "tls",
            Protocol::Dtls => "dtls",
            Protocol::Ssh => "ssh",
            Protocol::Quic => "quic",
            Protocol::Mqtt => "mqtt",
            Protocol::Http => "http",
            Protocol::Telnet => "telnet",
            Protocol::Ftp => "ftp",
            Protocol::Smtp => "smtp",
            Protocol::Coap => "coap",
            Protocol::Dns => "dns",
            Protocol::Mdns => "mdns",
            Protocol::Ntp => "ntp",
            Protocol::Dhcp => "dhcp",
            Protocol::Ssdp => "ssdp",
            Protocol::Syslog => "syslog",
            Protocol::Unknown { .. } => "unknown",
            Protocol::NoData => "no_data",
        }
    }

    /// Protocols whose application data travels readable by anyone on the path.
    pub fn is_plaintext(&self) -> bool {
        matches!(
            self,
            Protocol::Mqtt
                | Protocol::Http
                | Protocol::Telnet
                | Protocol::Ftp
                | Protocol::Smtp
                | Protocol::Coap
                | Protocol::Dns
                | Protocol::Mdns
                | Protocol::Ntp
                | Protocol::Dhcp
                | Protocol::Ssdp
                | Protocol::Syslog
        )
    }
}

/// Identifies the protocol of a flow from what each side sent.
pub fn classify(f: &Flow) -> Protocol {
    let (c, s) = f.client_server();
    if f.payload() == 0 {
        return Protocol::NoData;
    }
    let (ch, sh) = (c.head.as_slice(), s.head.as_slice());
    match f.transport {
        Transport::Tcp => {
            // the server's own words first: a device's service is what it answers, whatever
            // a client (a scanner's TLS or HTTP probe) sent it
            let server_tls = sh.is_empty() || (sh.len() >= 3 && (sh[0] == 0x15 || sh[0] == 0x16) && sh[1] == 3);
            if server_tls && let Some(t) = tls_hello(ch) {
                let completed = c.tls_records & (1 << 3) != 0 && s.tls_records & (1 << 3) != 0;
                return Protocol::Tls {
                    version: t.0,
                    sni: t.1,
                    completed,
                };
            }
            // TLS records without a ClientHello in view: a mid-stream start, or a server
            // answering a client that sent nothing (an alert to a port scan's connect)
            if server_tls && is_tls_record(sh) && (ch.is_empty() || is_tls_record(ch))
                || sh.is_empty() && is_tls_record(ch)
            {
                return Protocol::Tls {
                    version: "unknown (no ClientHello seen)".into(),
                    sni: None,
                    completed: c.tls_records & (1 << 3) != 0 && s.tls_records & (1 << 3) != 0,
                };
            }
            if sh.starts_with(b"SSH-") || ch.starts_with(b"SSH-") {
                return Protocol::Ssh;
            }
            if is_telnet(sh) {
                return Protocol::Telnet;
            }
            if sh.starts_with(b"HTTP/1.") {
                return Protocol::Http;
            }
            if sh.starts_with(b"220") && contains_ci(sh, b"SMTP") || starts_ci(ch, b"EHLO ") || starts_ci(ch, b"HELO ")
            {
                return Protocol::Smtp;
            }
            if sh.starts_with(b"220") && (starts_ci(ch, b"USER ") || starts_ci(ch, b"AUTH ") || contains_ci(sh, b"FTP"))
            {
                return Protocol::Ftp;
            }
            if is_mqtt_connect(ch) {
                return Protocol::Mqtt;
            }
            if is_http_request(ch) {
                return Protocol::Http;
            }
            if is_telnet(ch) {
                return Protocol::Telnet;
            }
        }
        Transport::Udp => {
            // every datagram was identified on its own, by port and structure, as one kind
            let kinds = c.udp_kinds | s.udp_kinds;
            if c.unidentified_datagrams + s.unidentified_datagrams == 0 && kinds.count_ones() == 1 {
                use super::datagram::Kind;
                let k = Kind::ALL.into_iter().find(|k| k.bit() == kinds);
                return match k {
                    Some(Kind::Dns) => Protocol::Dns,
                    Some(Kind::Mdns) => Protocol::Mdns,
                    Some(Kind::Ntp) => Protocol::Ntp,
                    Some(Kind::Dhcp) => Protocol::Dhcp,
                    Some(Kind::Ssdp) => Protocol::Ssdp,
                    Some(Kind::Coap) => Protocol::Coap,
                    Some(Kind::Syslog) => Protocol::Syslog,
                    Some(Kind::Dtls) => Protocol::Dtls,
                    Some(Kind::Quic) | None => Protocol::Quic,
                };
            }
            let sample = if c.unidentified.is_empty() {
                &s.unidentified
            } else {
                &c.unidentified
            };
            let sample = if sample.is_empty() { ch } else { sample.as_slice() };
            return Protocol::Unknown {
                entropy: super::datagram::entropy(sample),
                clear_text: c.text_datagrams + s.text_datagrams > 0,
            };
        }
    }
    let mut sample = ch.to_vec();
    sample.extend_from_slice(sh);
    Protocol::Unknown {
        entropy: super::datagram::entropy(&sample),
        clear_text: super::datagram::clear_text(ch).is_some() || super::datagram::clear_text(sh).is_some(),
    }
}

fn starts_ci(h: &[u8], p: &[u8]) -> bool {
    h.len() >= p.len() && h[..p.len()].eq_ignore_ascii_case(p)
}

fn contains_ci(h: &[u8], p: &[u8]) -> bool {
    h.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p))
}

fn is_http_request(h: &[u8]) -> bool {
    starts_with_http_method(h) && h.windows(6).any(|w| w == b"HTTP/1")
}

/// Whether `h` begins with an HTTP/1 request method and its space.
pub(crate) fn starts_with_http_method(h: &[u8]) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
    ];
    METHODS.iter().any(|m| h.starts_with(m))
}

fn is_tls_record(h: &[u8]) -> bool {
    h.len() >= 5 && (20..=23).contains(&h[0]) && h[1] == 3 && h[2] <= 4
}

fn is_telnet(h: &[u8]) -> bool {
    h.len() >= 3 && h[0] == 0xff && (0xfb..=0xfe).contains(&h[1])
}

fn is_mqtt_connect(h: &[u8]) -> bool {
    if h.first() != Some(&0x10) {
        return false;
    }
    // remaining length: 1..4 bytes of 7-bit groups
    let mut i = 1;
    while i < 5 && h.get(i).is_some_and(|b| b & 0x80 != 0) {
        i += 1;
    }
    let rest = h.get(i + 1..).unwrap_or_default();
    rest.starts_with(b"\x00\x04MQTT") || rest.starts_with(b"\x00\x06MQIsdp")
}

/// A DNS name at `at` (with compression pointers), and where the name's bytes end.
fn dns_name(m: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *m.get(at)? as usize;
        if len == 0 {
            return Some((name, end.unwrap_or(at + 1)));
        }
        if len & 0xc0 == 0xc0 {
            end.get_or_insert(at + 2);
            at = ((len & 0x3f) << 8) | *m.get(at + 1)? as usize;
            continue;
        }
        let label = m.get(at + 1..at + 1 + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label));
        at += 1 + len;
    }
    None
}

/// (address, name) pairs from a DNS response's A/AAAA answers.
pub fn dns_answers(m: &[u8]) -> Vec<(IpAddr, String)> {
    let mut out = Vec::new();
    if m.len() < 12 || m[2] & 0x80 == 0 {
        return out;
    }
    let qd = u16::from_be_bytes([m[4], m[5]]);
    let an = u16::from_be_bytes([m[6], m[7]]);
    let mut at = 12;
    let mut qname = None;
    for _ in 0..qd {
        let Some((n, e)) = dns_name(m, at) else { return out };
        qname.get_or_insert(n);
        at = e + 4;
    }
    for _ in 0..an {
        let Some((n, e)) = dns_name(m, at) else { return out };
        let Some(h) = m.get(e..e + 10) else { return out };
        let kind = u16::from_be_bytes([h[0], h[1]]);
        let len = u16::from_be_bytes([h[8], h[9]]) as usize;
        let Some(data) = m.get(e + 10..e + 10 + len) else {
            return out;
        };
        let name = qname.clone().unwrap_or(n);
        match (kind, len) {
            (1, 4) => out.push((IpAddr::from(<[u8; 4]>::try_from(data).unwrap_or_default()), name)),
            (28, 16) => out.push((IpAddr::from(<[u8; 16]>::try_from(data).unwrap_or_default()), name)),
            _ => {}
        }
        at = e + 10 + len;
    }
    out
}

/// From a ClientHello at the start of `h`: (highest offered version, SNI).
fn tls_hello(h: &[u8]) -> Option<(String, Option<String>)> {
    if h.len() < 11 || h[0] != 0x16 || h[1] != 3 || h[5] != 1 {
        return None;
    }
    let mut version = u16::from_be_bytes([h[9], h[10]]);
    let mut sni = None;
    // best effort past the fixed part: session id, ciphers, compression, extensions
    let mut walk = || -> Option<()> {
        let mut at = 11 + 32;
        at += 1 + *h.get(at)? as usize;
        at += 2 + u16::from_be_bytes([*h.get(at)?, *h.get(at + 1)?]) as usize;
        at += 1 + *h.get(at)? as usize;
        let ext_end = at + 2 + u16::from_be_bytes([*h.get(at)?, *h.get(at + 1)?]) as usize;
        at += 2;
        while at + 4 <= ext_end.min(h.len()) {
            let kind = u16::from_be_bytes([h[at], h[at + 1]]);
            let len = u16::from_be_bytes([h[at + 2], h[at + 3]]) as usize;
            let body = h.get(at + 4..at + 4 + len)?;
            match kind {
                0 if body.len() > 5 && body[2] == 0 => {
                    let n = u16::from_be_bytes([body[3], body[4]]) as usize;
                    sni = body.get(5..5 + n).map(|b| String::from_utf8_lossy(b).into_owned());
                }
                43 if !body.is_empty() => {
                    for v in body[1..].chunks_exact(2) {
                        let v = u16::from_be_bytes([v[0], v[1]]);
                        // GREASE values are 0x?a?a
                        if v & 0x0f0f != 0x0a0a && v > version && v <= 0x0304 {
                            version = v;
                        }
                    }
                }
                _ => {}
            }
            at += 4 + len;
        }
        Some(())
    };
    let _ = walk();
    let name = match version {
        0x0300 => "SSL 3.0".to_string(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("0x{v:04x}"),
    };
    Some((name, sni))
}

/// A printable excerpt of bytes (non-printables as '.'), at most `max` characters. The
/// redactor's `<secret:NAME…>` mark of a secret cut at an edge keeps its `…`.
pub fn excerpt(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .take(max)
        .map(|c| if c == '…' || (' '..='~').contains(&c) { c } else { '.' })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An Ethernet+IPv4+TCP/UDP frame.
    pub(crate) fn frame(
        tcp: bool,
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let l4_len = if tcp { 20 } else { 8 } + payload.len();
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, if tcp { 6 } else { 17 }, 0, 0];
        ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        if tcp {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(payload);
        f
    }

    const DEV: [u8; 4] = [198, 18, 0, 2];
    const PEER: [u8; 4] = [198, 18, 0, 1];

    fn table(packets: &[Vec<u8>]) -> FlowTable {
        let mut t = FlowTable::new(Some(IpAddr::from(DEV)));
        for (i, p) in packets.iter().enumerate() {
            t.add(i as u64 + 1, p, false);
        }
        t
    }

    fn tcp_exchange(client_first: &[u8], server_first: &[u8], device_opens: bool) -> FlowTable {
        let (c, s) = if device_opens { (DEV, PEER) } else { (PEER, DEV) };
        table(&[
            frame(true, c, 40000, s, 8080, SYN, b""),
            frame(true, s, 8080, c, 40000, SYN | ACK, b""),
            frame(true, c, 40000, s, 8080, ACK, client_first),
            frame(true, s, 8080, c, 40000, ACK, server_first),
        ])
    }

    fn client_hello(sni: &str) -> Vec<u8> {
        crate::gateway::scan::client_hello(Some(sni))
    }

    #[test]
    fn a_connection_refused_or_unanswered_before_the_device_spoke_is_not_observed() {
        let (d, p) = (DEV, PEER);
        let t = table(&[
            // refused: SYN, RST
            frame(true, d, 40001, p, 8080, SYN, b""),
            frame(true, p, 8080, d, 40001, RST | ACK, b""),
            // unanswered: SYN, SYN
            frame(true, d, 40002, [192, 0, 2, 10], 80, SYN, b""),
            frame(true, d, 40002, [192, 0, 2, 10], 80, SYN, b""),
            // accepted, then the device spoke: observed
            frame(true, d, 40003, p, 80, SYN, b""),
            frame(true, p, 80, d, 40003, SYN | ACK, b""),
            frame(true, d, 40003, p, 80, ACK, b"GET / HTTP/1.1\r\n"),
            // accepted, then the device closed without a word: its choice, seen
            frame(true, d, 40004, p, 80, SYN, b""),
            frame(true, p, 80, d, 40004, SYN | ACK, b""),
            frame(true, p, 80, d, 40004, RST, b""),
            // the bench's probe of a closed port of the device: not the device's flow
            frame(true, p, 50000, d, 23, SYN, b""),
            frame(true, d, 23, p, 50000, RST | ACK, b""),
        ]);
        let got: Vec<Option<&str>> = t.flows.iter().map(Flow::unobserved).collect();
        assert_eq!(got, [Some("refused"), Some("unanswered"), None, None, None]);
    }

    #[test]
    fn tls_is_recognised_with_its_name_and_version() {
        let t = tcp_exchange(&client_hello("broker.example"), b"\x16\x03\x03\x00\x10rest", true);
        let p = classify(&t.flows[0]);
        assert_eq!(
            p,
            Protocol::Tls {
                version: "TLS 1.3".into(),
                sni: Some("broker.example".into()),
                completed: false
            }
        );
        assert!(!p.is_plaintext());
    }

    #[test]
    fn a_tls_handshake_is_complete_when_both_sides_send_application_records() {
        let (d, p) = (DEV, PEER);
        let t = table(&[
            frame(true, d, 40000, p, 8883, SYN, b""),
            frame(true, p, 8883, d, 40000, SYN | ACK, b""),
            frame(true, d, 40000, p, 8883, ACK, &client_hello("x")),
            frame(true, p, 8883, d, 40000, ACK, b"\x16\x03\x03\x00\x05hello"),
            frame(true, d, 40000, p, 8883, ACK, b"\x17\x03\x03\x00\x05sealed"),
            frame(true, p, 8883, d, 40000, ACK, b"\x17\x03\x03\x00\x05sealed"),
        ]);
        assert!(matches!(classify(&t.flows[0]), Protocol::Tls { completed: true, .. }));
    }

    #[test]
    fn plaintext_protocols_are_named_from_their_bytes_whatever_the_port() {
        let cases: Vec<(&[u8], &[u8], Protocol)> = vec![
            (
                b"POST /telemetry HTTP/1.1\r\nHost: x\r\n\r\n{}",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                Protocol::Http,
            ),
            (
                b"\x10\x16\x00\x04MQTT\x04\x02\x00\x3c\x00\x0adevice-001",
                b"\x20\x02\x00\x00",
                Protocol::Mqtt,
            ),
            (b"\xff\xfd\x18", b"\xff\xfb\x01\xff\xfb\x03", Protocol::Telnet),
            (b"USER anonymous\r\n", b"220 ProFTPD ready\r\n", Protocol::Ftp),
            (b"EHLO device\r\n", b"220 mx ESMTP\r\n", Protocol::Smtp),
            (b"SSH-2.0-dropbear\r\n", b"SSH-2.0-OpenSSH_9.2\r\n", Protocol::Ssh),
        ];
        for (c, s, want) in cases {
            let t = tcp_exchange(c, s, true);
            let got = classify(&t.flows[0]);
            assert_eq!(got, want, "{}", excerpt(c, 40));
            assert_eq!(got.is_plaintext(), want != Protocol::Ssh);
        }
    }

    #[test]
    fn a_probe_in_one_protocol_answered_in_another_is_what_the_device_answered() {
        // a scanner's ClientHello and HTTP request to a telnet port: the device speaks telnet
        let t = tcp_exchange(&client_hello("x"), b"\xff\xfd\x25\xff\xfb\x01", false);
        assert_eq!(classify(&t.flows[0]), Protocol::Telnet);
        let t = tcp_exchange(b"GET / HTTP/1.0\r\n\r\n", b"\xff\xfd\x25", false);
        assert_eq!(classify(&t.flows[0]), Protocol::Telnet);
        // a TLS server answering a ClientHello stays TLS
        let t = tcp_exchange(&client_hello("x"), b"\x16\x03\x03\x00\x40", false);
        assert!(matches!(classify(&t.flows[0]), Protocol::Tls { .. }));
        // a TLS server's alert to a client that connected and said nothing (a port scan)
        let t = tcp_exchange(b"", b"\x15\x03\x03\x00\x02\x01\x00", false);
        assert!(
            matches!(classify(&t.flows[0]), Protocol::Tls { .. }),
            "{:?}",
            classify(&t.flows[0])
        );
    }

    #[test]
    fn a_service_the_peer_opens_is_still_the_devices_flow_and_its_banner_counts() {
        let t = tcp_exchange(b"", b"\xff\xfd\x18\xff\xfd\x20login: ", false);
        assert_eq!(t.flows[0].opened_by, Side::Peer);
        assert_eq!(t.flows[0].device_port, 8080);
        assert_eq!(classify(&t.flows[0]), Protocol::Telnet);
    }

    #[test]
    fn udp_protocols_and_dns_names() {
        // a DNS query for cloud.example and its answer 203.0.113.7
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x05cloud\x07example\x00\x00\x01\x00\x01");
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 1;
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 7]);
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x23;
        let t = table(&[
            frame(false, DEV, 5000, PEER, 53, 0, &q),
            frame(false, PEER, 53, DEV, 5000, 0, &a),
            frame(false, DEV, 123, PEER, 123, 0, &ntp),
            frame(false, DEV, 5683, PEER, 5683, 0, b"\x40\x01\x12\x34\xbb.well-known"),
            frame(
                false,
                DEV,
                6000,
                PEER,
                7000,
                0,
                &[0x9e, 0x11, 0x42, 0x07, 0xd3, 0x88, 0x01, 0xfa],
            ),
        ]);
        let kinds: Vec<&str> = t.flows.iter().map(|f| classify(f).name()).collect();
        assert_eq!(kinds, vec!["dns", "ntp", "coap", "unknown"]);
        assert_eq!(
            t.names[&IpAddr::from([203, 0, 113, 7])],
            vec!["cloud.example".to_string()]
        );
    }

    #[test]
    fn udp_is_judged_by_port_and_structure_not_by_its_first_byte() {
        let text48 = b"c=telemetry&owner=alice@example.com&temp=21.5&xy".to_vec();
        let mut dtls_text = b"\x16\xfe\xfd".to_vec();
        dtls_text.extend_from_slice(b"owner=alice@example.com;token=abcdef0123456789");
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x23;
        let t = table(&[
            // 48 bytes of text starting with 'c' (reads as NTP v4 client) on port 9999 and 123
            frame(false, DEV, 40001, PEER, 9999, 0, &text48),
            frame(false, DEV, 40002, PEER, 123, 0, &text48),
            // clear text behind a DTLS-like prefix
            frame(false, DEV, 40003, PEER, 4433, 0, &dtls_text),
            // a valid NTP request, then text on the same flow
            frame(false, DEV, 40004, PEER, 123, 0, &ntp),
            frame(false, DEV, 40004, PEER, 123, 0, &text48),
            // a real NTP request alone
            frame(false, DEV, 40005, PEER, 123, 0, &ntp),
        ]);
        let got: Vec<Protocol> = t.flows.iter().map(classify).collect();
        for p in &got[..4] {
            assert!(matches!(p, Protocol::Unknown { clear_text: true, .. }), "{got:?}");
        }
        assert_eq!(got[4], Protocol::Ntp);
        assert!(
            excerpt(t.flows[3].sample(), 80).starts_with("c=telemetry"),
            "the excerpt shows the unidentified datagram"
        );
    }

    fn scanner_port() -> u16 {
        40000
    }

    #[test]
    fn a_flood_of_one_packet_flows_is_bounded_and_counted() {
        let mut t = FlowTable::new(Some(IpAddr::from(DEV)));
        // two port scans' worth of connection attempts (no data) are all kept
        let mut number = 0;
        for i in 0..131_070u32 {
            number += 1;
            let port = 1 + (i % 65535) as u16;
            let scanner = 40000 + (i / 65535) as u16;
            t.add(number, &frame(true, PEER, scanner, DEV, port, SYN, b""), false);
        }
        assert_eq!(t.flows.len(), 131_070);
        assert_eq!(t.dropped_flows, 0);
        // then a flood of one-packet UDP flows: data slots run out, the rest is counted
        let n = MAX_DATA_FLOWS as u64 + 5000;
        for i in 0..n {
            number += 1;
            let port = 1024 + (i % 60000) as u16;
            let peer = [198, 18, (i / 60000) as u8, 1];
            t.add(number, &frame(false, DEV, 5000, peer, port, 0, b"x"), true);
        }
        assert_eq!(t.data_flows, MAX_DATA_FLOWS);
        assert_eq!(t.flows.len(), 131_070 + MAX_DATA_FLOWS);
        assert_eq!(t.dropped_flows, 5000);
        assert_eq!(t.dropped_by_peer.iter().map(|(_, n)| n).sum::<u64>(), 5000);
        // a stored flow that starts carrying data once the slots are full is not followed
        t.add(
            number + 1,
            &frame(true, DEV, 7, PEER, scanner_port(), ACK, b"late data"),
            true,
        );
        assert_eq!(t.dropped_flows, 5001);
    }

    #[test]
    fn other_hosts_on_the_link_are_not_the_devices_flows() {
        let t = table(&[
            frame(true, [198, 18, 0, 9], 1000, PEER, 80, SYN, b""),
            frame(true, [198, 18, 0, 9], 1000, PEER, 80, ACK, b"GET / HTTP/1.1\r\n\r\n"),
        ]);
        assert!(t.flows.is_empty());
        assert_eq!(t.foreign_packets, 2);
        assert_eq!(t.device_packets, 0);
    }

    #[test]
    fn garbage_frames_never_panic() {
        let mut t = FlowTable::new(None);
        for n in 0..2000u32 {
            let len = (n % 97) as usize;
            let f: Vec<u8> = (0..len).map(|i| (i as u32 * 31 + n) as u8).collect();
            let mut g = f.clone();
            if g.len() > 14 {
                g[12] = 0x08;
                g[13] = 0x00;
            }
            t.add(n as u64, &f, true);
            t.add(n as u64, &g, true);
        }
        for f in &t.flows {
            let _ = classify(f);
        }
    }

    #[test]
    fn entropy_tells_text_from_random_looking_bytes() {
        assert!(super::super::datagram::entropy(b"temperature=21.5&humidity=40") < 4.5);
        let r: Vec<u8> = (0..=255u8).collect();
        assert!(super::super::datagram::entropy(&r) > 7.9);
    }
}
