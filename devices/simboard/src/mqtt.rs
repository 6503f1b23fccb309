//! The board's telemetry client: publishes to its cloud broker over MQTT, over TLS unless a
//! flaw says otherwise. Written by hand (CONNECT, PUBLISH, DISCONNECT of MQTT 3.1.1) on
//! rustls, like small firmware does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use crate::board::Flaw;

#[derive(Debug, Clone)]
pub struct MqttOptions {
    /// The cloud host name: SNI and the name the certificate must carry.
    pub host: String,
    /// Where to connect (the lab's DNS would map `host` here).
    pub connect: String,
    pub tls_port: u16,
    pub plain_port: u16,
    pub ca: Option<PathBuf>,
    pub interval: Duration,
    pub client_id: String,
    pub token: String,
    /// The board's flash: the owner's device name and e-mail travel in its telemetry.
    pub state: Option<PathBuf>,
    /// The telemetry-overshares flaw: the Wi-Fi passphrase travels in it too.
    pub overshares: bool,
}

pub(crate) fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn connect_packet(client_id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    string("MQTT", &mut body);
    body.push(4); // 3.1.1
    body.push(0b1100_0010); // user name, password, clean session
    body.extend_from_slice(&60u16.to_be_bytes());
    string(client_id, &mut body);
    string(user, &mut body);
    string(password, &mut body);
    let mut p = vec![0x10];
    remaining_length(body.len(), &mut p);
    p.extend(body);
    p
}

fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic, &mut body);
    body.extend_from_slice(payload);
    let mut p = vec![0x30];
    remaining_length(body.len(), &mut p);
    p.extend(body);
    p
}

/// Accepts any certificate: the "no certificate validation" flaw.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Validates the chain but not the name: the "no host-name validation" flaw.
#[derive(Debug)]
struct IgnoreName(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for IgnoreName {
    fn verify_server_cert(
        &self,
        e: &CertificateDer<'_>,
        i: &[CertificateDer<'_>],
        n: &ServerName<'_>,
        o: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(e, i, n, o, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The board's HTTPS telemetry: every second (or the MQTT interval, when longer) a POST to https://telemetry.simboard.test/v1/ingest
/// (port 443), its certificate checked against the CA the board was provisioned with (but
/// the https-client-no-verify flaw, which accepts any). Without a CA it sends nothing.
pub fn https_telemetry(opts: &MqttOptions, flaws: &[Flaw]) {
    https_loop(opts, flaws, "telemetry.simboard.test", "/v1/ingest", &|| true);
}

/// Every second (or the MQTT interval) a POST of a small JSON record to `https://HOST{path}`,
/// while `gate` says so (the owner's consent, for the usage analytics).
pub fn https_loop(opts: &MqttOptions, flaws: &[Flaw], host: &'static str, path: &str, gate: &dyn Fn() -> bool) {
    #[allow(non_snake_case)]
    let HOST = host;
    if opts.ca.is_none() {
        return;
    }
    let lax = if flaws.contains(&Flaw::HttpsClientNoVerify) {
        vec![Flaw::NoCertValidation]
    } else {
        Vec::new()
    };
    let Ok(cfg) = tls_config(opts, &lax) else { return };
    let Ok(name) = ServerName::try_from(HOST) else { return };
    let old_stack = flaws.contains(&Flaw::HttpsClientTls10);
    let mut n = 0u64;
    loop {
        if !gate() {
            std::thread::sleep(opts.interval.max(Duration::from_secs(1)));
            continue;
        }
        n += 1;
        let body = format!("{{\"device\":\"simboard-sb1\",\"uptime\":{n}}}");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer sbt_4f0c9e2d7a1b\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut sent = false;
        if let (Ok(sock), Ok(conn)) = (
            crate::net::connect(&format!("{HOST}:443")),
            rustls::ClientConnection::new(cfg.clone(), name.clone()),
        ) {
            let _ = sock.set_read_timeout(Some(Duration::from_secs(3)));
            let mut tls = rustls::StreamOwned::new(conn, sock);
            if tls.write_all(request.as_bytes()).is_ok() {
                sent = true;
                let mut sink = [0u8; 512];
                let _ = tls.read(&mut sink);
            }
        }
        // the flaw: a failed handshake is tried again with the old stack
        if !sent
            && old_stack
            && let Ok(mut sock) = crate::net::connect(&format!("{HOST}:443"))
        {
            let _ = sock.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = legacy_tls10_on(&mut sock, Some(HOST), opts.ca.as_deref());
        }
        std::thread::sleep(opts.interval.max(Duration::from_secs(1)));
    }
}

fn tls_config(opts: &MqttOptions, flaws: &[Flaw]) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &opts.ca {
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("CA {}: {e}", ca.display()))? {
            roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
    }
    let cfg = if flaws.contains(&Flaw::NoCertValidation) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
            .with_no_client_auth()
    } else {
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("no CA to trust: {e}"))?;
        if flaws.contains(&Flaw::NoHostnameValidation) {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(IgnoreName(webpki)))
                .with_no_client_auth()
        } else {
            builder.with_webpki_verifier(webpki).with_no_client_auth()
        }
    };
    Ok(Arc::new(cfg))
}

fn session(stream: &mut dyn ReadWrite, opts: &MqttOptions, n: u64) -> Result<(), String> {
    let state = opts.state.as_deref().map(crate::board::State::load);
    let field = |k: &str| {
        state
            .as_ref()
            .and_then(|s| s.get(k).map(str::to_string))
            .unwrap_or_default()
    };
    let owner = field("owner_email");
    let payload = if opts.overshares {
        let psk = field("wifi_psk");
        format!("{{\"seq\":{n},\"temp\":21.5,\"owner\":\"{owner}\",\"wifi\":\"{psk}\"}}")
    } else {
        format!("{{\"seq\":{n},\"temp\":21.5,\"owner\":\"{owner}\"}}")
    };
    publish_session(stream, opts, "telemetry/simboard/state", payload.as_bytes())
}

/// CONNECT, one PUBLISH (QoS 0), DISCONNECT.
fn publish_session(stream: &mut dyn ReadWrite, opts: &MqttOptions, topic: &str, payload: &[u8]) -> Result<(), String> {
    stream
        .write_all(&connect_packet(&opts.client_id, "device", &opts.token))
        .map_err(|e| format!("CONNECT: {e}"))?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).map_err(|e| format!("CONNACK: {e}"))?;
    if connack[0] != 0x20 || connack[3] != 0 {
        return Err(format!("broker refused: {connack:02x?}"));
    }
    stream
        .write_all(&publish_packet(topic, payload))
        .map_err(|e| e.to_string())?;
    stream.write_all(&[0xe0, 0x00]).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())
}

/// The user's factory reset also closes the owner's account in the cloud: a request on
/// `account/<client id>/delete` over TLS, sent while the board still holds its cloud
/// credentials (tried three times, a second apart).
pub fn request_account_deletion(opts: &MqttOptions) -> Result<(), String> {
    let cfg = tls_config(opts, &[])?;
    let topic = format!("account/{}/delete", opts.client_id);
    let mut last = String::new();
    for _ in 0..3 {
        let attempt = over_tls(opts, &cfg, |tls| {
            publish_session(tls, opts, &topic, b"{\"delete\":\"account\"}")
        });
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(last)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn tcp(opts: &MqttOptions, port: u16) -> Result<TcpStream, String> {
    let addr: SocketAddr = format!("{}:{port}", opts.connect)
        .parse()
        .map_err(|e| format!("address: {e}"))?;
    let s = crate::net::connect_addr(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    Ok(s)
}

/// One TLS connection to the cloud broker, `body` spoken over it, then close_notify.
fn over_tls(
    opts: &MqttOptions,
    cfg: &Arc<rustls::ClientConfig>,
    body: impl FnOnce(&mut dyn ReadWrite) -> Result<(), String>,
) -> Result<(), String> {
    let name = ServerName::try_from(opts.host.clone()).map_err(|e| format!("host name: {e}"))?;
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut sock = tcp(opts, opts.tls_port)?;
    let mut tls = rustls::StreamOwned::new(conn, sock.try_clone().map_err(|e| e.to_string())?);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut sock).map_err(|e| format!("TLS: {e}"))?;
    }
    body(&mut tls)?;
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut sock);
    Ok(())
}

/// The old TLS stack of the tls-version-fallback flaw: a TLS 1.0 hello offering RSA key
/// exchange; whatever server answers with a TLS 1.0 ServerHello, a certificate and its
/// ServerHelloDone gets the client's key exchange (it trusts the certificate it is shown,
/// as such stacks did). It stops there: the point is that it went on.
fn legacy_tls10(opts: &MqttOptions) -> Result<(), String> {
    let mut sock = tcp(opts, opts.tls_port)?;
    legacy_tls10_on(&mut sock, None, None)
}

/// The old stack's handshake on `sock` up to its key exchange: a TLS 1.0 hello (naming
/// `sni`, as OpenSSL 1.0 did), then the server's flight; with a CA (`verify`) the server's
/// certificate must chain to it and name `sni`, else the stack ends with an alert.
fn legacy_tls10_on(sock: &mut TcpStream, sni: Option<&str>, verify: Option<&std::path::Path>) -> Result<(), String> {
    let mut body = vec![3, 1];
    body.extend((0..32u8).map(|i| i.wrapping_mul(29).wrapping_add(7)));
    body.push(0);
    // TLS_RSA_WITH_AES_128_CBC_SHA, TLS_RSA_WITH_AES_256_CBC_SHA, TLS_RSA_WITH_3DES_EDE_CBC_SHA
    body.extend_from_slice(&[0, 6, 0x00, 0x2f, 0x00, 0x35, 0x00, 0x0a]);
    body.extend_from_slice(&[1, 0]);
    let mut ext = Vec::new();
    if let Some(h) = sni {
        let n = h.len() as u16;
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&(n + 5).to_be_bytes());
        ext.extend_from_slice(&(n + 3).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&n.to_be_bytes());
        ext.extend_from_slice(h.as_bytes());
    }
    // renegotiation_info (empty), as every client since 2010 sends
    ext.extend_from_slice(&[0xff, 0x01, 0, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    sock.write_all(&rec).map_err(|e| format!("old TLS: {e}"))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // until the ServerHelloDone (handshake type 14, empty)
    while !seen.windows(4).any(|w| w == [14, 0, 0, 0]) {
        let n = sock.read(&mut buf).map_err(|e| format!("old TLS: {e}"))?;
        if n == 0 || seen.len() > 64 * 1024 {
            return Err("old TLS: the server closed".into());
        }
        if seen.is_empty() && buf[0] == 21 {
            return Err("old TLS: the server refused".into());
        }
        seen.extend_from_slice(&buf[..n]);
    }
    if let (Some(ca), Some(host)) = (verify, sni)
        && let Err(e) = verify_old_flight(&seen, ca, host)
    {
        // bad_certificate, fatal
        let _ = sock.write_all(&[21, 3, 1, 0, 2, 2, 42]);
        return Err(format!("old TLS: {e}"));
    }
    let mut kx = vec![16, 0, 1, 2, 1, 0];
    kx.extend((0..256u32).map(|i| (i * 131 + 17) as u8));
    let mut rec = vec![22, 3, 1, (kx.len() >> 8) as u8, kx.len() as u8];
    rec.extend_from_slice(&kx);
    sock.write_all(&rec).map_err(|e| format!("old TLS: {e}"))?;
    std::thread::sleep(Duration::from_millis(200));
    Err("old TLS: key exchange sent, nothing more implemented".into())
}

/// Checks the certificate of a server's TLS 1.0 flight (handshake records up to the
/// ServerHelloDone) against `ca` and `host`, as the old stack's X.509 code would.
fn verify_old_flight(flight: &[u8], ca: &std::path::Path, host: &str) -> Result<(), String> {
    // the handshake bytes of every record of the flight
    let mut hs = Vec::new();
    let mut at = 0;
    while at + 5 <= flight.len() {
        let len = u16::from_be_bytes([flight[at + 3], flight[at + 4]]) as usize;
        let end = (at + 5 + len).min(flight.len());
        if flight[at] == 22 {
            hs.extend_from_slice(&flight[at + 5..end]);
        }
        at = end;
    }
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    let mut at = 0;
    while at + 4 <= hs.len() {
        let len = u32::from_be_bytes([0, hs[at + 1], hs[at + 2], hs[at + 3]]) as usize;
        let msg = hs.get(at + 4..at + 4 + len).ok_or("a cut handshake message")?;
        if hs[at] == 11 && msg.len() >= 3 {
            let mut c = 3;
            while c + 3 <= msg.len() {
                let n = u32::from_be_bytes([0, msg[c], msg[c + 1], msg[c + 2]]) as usize;
                let der = msg.get(c + 3..c + 3 + n).ok_or("a cut certificate")?;
                chain.push(CertificateDer::from(der.to_vec()));
                c += 3 + n;
            }
        }
        at += 4 + len;
    }
    let (leaf, rest) = chain.split_first().ok_or("no certificate")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(leaf, rest, &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn plain(opts: &MqttOptions, n: u64) -> Result<(), String> {
    let mut s = tcp(opts, opts.plain_port)?;
    session(&mut s, opts, n)
}

/// Publishes telemetry every interval for as long as the board is powered.
pub fn run(opts: MqttOptions, flaws: Vec<Flaw>, log: impl Fn(&str)) {
    let cfg = if flaws.contains(&Flaw::PlaintextOnly) {
        None
    } else {
        match tls_config(&opts, &flaws) {
            Ok(c) => Some(c),
            Err(e) => {
                log(&format!("mqtt: TLS unavailable: {e}"));
                None
            }
        }
    };
    let mut n = 0u64;
    let mut failures = 0u32;
    let mut cfg = cfg;
    loop {
        n += 1;
        if flaws.contains(&Flaw::ValidationOffAfterFailures) && failures == 5 {
            log("mqtt: TLS keeps failing; certificate checks turned off to stay connected");
            let mut anything = flaws.clone();
            anything.push(Flaw::NoCertValidation);
            cfg = tls_config(&opts, &anything).ok();
        }
        let result = match &cfg {
            None if flaws.contains(&Flaw::PlaintextOnly) => plain(&opts, n),
            None => Err("no TLS configuration".to_string()),
            Some(c) => {
                let tls = over_tls(&opts, c, |t| session(t, &opts, n));
                failures = if tls.is_ok() { 0 } else { failures + 1 };
                match tls {
                    Err(e) if flaws.contains(&Flaw::PlaintextFallback) => {
                        log(&format!("mqtt: TLS failed ({e}); falling back to plaintext"));
                        plain(&opts, n)
                    }
                    Err(e)
                        if flaws.contains(&Flaw::TlsVersionFallback)
                            && (e.contains("incompatible") || e.contains("version")) =>
                    {
                        log(&format!("mqtt: TLS failed ({e}); trying again with TLS 1.0"));
                        legacy_tls10(&opts)
                    }
                    other => other,
                }
            }
        };
        if let Err(e) = result {
            log(&format!("mqtt: {e}"));
        }
        std::thread::sleep(opts.interval);
    }
}
