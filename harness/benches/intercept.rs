//! P6: what answering every flow costs a device's connection (issue 25). Needs root.
//!
//! A device namespace and its link are made as for a run. From inside the namespace (a
//! thread that joined it), 1 000 sequential HTTP exchanges go (a) to a port of the bench's
//! own that the interception leaves alone, served by a minimal responder that answers as the
//! interceptor does, and (b) to a port nothing listens on, redirected to the interceptor;
//! the difference of the two latency distributions is what interception adds. Then 1 000
//! connections are held open at once through the interceptor and each must be answered.
//!
//! Valid only if every exchange got its 200, the interceptor recorded each redirected
//! connection with the port the device asked for, and no connection was lost.
//!
//!   cargo bench -p certbench --bench intercept

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use certbench::gateway::intercept::{Interceptor, Kind, MAX_CONCURRENT};
use certbench::gateway::netns::DeviceNet;

const N: usize = 1_000;
const REQUEST: &[u8] = b"GET /bench HTTP/1.1\r\nHost: api.bench.test\r\nConnection: close\r\n\r\n";

/// Runs `f` on a thread that joined namespace `ns`.
fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("the namespace's file");
        use std::os::fd::AsRawFd;
        // SAFETY: setns on an open namespace file, for this thread only
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("the namespace thread")
}

/// One exchange: connect, send the request, read the answer to its end; its latency.
fn exchange(to: SocketAddr) -> Result<Duration, String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(REQUEST).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    s.read_to_end(&mut got).map_err(|e| e.to_string())?;
    if !got.starts_with(b"HTTP/1.1 200 OK") {
        return Err(format!("answer {:?}", String::from_utf8_lossy(&got)));
    }
    Ok(t0.elapsed())
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The bench's own responder on a kept port: reads the request head, answers as the
/// interceptor does (200, an empty JSON object).
async fn responder(l: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut s, _)) = l.accept().await else { continue };
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk).await {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .await;
        });
    }
}

fn main() {
    // cargo bench passes --bench; nothing else is taken
    // SAFETY: geteuid has no preconditions
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("P6 needs root (a network namespace and nftables): skipped");
        return;
    }
    // both ends of 1 000 connections live in this process
    let want = libc::rlimit {
        rlim_cur: 8192,
        rlim_max: 8192,
    };
    // SAFETY: setrlimit with a valid struct; failing leaves the old limit
    unsafe {
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) == 0 && now.rlim_cur < want.rlim_cur {
            let raised = libc::rlimit {
                rlim_cur: want.rlim_cur.min(now.rlim_max.max(want.rlim_max)),
                rlim_max: now.rlim_max.max(want.rlim_max),
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let net = DeviceNet::create(None).expect("a device namespace");
    let (bench, device) = (net.host_ip, net.device_ip);
    let kept_listener = rt
        .block_on(tokio::net::TcpListener::bind((bench, 0)))
        .expect("the responder's port");
    let kept = kept_listener.local_addr().expect("addr");
    rt.spawn(responder(kept_listener));
    let icpt = rt
        .block_on(Interceptor::start(
            &net.name,
            &net.host_if,
            device,
            bench,
            &[kept.port()],
            None,
            Vec::new(),
        ))
        .expect("interception (nftables)");
    // a port nothing of the bench listens on: only the interception answers it
    let redirected = SocketAddr::from((bench, 47_001));
    let ns = net.name.clone();
    let (direct, through) = in_namespace(&ns, move || {
        let run = |to: SocketAddr| -> Vec<Duration> {
            (0..N)
                .map(|_| exchange(to).unwrap_or_else(|e| panic!("INVALID: {to}: {e}")))
                .collect()
        };
        // warm both paths, then alternate blocks so drift hits both alike
        let _ = run(kept);
        let _ = run(redirected);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            a.extend(run(kept).into_iter().take(N / 4));
            b.extend(run(redirected).into_iter().take(N / 4));
        }
        (a, b)
    });
    let (records, dropped) = icpt.records();
    let to_port = records
        .iter()
        .filter(|r| r.kind == Kind::Http && r.to == redirected.to_string())
        .count();
    assert!(
        to_port >= 2 * N && dropped == 0,
        "INVALID: the interceptor recorded {to_port} HTTP connections to {redirected} (want ≥ {}), {dropped} dropped",
        2 * N
    );
    // 1 000 connections open at once, each answered
    let concurrent = N.min(MAX_CONCURRENT);
    let ns = net.name.clone();
    let (answered, held_for) = in_namespace(&ns, move || {
        let t0 = Instant::now();
        let streams: Vec<TcpStream> = (0..concurrent)
            .map(|i| {
                let s = TcpStream::connect_timeout(&SocketAddr::from((bench, 47_002)), Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("INVALID: connection {i}: {e}"));
                s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
                s
            })
            .collect();
        let mut ok = 0;
        for mut s in streams {
            let mut got = Vec::new();
            if s.write_all(REQUEST).is_ok() && s.read_to_end(&mut got).is_ok() && got.starts_with(b"HTTP/1.1 200 OK") {
                ok += 1;
            }
        }
        (ok, t0.elapsed())
    });
    assert_eq!(
        answered, concurrent,
        "INVALID: {answered} of {concurrent} concurrent connections answered"
    );
    let (mut direct, mut through) = (direct, through);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (d50, d99) = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
    let (t50, t99) = (percentile(&mut through, 0.5), percentile(&mut through, 0.99));
    println!(
        "P6 interception, {} exchanges each way from the device namespace:",
        direct.len()
    );
    println!(
        "  bench's own port (not intercepted): p50 {:.3} ms, p99 {:.3} ms",
        ms(d50),
        ms(d99)
    );
    println!(
        "  any other port (intercepted):       p50 {:.3} ms, p99 {:.3} ms",
        ms(t50),
        ms(t99)
    );
    println!(
        "  added by interception: p50 {:+.3} ms, p99 {:+.3} ms (target ≤ 1 ms at p99)",
        ms(t50) - ms(d50),
        ms(t99) - ms(d99)
    );
    println!(
        "  {concurrent} connections held open at once: all answered ({:.2} s for all)",
        held_for.as_secs_f64()
    );
    drop(icpt);
    drop(net);
}
