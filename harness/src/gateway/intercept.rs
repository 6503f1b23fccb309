//! The bench answers every flow (issue 25): a TCP connection the device opens to any port —
//! of the bench, or of an address outside it (a hard-coded cloud address) — is accepted,
//! so the device sends what it would send, and the capture sees it.
//!
//! How: one nftables table per device link (`certbench-<pid>-<n>`, in this machine's
//! namespace, matching only packets that arrive on the device's link from the device's
//! address) redirects every new TCP connection to one listener of the bench (`redirect`,
//! NAT before routing: nothing is forwarded, the machine's own network never sees device
//! traffic); the listener learns where the device meant to go from the connection's
//! original destination (`SO_ORIGINAL_DST`). The bench's declared listeners (its MQTT
//! broker, its update server) keep their ports and their semantics: connections to them
//! are left alone. UDP to a name server outside the bench goes to the bench's name server.
//! Chosen over TPROXY (which needs policy routing and transparent sockets, for no gain when
//! the bench only answers) and over rules inside the device's namespace (the bench could
//! not learn the original destination there).
//!
//! On each connection the first bytes decide (waiting a little for them): an HTTP request
//! gets a plausible answer (200, an empty JSON object) so the device goes on to send its
//! body; an MQTT CONNECT gets a broker that accepts it and acknowledges what is published;
//! a TLS ClientHello is recorded (its SNI) and the connection closed — the bench has no
//! identity to offer there yet; anything else is read (bounded) and not answered. Every
//! connection is recorded (`intercepted.jsonl`): where it was going, what it began with,
//! what the bench answered, the bytes each way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::nftables::{Expr, NatRules};
use crate::model::DeclaredAnswer;

/// TLS destinations the man in the middle follows (each costs certificates).
pub const MAX_DESTINATIONS: usize = 256;
/// Connections handled at once (more wait in the kernel's backlog).
pub const MAX_CONCURRENT: usize = 1024;
/// Connections recorded (later ones are counted).
const MAX_RECORDS: usize = 10_000;
/// Bytes read from one connection at most.
const MAX_READ: usize = 256 * 1024;
/// How long a connection may stay silent before the bench closes it.
const IDLE: Duration = Duration::from_secs(5);
/// How long the bench waits for a client's first bytes.
pub const FIRST_BYTES: Duration = Duration::from_secs(2);
/// Bytes of a connection's beginning kept in the record.
const HEAD: usize = 96;
/// Bytes of an HTTP request kept for the recipients check.
pub const DATA_MAX: usize = 4096;

/// What a connection began with, and so what the bench answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    Http,
    Mqtt,
    Tls,
    /// Bytes of no protocol the bench answers.
    Other,
    /// The device sent nothing before it closed, or before the bench gave up waiting.
    Nothing,
}

/// One intercepted connection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Intercepted {
    pub at_ms: u128,
    pub from: String,
    /// Where the device meant to connect.
    pub to: String,
    pub kind: Kind,
    /// The host the device named: HTTP Host, TLS SNI.
    pub host: Option<String>,
    /// The first line of an HTTP request, an MQTT CONNECT's client id, …
    pub first: Option<String>,
    pub answered: String,
    pub bytes_from_device: u64,
    pub bytes_to_device: u64,
    /// The device held the connection open and sent nothing until the bench gave up: what
    /// it would have carried was not seen.
    pub held_silent: bool,
    /// Still open when the record was read.
    pub open: bool,
    /// TLS: what the bench offered (a man in the middle, rotated per destination).
    pub identity: Option<Offer>,
    /// TLS: what the client did with it (established, the alert it sent, …).
    pub tls: Option<crate::bench::sessions::TlsOutcome>,
    /// TLS: decrypted application bytes the client sent once the handshake was done.
    pub app_bytes: u64,
    /// When the connection was accepted (for an open one's age).
    #[serde(skip)]
    pub accepted: Option<Instant>,
    /// The connection's first bytes, printable (redacted when written).
    #[serde(skip)]
    pub head: Vec<u8>,
    /// An HTTP request as the device sent it (head and body, at most DATA_MAX bytes; after
    /// the bench's TLS when the device accepted its identity): what it told that host, for
    /// the recipients check (PRV-04). In memory only, never written.
    #[serde(skip)]
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct InterceptLog {
    pub connections: Vec<Intercepted>,
    pub dropped: u64,
}

/// The nftables table that redirects a device link's connections; deleted when dropped.
#[derive(Debug)]
struct Rules {
    table: String,
}

/// The tables of certbench runs (`certbench-<pid>-<n>`), for clean-up.
pub(crate) fn tables() -> Vec<String> {
    super::nftables::tables()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.starts_with("certbench-"))
        .collect()
}

/// Deletes table `name` (a run's, or a dead run's).
pub(crate) fn delete_table(name: &str) {
    let _ = super::nftables::delete_table(name);
}

/// The rules: on `iface`, from `device`: TCP to the bench's own `kept` ports stays; every
/// other new TCP connection goes to `port`; UDP DNS to anyone but the bench goes to the
/// bench's name server; NTP to anyone goes to the bench's clock (`ntp`).
fn rules(iface: &str, device: Ipv4Addr, bench: Ipv4Addr, port: u16, kept: &[u16], ntp: Option<u16>) -> NatRules {
    use super::nftables::Expr::*;
    const TCP: u8 = 6;
    const UDP: u8 = 17;
    let from = || vec![IifName(iface.to_string()), Saddr(device, true)];
    let with = |mut v: Vec<Expr>, more: &[Expr]| {
        v.extend_from_slice(more);
        v
    };
    let mut r: NatRules = kept
        .iter()
        .map(|k| with(from(), &[Daddr(bench, true), L4Proto(TCP), Dport(*k), Accept]))
        .collect();
    r.push(with(from(), &[L4Proto(TCP), Redirect(port)]));
    r.push(with(
        from(),
        &[Daddr(bench, false), L4Proto(UDP), Dport(53), Redirect(53)],
    ));
    if let Some(p) = ntp {
        r.push(with(from(), &[L4Proto(UDP), Dport(123), Redirect(p)]));
    }
    r
}

/// What the man in the middle offers one TLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offer {
    /// A certificate (the valid one, or TLS-01..04's).
    Cert(crate::model::CertVariant),
    /// Only TLS 1.0, with the RSA key exchange and CBC suites an old client uses (TLS-05).
    OldTls,
}

impl Offer {
    pub fn as_str(self) -> &'static str {
        match self {
            Offer::Cert(v) => v.as_str(),
            Offer::OldTls => "old_tls",
        }
    }

    /// The check a client that goes on with this offer fails (None: the positive control).
    pub fn check(self) -> Option<&'static str> {
        match self {
            Offer::Cert(v) => v.check(),
            Offer::OldTls => Some("TLS-05"),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Offer::Cert(v) => v.describe(),
            Offer::OldTls => "only TLS 1.0 with RSA key exchange and CBC suites",
        }
    }
}

impl serde::Serialize for Offer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A man in the middle of the device's TLS clients: per destination (the name the client
/// asked for, else the address), each new connection is presented the next identity —
/// first the valid one (the positive control), then TLS-01..04's.
#[derive(Debug)]
pub struct Mitm {
    pki: Arc<Mutex<crate::bench::pki::Pki>>,
    next: Mutex<std::collections::HashMap<String, usize>>,
}

impl Mitm {
    pub fn new(pki: Arc<Mutex<crate::bench::pki::Pki>>) -> Self {
        Self {
            pki,
            next: Mutex::default(),
        }
    }

    /// What it offers in turn: the five identities and the old-TLS offer with a trusted CA,
    /// else the two identities that need none.
    pub fn identities(&self) -> Vec<Offer> {
        use crate::model::CertVariant;
        let trusted = self.pki.lock().unwrap_or_else(|e| e.into_inner()).has_trusted_ca();
        std::iter::once(CertVariant::Valid)
            .chain(CertVariant::MITM)
            .filter(|v| trusted || !v.needs_trusted_ca())
            .map(Offer::Cert)
            .chain(trusted.then_some(Offer::OldTls))
            .collect()
    }

    /// The next offer for `destination`, made for `host`; None past [`MAX_DESTINATIONS`] (a
    /// device that names a new host on every connection cannot make the bench issue
    /// certificates without end).
    /// The next offer for `destination`, in turn; a client that offers no version above TLS
    /// 1.1 (`legacy_only`) could negotiate none of the certificates with the bench's TLS
    /// server, so it is always given the old-TLS offer, the one test it can meet, and the
    /// turn is not used up (a client's fallback to an old stack then meets the old offer).
    fn pick(&self, destination: &str, host: &str, legacy_only: bool) -> Option<(Offer, Served)> {
        let ids = self.identities();
        let offer = if legacy_only {
            if !ids.contains(&Offer::OldTls) {
                return None;
            }
            Offer::OldTls
        } else {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            if next.len() >= MAX_DESTINATIONS && !next.contains_key(destination) {
                return None;
            }
            let n = next.entry(destination.to_string()).or_insert(0);
            let o = *ids.get(*n % ids.len().max(1))?;
            *n += 1;
            o
        };
        let mut pki = self.pki.lock().unwrap_or_else(|e| e.into_inner());
        let served = match offer {
            Offer::Cert(v) => Served::Tls(pki.server_config_for(v, host).ok().flatten()?),
            Offer::OldTls => Served::OldTls(pki.issue_rsa_for(host).ok().flatten()?),
        };
        Some((offer, served))
    }
}

/// How an offer is served: a TLS server configuration, or the old-TLS flight's chain.
enum Served {
    Tls(Arc<rustls::ServerConfig>),
    OldTls(Vec<Vec<u8>>),
}

/// The bench's catch-all: the rules and the listener they lead to.
#[derive(Debug)]
pub struct Interceptor {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<InterceptLog>>,
    /// The bench's clock: every NTP request of the device, to any address, is answered.
    pub ntp: Option<super::ntp::NtpServer>,
    mitm: Option<Arc<Mitm>>,
    rules: Option<Rules>,
    task: tokio::task::JoinHandle<()>,
}

/// Removing the table waits on the kernel: drop an interceptor on a blocking thread (the
/// run's teardown does) rather than on a runtime worker.
impl Drop for Interceptor {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(r) = self.rules.take() {
            delete_table(&r.table);
        }
    }
}

impl Interceptor {
    /// Starts the listener on `bench` and the rules for the device's link `iface` (table
    /// `table`); `kept`: the bench's own TCP ports on `bench`.
    pub async fn start(
        table: &str,
        iface: &str,
        device: Ipv4Addr,
        bench: Ipv4Addr,
        kept: &[u16],
        mitm: Option<Mitm>,
        answers: Vec<DeclaredAnswer>,
    ) -> Result<Interceptor, String> {
        let listener = tokio::net::TcpListener::bind((bench, 0))
            .await
            .map_err(|e| format!("cannot listen on {bench}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let log = Arc::new(Mutex::new(InterceptLog::default()));
        let mitm = mitm.map(Arc::new);
        let task = tokio::spawn(serve(listener, log.clone(), mitm.clone(), answers.into()));
        // without it the device's time requests stay unanswered (its clock may be wrong),
        // which the run's notes say; interception goes on
        let ntp = super::ntp::NtpServer::start(bench).await.ok();
        let mut me = Interceptor {
            addr,
            log,
            ntp,
            mitm,
            rules: None,
            task,
        };
        // the table is made last: until the listener exists, nothing is redirected to it;
        // one transaction replaces a table of the same name if one is left
        let ntp_port = me.ntp.as_ref().map(|n| n.addr.port());
        // on a blocking thread: the kernel's answer can wait on nf_tables' mutex and RCU for
        // tens of milliseconds, which on a runtime worker holds up every other board (P3)
        let (name, rules) = (
            table.to_string(),
            rules(iface, device, bench, addr.port(), kept, ntp_port),
        );
        tokio::task::spawn_blocking(move || super::nftables::replace_table(&name, &rules))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                format!(
                    "{e} (the bench answers other connections through nftables: is the nf_tables module available?)"
                )
            })?;
        me.rules = Some(Rules { table: table.into() });
        Ok(me)
    }

    /// What the man in the middle offers in turn (nothing without one).
    pub fn mitm_identities(&self) -> Vec<Offer> {
        self.mitm.as_ref().map(|m| m.identities()).unwrap_or_default()
    }

    /// Every connection so far (open ones as they stand), and how many were not recorded.
    pub fn records(&self) -> (Vec<Intercepted>, u64) {
        let g = self.log.lock().unwrap_or_else(|e| e.into_inner());
        (g.connections.clone(), g.dropped)
    }
}

/// Where a redirected connection was going (`SO_ORIGINAL_DST`).
pub fn original_destination(s: &tokio::net::TcpStream) -> Option<SocketAddr> {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed sockaddr_in is a valid value; getsockopt writes at most `len` bytes
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: fd is the stream's open socket; sa and len are valid for writing
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_IP,
            libc::SO_ORIGINAL_DST,
            (&mut sa as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    if r != 0 || sa.sin_family != libc::AF_INET as libc::sa_family_t {
        return None;
    }
    Some(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
        u16::from_be(sa.sin_port),
    )))
}

async fn serve(
    listener: tokio::net::TcpListener,
    log: Arc<Mutex<InterceptLog>>,
    mitm: Option<Arc<Mitm>>,
    answers: Arc<[DeclaredAnswer]>,
) {
    let started = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (s, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let log = log.clone();
        let mitm = mitm.clone();
        let answers = answers.clone();
        tokio::spawn(async move {
            let to = original_destination(&s).unwrap_or_else(|| s.local_addr().unwrap_or(peer));
            // recorded at once: a connection the device holds open is seen while it lasts
            let slot = {
                let mut g = log.lock().unwrap_or_else(|e| e.into_inner());
                if g.connections.len() < MAX_RECORDS {
                    let mut r = blank();
                    r.at_ms = started.elapsed().as_millis();
                    r.from = peer.to_string();
                    r.to = to.to_string();
                    r.accepted = Some(Instant::now());
                    g.connections.push(r);
                    Some(g.connections.len() - 1)
                } else {
                    g.dropped += 1;
                    None
                }
            };
            let first = {
                let log = log.clone();
                move |n: u64| {
                    if let Some(i) = slot {
                        let mut g = log.lock().unwrap_or_else(|e| e.into_inner());
                        g.connections[i].bytes_from_device = n;
                    }
                }
            };
            let mut rec = handle(s, first, mitm.as_deref(), &answers).await;
            if let Some(i) = slot {
                let mut g = log.lock().unwrap_or_else(|e| e.into_inner());
                let r = &mut g.connections[i];
                rec.at_ms = r.at_ms;
                rec.from = std::mem::take(&mut r.from);
                rec.to = std::mem::take(&mut r.to);
                rec.accepted = r.accepted;
                rec.open = false;
                *r = rec;
            }
            drop(permit);
        });
    }
}

/// A record before anything is known of the connection.
fn blank() -> Intercepted {
    Intercepted {
        at_ms: 0,
        from: String::new(),
        to: String::new(),
        kind: Kind::Nothing,
        host: None,
        first: None,
        answered: "nothing yet (open)".into(),
        bytes_from_device: 0,
        bytes_to_device: 0,
        held_silent: false,
        open: true,
        identity: None,
        tls: None,
        app_bytes: 0,
        accepted: None,
        head: Vec::new(),
        data: Vec::new(),
    }
}

/// Reads into `buf` until `done(buf)` or `limit`, `IDLE` of silence or the end; the bytes read.
async fn read_until(
    s: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    limit: usize,
    done: impl Fn(&[u8]) -> bool,
) -> u64 {
    let mut n = 0u64;
    let mut chunk = [0u8; 4096];
    while buf.len() < limit && !done(buf) {
        match tokio::time::timeout(IDLE, s.read(&mut chunk)).await {
            Ok(Ok(k)) if k > 0 => {
                buf.extend_from_slice(&chunk[..k]);
                n += k as u64;
            }
            _ => break,
        }
    }
    n
}

/// What a server of a protocol in which the server speaks first says on `port`.
fn greeting(port: u16) -> Option<&'static str> {
    Some(match port {
        21 => "220 FTP server ready\r\n",
        23 => "\r\nlogin: ",
        25 | 587 => "220 mail.bench ESMTP ready\r\n",
        110 => "+OK POP3 server ready\r\n",
        143 => "* OK IMAP4rev1 server ready\r\n",
        _ => return None,
    })
}

/// A host name the device gave (HTTP Host), kept only as a host name can be: printable, no
/// spaces, at most 253 characters (DNS's bound) plus a port.
fn host_name(h: &str) -> Option<String> {
    (!h.is_empty() && h.len() <= 260 && h.bytes().all(|c| c.is_ascii_graphic())).then(|| h.to_string())
}

/// The value of header `name` in an HTTP head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// Answers one connection; `first(n)` is told when the device's first `n` bytes came.
async fn handle(
    mut s: tokio::net::TcpStream,
    first: impl Fn(u64),
    mitm: Option<&Mitm>,
    answers: &[DeclaredAnswer],
) -> Intercepted {
    let mut rec = blank();
    rec.answered = "nothing".into();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(FIRST_BYTES, s.read(&mut chunk)).await {
        Ok(Ok(k)) if k > 0 => buf.extend_from_slice(&chunk[..k]),
        Ok(_) => {
            rec.answered = "nothing: the device closed before sending".into();
            return rec;
        }
        Err(_) => {
            // a protocol in which the server speaks first: the greeting of the service the
            // port is known for, so the client goes on (its USER, EHLO, login)
            let port = original_destination(&s).map_or(0, |a| a.port());
            if let Some(g) = greeting(port) {
                if s.write_all(g.as_bytes()).await.is_ok() {
                    rec.bytes_to_device += g.len() as u64;
                }
                rec.answered = format!("greeted as port {port}'s service ({:?})", g.trim_end());
            }
            rec.bytes_from_device = read_until(&mut s, &mut buf, MAX_READ, |b| !b.is_empty()).await;
            if buf.is_empty() {
                rec.held_silent = true;
                rec.answered = format!(
                    "{}; the device sent nothing within {:?}",
                    if rec.bytes_to_device > 0 {
                        &rec.answered
                    } else {
                        "nothing to greet with"
                    },
                    FIRST_BYTES + IDLE
                );
                return rec;
            }
        }
    }
    rec.bytes_from_device = buf.len() as u64;
    first(rec.bytes_from_device);
    let greeted = rec.bytes_to_device > 0;
    if super::flows::starts_with_http_method(&buf) {
        rec.kind = Kind::Http;
        // the head, then the body its Content-Length announces (bounded)
        rec.bytes_from_device +=
            read_until(&mut s, &mut buf, MAX_READ, |b| b.windows(4).any(|w| w == b"\r\n\r\n")).await;
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(buf.len(), |p| p + 4);
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        rec.first = head.lines().next().map(str::to_string);
        rec.host = header(&head, "host").and_then(|h| host_name(&h));
        let want: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0usize)
            .min(MAX_READ);
        rec.bytes_from_device += read_until(&mut s, &mut buf, end + want, |b| b.len() >= end + want).await;
        rec.data = buf[..buf.len().min(DATA_MAX)].to_vec();
        let (answer, said) = http_answer(&head, None, answers);
        if s.write_all(&answer).await.is_ok() {
            rec.bytes_to_device = answer.len() as u64;
        }
        rec.answered = said;
    } else if buf[0] == 0x10 {
        rec.kind = Kind::Mqtt;
        rec.first = mqtt_client_id(&buf).map(|id| format!("CONNECT client id {id:?}"));
        mqtt_sink(&mut s, &mut buf, &mut rec).await;
    } else if buf[0] == 0x16 && buf.get(1) == Some(&3) {
        rec.kind = Kind::Tls;
        // the whole first record: the host it names, the versions and suites it offers
        let want = 5 + buf.get(3..5).map_or(0, |l| u16::from_be_bytes([l[0], l[1]]) as usize);
        rec.bytes_from_device += read_until(&mut s, &mut buf, want.min(MAX_READ), |b| b.len() >= want).await;
        rec.host = crate::tlswire::client_hello_sni(&buf);
        rec.first = Some("TLS ClientHello".into());
        let to = original_destination(&s).map(|a| a.ip().to_string()).unwrap_or_default();
        let destination = rec.host.clone().unwrap_or(to);
        let legacy_only = crate::tlswire::client_hello_max_version(&buf).is_some_and(|v| v < crate::tlswire::TLS12);
        match mitm.and_then(|m| m.pick(&destination, &destination, legacy_only)) {
            None => {
                rec.answered = format!(
                    "closed after the ClientHello: no identity offered (the bench has no PKI, or follows {MAX_DESTINATIONS} destinations already)"
                )
            }
            Some((offer, served)) => {
                rec.identity = Some(offer);
                rec.head = buf[..buf.len().min(HEAD)].to_vec();
                match served {
                    Served::Tls(cfg) => {
                        man_in_the_middle(s, std::mem::take(&mut buf), offer, cfg, answers, &mut rec).await
                    }
                    Served::OldTls(chain) => {
                        let (o, said) = crate::bench::mqtt::old_tls_after_hello(s, &buf, &chain, HANDSHAKE).await;
                        rec.answered = format!("{}: {said} ({o:?})", offer.describe());
                        rec.tls = Some(o);
                    }
                }
                return rec;
            }
        }
    } else {
        rec.kind = Kind::Other;
        rec.first = buf.split(|&c| c == b'\n').next().map(|l| {
            let l = &l[..l.len().min(HEAD)];
            String::from_utf8_lossy(l).trim_end().to_string()
        });
        rec.bytes_from_device += read_until(&mut s, &mut buf, MAX_READ, |_| false).await;
        if !greeted {
            rec.answered = "nothing (read until the device stopped)".into();
        }
    }
    rec.head = buf[..buf.len().min(HEAD)].to_vec();
    rec
}

/// The answer to an HTTP request whose head is `head` (`sni`: the TLS server name it came
/// under, when its Host header is missing): the maker's declared answer for its path, else
/// 200 with an empty JSON object; and what was answered, in words.
fn http_answer(head: &str, sni: Option<&str>, answers: &[DeclaredAnswer]) -> (Vec<u8>, String) {
    let target = head.lines().next().and_then(|l| l.split(' ').nth(1)).unwrap_or("/");
    let host = header(head, "host");
    let (status, ctype, body, said) = match DeclaredAnswer::find(answers, target, host.as_deref().or(sni)) {
        Some(a) => (
            a.status,
            a.content_type.as_str(),
            &a.body[..],
            format!(
                "HTTP {} declared for {} ({} bytes, network.http_answers)",
                a.status,
                a.path,
                a.body.len()
            ),
        ),
        None => (
            200,
            "application/json",
            &b"{}"[..],
            "HTTP 200 with an empty JSON object".to_string(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason_phrase(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    (out, said)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// How long a TLS client has to finish its handshake with the bench.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// Presents identity `v` to a TLS client whose ClientHello (`hello`) was read already; a
/// client that accepts it is served as in the clear (an HTTP request gets its 200).
async fn man_in_the_middle(
    s: tokio::net::TcpStream,
    hello: Vec<u8>,
    v: Offer,
    cfg: Arc<rustls::ServerConfig>,
    answers: &[DeclaredAnswer],
    rec: &mut Intercepted,
) {
    use crate::bench::sessions::TlsOutcome;
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let stream = Prefixed {
        head: hello,
        at: 0,
        inner: s,
    };
    let mut tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
        Err(_) => {
            rec.tls = Some(TlsOutcome::Stalled);
            rec.answered = format!("{}: the handshake did not finish within {HANDSHAKE:?}", v.describe());
            return;
        }
        Ok(Err(e)) => {
            let o = crate::bench::mqtt::tls_error(&e);
            rec.answered = format!("{}: refused ({o:?})", v.describe());
            rec.tls = Some(o);
            return;
        }
        Ok(Ok(t)) => t,
    };
    let version = tls
        .get_ref()
        .1
        .protocol_version()
        .map(|x| format!("{x:?}"))
        .unwrap_or_default();
    // what the client sends now the handshake is done: data is acceptance; closing without
    // a byte is a refusal made after the handshake (curl checks the host name there); nothing
    // at all decides nothing
    let mut app = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut ended: Option<String> = None;
    while app.len() < MAX_READ && !app.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(FIRST_BYTES, tls.read(&mut chunk)).await {
            Ok(Ok(k)) if k > 0 => app.extend_from_slice(&chunk[..k]),
            Ok(Ok(_)) => {
                ended = Some("closed".into());
                break;
            }
            Ok(Err(e)) => {
                ended = Some(format!("{:?}", crate::bench::mqtt::tls_error(&e)));
                break;
            }
            Err(_) => break,
        }
    }
    rec.app_bytes = app.len() as u64;
    if app.is_empty() {
        let (o, said) = match ended {
            Some(how) => (
                TlsOutcome::AlertReceived(format!(
                    "{how} right after the {version} handshake, before any application data"
                )),
                "refused after the handshake: the client closed without sending a byte",
            ),
            None => (
                TlsOutcome::Undecided(format!(
                    "the {version} handshake completed and the client neither sent data nor closed within {FIRST_BYTES:?}"
                )),
                "the handshake completed; the client then neither spoke nor closed",
            ),
        };
        rec.answered = format!("{}: {said}", v.describe());
        rec.tls = Some(o);
        return;
    }
    rec.tls = Some(TlsOutcome::Established(version));
    rec.answered = format!(
        "{}: accepted ({} bytes of application data followed)",
        v.describe(),
        app.len()
    );
    if super::flows::starts_with_http_method(&app) {
        // the body its Content-Length announces, as far as the recipients check reads
        if let Some(end) = app.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) {
            let want = header(&String::from_utf8_lossy(&app[..end]), "content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
                .min(DATA_MAX);
            while app.len() < end + want {
                match tokio::time::timeout(FIRST_BYTES, tls.read(&mut chunk)).await {
                    Ok(Ok(k)) if k > 0 => app.extend_from_slice(&chunk[..k]),
                    _ => break,
                }
            }
        }
        rec.app_bytes = app.len() as u64;
        rec.data = app[..app.len().min(DATA_MAX)].to_vec();
        let head = String::from_utf8_lossy(&app);
        let (answer, said) = http_answer(&head, rec.host.as_deref(), answers);
        if tls.write_all(&answer).await.is_ok() {
            rec.bytes_to_device += answer.len() as u64;
        }
        rec.answered = format!("{}; {said}", rec.answered);
        let _ = tls.shutdown().await;
    }
}

/// A stream whose first bytes were read already: they are read again first.
struct Prefixed {
    head: Vec<u8>,
    at: usize,
    inner: tokio::net::TcpStream,
}

impl tokio::io::AsyncRead for Prefixed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.at < self.head.len() {
            let n = (self.head.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.head[at..at + n]);
            self.at += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Prefixed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The client id of an MQTT CONNECT at the start of `b`.
fn mqtt_client_id(b: &[u8]) -> Option<String> {
    let mut at = 1;
    while *b.get(at)? & 0x80 != 0 {
        at += 1;
    }
    at += 1;
    let name_len = u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize;
    at += 2 + name_len + 4;
    let id_len = u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize;
    Some(String::from_utf8_lossy(b.get(at + 2..at + 2 + id_len)?).into_owned())
}

/// A broker that takes the connection and acknowledges what the device publishes, so it
/// sends what it would send (read, bounded; answered with CONNACK, PUBACK and PINGRESP).
async fn mqtt_sink(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, rec: &mut Intercepted) {
    let mut sent = 0u64;
    let mut at = 0usize;
    let mut chunk = [0u8; 4096];
    loop {
        // answer every whole packet in the buffer
        while let Some((first, body, len)) = packet_at(&buf[at..]) {
            let answer: Vec<u8> = match first >> 4 {
                1 => vec![0x20, 2, 0, 0],
                3 if (first >> 1) & 3 == 1 => {
                    let tl = body.get(..2).map_or(0, |t| u16::from_be_bytes([t[0], t[1]]) as usize);
                    body.get(2 + tl..4 + tl)
                        .map_or_else(Vec::new, |id| vec![0x40, 2, id[0], id[1]])
                }
                8 => body.get(..2).map_or_else(Vec::new, |id| vec![0x90, 3, id[0], id[1], 0]),
                12 => vec![0xd0, 0],
                14 => {
                    rec.bytes_to_device = sent;
                    rec.answered = "an MQTT broker: CONNACK, PUBACK, PINGRESP (the device disconnected)".into();
                    return;
                }
                _ => Vec::new(),
            };
            if !answer.is_empty() && s.write_all(&answer).await.is_ok() {
                sent += answer.len() as u64;
            }
            at += len;
        }
        if buf.len() >= MAX_READ {
            break;
        }
        match tokio::time::timeout(IDLE, s.read(&mut chunk)).await {
            Ok(Ok(k)) if k > 0 => {
                buf.extend_from_slice(&chunk[..k]);
                rec.bytes_from_device += k as u64;
            }
            _ => break,
        }
    }
    rec.bytes_to_device = sent;
    rec.answered = "an MQTT broker: CONNACK, PUBACK, PINGRESP".into();
}

/// A whole MQTT packet at the start of `b`: its first byte, body and length.
fn packet_at(b: &[u8]) -> Option<(u8, &[u8], usize)> {
    let first = *b.first()?;
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    loop {
        let x = *b.get(at)?;
        len |= ((x & 0x7f) as usize) << shift;
        at += 1;
        if x & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return None;
        }
    }
    let body = b.get(at..at + len)?;
    Some((first, body, at + len))
}

/// Whether `ip` is an address the interception may redirect from: IPv4 only.
pub fn supported(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v) => Some(v),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> NatRules {
        rules(
            "cb1h0",
            Ipv4Addr::new(198, 18, 0, 2),
            Ipv4Addr::new(198, 18, 0, 1),
            4000,
            &[8883, 1883],
            Some(4123),
        )
    }

    #[test]
    fn the_rules_match_only_the_device_on_its_link() {
        use super::super::nftables::Expr::*;
        let r = sample();
        for rule in &r {
            assert_eq!(
                rule[..2],
                [IifName("cb1h0".into()), Saddr(Ipv4Addr::new(198, 18, 0, 2), true)],
                "every rule is the device's: {rule:?}"
            );
        }
        assert!(r.iter().any(|x| x.ends_with(&[Dport(8883), Accept])), "{r:?}");
        assert!(r.iter().any(|x| x.ends_with(&[L4Proto(6), Redirect(4000)])), "{r:?}");
        assert!(
            r.iter()
                .any(|x| x.ends_with(&[L4Proto(17), Dport(123), Redirect(4123)])),
            "{r:?}"
        );
    }

    /// The table as the kernel holds it, read back by Debian's `nft`: the rules given,
    /// in order; replacing it leaves one table; deleting it leaves none (root).
    #[test]
    fn the_table_written_over_netlink_reads_back_in_nft_as_the_rules_given() {
        if !crate::gateway::netns::is_root() || std::process::Command::new("nft").arg("--version").output().is_err() {
            eprintln!("skipped: needs root and nft");
            return;
        }
        let table = format!("certbench-{}-test", std::process::id());
        super::super::nftables::replace_table(&table, &sample()).unwrap();
        super::super::nftables::replace_table(&table, &sample()).unwrap();
        let out = std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        delete_table(&table);
        let rules: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("iifname"))
            .collect();
        let from = "iifname \"cb1h0\" ip saddr 198.18.0.2";
        assert_eq!(
            rules,
            [
                format!("{from} ip daddr 198.18.0.1 tcp dport 8883 accept"),
                format!("{from} ip daddr 198.18.0.1 tcp dport 1883 accept"),
                format!("{from} meta l4proto tcp redirect to :4000"),
                format!("{from} ip daddr != 198.18.0.1 udp dport 53 redirect to :53"),
                format!("{from} udp dport 123 redirect to :4123"),
            ],
            "{text}"
        );
        assert!(
            text.contains("type nat hook prerouting priority dstnat; policy accept;"),
            "{text}"
        );
        assert!(!tables().contains(&table), "the table was deleted");
        delete_table(&table); // a table already gone is no error
    }

    /// A hello offering only old versions meets the old-TLS offer and leaves the
    /// destination's turn where it was.
    #[test]
    fn an_old_only_client_meets_the_old_offer_without_using_up_the_turn() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::bench::pki::Pki::new("x.test", &crate::model::TrustSource::BenchCa, dir.path()).unwrap();
        let m = Mitm::new(Arc::new(Mutex::new(pki)));
        let ids = m.identities();
        assert!(ids.contains(&Offer::OldTls), "{ids:?}");
        let offer = |legacy| m.pick("t.test", "t.test", legacy).map(|(o, _)| o);
        assert_eq!(offer(false), Some(ids[0]));
        assert_eq!(offer(true), Some(Offer::OldTls));
        assert_eq!(offer(true), Some(Offer::OldTls));
        assert_eq!(offer(false), Some(ids[1]), "the turn was not used up");
    }

    #[test]
    fn the_man_in_the_middle_follows_a_bounded_number_of_destinations() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::bench::pki::Pki::new("x.test", &crate::model::TrustSource::None, dir.path()).unwrap();
        let m = Mitm::new(Arc::new(Mutex::new(pki)));
        for i in 0..MAX_DESTINATIONS {
            let d = format!("d{i}.test");
            assert!(m.pick(&d, &d, false).is_some(), "{d}");
        }
        assert!(
            m.pick("one-more.test", "one-more.test", false).is_none(),
            "past the bound: nothing offered"
        );
        assert!(
            m.pick("d0.test", "d0.test", false).is_some(),
            "a followed destination goes on"
        );
        assert_eq!(host_name("cloud.test:8443").as_deref(), Some("cloud.test:8443"));
        assert_eq!(host_name("a b"), None);
        assert_eq!(host_name("\u{1b}[2J"), None);
        assert_eq!(host_name(&"a".repeat(300)), None);
    }

    #[test]
    fn mqtt_packets_and_client_ids_are_read_from_their_bytes() {
        let connect = [
            0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 4, b's', b'b', b'-', b'1',
        ];
        assert_eq!(mqtt_client_id(&connect).as_deref(), Some("sb-1"));
        let (first, body, len) = packet_at(&connect).unwrap();
        assert_eq!((first, body.len(), len), (0x10, 16, 18));
        assert!(packet_at(&connect[..10]).is_none(), "a packet not yet whole");
        assert!(mqtt_client_id(&connect[..5]).is_none());
    }
}
