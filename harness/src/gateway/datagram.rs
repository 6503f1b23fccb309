//! What one UDP datagram is, decided by its port **and** its structure: a datagram counts
//! as NTP, DNS, DHCP, SSDP or CoAP only on that protocol's port and only when its parser
//! reads the whole datagram; as DTLS only when its records tile the datagram with
//! consistent headers and its encrypted records look like ciphertext; as QUIC only with a
//! valid long or short header on a flow that began with a valid Initial. A datagram that
//! claims a protocol and fails its parser is unidentified, and text inside it is judged as
//! text ([`clear_text`]). A device cannot make clear text pass as NTP by choosing its first
//! byte, nor as "encrypted" with a three-byte DTLS-like prefix.

/// The protocols a datagram can be identified as (a bit each in a direction's mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Dns = 0,
    Mdns,
    Ntp,
    Dhcp,
    Ssdp,
    Coap,
    Dtls,
    Quic,
    Syslog,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Dns,
        Kind::Mdns,
        Kind::Ntp,
        Kind::Dhcp,
        Kind::Ssdp,
        Kind::Coap,
        Kind::Dtls,
        Kind::Quic,
        Kind::Syslog,
    ];

    pub fn bit(self) -> u16 {
        1 << (self as u8)
    }
}

/// The kind of one datagram between `ports` (either side's port), if its structure holds.
pub fn kind(ports: [u16; 2], d: &[u8]) -> Option<Kind> {
    let on = |p: u16| ports.contains(&p);
    if on(53) && dns(d) {
        return Some(Kind::Dns);
    }
    if (on(5353) || on(5355)) && dns(d) {
        return Some(Kind::Mdns);
    }
    if on(123) && ntp(d) {
        return Some(Kind::Ntp);
    }
    if (on(67) || on(68) || on(547) || on(546)) && dhcp(d) {
        return Some(Kind::Dhcp);
    }
    if on(1900) && ssdp(d) {
        return Some(Kind::Ssdp);
    }
    if (on(5683) || on(5684)) && coap(d) {
        return Some(Kind::Coap);
    }
    if on(514) && syslog(d) {
        return Some(Kind::Syslog);
    }
    if dtls(d) {
        return Some(Kind::Dtls);
    }
    if quic(d) {
        return Some(Kind::Quic);
    }
    None
}

/// A run of at least this many printable bytes (with at least half of them letters) is
/// readable text: ciphertext has one by chance with a probability near 1e-9 a position.
pub const TEXT_RUN: usize = 20;

/// The first readable run of text in `b` (see [`TEXT_RUN`]), if any.
pub fn clear_text(b: &[u8]) -> Option<&[u8]> {
    let printable = |c: u8| (0x20..0x7f).contains(&c) || matches!(c, b'\t' | b'\r' | b'\n');
    let mut i = 0;
    while i < b.len() {
        if !printable(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && printable(b[i]) {
            i += 1;
        }
        let run = &b[start..i];
        if run.len() >= TEXT_RUN && run.iter().filter(|c| c.is_ascii_alphabetic()).count() * 2 >= run.len() {
            return Some(run);
        }
    }
    None
}

/// Whether `b` could be ciphertext: no readable run, and (from 32 bytes on) an entropy
/// near what random bytes of that length have.
pub fn plausible_ciphertext(b: &[u8]) -> bool {
    if clear_text(b).is_some() || b.windows(12).any(|w| w.iter().all(|c| (0x20..0x7f).contains(c))) {
        return false;
    }
    if b.len() < 32 {
        return true;
    }
    let max = (b.len().min(256) as f64).log2();
    entropy(b) >= (max - 1.2).min(7.0)
}

/// A DNS message read to its end: header, questions and every resource record; the
/// datagram ends where the last record does.
pub fn dns(m: &[u8]) -> bool {
    if m.len() < 12 {
        return false;
    }
    let count = |i: usize| u16::from_be_bytes([m[i], m[i + 1]]) as usize;
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    let opcode = (m[2] >> 3) & 0xf;
    if opcode > 5 || qd + an + ns + ar == 0 || qd > 16 || an + ns + ar > 256 {
        return false;
    }
    let mut at = 12;
    for _ in 0..qd {
        let Some(e) = name_end(m, at) else { return false };
        at = e + 4;
    }
    for _ in 0..an + ns + ar {
        let Some(e) = name_end(m, at) else { return false };
        let Some(h) = m.get(e..e + 10) else { return false };
        at = e + 10 + u16::from_be_bytes([h[8], h[9]]) as usize;
    }
    at == m.len()
}

/// Where a DNS name starting at `at` ends (labels of 1..=63 bytes, compression pointers
/// backwards only, at most 255 bytes in all).
fn name_end(m: &[u8], mut at: usize) -> Option<usize> {
    let mut end = None;
    let mut total = 0;
    for _ in 0..128 {
        let len = *m.get(at)? as usize;
        match len {
            0 => return Some(end.unwrap_or(at + 1)),
            l if l & 0xc0 == 0xc0 => {
                let target = ((l & 0x3f) << 8) | *m.get(at + 1)? as usize;
                if target >= at {
                    return None;
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            l if l & 0xc0 != 0 => return None,
            l => {
                total += l + 1;
                if total > 255 {
                    return None;
                }
                m.get(at + 1..at + 1 + l)?;
                at += 1 + l;
            }
        }
    }
    None
}

/// An NTP packet (RFC 5905): version 3 or 4, a real mode, stratum at most 16, sane poll and
/// precision, timestamps in the NTP era that the mode allows, and exactly 48 bytes — or 48
/// followed by extension fields (RFC 7822) and/or a MAC (key id + MD5 or SHA-1).
pub fn ntp(d: &[u8]) -> bool {
    if d.len() < 48 {
        return false;
    }
    let version = (d[0] >> 3) & 7;
    let mode = d[0] & 7;
    let stratum = d[1];
    let poll = d[2] as i8;
    let precision = d[3] as i8;
    if !matches!(version, 3 | 4) || !(1..=5).contains(&mode) || stratum > 16 {
        return false;
    }
    // (chrony's client requests carry a precision of +32: nothing of the client's own clock)
    if !(-6..=17).contains(&poll) || !((-32..=0).contains(&precision) || (mode == 3 && precision == 32)) {
        return false;
    }
    // a server's receive and transmit times are after 1970 (era 0 runs to 2036); a client
    // may send a random transmit time (chrony does), so only servers are held to it
    let secs = |o: usize| u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
    const Y1970: u32 = 2_208_988_800;
    if mode == 4 && (secs(32) < Y1970 || secs(40) < Y1970) {
        return false;
    }
    if secs(16) != 0 && secs(16) < Y1970 {
        return false;
    }
    ntp_tail(&d[48..])
}

/// What may follow the 48-byte header: nothing, a MAC, or extension fields then a MAC.
fn ntp_tail(mut t: &[u8]) -> bool {
    loop {
        if t.is_empty() || t.len() == 20 || t.len() == 24 {
            return true;
        }
        if t.len() < 16 {
            return false;
        }
        let len = u16::from_be_bytes([t[2], t[3]]) as usize;
        if len < 16 || !len.is_multiple_of(4) || len > t.len() {
            return false;
        }
        t = &t[len..];
    }
}

/// A BOOTP/DHCP message (RFC 2131/2132): op 1 or 2, Ethernet-like hardware fields, the
/// magic cookie, options that parse up to their end mark; or a DHCPv6 message type with
/// options that tile the rest.
pub fn dhcp(d: &[u8]) -> bool {
    if d.len() >= 240 && matches!(d[0], 1 | 2) && d[236..240] == [0x63, 0x82, 0x53, 0x63] {
        if d[2] > 16 {
            return false;
        }
        let mut at = 240;
        while at < d.len() {
            match d[at] {
                255 => return d[at + 1..].iter().all(|&b| b == 0),
                0 => at += 1,
                _ => match d.get(at + 1) {
                    Some(&l) => at += 2 + l as usize,
                    None => return false,
                },
            }
        }
        return false;
    }
    // DHCPv6: message type 1..=13, then options (code, length) to the end
    if d.len() >= 4 && (1..=13).contains(&d[0]) {
        let mut at = 4;
        while at + 4 <= d.len() {
            at += 4 + u16::from_be_bytes([d[at + 2], d[at + 3]]) as usize;
        }
        return at == d.len();
    }
    false
}

/// SSDP (HTTP over UDP): a request or status line, then header lines, ended by an empty
/// line with nothing after it.
/// A syslog message (RFC 5424 or the older RFC 3164): `<PRI>` (0..=191) then a line of
/// text.
pub fn syslog(d: &[u8]) -> bool {
    let Some(rest) = d.strip_prefix(b"<") else { return false };
    let Some(close) = rest.iter().take(4).position(|&c| c == b'>') else {
        return false;
    };
    let pri = &rest[..close];
    let text = &rest[close + 1..];
    !pri.is_empty()
        && pri.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(pri)
            .ok()
            .and_then(|p| p.parse::<u16>().ok())
            .is_some_and(|p| p <= 191)
        && !text.is_empty()
        && text
            .iter()
            .all(|&c| (0x20..0x7f).contains(&c) || matches!(c, b'\t' | b'\r' | b'\n') || c >= 0x80)
}

pub fn ssdp(d: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(d) else { return false };
    let first = text.split("\r\n").next().unwrap_or("");
    let starts = ["M-SEARCH * HTTP/1.1", "NOTIFY * HTTP/1.1", "HTTP/1.1 200 OK"];
    if !starts.contains(&first) || !text.ends_with("\r\n\r\n") {
        return false;
    }
    let body = &text[first.len() + 2..text.len() - 2];
    body.split_terminator("\r\n").all(|l| {
        l.split_once(':').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
        })
    })
}

/// A CoAP message (RFC 7252): version 1, a token of at most 8 bytes, a request or response
/// code class, options that parse, and a payload only after the 0xFF marker.
pub fn coap(d: &[u8]) -> bool {
    if d.len() < 4 || d[0] >> 6 != 1 {
        return false;
    }
    let tkl = (d[0] & 0x0f) as usize;
    let class = d[1] >> 5;
    if tkl > 8 || !matches!(class, 0 | 2 | 4 | 5) || d.len() < 4 + tkl {
        return false;
    }
    if d[1] == 0 {
        // an empty message carries nothing at all
        return d.len() == 4 && tkl == 0;
    }
    let mut at = 4 + tkl;
    while at < d.len() {
        if d[at] == 0xff {
            return at + 1 < d.len();
        }
        let (mut delta, mut len) = ((d[at] >> 4) as usize, (d[at] & 0x0f) as usize);
        at += 1;
        for v in [&mut delta, &mut len] {
            match *v {
                13 => {
                    let Some(&x) = d.get(at) else { return false };
                    *v = 13 + x as usize;
                    at += 1;
                }
                14 => {
                    let Some(x) = d.get(at..at + 2) else { return false };
                    *v = 269 + u16::from_be_bytes([x[0], x[1]]) as usize;
                    at += 2;
                }
                15 => return false,
                _ => {}
            }
        }
        at += len;
    }
    at == d.len()
}

/// DTLS 1.0/1.2 records (RFC 6347): every record's header is consistent (content type,
/// version, an epoch, a length that fits) and the records tile the datagram exactly.
/// Epoch 0 carries only a readable handshake (each fragment's header consistent with its
/// record), alerts and ChangeCipherSpec; records of a later epoch must look like
/// ciphertext. DTLS 1.3's unified header (RFC 9147) is accepted when its payload does.
pub fn dtls(d: &[u8]) -> bool {
    let mut at = 0;
    let mut records = 0;
    while at < d.len() {
        let r = &d[at..];
        if r[0] & 0xe0 == 0x20 {
            // DTLS 1.3 ciphertext: the unified header, then encrypted bytes to the end (a
            // length field, when present, must match)
            let mut h = 1 + if r[0] & 0x08 != 0 { 2 } else { 1 };
            if r[0] & 0x10 != 0 {
                return false; // connection ids are not negotiated by anything the bench plays
            }
            let body = if r[0] & 0x04 != 0 {
                let Some(l) = r.get(h..h + 2) else { return false };
                let len = u16::from_be_bytes([l[0], l[1]]) as usize;
                h += 2;
                match r.get(h..h + len) {
                    Some(b) => b,
                    None => return false,
                }
            } else {
                &r[h.min(r.len())..]
            };
            if body.len() < 16 || !plausible_ciphertext(body) {
                return false;
            }
            at += h + body.len();
            records += 1;
            continue;
        }
        if r.len() < 13 || !(20..=25).contains(&r[0]) || r[1] != 0xfe || !matches!(r[2], 0xff | 0xfd) {
            return false;
        }
        let epoch = u16::from_be_bytes([r[3], r[4]]);
        let len = u16::from_be_bytes([r[11], r[12]]) as usize;
        let Some(body) = r.get(13..13 + len) else { return false };
        let ok = match (r[0], epoch) {
            (20, _) => body == [1],
            (21, 0) => body.len() == 2 && matches!(body[0], 1 | 2),
            (22, 0) => handshake_fragment(body),
            (23, 0) => false,
            (_, _) => body.len() >= 16 && plausible_ciphertext(body),
        };
        if !ok {
            return false;
        }
        at += 13 + len;
        records += 1;
    }
    records > 0
}

/// A DTLS handshake fragment in the clear: a known message type and a fragment header
/// whose lengths agree with the record.
fn handshake_fragment(b: &[u8]) -> bool {
    if b.len() < 12 || !matches!(b[0], 1 | 2 | 3 | 4 | 11 | 12 | 13 | 14 | 15 | 16 | 20) {
        return false;
    }
    let u24 = |o: usize| (u32::from(b[o]) << 16 | u32::from(b[o + 1]) << 8 | u32::from(b[o + 2])) as usize;
    let (total, offset, frag) = (u24(1), u24(6), u24(9));
    frag + 12 == b.len() && offset + frag <= total
}

/// A QUIC long-header packet (RFC 9000/9369): a known version, connection ids of at most
/// 20 bytes, and — for a client's Initial — the 1200-byte minimum the standard demands;
/// what follows the header must look like ciphertext.
pub fn quic(d: &[u8]) -> bool {
    if d.len() < 7 || d[0] & 0xc0 != 0xc0 {
        return false;
    }
    let version = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
    let known = matches!(version, 1 | 0x6b33_43cf) || version >> 8 == 0x00ff_0000 >> 8;
    if !known {
        return false;
    }
    let dcid = d[5] as usize;
    let Some(&scid) = d.get(6 + dcid) else { return false };
    let scid = scid as usize;
    let rest = 7 + dcid + scid;
    if dcid > 20 || scid > 20 || d.len() < rest + 16 {
        return false;
    }
    let initial = (d[0] >> 4) & 3 == if version == 0x6b33_43cf { 1 } else { 0 };
    (!initial || d.len() >= 1200) && plausible_ciphertext(&d[rest..d.len().min(rest + 256)])
}

/// Shannon entropy in bits per byte (0..8): near 8 looks encrypted or compressed.
pub fn entropy(b: &[u8]) -> f64 {
    if b.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &x in b {
        counts[x as usize] += 1;
    }
    let n = b.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ntp_packet(first: u8) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = first;
        p[2] = 6;
        p[3] = 0xec; // precision -20
        p
    }

    #[test]
    fn a_chrony_client_request_is_ntp() {
        // chronyd -Q's request as captured: v4 client, stratum 0, poll 6, precision +32,
        // only the transmit time set
        let mut r = vec![0u8; 48];
        r[0] = 0x23;
        r[2] = 6;
        r[3] = 0x20;
        r[40..48].copy_from_slice(&0x9a3b_c1d2_e3f4_0516u64.to_be_bytes());
        assert!(ntp(&r));
        // a server may not claim it
        r[0] = 0x24;
        assert!(!ntp(&r));
    }

    #[test]
    fn ntp_only_on_its_port_and_with_a_valid_header() {
        assert_eq!(kind([40000, 123], &ntp_packet(0x23)), Some(Kind::Ntp));
        // the same bytes on another port are not NTP
        assert_eq!(kind([40000, 9999], &ntp_packet(0x23)), None);
        // 48 bytes of text whose first byte happens to read as "version 4, client"
        let text = b"c=telemetry&owner=alice@example.com&temp=21.5&xy";
        assert_eq!(text.len(), 48);
        assert_eq!(kind([40000, 123], text), None);
        assert!(clear_text(text).is_some());
        // a server answer dated 1900, a stratum of 99, a wrong length: not NTP
        let mut srv = ntp_packet(0x24);
        srv[1] = 2;
        assert!(!ntp(&srv), "a server's times must be set");
        srv[32..36].copy_from_slice(&3_900_000_000u32.to_be_bytes());
        srv[40..44].copy_from_slice(&3_900_000_000u32.to_be_bytes());
        assert!(ntp(&srv));
        let mut s99 = srv.clone();
        s99[1] = 99;
        assert!(!ntp(&s99));
        let mut long = srv.clone();
        long.extend_from_slice(b"hello");
        assert!(!ntp(&long));
        // with a MAC (key id + SHA-1) it is NTP
        let mut mac = srv.clone();
        mac.extend_from_slice(&[0x11; 24]);
        assert!(ntp(&mac));
    }

    #[test]
    fn dtls_needs_consistent_records_and_ciphertext() {
        // a 3-byte DTLS-like prefix in front of clear text
        let mut fake = b"\x16\xfe\xfd".to_vec();
        fake.extend_from_slice(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20user=alice;password=hunter2hunter2");
        assert!(!dtls(&fake));
        assert_eq!(kind([5000, 5000], &fake), None);
        // an application-data record of epoch 1 carrying text: not ciphertext
        let mut text = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1];
        let body = b"{\"owner\":\"alice@example.com\",\"temp\":21}";
        text.extend_from_slice(&(body.len() as u16).to_be_bytes());
        text.extend_from_slice(body);
        assert!(!dtls(&text));
        // the same record carrying random-looking bytes is DTLS
        let mut enc = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0, 64];
        let mut x: u32 = 0x1234_5678;
        for _ in 0..64 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            enc.push((x >> 24) as u8);
        }
        assert!(dtls(&enc), "{}", entropy(&enc[13..]));
        // a record that claims more bytes than the datagram has, or leaves bytes over
        let mut short = enc.clone();
        short.truncate(40);
        assert!(!dtls(&short));
        let mut over = enc.clone();
        over.extend_from_slice(b"tail");
        assert!(!dtls(&over));
        // a ClientHello fragment in epoch 0
        let mut hello = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16];
        hello.extend_from_slice(&[1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 0xfe, 0xfd, 0, 0]);
        assert!(dtls(&hello));
    }

    #[test]
    fn dns_dhcp_ssdp_coap_by_their_parsers_and_ports() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x05cloud\x07example\x00\x00\x01\x00\x01");
        assert_eq!(kind([5000, 53], &q), Some(Kind::Dns));
        assert_eq!(kind([5000, 5353], &q), Some(Kind::Mdns));
        assert_eq!(kind([5000, 7000], &q), None, "DNS off its port");
        let mut trailing = q.clone();
        trailing.extend_from_slice(b"password=hunter2hunter2hunter2");
        assert_eq!(kind([5000, 53], &trailing), None, "bytes after the last record");
        let mut ssdp_ok = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n".to_vec();
        assert_eq!(kind([5000, 1900], &ssdp_ok), Some(Kind::Ssdp));
        ssdp_ok.extend_from_slice(b"owner=alice@example.com");
        assert_eq!(kind([5000, 1900], &ssdp_ok), None, "a body after the headers");
        assert_eq!(
            kind([5000, 5683], b"\x40\x01\x12\x34\xbb.well-known\x04core"),
            Some(Kind::Coap)
        );
        assert_eq!(
            kind([5000, 5683], b"\x40\x01\x12\x34\xff{\"temp\":21}"),
            Some(Kind::Coap)
        );
        assert_eq!(
            kind([5000, 5683], b"\x40\x01\x12\x34\xfb"),
            None,
            "an option past the end"
        );
        let mut dhcp_ok = vec![0u8; 240];
        dhcp_ok[0] = 1;
        dhcp_ok[1] = 1;
        dhcp_ok[2] = 6;
        dhcp_ok[236..240].copy_from_slice(&[0x63, 0x82, 0x53, 0x63]);
        dhcp_ok.extend_from_slice(&[53, 1, 1, 255]);
        assert_eq!(kind([68, 67], &dhcp_ok), Some(Kind::Dhcp));
        let mut dhcp_text = dhcp_ok.clone();
        dhcp_text.pop();
        dhcp_text.extend_from_slice(b"\x0chello");
        assert_eq!(kind([68, 67], &dhcp_text), None, "an option that runs past the end");
    }

    #[test]
    fn syslog_by_its_priority_and_text_on_its_port() {
        let line = b"<13>1 2026-12-06T08:42:17Z vm netdev - - - login ok for admin";
        assert_eq!(kind([40000, 514], line), Some(Kind::Syslog));
        assert_eq!(
            kind([40000, 514], b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed"),
            Some(Kind::Syslog)
        );
        assert_eq!(kind([40000, 9999], line), None, "only on syslog's port");
        assert_eq!(kind([40000, 514], b"<999>too high"), None);
        assert_eq!(kind([40000, 514], b"<13>\x00\x01binary"), None);
        assert_eq!(kind([40000, 514], b"13> no bracket"), None);
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..3000u32 {
            let len = (n % 300) as usize;
            let d: Vec<u8> = (0..len).map(|i| (i as u32 * 131 + n * 7) as u8).collect();
            for ports in [[53, 1], [123, 1], [67, 68], [1900, 2], [5683, 3], [4, 5]] {
                let _ = kind(ports, &d);
                let mut e = d.clone();
                if let Some(f) = e.first_mut() {
                    *f = [0x16, 0x17, 0x2c, 0xc3, 0x23][n as usize % 5];
                }
                let _ = kind(ports, &e);
            }
        }
    }
}
