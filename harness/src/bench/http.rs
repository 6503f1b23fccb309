//! The bench's update server: HTTP and HTTPS (hyper; TLS from the bench PKI, so the MITM
//! variants apply to the update channel too), serving whatever the scenario put at each
//! path and recording every request: path, range, status, bytes sent, and whether the
//! transfer completed — the evidence that a refused image was really fetched.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use tokio::net::TcpListener;

use super::peers::{Admission, RecordBudget, bounded};
use crate::model::{Attribution, Origin};

/// Bytes of a request path (or range header) kept in the record.
pub const PATH_MAX: usize = 512;
/// A client must send its request headers within this (slowloris), and an idle
/// keep-alive connection is closed after it.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The longest a connection may last (a held download included).
pub const CONNECTION_MAX: std::time::Duration = std::time::Duration::from_secs(600);
/// hyper's read buffer: request headers larger than this are refused.
pub const HEADER_BYTES_MAX: usize = 16 << 10;

/// One request the server saw.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HttpRequest {
    pub id: u64,
    pub tls: bool,
    pub peer: String,
    /// Whose request it is: only the device's count.
    pub origin: Origin,
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub status: u16,
    /// Bytes of body handed to the connection.
    pub bytes_sent: u64,
    /// Bytes the response promised.
    pub bytes_total: u64,
    /// The whole body went out; false when the client hung up part way.
    pub completed: bool,
}

/// A TLS handshake the HTTPS server saw (failed ones are the evidence that a device
/// refused a certificate).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Handshake {
    pub peer: String,
    pub origin: Origin,
    /// The certificate the bench presented, as the scenario set it.
    pub presented: String,
    /// "established", or why not ("failed: ..." with the device's alert, "stalled").
    pub outcome: String,
}

impl Handshake {
    pub fn established(&self) -> bool {
        self.outcome == "established"
    }
}

/// The HTTPS identity, switchable between scenario phases: (what it is, its config).
pub type TlsSwitch = Arc<RwLock<Option<(String, Arc<rustls::ServerConfig>)>>>;

#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<(Vec<HttpRequest>, RecordBudget)>,
    handshakes: Mutex<(Vec<Handshake>, RecordBudget)>,
    /// Whose requests count as the device's.
    pub attribution: Attribution,
    pub notify: tokio::sync::Notify,
    /// The body of this path stops after this many bytes until released: a power cut
    /// "during the download" lands at an exact byte, without slowing the download down.
    hold: Hold,
}

impl RequestLog {
    pub fn new(hold: Hold, attribution: Attribution) -> Self {
        Self {
            hold,
            attribution,
            ..Self::default()
        }
    }
    /// How many of the device's requests are recorded (a mark for `snapshot().skip`).
    pub fn len(&self) -> usize {
        self.lock().0.iter().filter(|r| r.origin.counts()).count()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Waits until `f` finds something in the log, or the deadline; Err(snapshot) then.
    pub async fn wait_until<T>(
        &self,
        deadline: std::time::Instant,
        f: impl FnMut(&[HttpRequest]) -> Option<T>,
    ) -> Result<T, Vec<HttpRequest>> {
        super::base::wait_for(&self.notify, deadline, || self.snapshot(), f).await
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<HttpRequest>, RecordBudget)> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The device's requests (everyone's when its address is not declared).
    pub fn snapshot(&self) -> Vec<HttpRequest> {
        self.lock().0.iter().filter(|r| r.origin.counts()).cloned().collect()
    }
    /// Every recorded request, other peers' included.
    pub fn all(&self) -> Vec<HttpRequest> {
        self.lock().0.clone()
    }
    /// Requests not recorded because the log was full: (device's, other peers').
    pub fn dropped(&self) -> (u64, u64) {
        self.lock().1.dropped
    }
    /// The device's TLS handshakes.
    pub fn handshakes(&self) -> Vec<Handshake> {
        let g = self.handshakes.lock().unwrap_or_else(|p| p.into_inner());
        g.0.iter().filter(|h| h.origin.counts()).cloned().collect()
    }
    fn handshake(&self, h: Handshake) {
        let mut g = self.handshakes.lock().unwrap_or_else(|p| p.into_inner());
        if g.1.take(h.origin) {
            g.0.push(h);
        }
        drop(g);
        self.notify.notify_waiters();
    }
    /// Records a request; None when the log is full (then only counted).
    fn push(&self, r: HttpRequest) -> Option<u64> {
        let mut g = self.lock();
        if !g.1.take(r.origin) {
            return None;
        }
        let id = g.0.len() as u64 + 1;
        g.0.push(HttpRequest { id, ..r });
        drop(g);
        self.notify.notify_waiters();
        Some(id)
    }
    fn update(&self, id: u64, f: impl FnOnce(&mut HttpRequest)) {
        if id == 0 {
            return;
        }
        if let Some(r) = self.lock().0.get_mut(id as usize - 1) {
            f(r);
        }
        self.notify.notify_waiters();
    }
}

/// What the server serves, by path; the scenario changes it between phases.
pub type Routes = Arc<RwLock<HashMap<String, Bytes>>>;

/// (path, bytes): the body of that path is held after that many bytes until the hold is
/// cleared.
pub type Hold = Arc<Mutex<Option<(String, u64)>>>;

/// A response body handed out in chunks, counting what went out; if hyper drops it
/// before the end (client gone), the record says the transfer did not complete.
struct Counted {
    data: Bytes,
    path: String,
    pos: usize,
    id: u64,
    log: Arc<RequestLog>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

const CHUNK: usize = 16 << 10;

impl Body for Counted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.pos >= self.data.len() {
            let (id, log) = (self.id, self.log.clone());
            log.update(id, |r| r.completed = true);
            return Poll::Ready(None);
        }
        if let Some(p) = self.pause.as_mut() {
            if p.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        let held = {
            let h = self.log.hold.lock().unwrap_or_else(|p| p.into_inner());
            h.as_ref().filter(|(p, _)| *p == self.path).map(|(_, at)| *at as usize)
        };
        if held.is_some_and(|at| self.pos >= at) {
            // look again shortly: the hold is cleared when the cut has been made
            let p = self
                .pause
                .insert(Box::pin(tokio::time::sleep(std::time::Duration::from_millis(10))));
            let _ = p.as_mut().poll(cx);
            return Poll::Pending;
        }
        let step = held.map_or(CHUNK, |at| (at - self.pos).min(CHUNK));
        let end = (self.pos + step).min(self.data.len());
        let chunk = self.data.slice(self.pos..end);
        self.pos = end;
        let (id, n) = (self.id, chunk.len() as u64);
        self.log.update(id, |r| r.bytes_sent += n);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

/// Parses a single `bytes=a-b` range against a length.
fn range(header: &str, len: usize) -> Option<(usize, usize)> {
    let spec = header.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (a.parse().ok()?, b.parse::<usize>().ok()?.min(len.checked_sub(1)?)),
    };
    (start <= end && end < len).then_some((start, end))
}

#[derive(Debug)]
pub struct UpdateServer {
    pub addr: SocketAddr,
    pub tls: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for UpdateServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl UpdateServer {
    /// Binds and serves (HTTPS when `tls` is given: the identity it holds at each
    /// connection); a bind failure is reported with the address.
    pub async fn start(
        addr: SocketAddr,
        tls: Option<TlsSwitch>,
        routes: Routes,
        log: Arc<RequestLog>,
    ) -> Result<Self, super::error::BenchError> {
        let what = if tls.is_some() { "HTTPS" } else { "HTTP" };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| super::error::BenchError::Bind {
                what: format!("{what} update server"),
                addr,
                source,
            })?;
        let local = listener.local_addr()?;
        let is_tls = tls.is_some();
        let gate = Admission::new(log.attribution);
        let task = tokio::spawn(async move {
            loop {
                let (sock, peer) = super::peers::accept(&listener).await;
                // over its share, a peer's connection is closed at once
                let Ok(admitted) = gate.admit(peer.ip()) else {
                    drop(sock);
                    continue;
                };
                let (routes, log, tls) = (routes.clone(), log.clone(), tls.clone());
                tokio::spawn(async move {
                    let _admitted = admitted;
                    let _ = tokio::time::timeout(CONNECTION_MAX, async move {
                        let svc_log = log.clone();
                        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (routes, log) = (routes.clone(), svc_log.clone());
                            async move { Ok::<_, Infallible>(respond(&req, peer, is_tls, &routes, &log)) }
                        });
                        let mut builder = hyper::server::conn::http1::Builder::new();
                        builder
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .max_buf_size(HEADER_BYTES_MAX);
                        match tls {
                            None => {
                                let _ = builder
                                    .serve_connection(hyper_util::rt::TokioIo::new(sock), service)
                                    .await;
                            }
                            Some(switch) => {
                                let current = switch.read().unwrap_or_else(|p| p.into_inner()).clone();
                                let Some((presented, cfg)) = current else {
                                    // HTTPS blocked in this phase: close at once
                                    return;
                                };
                                let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                                let record = |outcome: String| {
                                    log.handshake(Handshake {
                                        peer: peer.to_string(),
                                        origin: log.attribution.origin(peer.ip()),
                                        presented: presented.clone(),
                                        outcome,
                                    })
                                };
                                let stream = match tokio::time::timeout(
                                    crate::config::bench::HANDSHAKE_TIMEOUT,
                                    acceptor.accept(sock),
                                )
                                .await
                                {
                                    Ok(Ok(s)) => {
                                        record("established".into());
                                        s
                                    }
                                    Ok(Err(e)) => return record(format!("failed: {e}")),
                                    Err(_) => return record("stalled".into()),
                                };
                                let _ = builder
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    })
                    .await;
                });
            }
        });
        Ok(Self {
            addr: local,
            tls: is_tls,
            task,
        })
    }
}

fn respond(
    req: &Request<hyper::body::Incoming>,
    peer: SocketAddr,
    tls: bool,
    routes: &Routes,
    log: &Arc<RequestLog>,
) -> Response<Counted> {
    let path = req.uri().path().to_string();
    let range_header = req
        .headers()
        .get(hyper::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| bounded(r, PATH_MAX));
    let body = routes.read().unwrap_or_else(|p| p.into_inner()).get(&path).cloned();
    let (status, data) = match (&body, &range_header) {
        (None, _) => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
        (Some(b), Some(r)) => match range(r, b.len()) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, b.slice(s..=e)),
            None => (StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new()),
        },
        (Some(b), None) => (StatusCode::OK, b.clone()),
    };
    let id = log
        .push(HttpRequest {
            id: 0,
            tls,
            peer: peer.to_string(),
            origin: log.attribution.origin(peer.ip()),
            method: bounded(req.method().as_str(), 32),
            path: bounded(&path, PATH_MAX),
            range: range_header,
            status: status.as_u16(),
            bytes_sent: 0,
            bytes_total: data.len() as u64,
            completed: false,
        })
        .unwrap_or(0);
    let head = req.method() == hyper::Method::HEAD;
    let mut resp = Response::new(Counted {
        path: req.uri().path().to_string(),
        data: if head { Bytes::new() } else { data },
        pos: 0,
        id,
        log: log.clone(),
        pause: None,
    });
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::ACCEPT_RANGES,
        hyper::header::HeaderValue::from_static("bytes"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(range("bytes=200-300", 100), None);
        assert_eq!(range("items=1-2", 100), None);
    }

    fn get(addr: SocketAddr, path: &str, read_all: bool) -> Vec<u8> {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        write!(s, "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").expect("write");
        let mut out = Vec::new();
        if read_all {
            let _ = s.read_to_end(&mut out);
        } else {
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).expect("read");
            out.extend_from_slice(&buf[..n]);
            // hang up with most of the body unread
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_complete_and_aborted_transfers() {
        let routes: Routes = Arc::default();
        let image = Bytes::from(vec![7u8; 4 << 20]);
        routes.write().expect("lock").insert("/fw.img".into(), image.clone());
        let log = Arc::new(RequestLog::default());
        let server = UpdateServer::start(([127, 0, 0, 1], 0).into(), None, routes, log.clone())
            .await
            .expect("bind");
        let addr = server.addr;
        let full = tokio::task::spawn_blocking(move || get(addr, "/fw.img", true))
            .await
            .expect("get");
        assert!(full.len() > 4 << 20, "headers and the whole image arrived");
        tokio::task::spawn_blocking(move || get(addr, "/fw.img", false))
            .await
            .expect("get");
        tokio::task::spawn_blocking(move || get(addr, "/missing", true))
            .await
            .expect("get");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let r = log.snapshot();
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[0].completed && r[0].bytes_sent == 4 << 20, "{:?}", r[0]);
        assert!(
            !r[1].completed && r[1].bytes_sent < 4 << 20,
            "the hang-up is recorded: {:?}",
            r[1]
        );
        assert_eq!(r[2].status, 404);
    }

    async fn from(src: [u8; 4], to: SocketAddr) -> tokio::net::TcpStream {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.bind((src, 0).into()).expect("bind");
        s.connect(to).await.expect("connect")
    }

    /// Sends a request and reads the answer (empty when the server closed without one).
    async fn ask(src: [u8; 4], to: SocketAddr, request: &[u8]) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = from(src, to).await;
        let _ = s.write_all(request).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
        out
    }

    /// Other peers' requests are recorded (capped, long paths cut) but never counted; a peer
    /// holding idle connections gets no more than its share, and the device is still served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_peers_are_bounded_and_the_device_still_served() {
        use crate::bench::peers::{OTHER_RECORDS_MAX, PER_PEER_MAX};
        use crate::model::Origin;
        let routes: Routes = Arc::default();
        routes
            .write()
            .expect("lock")
            .insert("/fw.img".into(), Bytes::from_static(b"image"));
        let attribution = Attribution {
            device: Some([127, 0, 0, 2].into()),
        };
        let log = Arc::new(RequestLog::new(Arc::default(), attribution));
        let server = UpdateServer::start(([127, 0, 0, 1], 0).into(), None, routes, log.clone())
            .await
            .expect("bind");
        let addr = server.addr;
        let long = "a".repeat(8000);
        for _ in 0..OTHER_RECORDS_MAX + 50 {
            let req = format!("GET /{long} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
            let r = ask([127, 0, 0, 1], addr, req.as_bytes()).await;
            assert!(
                r.starts_with(b"HTTP/1.1 404"),
                "{:?}",
                String::from_utf8_lossy(&r[..r.len().min(80)])
            );
        }
        assert!(log.snapshot().is_empty(), "no other peer's request counts");
        let all = log.all();
        assert_eq!(all.len(), OTHER_RECORDS_MAX);
        assert!(
            all.iter()
                .all(|r| r.origin == Origin::OtherPeer && r.path.len() < PATH_MAX + 64)
        );
        assert_eq!(log.dropped(), (0, 50));
        // a peer holding idle connections: its share, then closed at once
        let mut idle = Vec::new();
        for _ in 0..PER_PEER_MAX * 3 {
            idle.push(from([127, 0, 0, 1], addr).await);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let get = b"GET /fw.img HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
        assert!(
            ask([127, 0, 0, 1], addr, get).await.is_empty(),
            "over its share: closed unanswered"
        );
        let r = ask([127, 0, 0, 2], addr, get).await;
        assert!(
            r.starts_with(b"HTTP/1.1 200") && r.ends_with(b"image\r\n0\r\n\r\n"),
            "the device is served: {:?}",
            String::from_utf8_lossy(&r)
        );
        let mine = log.snapshot();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].origin, Origin::Device);
        // headers larger than the buffer are refused, not buffered
        let huge = format!("GET /fw.img HTTP/1.1\r\nHost: b\r\nX: {}\r\n\r\n", "h".repeat(64 << 10));
        let r = ask([127, 0, 0, 2], addr, huge.as_bytes()).await;
        assert!(
            r.is_empty() || r.starts_with(b"HTTP/1.1 431"),
            "{:?}",
            String::from_utf8_lossy(&r)
        );
        assert_eq!(log.snapshot().len(), 1, "not recorded as a request");
        drop(idle);
    }

    /// Whatever request a peer sends (any method, path, range, or plain junk), the server
    /// answers or closes, records at most a bounded path and range, and keeps serving.
    #[test]
    fn any_request_is_recorded_bounded_and_the_server_keeps_serving() {
        use proptest::prelude::*;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let routes: Routes = Arc::default();
        routes
            .write()
            .expect("lock")
            .insert("/fw.img".into(), Bytes::from(vec![1u8; 4096]));
        let log = Arc::new(RequestLog::default());
        let server = rt
            .block_on(UpdateServer::start(
                ([127, 0, 0, 1], 0).into(),
                None,
                routes,
                log.clone(),
            ))
            .expect("bind");
        let addr = server.addr;
        let request = (
            prop_oneof![Just("GET".to_string()), Just("HEAD".to_string()), "[A-Z]{1,40}"],
            "/[ -~]{0,3000}",
            proptest::option::of("[ -~]{0,300}"),
            proptest::collection::vec(any::<u8>(), 0..512),
            any::<bool>(),
        );
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config::with_cases(96));
        runner
            .run(&request, |(method, path, range, junk, raw)| {
                let bytes = if raw {
                    junk
                } else {
                    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n");
                    if let Some(range) = &range {
                        r.push_str(&format!("Range: {range}\r\n"));
                    }
                    r.push_str("\r\n");
                    r.into_bytes()
                };
                let before = log.all().len();
                rt.block_on(ask([127, 0, 0, 1], addr, &bytes));
                let all = log.all();
                prop_assert!(all.len() <= before + 1);
                for r in &all[before..] {
                    prop_assert!(r.path.len() < PATH_MAX + 64, "{}", r.path.len());
                    prop_assert!(r.range.as_ref().is_none_or(|x| x.len() < PATH_MAX + 64));
                    prop_assert!(r.bytes_sent <= r.bytes_total);
                }
                Ok(())
            })
            .expect("property holds");
        let ok = rt.block_on(ask(
            [127, 0, 0, 1],
            addr,
            b"GET /fw.img HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        ));
        assert!(ok.starts_with(b"HTTP/1.1 200"), "still serving");
        drop(server);
    }

    #[tokio::test]
    async fn a_bind_failure_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = UpdateServer::start(addr, None, Arc::default(), Arc::default())
            .await
            .expect_err("in use");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
