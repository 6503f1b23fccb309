//! TLS on the wire, as far as a prober needs it: a ClientHello with chosen versions and cipher
//! suites, and the server's first answer (ServerHello, HelloRetryRequest, alert). Hand-built
//! on purpose: rustls (rightly) cannot offer SSL 3.0, TLS 1.0/1.1 or NULL/EXPORT/RC4/3DES/anon
//! suites, and those offers are the whole point of the configuration check (COM-03).

pub const SSL3: u16 = 0x0300;
pub const TLS10: u16 = 0x0301;
pub const TLS11: u16 = 0x0302;
pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;

/// Suites a modern client offers (TLS 1.3, then ECDHE with AEAD, then a plain RSA fallback).
pub const MODERN: &[u16] = &[
    0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009c, 0x002f,
];

/// Suites any TLS 1.0/1.1 server speaks (CBC with SHA-1, ECDHE and RSA key exchange): an old
/// protocol is offered with these so that a server allowing it cannot refuse for want of a
/// common suite.
pub const LEGACY: &[u16] = &[
    0xc013, 0xc014, 0xc009, 0xc00a, 0x0033, 0x0039, 0x002f, 0x0035, 0x000a, 0x0005, 0x0004,
];

/// The weak suites COM-03 forbids: NULL (no encryption), EXPORT, RC4, 3DES, anonymous.
pub const WEAK: &[u16] = &[
    // NULL
    0x0001, 0x0002, 0x003b, 0xc006, 0xc010, 0x002c, 0x002d, 0x002e, 0x00b0, 0x00b1, // EXPORT
    0x0003, 0x0006, 0x0008, 0x000b, 0x000e, 0x0011, 0x0014, 0x0017, 0x0019, // RC4
    0x0004, 0x0005, 0xc002, 0xc007, 0xc00c, 0xc011, 0xc016, 0x0018, 0x008a, 0x008e, 0x0092, // 3DES
    0x000a, 0x000d, 0x0010, 0x0013, 0x0016, 0xc003, 0xc008, 0xc00d, 0xc012, 0xc017, 0x001b, 0x008b,
    // anonymous (no server authentication)
    0x001a, 0x0034, 0x003a, 0x006c, 0x006d, 0x00a6, 0x00a7, 0xc015, 0xc018, 0xc019, 0x009b, 0x0046, 0x0089, 0x00bf,
    0x00c5, 0xc046, 0xc047, 0xc05a, 0xc05b, 0xc084, 0xc085,
];

/// A ClientHello to build.
#[derive(Debug, Clone)]
pub struct Hello<'a> {
    /// The handshake's client_version (the highest version offered, up to TLS 1.2).
    pub version: u16,
    pub suites: &'a [u16],
    pub sni: Option<&'a str>,
    /// The supported_versions extension (TLS 1.3 style); empty: not sent.
    pub versions: &'a [u16],
    /// No extensions at all (an SSL 3.0 hello).
    pub bare: bool,
}

impl Hello<'_> {
    /// The hello of a current client: TLS 1.3 and 1.2, modern suites.
    pub fn modern(sni: Option<&str>) -> Hello<'_> {
        Hello {
            version: TLS12,
            suites: MODERN,
            sni,
            versions: &[0x1a1a, TLS13, TLS12],
            bare: false,
        }
    }

    /// The record bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut body = self.version.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x42; 32]);
        body.push(0);
        body.extend_from_slice(&((self.suites.len() * 2) as u16).to_be_bytes());
        for s in self.suites {
            body.extend_from_slice(&s.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        if !self.bare {
            let ext = self.extensions();
            body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            body.extend_from_slice(&ext);
        }
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        // the record layer's version: 3.0 for an SSL 3.0 hello, else 3.1 (what clients send)
        let rec_version = if self.version == SSL3 { SSL3 } else { TLS10 };
        let mut rec = vec![0x16];
        rec.extend_from_slice(&rec_version.to_be_bytes());
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn extensions(&self) -> Vec<u8> {
        let mut ext = Vec::new();
        if let Some(name) = self.sni.map(str::as_bytes) {
            // server_name: list length, then one host_name entry
            let n = name.len() as u16;
            ext.extend_from_slice(&[0, 0]);
            ext.extend_from_slice(&(n + 5).to_be_bytes());
            ext.extend_from_slice(&(n + 3).to_be_bytes());
            ext.push(0);
            ext.extend_from_slice(&n.to_be_bytes());
            ext.extend_from_slice(name);
        }
        // supported_groups x25519, secp256r1, secp384r1; ec_point_formats uncompressed
        ext.extend_from_slice(&[0x00, 0x0a, 0, 8, 0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
        ext.extend_from_slice(&[0x00, 0x0b, 0, 2, 1, 0]);
        // signature_algorithms: ecdsa_sha256, rsa_pss_sha256, rsa_pkcs1_sha256, rsa_pss_sha384,
        // rsa_pkcs1_sha1, ecdsa_sha1 (old servers sign with SHA-1)
        ext.extend_from_slice(&[
            0x00, 0x0d, 0, 14, 0, 12, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x08, 0x05, 0x02, 0x01, 0x02, 0x03,
        ]);
        // renegotiation_info (empty): old servers expect it
        ext.extend_from_slice(&[0xff, 0x01, 0, 1, 0]);
        if !self.versions.is_empty() {
            let n = (self.versions.len() * 2) as u8;
            ext.extend_from_slice(&[0x00, 0x2b, 0, n + 1, n]);
            for v in self.versions {
                ext.extend_from_slice(&v.to_be_bytes());
            }
            // key_share: x25519 with a fixed (throwaway) public value
            let mut ks = vec![0x00, 0x1d, 0, 32];
            ks.extend_from_slice(&[9u8; 32]);
            ext.extend_from_slice(&[0x00, 0x33]);
            ext.extend_from_slice(&((ks.len() + 2) as u16).to_be_bytes());
            ext.extend_from_slice(&(ks.len() as u16).to_be_bytes());
            ext.extend_from_slice(&ks);
        }
        ext
    }
}

/// The server's first answer to a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// ServerHello (or HelloRetryRequest): the version and suite the server chose.
    Hello { version: u16, suite: u16 },
    /// An alert (its description code): the server refused the offer.
    Alert(u8),
    /// The server closed the connection without a word.
    Closed,
    /// Bytes that are not TLS (the port speaks something else).
    NotTls,
}

/// Reads the server's answer from the bytes received so far; None while incomplete.
pub fn answer(b: &[u8]) -> Option<Answer> {
    if b.len() < 5 {
        return None;
    }
    if !(b[1] == 3 && b[2] <= 4) {
        return Some(Answer::NotTls);
    }
    let len = u16::from_be_bytes([b[3], b[4]]) as usize;
    let rec = b.get(5..5 + len)?;
    match b[0] {
        0x15 => Some(Answer::Alert(rec.get(1).copied().unwrap_or(0))),
        0x16 => server_hello(rec).or(Some(Answer::NotTls)),
        _ => Some(Answer::NotTls),
    }
}

fn server_hello(h: &[u8]) -> Option<Answer> {
    if h.first() != Some(&2) || h.len() < 4 + 2 + 32 + 1 {
        return None;
    }
    let body = &h[4..];
    let legacy = u16::from_be_bytes([body[0], body[1]]);
    let sid = *body.get(34)? as usize;
    let at = 35 + sid;
    let suite = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
    // compression (1 byte), then extensions: supported_versions names the real version
    let mut version = legacy;
    let mut i = at + 3 + 2;
    while i + 4 <= body.len() {
        let t = u16::from_be_bytes([body[i], body[i + 1]]);
        let n = u16::from_be_bytes([body[i + 2], body[i + 3]]) as usize;
        if t == 0x002b && n == 2 && i + 6 <= body.len() {
            version = u16::from_be_bytes([body[i + 4], body[i + 5]]);
        }
        i += 4 + n;
    }
    Some(Answer::Hello { version, suite })
}

/// Sends `hello` to `addr` and reads the server's first answer (connect and answer each
/// within `timeout`). Err: no connection, or no answer in time (nothing decided).
pub async fn probe(
    addr: std::net::SocketAddr,
    hello: &Hello<'_>,
    timeout: std::time::Duration,
) -> Result<Answer, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("no connection to {addr} within {timeout:?}"))?
        .map_err(|e| format!("no connection to {addr}: {e}"))?;
    s.write_all(&hello.bytes()).await.map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return Err(format!("{addr} did not answer the hello within {timeout:?}")),
            // a reset or a close before any answer: the offer was refused without a word
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(answer(&buf).unwrap_or(Answer::Closed)),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(a) = answer(&buf) {
                    return Ok(a);
                }
                if buf.len() > 1 << 16 {
                    return Ok(Answer::NotTls);
                }
            }
        }
    }
}

/// The body of the ClientHello in the first record of `rec` (after its handshake header).
fn client_hello_body(rec: &[u8]) -> Option<&[u8]> {
    if rec.len() < 5 || rec[0] != 0x16 {
        return None;
    }
    let len = u16::from_be_bytes([rec[3], rec[4]]) as usize;
    let hs = rec.get(5..5 + len)?;
    if hs.first() != Some(&1) {
        return None;
    }
    hs.get(4..)
}

/// The cipher suites a ClientHello offers (the handshake message inside one record); None
/// when the bytes are no complete ClientHello.
pub fn offered_suites(rec: &[u8]) -> Option<Vec<u16>> {
    let body = client_hello_body(rec)?;
    let sid = *body.get(34)? as usize;
    let at = 35 + sid;
    let n = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as usize;
    let list = body.get(at + 2..at + 2 + n)?;
    Some(list.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect())
}

/// The highest TLS version a ClientHello offers: its supported_versions extension (RFC 8446;
/// GREASE values skipped) when present, else its legacy version field; None when the bytes
/// are no complete ClientHello.
pub fn client_hello_max_version(rec: &[u8]) -> Option<u16> {
    let body = client_hello_body(rec)?;
    let legacy = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let listed = extension(body, 43).and_then(|data| {
        let n = *data.first()? as usize;
        data.get(1..1 + n)?
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .filter(|v| v & 0x0f0f != 0x0a0a)
            .max()
    });
    Some(listed.unwrap_or(legacy))
}

/// The data of extension `kind` of a ClientHello body.
fn extension(body: &[u8], kind: u16) -> Option<&[u8]> {
    let sid = *body.get(34)? as usize;
    let mut at = 35 + sid;
    let suites = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as usize;
    at += 2 + suites;
    let compression = *body.get(at)? as usize;
    at += 1 + compression;
    let ext_len = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as usize;
    let mut exts = body.get(at + 2..at + 2 + ext_len)?;
    while exts.len() >= 4 {
        let (k, n) = (
            u16::from_be_bytes([exts[0], exts[1]]),
            u16::from_be_bytes([exts[2], exts[3]]) as usize,
        );
        let data = exts.get(4..4 + n)?;
        if k == kind {
            return Some(data);
        }
        exts = &exts[4 + n..];
    }
    None
}

/// The host name a ClientHello asks for (server_name, RFC 6066); None when it names none or
/// the bytes are no complete ClientHello.
pub fn client_hello_sni(rec: &[u8]) -> Option<String> {
    let data = extension(client_hello_body(rec)?, 0)?;
    // list length (2), then entries: type (1: 0 = host_name), length (2), name
    let name_len = u16::from_be_bytes([*data.get(3)?, *data.get(4)?]) as usize;
    let name = data.get(5..5 + name_len)?;
    (*data.get(2)? == 0 && name.iter().all(|c| c.is_ascii_graphic()))
        .then(|| String::from_utf8_lossy(name).into_owned())
}

fn handshake_record(version: u16, msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut hs = vec![msg_type];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(body);
    let mut rec = vec![0x16];
    rec.extend_from_slice(&version.to_be_bytes());
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A ServerHello choosing `version` and `suite` (no session id; renegotiation_info, which
/// current clients insist on: RFC 5746).
pub fn server_hello_record(version: u16, suite: u16) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x53; 32]);
    body.push(0);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    body.extend_from_slice(&[0, 5, 0xff, 0x01, 0, 1, 0]);
    handshake_record(version, 2, &body)
}

/// The rest of a server's first flight for an RSA key exchange: Certificate (the DER chain)
/// and ServerHelloDone.
pub fn certificate_and_done(version: u16, chain: &[Vec<u8>]) -> Vec<u8> {
    let mut list = Vec::new();
    for der in chain {
        list.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(der);
    }
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&list);
    let mut out = handshake_record(version, 11, &body);
    out.extend(handshake_record(version, 14, &[]));
    out
}

pub fn version_name(v: u16) -> String {
    match v {
        SSL3 => "SSL 3.0".into(),
        TLS10 => "TLS 1.0".into(),
        TLS11 => "TLS 1.1".into(),
        TLS12 => "TLS 1.2".into(),
        TLS13 => "TLS 1.3".into(),
        v => format!("version 0x{v:04x}"),
    }
}

/// The suite's IANA name for the weak ones and a few common ones; else its number.
pub fn suite_name(s: u16) -> String {
    let known: &[(u16, &str)] = &[
        (0x0001, "TLS_RSA_WITH_NULL_MD5"),
        (0x0002, "TLS_RSA_WITH_NULL_SHA"),
        (0x003b, "TLS_RSA_WITH_NULL_SHA256"),
        (0xc006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA"),
        (0xc010, "TLS_ECDHE_RSA_WITH_NULL_SHA"),
        (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
        (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
        (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
        (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
        (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
        (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
        (0x0018, "TLS_DH_anon_WITH_RC4_128_MD5"),
        (0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA"),
        (0x003a, "TLS_DH_anon_WITH_AES_256_CBC_SHA"),
        (0x006c, "TLS_DH_anon_WITH_AES_128_CBC_SHA256"),
        (0x006d, "TLS_DH_anon_WITH_AES_256_CBC_SHA256"),
        (0x00a7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384"),
        (0x001b, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA"),
        (0x0046, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA"),
        (0x0089, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA"),
        (0x00bf, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256"),
        (0x00c5, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256"),
        (0xc046, "TLS_DH_anon_WITH_ARIA_128_CBC_SHA256"),
        (0xc047, "TLS_DH_anon_WITH_ARIA_256_CBC_SHA384"),
        (0xc05a, "TLS_DH_anon_WITH_ARIA_128_GCM_SHA256"),
        (0xc05b, "TLS_DH_anon_WITH_ARIA_256_GCM_SHA384"),
        (0xc084, "TLS_DH_anon_WITH_CAMELLIA_128_GCM_SHA256"),
        (0xc085, "TLS_DH_anon_WITH_CAMELLIA_256_GCM_SHA384"),
        (0xc015, "TLS_ECDH_anon_WITH_NULL_SHA"),
        (0xc017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA"),
        (0x00a6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256"),
        (0xc018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"),
        (0xc019, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA"),
        (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
        (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
        (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
        (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
        (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        (0x1301, "TLS_AES_128_GCM_SHA256"),
        (0x1302, "TLS_AES_256_GCM_SHA384"),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    ];
    known
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| format!("suite 0x{s:04x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_is_one_well_formed_record() {
        for h in [
            Hello::modern(Some("dev.test")),
            Hello {
                version: SSL3,
                suites: LEGACY,
                sni: None,
                versions: &[],
                bare: true,
            },
        ] {
            let b = h.bytes();
            assert_eq!(b[0], 0x16);
            assert_eq!(u16::from_be_bytes([b[3], b[4]]) as usize, b.len() - 5, "record length");
            assert_eq!(b[5], 1, "ClientHello");
            assert_eq!(u16::from_be_bytes([b[9], b[10]]), h.version);
        }
        // the weak list has no duplicates and no modern suite
        let mut seen = std::collections::BTreeSet::new();
        assert!(WEAK.iter().all(|s| seen.insert(*s)));
        assert!(WEAK.iter().all(|s| !MODERN.contains(s)));
    }

    #[test]
    fn a_client_hellos_suites_and_a_server_flight_read_back() {
        let hello = Hello::modern(Some("x.test")).bytes();
        assert_eq!(offered_suites(&hello).as_deref(), Some(MODERN));
        assert_eq!(client_hello_sni(&hello).as_deref(), Some("x.test"));
        assert_eq!(client_hello_sni(&Hello::modern(None).bytes()), None);
        assert_eq!(client_hello_sni(&hello[..hello.len() - 3]), None, "a cut hello");
        // the highest version offered: supported_versions (GREASE skipped), else the field
        assert_eq!(client_hello_max_version(&hello), Some(TLS13));
        let old = Hello {
            version: TLS10,
            suites: &[0x002f],
            sni: Some("x.test"),
            versions: &[],
            bare: false,
        };
        assert_eq!(client_hello_max_version(&old.bytes()), Some(TLS10));
        assert_eq!(client_hello_sni(&old.bytes()).as_deref(), Some("x.test"));
        assert_eq!(client_hello_max_version(&hello[..20]), None);
        let sh = server_hello_record(TLS10, 0x002f);
        assert_eq!(
            answer(&sh),
            Some(Answer::Hello {
                version: TLS10,
                suite: 0x002f
            })
        );
        let flight = certificate_and_done(TLS10, &[vec![1, 2, 3]]);
        // Certificate: list of one 3-byte certificate; then an empty ServerHelloDone
        assert_eq!(flight[5], 11);
        assert_eq!(&flight[flight.len() - 4..], &[14, 0, 0, 0]);
    }

    #[test]
    fn answers_are_read_from_what_servers_send() {
        // ServerHello TLS 1.2, suite c02f, no extensions
        let mut sh = vec![2, 0, 0, 0, 3, 3];
        sh.extend_from_slice(&[7; 32]);
        sh.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
        let len = sh.len() - 4;
        sh[3] = len as u8;
        let mut rec = vec![0x16, 3, 3, 0, sh.len() as u8];
        rec.extend_from_slice(&sh);
        assert_eq!(answer(&rec[..10]), None, "incomplete");
        assert_eq!(
            answer(&rec),
            Some(Answer::Hello {
                version: TLS12,
                suite: 0xc02f
            })
        );
        // TLS 1.3: supported_versions says 0x0304
        let mut sh = vec![2, 0, 0, 0, 3, 3];
        sh.extend_from_slice(&[7; 32]);
        sh.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 6, 0x00, 0x2b, 0, 2, 3, 4]);
        sh[3] = (sh.len() - 4) as u8;
        let mut rec = vec![0x16, 3, 3, 0, sh.len() as u8];
        rec.extend_from_slice(&sh);
        assert_eq!(
            answer(&rec),
            Some(Answer::Hello {
                version: TLS13,
                suite: 0x1301
            })
        );
        assert_eq!(answer(&[0x15, 3, 1, 0, 2, 2, 70]), Some(Answer::Alert(70)));
        assert_eq!(answer(b"HTTP/1.1 400 Bad"), Some(Answer::NotTls));
    }
}
