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

/// One request the server saw.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HttpRequest {
    pub id: u64,
    pub tls: bool,
    pub peer: String,
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
    entries: Mutex<Vec<HttpRequest>>,
    handshakes: Mutex<Vec<Handshake>>,
    pub notify: tokio::sync::Notify,
    /// Bytes per second bodies are sent at; 0 = as fast as the client reads. A power cut
    /// "during the download" needs a download that lasts.
    throttle: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestLog {
    pub fn with_throttle(throttle: Arc<std::sync::atomic::AtomicU64>) -> Self {
        Self {
            throttle,
            ..Self::default()
        }
    }
    pub fn len(&self) -> usize {
        self.lock().len()
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
        super::wait_for(&self.notify, deadline, || self.snapshot(), f).await
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HttpRequest>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn snapshot(&self) -> Vec<HttpRequest> {
        self.lock().clone()
    }
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn handshake(&self, h: Handshake) {
        self.handshakes.lock().unwrap_or_else(|p| p.into_inner()).push(h);
        self.notify.notify_waiters();
    }
    fn push(&self, r: HttpRequest) -> u64 {
        let mut g = self.lock();
        let id = g.len() as u64 + 1;
        g.push(HttpRequest { id, ..r });
        drop(g);
        self.notify.notify_waiters();
        id
    }
    fn update(&self, id: u64, f: impl FnOnce(&mut HttpRequest)) {
        if let Some(r) = self.lock().get_mut(id as usize - 1) {
            f(r);
        }
        self.notify.notify_waiters();
    }
}

/// What the server serves, by path; the scenario changes it between phases.
pub type Routes = Arc<RwLock<HashMap<String, Bytes>>>;

/// A response body handed out in chunks, counting what went out; if hyper drops it
/// before the end (client gone), the record says the transfer did not complete.
struct Counted {
    data: Bytes,
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
        let rate = self.log.throttle.load(std::sync::atomic::Ordering::Relaxed);
        // throttled: 20 slices a second
        let step = if rate > 0 {
            (rate as usize / 20).clamp(1, CHUNK)
        } else {
            CHUNK
        };
        if rate > 0 {
            let secs = step as f64 / rate as f64;
            self.pause = Some(Box::pin(tokio::time::sleep(std::time::Duration::from_secs_f64(secs))));
        }
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
    ) -> Result<Self, String> {
        let what = if tls.is_some() { "HTTPS" } else { "HTTP" };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot bind the {what} update server to {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let is_tls = tls.is_some();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, peer)) = listener.accept().await else {
                    continue;
                };
                let (routes, log, tls) = (routes.clone(), log.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc_log = log.clone();
                    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (routes, log) = (routes.clone(), svc_log.clone());
                        async move { Ok::<_, Infallible>(respond(&req, peer, is_tls, &routes, &log)) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
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
                                    presented: presented.clone(),
                                    outcome,
                                })
                            };
                            let stream =
                                match tokio::time::timeout(super::mqtt::HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await
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
        .map(str::to_string);
    let body = routes.read().unwrap_or_else(|p| p.into_inner()).get(&path).cloned();
    let (status, data) = match (&body, &range_header) {
        (None, _) => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
        (Some(b), Some(r)) => match range(r, b.len()) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, b.slice(s..=e)),
            None => (StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new()),
        },
        (Some(b), None) => (StatusCode::OK, b.clone()),
    };
    let id = log.push(HttpRequest {
        id: 0,
        tls,
        peer: peer.to_string(),
        method: req.method().to_string(),
        path,
        range: range_header,
        status: status.as_u16(),
        bytes_sent: 0,
        bytes_total: data.len() as u64,
        completed: false,
    });
    let head = req.method() == hyper::Method::HEAD;
    let mut resp = Response::new(Counted {
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

    #[tokio::test]
    async fn a_bind_failure_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = UpdateServer::start(addr, None, Arc::default(), Arc::default())
            .await
            .expect_err("in use");
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}
