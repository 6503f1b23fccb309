//! MQTT listeners that behave as a working broker for a device (MQTT 3.1.1: CONNECT,
//! PUBLISH QoS 0/1/2, SUBSCRIBE, UNSUBSCRIBE, PING, DISCONNECT) and record every
//! connection. Each connection is bounded in memory (packet size cap) and time (handshake
//! and idle deadlines); garbage is recorded and the connection closed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, SubAck, Subscribe,
    SubscribeReasonCode, UnsubAck,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::peers::{Admission, bounded};
use super::sessions::NAME_MAX;
use super::sessions::{ConnectInfo, SessionLog, TlsOutcome};
use crate::model::CertVariant;
use crate::model::ListenerName;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest MQTT packet the bench accepts; larger is recorded as a protocol error.
pub const MAX_PACKET: usize = 256 << 10;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Bytes of messages waiting for one subscriber that does not read; more are not queued.
pub const OUTBOX_MAX: usize = 1 << 20;

/// What a listener does with a new connection.
#[derive(Clone)]
pub enum ListenMode {
    /// Accept and close at once (the port is "blocked").
    Off,
    Plain,
    Tls(Arc<rustls::ServerConfig>),
    /// TLS-05: answer every ClientHello with a TLS 1.0 ServerHello and, unless the client
    /// refuses it at once, the valid certificate chain (DER) for an RSA key exchange. Never
    /// gets to MQTT: the question is only whether the client goes on with TLS 1.0.
    OldTls(Arc<Vec<Vec<u8>>>),
    /// TLS-01..04 in one boot: each new connection of the device is presented the next
    /// man-in-the-middle identity (see `Rotation`).
    Rotate(Arc<Rotation>),
}

/// Which identity each new connection of the device is presented. A testcase watching one
/// identity asks for it (`want`): it is served until it had `need` attempts. Otherwise the
/// identity with the fewest attempts (ties: the list's order) until each had `need`; after
/// that always the first (self-signed), so a device that stops validating after many
/// failures meets the first identity's full window.
#[derive(Debug)]
pub struct Rotation {
    identities: Vec<(CertVariant, Arc<rustls::ServerConfig>)>,
    state: Mutex<RotationState>,
}

#[derive(Debug)]
struct RotationState {
    served: Vec<u32>,
    wanted: Option<CertVariant>,
    need: u32,
}

impl Rotation {
    pub fn new(identities: Vec<(CertVariant, Arc<rustls::ServerConfig>)>) -> Self {
        let n = identities.len();
        Self {
            identities,
            state: Mutex::new(RotationState {
                served: vec![0; n],
                wanted: None,
                need: 1,
            }),
        }
    }

    pub fn variants(&self) -> Vec<CertVariant> {
        self.identities.iter().map(|(v, _)| *v).collect()
    }

    /// The identity served once every identity had its attempts.
    pub fn last_window(&self) -> Option<CertVariant> {
        self.identities.first().map(|(v, _)| *v)
    }

    /// A testcase watches `v` and needs `need` attempts of it.
    pub fn want(&self, v: CertVariant, need: u32) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.wanted = Some(v);
        st.need = st.need.max(need);
    }

    /// The identity for a new connection: the device's are counted as served; another
    /// peer's (`counted` false) get the last-window identity and use up no attempts.
    pub fn pick(&self, counted: bool) -> Option<(CertVariant, Arc<rustls::ServerConfig>)> {
        if !counted {
            return self.identities.first().cloned();
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let need = st.need;
        let pos = |v: CertVariant| self.identities.iter().position(|(x, _)| *x == v);
        let i = st
            .wanted
            .and_then(pos)
            .filter(|&i| st.served[i] < need)
            .or_else(|| {
                (0..self.identities.len())
                    .filter(|&i| st.served[i] < need)
                    .min_by_key(|&i| st.served[i])
            })
            .or((!self.identities.is_empty()).then_some(0))?;
        st.served[i] += 1;
        Some(self.identities[i].clone())
    }
}

impl std::fmt::Debug for ListenMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListenMode::Off => "off",
            ListenMode::Plain => "plain",
            ListenMode::Tls(_) => "tls",
            ListenMode::OldTls(_) => "old tls",
            ListenMode::Rotate(_) => "rotating tls",
        })
    }
}

/// A message on its way to a subscriber: topic and payload.
type Delivery = (String, bytes::Bytes);

/// A subscriber's outbox and the bytes waiting in it.
#[derive(Debug, Clone)]
struct Outbox {
    tx: mpsc::Sender<Delivery>,
    queued: Arc<AtomicUsize>,
}

/// Subscriptions of the device's sessions: filter, session id, its outbox. Other peers on the
/// bench network neither receive the device's messages nor reach the device through the bench.
#[derive(Debug, Default)]
pub struct Router {
    subs: Mutex<Vec<(String, u64, Outbox)>>,
}

/// Subscriptions one session may hold.
const SUBSCRIPTIONS_MAX: usize = 64;

impl Router {
    /// Delivers a message to every subscription that matches and has room; returns how many.
    pub fn route(&self, topic: &str, payload: &bytes::Bytes) -> usize {
        let subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        let size = topic.len() + payload.len();
        for (filter, _, out) in subs.iter() {
            if !topic_matches(filter, topic) {
                continue;
            }
            if out.queued.fetch_add(size, Ordering::Relaxed) + size > OUTBOX_MAX {
                out.queued.fetch_sub(size, Ordering::Relaxed);
                continue;
            }
            if out.tx.try_send((topic.to_string(), payload.clone())).is_ok() {
                n += 1;
            } else {
                out.queued.fetch_sub(size, Ordering::Relaxed);
            }
        }
        n
    }
    fn add(&self, filter: String, id: u64, out: Outbox) -> bool {
        let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        if subs.iter().filter(|(_, i, _)| *i == id).count() >= SUBSCRIPTIONS_MAX {
            return false;
        }
        subs.push((filter, id, out));
        true
    }
    fn remove(&self, id: u64, filter: Option<&str>) {
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(f, i, _)| !(*i == id && filter.is_none_or(|x| x == f)));
    }
}

/// MQTT topic filter matching with `+` and `#`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A bound listener; its mode can change between scenario phases.
#[derive(Debug)]
pub struct Listener {
    pub name: ListenerName,
    pub addr: SocketAddr,
    mode: watch::Sender<(ListenMode, u64)>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub async fn bind(
        name: ListenerName,
        addr: SocketAddr,
        log: Arc<SessionLog>,
        router: Arc<Router>,
        salt: [u8; 16],
        handshake: Duration,
    ) -> Result<Self, super::error::BenchError> {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| super::error::BenchError::Bind {
                what: name.to_string(),
                addr,
                source,
            })?;
        let local = l.local_addr()?;
        let (tx, rx) = watch::channel((ListenMode::Off, 0u64));
        let gate = Admission::new(log.attribution);
        let task = tokio::spawn(async move {
            loop {
                let (sock, peer) = super::peers::accept(&l).await;
                let (mode, phase) = rx.borrow().clone();
                // a full log refuses the connection (counted in `dropped`)
                let Some(id) = log.open(name, peer, phase) else {
                    continue;
                };
                if matches!(mode, ListenMode::Off) {
                    log.update(id, |s| {
                        s.refused_by_bench = true;
                        s.closed = Some("closed by the bench: listener off".into());
                    });
                    drop(sock);
                    continue;
                }
                let admitted = match gate.admit(peer.ip()) {
                    Ok(a) => a,
                    Err(why) => {
                        log.update(id, |s| {
                            s.refused = Some(why.to_string());
                            s.closed = Some(why.to_string());
                        });
                        continue;
                    }
                };
                // a rotation serves the device's connections only (another peer on the
                // bench network must not use up an identity's attempts): others get the
                // last-window identity, uncounted
                let mode = match mode {
                    ListenMode::Rotate(r) => match r.pick(log.origin_of(id).is_some_and(|o| o.counts())) {
                        Some((v, cfg)) => {
                            log.update(id, |s| s.identity = Some(v));
                            ListenMode::Tls(cfg)
                        }
                        None => ListenMode::Off,
                    },
                    m => m,
                };
                let (log, router, mut rx) = (log.clone(), router.clone(), rx.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(sock, mode, id, log.clone(), router.clone(), salt, handshake) => {}
                        // a new bench configuration ends the sessions of the old one
                        _ = async { while rx.changed().await.is_ok() && rx.borrow().1 == phase {} } => log.update(id, |s| if s.closed.is_none() { s.closed = Some("closed by the bench: configuration changed".into()) }),
                    }
                    router.remove(id, None);
                    drop(admitted);
                });
            }
        });
        Ok(Self {
            name,
            addr: local,
            mode: tx,
            task,
        })
    }

    pub fn set_mode(&self, mode: ListenMode, phase: u64) {
        let _ = self.mode.send((mode, phase));
    }

    pub fn mode(&self) -> ListenMode {
        self.mode.borrow().0.clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub(crate) fn tls_error(e: &std::io::Error) -> TlsOutcome {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match inner {
            rustls::Error::AlertReceived(a) => TlsOutcome::AlertReceived(format!("{a:?}")),
            other => TlsOutcome::Failed(other.to_string()),
        };
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
            TlsOutcome::PeerHungUp
        }
        _ => TlsOutcome::Failed(e.to_string()),
    }
}

async fn serve(
    sock: TcpStream,
    mode: ListenMode,
    id: u64,
    log: Arc<SessionLog>,
    router: Arc<Router>,
    salt: [u8; 16],
    handshake: Duration,
) {
    let stream: Box<dyn Stream> = match mode {
        ListenMode::Off | ListenMode::Rotate(_) => return,
        ListenMode::Plain => Box::new(sock),
        ListenMode::OldTls(chain) => {
            let (outcome, closed) = old_tls(sock, &chain, handshake).await;
            log.update(id, |s| {
                s.tls = Some(outcome);
                s.closed = Some(closed);
            });
            return;
        }
        ListenMode::Tls(cfg) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            match tokio::time::timeout(handshake, acceptor.accept(sock)).await {
                Err(_) => {
                    log.update(id, |s| {
                        s.tls = Some(TlsOutcome::Stalled);
                        s.closed = Some(format!("TLS handshake not finished within {handshake:?}"));
                    });
                    return;
                }
                Ok(Err(e)) => {
                    let outcome = tls_error(&e);
                    log.update(id, |s| {
                        s.tls = Some(outcome);
                        s.closed = Some("TLS handshake failed".into());
                    });
                    return;
                }
                Ok(Ok(tls)) => {
                    let (_, conn) = tls.get_ref();
                    let version = conn.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
                    let sni = conn.server_name().map(str::to_string);
                    log.update(id, |s| {
                        s.tls = Some(TlsOutcome::Established(version));
                        s.sni = sni;
                    });
                    Box::new(tls)
                }
            }
        }
    };
    let why = mqtt_session(stream, id, &log, &router, salt).await;
    log.update(id, |s| {
        if s.closed.is_none() {
            s.closed = Some(why);
        }
    });
}

/// How long a client may take to refuse an old ServerHello before the bench sends the rest
/// of its flight: a client checks the version when the ServerHello arrives.
const OLD_TLS_REFUSAL: Duration = Duration::from_secs(2);

/// Reads one whole TLS record (header and body) within `within`.
async fn read_record(sock: &mut TcpStream, within: Duration) -> Result<Vec<u8>, TlsOutcome> {
    let mut rec = vec![0u8; 5];
    let read = async {
        sock.read_exact(&mut rec).await?;
        let len = u16::from_be_bytes([rec[3], rec[4]]) as usize;
        rec.resize(5 + len, 0);
        sock.read_exact(&mut rec[5..]).await?;
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(within, read).await {
        Err(_) => Err(TlsOutcome::Stalled),
        Ok(Err(_)) => Err(TlsOutcome::PeerHungUp),
        Ok(Ok(())) => Ok(rec),
    }
}

/// The old-TLS offer (TLS-05): `Established` only when the client went on with TLS 1.0 —
/// it answered the certificate with its key exchange. A refusal is an alert (at the
/// ServerHello, or after the certificate). A client offering no RSA key-exchange suite that
/// does not refuse at the ServerHello cannot be taken further (a TLS 1.0 ServerKeyExchange
/// would be needed): that session says so, and the check is not decided.
async fn old_tls(mut sock: TcpStream, chain: &[Vec<u8>], handshake: Duration) -> (TlsOutcome, String) {
    let hello = match read_record(&mut sock, handshake).await {
        Ok(r) => r,
        Err(o) => return (o, "no ClientHello".into()),
    };
    old_tls_after_hello(sock, &hello, chain, handshake).await
}

/// The old-TLS offer to a client whose ClientHello (`hello`, one whole record) was read.
pub(crate) async fn old_tls_after_hello(
    mut sock: TcpStream,
    hello: &[u8],
    chain: &[Vec<u8>],
    handshake: Duration,
) -> (TlsOutcome, String) {
    use crate::tlswire::{self, TLS10};
    let Some(offered) = tlswire::offered_suites(hello) else {
        if hello[0] != 0x16 {
            return (TlsOutcome::Failed("not TLS".into()), "not TLS".into());
        }
        // a handshake the bench cannot read (split over records, or malformed) is no refusal
        return (
            TlsOutcome::Undecided("a ClientHello the bench could not read in one record".into()),
            "TLS 1.0 offer not made".into(),
        );
    };
    // an RSA key exchange needs no signed parameters: what a TLS 1.0 client would go on with
    let rsa = [0x002f, 0x0035, 0x000a, 0x0005];
    let rsa_suite = rsa.iter().copied().find(|s| offered.contains(s));
    let suite = rsa_suite.or(offered.first().copied()).unwrap_or(0x002f);
    if sock
        .write_all(&tlswire::server_hello_record(TLS10, suite))
        .await
        .is_err()
    {
        return (TlsOutcome::PeerHungUp, "closed before the ServerHello".into());
    }
    let alert = |rec: &[u8], when: &str| {
        TlsOutcome::AlertReceived(format!("{} {when}", alert_name(rec.get(6).copied().unwrap_or(0))))
    };
    match read_record(&mut sock, OLD_TLS_REFUSAL).await {
        Ok(rec) if rec[0] == 0x15 => return (alert(&rec, "at the TLS 1.0 ServerHello"), "refused TLS 1.0".into()),
        Ok(_) | Err(TlsOutcome::Stalled) => {}
        Err(o) => return (o, "closed at the TLS 1.0 ServerHello".into()),
    }
    if rsa_suite.is_none() {
        return (
            TlsOutcome::Undecided(
                "the client did not refuse the TLS 1.0 ServerHello and offers no RSA key-exchange suite, so the bench cannot take the offer further".into(),
            ),
            "TLS 1.0 offer not finished".into(),
        );
    }
    let _ = sock.write_all(&tlswire::certificate_and_done(TLS10, chain)).await;
    match read_record(&mut sock, handshake).await {
        // its key exchange (handshake type 16), or a change of cipher spec: it goes on
        Ok(r) if (r[0] == 0x16 && r.get(5) == Some(&16)) || r[0] == 0x14 => (
            TlsOutcome::Established(format!(
                "TLS 1.0 (suite 0x{suite:04x}) accepted: the client answered the certificate with its key exchange"
            )),
            "the bench offered only TLS 1.0".into(),
        ),
        Ok(r) if r[0] == 0x15 => (alert(&r, "after the certificate"), "refused TLS 1.0".into()),
        Ok(r) => (
            TlsOutcome::Failed(format!("an unexpected record (type {}) after the certificate", r[0])),
            "the bench offered only TLS 1.0".into(),
        ),
        Err(o) => (o, "closed after the certificate".into()),
    }
}

fn alert_name(d: u8) -> String {
    match d {
        10 => "alert unexpected_message".into(),
        40 => "alert handshake_failure".into(),
        47 => "alert illegal_parameter".into(),
        70 => "alert protocol_version".into(),
        71 => "alert insufficient_security".into(),
        d => format!("alert {d}"),
    }
}

/// Reads a CONNECT's protocol level without decoding the rest (MQTT 5 and garbage alike).
fn connect_level(buf: &[u8]) -> Option<u8> {
    if buf.first()? >> 4 != 1 {
        return None;
    }
    let mut i = 1;
    while buf.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    let name_len = u16::from_be_bytes([*buf.get(i + 1)?, *buf.get(i + 2)?]) as usize;
    buf.get(i + 3 + name_len).copied()
}

/// A CONNECT of an MQTT version the bench does not speak, recorded.
fn unsupported_level(log: &SessionLog, id: u64, level: u8) {
    log.update(id, |s| {
        s.connect = Some(ConnectInfo {
            protocol_level: level,
            client_id: String::new(),
            username: None,
            password_sent: false,
            password_len: None,
            password_salted_sha256: None,
        });
        s.protocol_error = Some(format!("MQTT protocol level {level} is not supported by the bench"));
    });
}

/// A CONNECT, recorded: its client id and user (bounded), whether a password came, its
/// length and a salted hash (never the password); the password is remembered as a secret.
fn record_connect(log: &SessionLog, id: u64, c: &Connect, salt: [u8; 16]) {
    let (password_sent, password_len, hash) = match &c.login {
        Some(l) if !l.password.is_empty() => {
            log.remember_secret(&l.password);
            let mut h = Sha256::new();
            h.update(salt);
            h.update(l.password.as_bytes());
            let d = h.finalize();
            (
                true,
                Some(l.password.len()),
                Some(d[..8].iter().map(|b| format!("{b:02x}")).collect()),
            )
        }
        _ => (false, None, None),
    };
    log.update(id, |s| {
        s.connect = Some(ConnectInfo {
            protocol_level: 4,
            client_id: bounded(&c.client_id, NAME_MAX),
            username: c
                .login
                .as_ref()
                .map(|l| bounded(&l.username, NAME_MAX))
                .filter(|u| !u.is_empty()),
            password_sent,
            password_len,
            password_salted_sha256: hash,
        })
    });
}

/// A SUBSCRIBE: each filter counted, and routed for the device's own sessions only.
fn subscribe(
    log: &SessionLog,
    id: u64,
    router: &Router,
    outbox: &Outbox,
    device: bool,
    sub: &Subscribe,
) -> Vec<SubscribeReasonCode> {
    let mut codes = Vec::new();
    for f in &sub.filters {
        log.update(id, |s| s.count_subscribe(&f.path));
        if !device || !router.add(f.path.clone(), id, outbox.clone()) {
            codes.push(SubscribeReasonCode::Failure);
            continue;
        }
        codes.push(SubscribeReasonCode::Success(if f.qos == QoS::AtMostOnce {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        }));
    }
    codes
}

/// A PUBLISH: counted, its payload kept, routed (the device's own sessions only) and
/// acknowledged as its QoS asks.
fn publish(log: &SessionLog, id: u64, router: &Router, device: bool, p: &Publish, out: &mut BytesMut) {
    log.update(id, |s| s.count_publish(&p.topic));
    log.keep_payload(id, &p.topic, &p.payload);
    if device {
        router.route(&p.topic, &p.payload);
    }
    match p.qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => {
            let _ = Packet::PubAck(PubAck::new(p.pkid)).write(out, MAX_PACKET);
        }
        QoS::ExactlyOnce => {
            let _ = Packet::PubRec(PubRec::new(p.pkid)).write(out, MAX_PACKET);
        }
    }
}

/// Writes what the bench answers; counts it.
async fn send(stream: &mut Box<dyn Stream>, out: &[u8], log: &SessionLog, id: u64) -> Result<(), String> {
    if stream.write_all(out).await.is_err() {
        return Err("peer closed while we wrote".into());
    }
    let n = out.len() as u64;
    log.update(id, |s| s.bytes_out += n);
    Ok(())
}

async fn mqtt_session(
    mut stream: Box<dyn Stream>,
    id: u64,
    log: &SessionLog,
    router: &Router,
    salt: [u8; 16],
) -> String {
    let mut buf = BytesMut::with_capacity(4096);
    let (tx, mut rx) = mpsc::channel::<Delivery>(256);
    let outbox = Outbox {
        tx,
        queued: Arc::default(),
    };
    // only the device's sessions exchange messages through the bench
    let device = log.origin_of(id).is_some_and(|o| o.counts());
    let mut connected = false;
    let mut out = BytesMut::new();
    loop {
        // decode every complete packet in the buffer
        loop {
            if !connected
                && let Some(level) = connect_level(&buf)
                && level != 3
                && level != 4
            {
                unsupported_level(log, id, level);
                let _ = stream.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
                return "unsupported protocol level".into();
            }
            let packet = match Packet::read(&mut buf, MAX_PACKET) {
                Ok(p) => p,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(e) => {
                    let msg = format!("{e}");
                    log.update(id, |s| s.protocol_error = Some(msg.clone()));
                    return format!("closed after a malformed packet: {msg}");
                }
            };
            if !connected && !matches!(packet, Packet::Connect(_)) {
                log.update(id, |s| s.protocol_error = Some("first packet was not CONNECT".into()));
                return "closed: first packet was not CONNECT".into();
            }
            out.clear();
            match packet {
                Packet::Connect(c) => {
                    if connected {
                        log.update(id, |s| s.protocol_error = Some("second CONNECT".into()));
                        return "closed: second CONNECT".into();
                    }
                    connected = true;
                    record_connect(log, id, &c, salt);
                    let _ =
                        Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)).write(&mut out, MAX_PACKET);
                }
                Packet::Publish(p) => publish(log, id, router, device, &p, &mut out),
                Packet::PubRel(r) => {
                    let _ = Packet::PubComp(PubComp::new(r.pkid)).write(&mut out, MAX_PACKET);
                }
                Packet::Subscribe(sub) => {
                    let codes = subscribe(log, id, router, &outbox, device, &sub);
                    let _ = Packet::SubAck(SubAck::new(sub.pkid, codes)).write(&mut out, MAX_PACKET);
                }
                Packet::Unsubscribe(u) => {
                    for f in &u.topics {
                        router.remove(id, Some(f));
                    }
                    let _ = Packet::UnsubAck(UnsubAck::new(u.pkid)).write(&mut out, MAX_PACKET);
                }
                Packet::PingReq => {
                    let _ = Packet::PingResp.write(&mut out, MAX_PACKET);
                }
                Packet::Disconnect => return "client sent DISCONNECT".into(),
                Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => {}
                Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                    log.update(id, |s| {
                        s.protocol_error = Some("client sent a server-only packet".into())
                    });
                    return "closed: client sent a server-only packet".into();
                }
            }
            if !out.is_empty()
                && let Err(why) = send(&mut stream, &out, log, id).await
            {
                return why;
            }
        }
        if buf.len() > MAX_PACKET + 8 {
            return "closed: buffer limit".into();
        }
        let mut chunk = [0u8; 8192];
        tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk)) => match r {
                Err(_) => {
                    log.update(id, |s| {
                        s.protocol_error.get_or_insert_with(|| format!("idle for {IDLE_TIMEOUT:?}"));
                    });
                    return "closed: idle".into();
                }
                Ok(Ok(0)) => return "peer closed the connection".into(),
                Ok(Ok(n)) => {
                    buf.extend_from_slice(&chunk[..n]);
                    log.update(id, |s| s.bytes_in += n as u64);
                }
                Ok(Err(e)) => return format!("read error: {e}"),
            },
            Some((topic, payload)) = rx.recv() => {
                outbox.queued.fetch_sub(topic.len() + payload.len(), Ordering::Relaxed);
                out.clear();
                let p = rumqttc::mqttbytes::v4::Publish::new(topic, QoS::AtMostOnce, payload.to_vec());
                if Packet::Publish(p).write(&mut out, MAX_PACKET).is_ok()
                    && let Err(why) = send(&mut stream, &out, log, id).await
                {
                    return why;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation() -> Rotation {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pki = super::super::pki::Pki::new("device-cloud.test", &crate::model::TrustSource::BenchCa, dir.path())
            .expect("pki");
        Rotation::new(
            CertVariant::MITM
                .into_iter()
                .map(|v| (v, pki.server_config(v).expect("config").expect("trusted CA")))
                .collect(),
        )
    }

    fn picks(r: &Rotation, n: usize) -> Vec<&'static str> {
        (0..n).map(|_| r.pick(true).expect("an identity").0.as_str()).collect()
    }

    #[test]
    fn a_rotation_serves_the_wanted_identity_then_the_fewest_then_the_last_window() {
        let r = rotation();
        r.want(CertVariant::SelfSigned, 3);
        assert_eq!(
            picks(&r, 14),
            [
                "self_signed",
                "self_signed",
                "self_signed", // wanted, until it had 3
                "wrong_host",
                "expired",
                "untrusted_ca", // then the fewest, in order
                "wrong_host",
                "expired",
                "untrusted_ca",
                "wrong_host",
                "expired",
                "untrusted_ca",
                "self_signed",
                "self_signed", // every one had 3: the last window
            ]
        );
        // a testcase short of attempts (the device stopped trying) is served first again
        r.want(CertVariant::Expired, 4);
        // (4 is now every identity's quota: the others catch up, then the last window)
        assert_eq!(
            picks(&r, 5),
            ["expired", "wrong_host", "untrusted_ca", "self_signed", "self_signed"]
        );
    }

    #[test]
    fn topic_filters() {
        assert!(topic_matches("telemetry/#", "telemetry/a/b"));
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(!topic_matches("a/+/c", "a/b/d"));
        assert!(topic_matches("a/b", "a/b"));
        assert!(!topic_matches("a/b", "a/b/c"));
    }

    #[test]
    fn connect_level_reads_v5_and_ignores_garbage() {
        // CONNECT, remaining length 10, "MQTT", level 5
        assert_eq!(
            connect_level(&[0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', 5, 0, 0, 60]),
            Some(5)
        );
        assert_eq!(connect_level(&[0x30, 1, 2]), None);
        assert_eq!(connect_level(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff]), None);
    }

    /// Runs one bench session over an in-memory stream fed `input`; returns its record.
    fn session_of(input: Vec<u8>) -> crate::bench::sessions::Session {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let log = SessionLog::new(Default::default());
            let router = Router::default();
            let id = log
                .open(ListenerName::MqttPlain, ([127, 0, 0, 1], 1).into(), 1)
                .expect("recorded");
            let (mut client, server) = tokio::io::duplex(64 << 10);
            let writer = tokio::spawn(async move {
                let _ = client.write_all(&input).await;
                let _ = client.shutdown().await;
                // drain what the bench answers, so it never blocks on a full pipe
                let mut sink = Vec::new();
                let _ = client.read_to_end(&mut sink).await;
            });
            let why = tokio::time::timeout(
                Duration::from_secs(10),
                mqtt_session(Box::new(server), id, &log, &router, [0; 16]),
            )
            .await
            .expect("the session ends when the peer has closed");
            log.update(id, |s| s.closed = Some(why));
            let _ = writer.await;
            log.all().remove(0)
        })
    }

    fn encode(p: Packet) -> Vec<u8> {
        let mut b = BytesMut::new();
        p.write(&mut b, MAX_PACKET).expect("encodes");
        b.to_vec()
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(128))]

        /// Whatever bytes a peer sends, the session ends, and its record stays bounded.
        #[test]
        fn any_bytes_end_in_a_bounded_record(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8192),
            with_connect in proptest::prelude::any::<bool>(),
        ) {
            let mut input = Vec::new();
            if with_connect {
                input.extend(encode(Packet::Connect(rumqttc::mqttbytes::v4::Connect::new("c"))));
            }
            input.extend(junk);
            let s = session_of(input);
            proptest::prop_assert!(s.closed.is_some());
            proptest::prop_assert!(s.published.len() <= crate::bench::sessions::TOPICS_MAX);
            proptest::prop_assert!(s.subscribed.len() <= crate::bench::sessions::TOPICS_MAX);
            proptest::prop_assert!(s.published.keys().chain(s.subscribed.iter()).all(|t| t.len() < 400));
        }

        /// Every PUBLISH is counted, whatever its topic; names are kept bounded.
        #[test]
        fn every_publish_is_counted(
            topics in proptest::collection::vec("[a-z/+#\\u{80}-\\u{10ffff}]{1,400}", 0..120),
            subscribe_every in 1usize..10,
        ) {
            let mut input = encode(Packet::Connect(rumqttc::mqttbytes::v4::Connect::new("c")));
            for (i, t) in topics.iter().enumerate() {
                if i % subscribe_every == 0 {
                    let sub = rumqttc::mqttbytes::v4::Subscribe::new(t.clone(), QoS::AtMostOnce);
                    input.extend(encode(Packet::Subscribe(sub)));
                }
                let p = rumqttc::mqttbytes::v4::Publish::new(t.clone(), QoS::AtLeastOnce, b"x".to_vec());
                let mut p = p;
                p.pkid = (i + 1) as u16;
                input.extend(encode(Packet::Publish(p)));
            }
            input.extend(encode(Packet::Disconnect));
            let s = session_of(input);
            proptest::prop_assert_eq!(s.closed.as_deref(), Some("client sent DISCONNECT"));
            proptest::prop_assert_eq!(s.publish_count(), topics.len() as u64);
            let distinct: std::collections::BTreeSet<_> = topics.iter().collect();
            proptest::prop_assert_eq!(s.published.len(), distinct.len().min(crate::bench::sessions::TOPICS_MAX));
            proptest::prop_assert!(s.published.keys().all(|t| t.len() < 400));
        }
    }
}
