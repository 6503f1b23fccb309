//! Canaries on the wire (COM-04, PWD-10): values the run knows — the passwords it set, the
//! personal data it planted — searched for in every byte of a capture, both directions of
//! every flow, in the encodings devices really use.
//!
//! - TCP is reassembled per direction by sequence number: out-of-order and retransmitted
//!   segments are put in place, so a value split across segments is found; a hole (a
//!   segment never captured) splits the stream, and is counted.
//! - Ciphertext is not searched: a TLS session's application data and everything a side
//!   sends after its ChangeCipherSpec, and an SSH session after its banner. A TLS
//!   handshake's clear records (ClientHello with its SNI, certificates) are searched, and so
//!   is everything after a stream stops parsing as TLS records (a fallback to clear).
//! - Besides the raw bytes, HTTP bodies are searched again after de-chunking and
//!   gzip/deflate, telnet streams after their option negotiation is stripped, DNS
//!   questions with their labels joined.
//! - Each value is looked for as is (text: case-insensitive), JSON-escaped, percent- and
//!   form-encoded, hex (either case), UTF-16LE, and base64 (standard and URL-safe, at all
//!   three alignments in a longer encoded text — which covers HTTP Basic credentials).
//!
//! Memory is bounded: [`STREAM_CAP`] bytes per direction of a TCP flow are kept; past it the
//! bytes are counted as not searched (the check cannot pass while any are), never dropped
//! silently. IP fragments after the first are not reassembled; they are counted too.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::flows;
use super::pcapng::{self, ReadError};
use crate::model::Transport;

/// Bytes kept per direction of a TCP flow (32 MiB); past it they are counted, not searched.
pub const STREAM_CAP: usize = 32 << 20;
/// A compressed HTTP body is inflated up to this much.
const INFLATE_CAP: u64 = 16 << 20;
/// Values shorter than this are not searched: they would match ordinary bytes by chance.
pub const MIN_CANARY: usize = 8;
/// Frame numbers named per hit.
const MAX_FRAMES: usize = 16;

use crate::model::personal::Class;

/// One value to look for. The value is a secret: never printed, only its name.
#[derive(Debug, Clone)]
pub struct Canary {
    pub name: String,
    pub class: Class,
    pub value: String,
}

/// How a value was written when it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Encoding {
    Raw,
    Json,
    Percent,
    Hex,
    Utf16le,
    Base64,
    Base64url,
}

/// Where in the traffic it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Layer {
    /// A reassembled TCP stream, as sent.
    TcpStream,
    /// A clear record of a TLS handshake (ClientHello, a certificate).
    TlsHandshake,
    /// One UDP datagram.
    Datagram,
    /// A DNS question's name, labels joined.
    DnsName,
    /// An HTTP body after de-chunking and decompression.
    HttpBody,
    /// A telnet stream with its option negotiation stripped.
    Telnet,
}

/// One canary found in clear.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub canary: String,
    pub class: Class,
    pub encoding: Encoding,
    pub layer: Layer,
    pub transport: Transport,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// The device sent it (None: the capture's device address is not known).
    pub from_device: Option<bool>,
    /// The frames (1-based, as Wireshark numbers them) that carried it.
    pub frames: Vec<u64>,
}

impl Hit {
    /// A Wireshark display filter showing the frames.
    pub fn filter(&self) -> String {
        let f: Vec<String> = self.frames.iter().map(u64::to_string).collect();
        format!("frame.number in {{{}}}", f.join(", "))
    }

    /// One line for a verdict: name, never value.
    pub fn describe(&self) -> String {
        let who = match self.from_device {
            Some(true) => "sent by the device",
            Some(false) => "sent to the device",
            None => "on the link",
        };
        format!(
            "{} ({}) {who}, {} {}:{} -> {}:{}, {}, {} encoding, frames {}",
            self.canary,
            <&str>::from(self.class),
            <&str>::from(self.transport),
            self.src,
            self.sport,
            self.dst,
            self.dport,
            <&str>::from(self.layer).replace('_', " "),
            <&str>::from(self.encoding),
            self.filter()
        )
    }
}

/// What the search read and found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Searched {
    pub hits: Vec<Hit>,
    pub frames: u64,
    /// Frames of non-Ethernet interfaces (not read).
    pub other_links: u64,
    pub tcp_directions: u64,
    pub datagrams: u64,
    /// Application bytes searched as clear text, and those skipped as ciphertext.
    pub clear_bytes: u64,
    pub encrypted_bytes: u64,
    /// Holes in TCP streams (segments the capture never saw).
    pub gaps: u64,
    /// TCP bytes past [`STREAM_CAP`], not searched.
    pub over_cap: u64,
    /// IPv4 fragments after the first (not reassembled, not searched).
    pub fragments: u64,
    /// Canaries not searched because they are shorter than [`MIN_CANARY`] (names).
    pub too_short: Vec<String>,
    /// The last frame in which the device sent application data (a TCP payload, or a UDP
    /// payload other than DHCP and NTP, ciphertext included), and how many such frames it
    /// sent: a search finds nothing in a device that said nothing.
    pub device_last_data_frame: u64,
    pub device_data_frames: u64,
}

impl Searched {
    /// What was not searched, in words (empty when everything was).
    pub fn unsearched(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.over_cap > 0 {
            v.push(format!(
                "{} TCP bytes past the {} MiB kept per direction of a flow",
                self.over_cap,
                STREAM_CAP >> 20
            ));
        }
        if self.fragments > 0 {
            v.push(format!("{} IP fragments (not reassembled)", self.fragments));
        }
        if !self.too_short.is_empty() {
            v.push(format!(
                "values shorter than {MIN_CANARY} characters: {}",
                self.too_short.join(", ")
            ));
        }
        v
    }
}

/// Every encoded form of every canary, in two automata: text forms matched without regard
/// to ASCII case, base64 forms exactly.
struct Needles {
    text: AhoCorasick,
    text_of: Vec<(usize, Encoding)>,
    exact: AhoCorasick,
    exact_of: Vec<(usize, Encoding)>,
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// Encoded forms of one value.
pub type Forms = Vec<(Encoding, Vec<u8>)>;

/// The text forms of `v` (matched case-insensitively) and its base64 forms (exactly).
pub fn forms(v: &str) -> (Forms, Forms) {
    let mut text: Forms = Vec::new();
    let mut push = |e: Encoding, b: Vec<u8>| {
        if !text.iter().any(|(_, x)| x.eq_ignore_ascii_case(&b)) {
            text.push((e, b));
        }
    };
    push(Encoding::Raw, v.as_bytes().to_vec());
    let json = serde_json::to_string(v).unwrap_or_default();
    push(Encoding::Json, unquote(&json).as_bytes().to_vec());
    let form = crate::util::form_encode(v);
    push(Encoding::Percent, form.clone().into_bytes());
    push(Encoding::Percent, form.replace('+', "%20").into_bytes());
    // every byte but letters and digits escaped (what some encoders do)
    let all: String = v
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    push(Encoding::Percent, all.into_bytes());
    let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
    push(Encoding::Hex, hex.into_bytes());
    push(Encoding::Utf16le, v.encode_utf16().flat_map(u16::to_le_bytes).collect());
    let mut exact: Forms = Vec::new();
    for f in crate::util::base64_fragments(v.as_bytes()) {
        let url = f.replace('+', "-").replace('/', "_");
        for (e, b) in [(Encoding::Base64, f), (Encoding::Base64url, url)] {
            if !exact.iter().any(|(_, x)| x == b.as_bytes()) {
                exact.push((e, b.into_bytes()));
            }
        }
    }
    (text, exact)
}

impl Needles {
    fn new(canaries: &[Canary]) -> (Self, Vec<String>) {
        let (mut tp, mut text_of, mut ep, mut exact_of) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut too_short = Vec::new();
        for (i, c) in canaries.iter().enumerate() {
            if c.value.len() < MIN_CANARY {
                too_short.push(c.name.clone());
                continue;
            }
            let (text, exact) = forms(&c.value);
            for (e, b) in text {
                tp.push(b);
                text_of.push((i, e));
            }
            for (e, b) in exact {
                ep.push(b);
                exact_of.push((i, e));
            }
        }
        let build = |pats: &[Vec<u8>], ci: bool| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(ci)
                .match_kind(MatchKind::Standard)
                .build(pats)
                .unwrap_or_else(|_| AhoCorasick::new(Vec::<Vec<u8>>::new()).expect("an empty automaton builds"))
        };
        (
            Self {
                text: build(&tp, true),
                text_of,
                exact: build(&ep, false),
                exact_of,
            },
            too_short,
        )
    }

    /// Every (canary, encoding, range) found in `hay`.
    fn find(&self, hay: &[u8]) -> Vec<(usize, Encoding, Range<usize>)> {
        let mut out = Vec::new();
        for (ac, of) in [(&self.text, &self.text_of), (&self.exact, &self.exact_of)] {
            for m in ac.find_overlapping_iter(hay) {
                let (c, e) = of[m.pattern().as_usize()];
                out.push((c, e, m.range()));
            }
        }
        out
    }
}

/// (transport, source, source port, destination, destination port): one direction.
type Key = (Transport, IpAddr, u16, IpAddr, u16);

/// One direction of a TCP flow, segment by segment.
#[derive(Debug, Default)]
struct Half {
    /// The sequence number of its first byte (from the SYN, else the first segment seen).
    base: Option<u32>,
    segments: Vec<(i64, u64, Vec<u8>)>,
    stored: usize,
    over: u64,
}

/// Contiguous bytes of one direction, and the frames they came in.
#[derive(Debug, Default)]
struct Piece {
    data: Vec<u8>,
    /// (offset in `data`, length, frame number), in stream order.
    map: Vec<(usize, usize, u64)>,
}

impl Piece {
    fn frames(&self, r: &Range<usize>) -> Vec<u64> {
        let mut f: Vec<u64> = self
            .map
            .iter()
            .filter(|(o, l, _)| *o < r.end && o + l > r.start)
            .map(|(_, _, n)| *n)
            .collect();
        f.sort_unstable();
        f.dedup();
        f.truncate(MAX_FRAMES);
        f
    }
}

const SYN: u8 = 0x02;

impl Half {
    fn add(&mut self, seq: u32, flags: u8, frame: u64, payload: &[u8]) {
        if flags & SYN != 0 {
            self.base = Some(seq.wrapping_add(1));
        }
        if payload.is_empty() {
            return;
        }
        if self.stored + payload.len() > STREAM_CAP {
            self.over += payload.len() as u64;
            return;
        }
        let base = *self.base.get_or_insert(seq);
        let rel = i64::from(seq.wrapping_sub(base) as i32);
        self.stored += payload.len();
        self.segments.push((rel, frame, payload.to_vec()));
    }

    /// The stream in order: retransmitted bytes once, a hole starting a new piece.
    fn pieces(mut self, gaps: &mut u64) -> Vec<Piece> {
        self.segments.sort_by_key(|(rel, frame, _)| (*rel, *frame));
        let mut out: Vec<Piece> = Vec::new();
        let mut cursor: Option<i64> = None;
        let mut cur = Piece::default();
        for (rel, frame, data) in self.segments {
            let end = rel + data.len() as i64;
            let skip = match cursor {
                Some(c) if end <= c => continue, // a retransmission of bytes already placed
                Some(c) if rel > c => {
                    *gaps += 1;
                    out.push(std::mem::take(&mut cur));
                    0
                }
                Some(c) => (c - rel) as usize,
                None => 0,
            };
            cur.map.push((cur.data.len(), data.len() - skip, frame));
            cur.data.extend_from_slice(&data[skip..]);
            cursor = Some(end);
        }
        if !cur.data.is_empty() {
            out.push(cur);
        }
        out
    }
}

/// The clear parts of a stream's bytes (range, layer) and how many bytes are ciphertext.
/// `tls_before`: an earlier piece of this direction was TLS (a piece after a hole starts
/// in the middle of records: ciphertext).
fn clear_parts(d: &[u8], tls_before: bool) -> (Vec<(Range<usize>, Layer)>, usize, bool) {
    if tls_before {
        return (Vec::new(), d.len(), true);
    }
    if d.starts_with(b"SSH-") {
        let end = d.iter().position(|&b| b == b'\n').map_or(d.len(), |p| p + 1);
        return (vec![(0..end, Layer::TcpStream)], d.len() - end, false);
    }
    let is_record = |at: usize| d.len() >= at + 5 && (20..=24).contains(&d[at]) && d[at + 1] == 3 && d[at + 2] <= 4;
    if !is_record(0) {
        return (vec![(0..d.len(), Layer::TcpStream)], 0, false);
    }
    let (mut out, mut encrypted, mut ccs, mut at) = (Vec::new(), 0usize, false, 0usize);
    while is_record(at) {
        let len = u16::from_be_bytes([d[at + 3], d[at + 4]]) as usize;
        let end = (at + 5 + len).min(d.len());
        match d[at] {
            20 => ccs = true,
            21 | 22 if !ccs => out.push((at + 5..end, Layer::TlsHandshake)),
            _ => encrypted += end - at - 5,
        }
        at = end;
    }
    // no longer TLS records: what follows went in clear
    if at < d.len() {
        out.push((at..d.len(), Layer::TcpStream));
    }
    (out, encrypted, true)
}

/// HTTP messages' bodies that differ once decoded (chunked, gzip, deflate): (the body's
/// range in the stream, the decoded bytes).
fn http_bodies(d: &[u8]) -> Vec<(Range<usize>, Vec<u8>)> {
    const STARTS: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"PUT ",
        b"PATCH ",
        b"DELETE ",
        b"HEAD ",
        b"OPTIONS ",
        b"HTTP/1.",
    ];
    let mut out = Vec::new();
    let mut at = 0;
    while at < d.len() && STARTS.iter().any(|s| d[at..].starts_with(s)) {
        let Some(h) = find(&d[at..], b"\r\n\r\n") else { break };
        let head = String::from_utf8_lossy(&d[at..at + h]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_string())
        };
        let start = at + h + 4;
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let (raw_end, body) = if chunked {
            let (body, used) = dechunk(&d[start..]);
            (start + used, body)
        } else {
            let end = match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
                Some(n) => (start + n).min(d.len()),
                // a request without a length has no body; a response runs to the end
                None if head.starts_with("http/1.") => d.len(),
                None => start,
            };
            (end, d[start..end].to_vec())
        };
        let decoded = match header("content-encoding").as_deref() {
            Some(e) if e.contains("gzip") => inflate(flate2::read::MultiGzDecoder::new(&body[..])),
            Some(e) if e.contains("deflate") => {
                let z = inflate(flate2::read::ZlibDecoder::new(&body[..]));
                if z.is_empty() {
                    inflate(flate2::read::DeflateDecoder::new(&body[..]))
                } else {
                    z
                }
            }
            _ => body,
        };
        if chunked || decoded.len() != raw_end - start || decoded[..] != d[start..raw_end] {
            out.push((start..raw_end, decoded));
        }
        if raw_end <= at {
            break;
        }
        at = raw_end;
    }
    out
}

/// What a decoder gives up to [`INFLATE_CAP`] (a cut or corrupt stream: what came before).
fn inflate(r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut r = r.take(INFLATE_CAP);
    let mut buf = [0u8; 16 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A chunked body's data and the bytes it took (stops at the last chunk or where it is cut).
fn dechunk(d: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let Some(nl) = find(&d[at..], b"\r\n") else {
            return (out, d.len());
        };
        let size_text = String::from_utf8_lossy(&d[at..at + nl]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            return (out, at);
        };
        at += nl + 2;
        if size == 0 {
            // the trailer ends with an empty line
            let end = find(&d[at..], b"\r\n").map_or(d.len(), |p| at + p + 2);
            return (out, end);
        }
        let end = (at + size).min(d.len());
        out.extend_from_slice(&d[at..end]);
        at = (end + 2).min(d.len());
        if end < at - 2 || at >= d.len() {
            return (out, d.len());
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A telnet stream without its option negotiation (IAC commands, subnegotiations, the NUL
/// after a carriage return), or None when it has none.
fn strip_telnet(d: &[u8]) -> Option<Vec<u8>> {
    if !d.contains(&0xff) && find(d, b"\r\0").is_none() {
        return None;
    }
    let mut out = Vec::with_capacity(d.len());
    let mut i = 0;
    while i < d.len() {
        match (d[i], d.get(i + 1).copied()) {
            (0xff, Some(0xff)) => {
                out.push(0xff);
                i += 2;
            }
            (0xff, Some(250)) => {
                // subnegotiation: to IAC SE
                i += 2;
                while i < d.len() && !(d[i] == 0xff && d.get(i + 1) == Some(&240)) {
                    i += 1;
                }
                i += 2;
            }
            (0xff, Some(251..=254)) => i += 3,
            (0xff, _) => i += 2,
            (b'\r', Some(0)) => {
                out.push(b'\r');
                i += 2;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The question names of a DNS message, labels joined (with and without dots).
fn dns_names(m: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(qd) = m.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        return out;
    };
    let mut at = 12;
    for _ in 0..qd.min(8) {
        let mut labels: Vec<&[u8]> = Vec::new();
        while let Some(&len) = m.get(at) {
            at += 1;
            if len == 0 || len & 0xc0 != 0 {
                at += usize::from(len & 0xc0 != 0);
                break;
            }
            let Some(l) = m.get(at..at + len as usize) else {
                return out;
            };
            labels.push(l);
            at += len as usize;
        }
        at += 4;
        out.push(labels.concat());
        out.push(labels.join(&b'.'));
    }
    out
}

/// Whether a frame is an IPv4 fragment after the first (its payload is not searchable).
fn later_fragment(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&[0x08, 0x00])
        && frame.get(14).is_some_and(|v| v >> 4 == 4)
        && frame
            .get(20..22)
            .is_some_and(|f| u16::from_be_bytes([f[0], f[1]]) & 0x1fff != 0)
}

/// The search state: what is found, once per (canary, direction, encoding).
struct Finder<'a> {
    needles: Needles,
    canaries: &'a [Canary],
    device: Option<IpAddr>,
    hits: Vec<Hit>,
    seen: std::collections::HashSet<(usize, Key, Encoding)>,
}

impl Finder<'_> {
    fn scan(&mut self, key: Key, hay: &[u8], layer: Layer, frames: impl Fn(&Range<usize>) -> Vec<u64>) {
        for (c, enc, r) in self.needles.find(hay) {
            if !self.seen.insert((c, key, enc)) {
                continue;
            }
            let (transport, src, sport, dst, dport) = key;
            self.hits.push(Hit {
                canary: self.canaries[c].name.clone(),
                class: self.canaries[c].class,
                encoding: enc,
                layer,
                transport,
                src,
                sport,
                dst,
                dport,
                from_device: self.device.map(|d| d == src),
                frames: frames(&r),
            });
        }
    }
}

/// Searches the capture at `path` (its first `len` bytes) for every canary. `device`: the
/// device's address (hits say who sent them).
/// A packet that carries what a device says, not how it keeps its address and clock.
fn carries_data(p: &flows::Packet) -> bool {
    !p.payload.is_empty() && (p.transport == Transport::Tcp || ![67, 68, 123, 546, 547].contains(&p.sport))
}

pub fn search(path: &Path, len: u64, canaries: &[Canary], device: Option<IpAddr>) -> Result<Searched, ReadError> {
    let (needles, too_short) = Needles::new(canaries);
    let mut f = Finder {
        needles,
        canaries,
        device,
        hits: Vec::new(),
        seen: Default::default(),
    };
    let mut out = Searched {
        too_short,
        ..Default::default()
    };
    let mut halves: HashMap<Key, Half> = HashMap::new();
    let (frames, other_links) = pcapng::read_prefix(path, len, |n, frame| {
        let Some(p) = flows::parse(frame) else {
            out.fragments += u64::from(later_fragment(frame));
            return;
        };
        let key = (p.transport, p.src, p.sport, p.dst, p.dport);
        if Some(p.src) == device && carries_data(&p) {
            out.device_last_data_frame = n;
            out.device_data_frames += 1;
        }
        match p.transport {
            Transport::Udp => {
                if p.payload.is_empty() {
                    return;
                }
                out.datagrams += 1;
                out.clear_bytes += p.payload.len() as u64;
                f.scan(key, p.payload, Layer::Datagram, |_| vec![n]);
                if [53, 5353].contains(&p.sport) || [53, 5353].contains(&p.dport) {
                    for name in dns_names(p.payload) {
                        f.scan(key, &name, Layer::DnsName, |_| vec![n]);
                    }
                }
            }
            Transport::Tcp => halves.entry(key).or_default().add(p.seq, p.flags, n, p.payload),
        }
    })?;
    out.frames = frames;
    out.other_links = other_links;
    // in a stable order, so hits read the same run after run
    let mut halves: Vec<(Key, Half)> = halves.into_iter().collect();
    halves.sort_by(|a, b| {
        let first = |h: &Half| h.segments.iter().map(|s| s.1).min().unwrap_or(u64::MAX);
        first(&a.1).cmp(&first(&b.1)).then(a.0.cmp(&b.0))
    });
    for (key, half) in halves {
        out.tcp_directions += 1;
        out.over_cap += half.over;
        let mut tls = false;
        for piece in half.pieces(&mut out.gaps) {
            let (parts, encrypted, was_tls) = clear_parts(&piece.data, tls);
            tls |= was_tls;
            out.encrypted_bytes += encrypted as u64;
            for (r, layer) in &parts {
                out.clear_bytes += r.len() as u64;
                let at = r.start;
                f.scan(key, &piece.data[r.clone()], *layer, |m| {
                    piece.frames(&(m.start + at..m.end + at))
                });
            }
            // decoded views of the clear stream (not of a TLS handshake)
            for (r, _) in parts.iter().filter(|(_, l)| *l == Layer::TcpStream) {
                let d = &piece.data[r.clone()];
                for (body, decoded) in http_bodies(d) {
                    let whole = body.start + r.start..body.end + r.start;
                    f.scan(key, &decoded, Layer::HttpBody, |_| piece.frames(&whole));
                }
                if let Some(t) = strip_telnet(d) {
                    let whole = r.clone();
                    f.scan(key, &t, Layer::Telnet, |_| piece.frames(&whole));
                }
            }
        }
    }
    out.hits = f.hits;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const DEV: [u8; 4] = [10, 0, 0, 2];
    const PEER: [u8; 4] = [10, 0, 0, 1];

    fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(l4);
        f
    }

    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&dport.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        l4.extend_from_slice(data);
        ipv4_frame(src, dst, 6, &l4)
    }

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, data: &[u8]) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&dport.to_be_bytes());
        l4.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(data);
        ipv4_frame(src, dst, 17, &l4)
    }

    fn capture(frames: &[Vec<u8>]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp");
        let mut w = super::super::pcapng::PcapngWriter::new(f.reopen().expect("reopen"), "t", 65535).expect("writer");
        for (i, fr) in frames.iter().enumerate() {
            w.packet(i as u64, fr, fr.len() as u32).expect("packet");
        }
        w.flush().expect("flush");
        f
    }

    fn canaries() -> Vec<Canary> {
        vec![
            Canary {
                name: "owner_email".into(),
                class: Class::Personal,
                value: "owner.k3vq9x2m@example.test".into(),
            },
            Canary {
                name: "wifi_psk".into(),
                class: Class::Security,
                value: "Psk-7GhQ2wZx9Lm4".into(),
            },
        ]
    }

    fn found(s: &Searched) -> Vec<(String, Encoding, Layer)> {
        let mut v: Vec<_> = s.hits.iter().map(|h| (h.canary.clone(), h.encoding, h.layer)).collect();
        v.sort_by_key(|x| format!("{x:?}"));
        v
    }

    #[test]
    fn a_value_split_across_segments_sent_out_of_order_and_retransmitted_is_found_once() {
        let msg = b"POST /t HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"mail\":\"owner.k3vq9x2m@example.test\"}";
        let (a, b) = msg.split_at(50); // the value is cut in two
        let frames = vec![
            tcp(DEV, 40000, PEER, 80, 999, SYN, b""),
            tcp(DEV, 40000, PEER, 80, 1000 + 50, 0x18, b), // the second half first
            tcp(DEV, 40000, PEER, 80, 1000, 0x18, a),      // then the first
            tcp(DEV, 40000, PEER, 80, 1000, 0x18, a),      // and again (a retransmission)
        ];
        let cap = capture(&frames);
        let s = search(cap.path(), u64::MAX, &canaries(), Some(IpAddr::from(DEV))).expect("search");
        assert_eq!(
            found(&s),
            vec![("owner_email".to_string(), Encoding::Raw, Layer::TcpStream)]
        );
        let h = &s.hits[0];
        assert_eq!(h.frames, vec![2, 3], "the two frames that carry it: {}", h.filter());
        assert_eq!(h.from_device, Some(true));
        assert_eq!((s.gaps, s.over_cap), (0, 0));
        assert!(
            !h.describe().contains("k3vq9x2m"),
            "a hit never shows the value: {}",
            h.describe()
        );
    }

    #[test]
    fn every_encoding_a_device_uses_is_recognised() {
        let email = "owner.k3vq9x2m@example.test";
        let (text, exact) = forms(email);
        for (enc, bytes) in text.iter().chain(&exact) {
            // each form inside other bytes, in a datagram of its own
            let mut payload = b"xx1".to_vec();
            payload.extend_from_slice(bytes);
            payload.extend_from_slice(b"yy");
            let cap = capture(&[udp(DEV, 5000, PEER, 9999, &payload)]);
            let s = search(cap.path(), u64::MAX, &canaries(), None).expect("search");
            assert!(
                s.hits.iter().any(|h| h.encoding == *enc && h.canary == "owner_email"),
                "{enc:?} not found"
            );
        }
        // base64 at every alignment, and HTTP Basic credentials
        for pre in ["", "a", "ab"] {
            let b64 = crate::util::base64(format!("{pre}{email}").as_bytes());
            let cap = capture(&[udp(DEV, 5000, PEER, 9999, b64.as_bytes())]);
            let s = search(cap.path(), u64::MAX, &canaries(), None).expect("search");
            assert!(
                s.hits.iter().any(|h| h.encoding == Encoding::Base64),
                "alignment {}",
                pre.len()
            );
        }
        // the hex in upper case, and the raw text in another case
        let up: String = email.bytes().map(|b| format!("{b:02X}")).collect();
        let cap = capture(&[
            udp(DEV, 5000, PEER, 9999, up.as_bytes()),
            udp(DEV, 5001, PEER, 9999, email.to_uppercase().as_bytes()),
        ]);
        let s = search(cap.path(), u64::MAX, &canaries(), None).expect("search");
        assert_eq!(s.hits.len(), 2, "{:?}", found(&s));
    }

    #[test]
    fn a_chunked_gzip_body_a_dns_name_and_a_telnet_stream_are_searched_decoded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"owner\":\"owner.k3vq9x2m@example.test\",\"pad\":\"....\"}")
            .expect("gzip");
        let body = gz.finish().expect("gzip");
        let (c1, c2) = body.split_at(body.len() / 2);
        let mut http =
            b"POST /v1 HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for c in [c1, c2] {
            http.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            http.extend_from_slice(c);
            http.extend_from_slice(b"\r\n");
        }
        http.extend_from_slice(b"0\r\n\r\n");
        // the PSK in hex, cut over two DNS labels
        let hex: String = "Psk-7GhQ2wZx9Lm4".bytes().map(|b| format!("{b:02x}")).collect();
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in [&hex[..10], &hex[10..], "t", "test"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        // telnet: option negotiation in the middle of the typed PSK
        let mut tn = b"\xff\xfb\x01Psk-7GhQ".to_vec();
        tn.extend_from_slice(b"\xff\xfd\x032wZx9Lm4\r\0");
        let cap = capture(&[
            tcp(DEV, 40000, PEER, 80, 5000, 0x18, &http),
            udp(DEV, 5353, PEER, 53, &q),
            tcp(PEER, 40001, DEV, 23, 77, 0x18, &tn),
        ]);
        let s = search(cap.path(), u64::MAX, &canaries(), Some(IpAddr::from(DEV))).expect("search");
        assert_eq!(
            found(&s),
            vec![
                ("owner_email".to_string(), Encoding::Raw, Layer::HttpBody),
                ("wifi_psk".to_string(), Encoding::Hex, Layer::DnsName),
                ("wifi_psk".to_string(), Encoding::Raw, Layer::Telnet),
            ]
        );
        let telnet = s.hits.iter().find(|h| h.layer == Layer::Telnet).expect("telnet hit");
        assert_eq!(telnet.from_device, Some(false), "typed by a peer into the device");
    }

    #[test]
    fn ciphertext_is_not_searched_but_a_handshake_and_a_fallback_to_clear_are() {
        let psk = b"Psk-7GhQ2wZx9Lm4";
        let record = |t: u8, body: &[u8]| {
            let mut r = vec![t, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
            r.extend_from_slice(body);
            r
        };
        // application data that happens to hold the value: inside TLS, not a finding
        let mut inside = record(22, b"\x01\x00\x00\x04hello");
        inside.extend(record(20, b"\x01"));
        inside.extend(record(22, psk)); // the encrypted Finished
        inside.extend(record(23, psk));
        // the SNI is clear; so is what follows once the stream stops being TLS
        let mut sni = record(22, b"\x01\x00\x00\x20owner.k3vq9x2m@example.test");
        sni.extend(record(21, b"\x02\x28"));
        sni.extend_from_slice(b"PLAIN Psk-7GhQ2wZx9Lm4\n");
        let ssh = [b"SSH-2.0-x\r\n".as_slice(), psk].concat();
        let cap = capture(&[
            tcp(DEV, 40000, PEER, 8883, 1, 0x18, &inside),
            tcp(DEV, 40001, PEER, 443, 1, 0x18, &sni),
            tcp(DEV, 40002, PEER, 22, 1, 0x18, &ssh),
        ]);
        let s = search(cap.path(), u64::MAX, &canaries(), Some(IpAddr::from(DEV))).expect("search");
        let got: Vec<(String, Layer, u16)> = s.hits.iter().map(|h| (h.canary.clone(), h.layer, h.dport)).collect();
        assert_eq!(
            got,
            vec![
                ("owner_email".to_string(), Layer::TlsHandshake, 443),
                ("wifi_psk".to_string(), Layer::TcpStream, 443),
            ]
        );
        assert!(s.encrypted_bytes >= 2 * psk.len() as u64);
    }

    #[test]
    fn a_hole_in_a_stream_is_counted_and_nothing_is_invented_across_it() {
        let v = b"owner.k3vq9x2m@example.test";
        let frames = vec![
            tcp(DEV, 40000, PEER, 80, 100, 0x18, &v[..10]),
            // bytes 10..15 never captured
            tcp(DEV, 40000, PEER, 80, 115, 0x18, &v[15..]),
        ];
        let cap = capture(&frames);
        let s = search(cap.path(), u64::MAX, &canaries(), None).expect("search");
        assert!(s.hits.is_empty());
        assert_eq!(s.gaps, 1);
    }

    #[test]
    fn short_values_and_fragments_are_reported_as_not_searched() {
        let mut frag = udp(DEV, 1, PEER, 2, b"owner.k3vq9x2m@example.test");
        frag[20] = 0x00;
        frag[21] = 0x10; // fragment offset 16
        let cap = capture(&[frag]);
        let mut c = canaries();
        c.push(Canary {
            name: "pin".into(),
            class: Class::Security,
            value: "1234".into(),
        });
        let s = search(cap.path(), u64::MAX, &c, None).expect("search");
        assert!(s.hits.is_empty());
        assert_eq!(s.fragments, 1);
        let words = s.unsearched().join("; ");
        assert!(words.contains("1 IP fragments") && words.contains("pin"), "{words}");
    }
}
