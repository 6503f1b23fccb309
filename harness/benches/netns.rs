//! P9: a board's network namespace made and removed (issue 33; target ≤ 20 ms of harness
//! time per board). Needs root.
//!
//! Each round makes a device namespace with its veth link, address, route and the unit's
//! MAC as a run does (`DeviceNet::create`), proves it works (a TCP connection from inside
//! the namespace reaches the bench's end, from the device's address, and the device's end
//! carries the MAC), then drops it and proves nothing is left (no namespace file, no link).
//! Only valid rounds are timed: a round that fails a check stops the bench.
//!
//! Harness time is this process's CPU plus its children's (the `ip` processes, when a
//! version spawns them), from getrusage. Then 64 namespaces are made from 64 threads at
//! once and removed at once (the many-boards path, where the kernel's RTNL lock serialises
//! them): wall and CPU per board.
//!
//!   cargo bench -p certbench --bench netns

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use certbench::gateway::netns::DeviceNet;

const ROUNDS: usize = 50;
const MANY: usize = 64;

/// This process's CPU time and that of its waited-for children.
fn cpu() -> Duration {
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage fills the struct it is given
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut r) } == 0 {
            for t in [r.ru_utime, r.ru_stime] {
                total += Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
            }
        }
    }
    total
}

/// Runs `f` on a thread that joined namespace `ns`.
fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
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

/// The namespace works: the device reaches the bench from its address, with its MAC.
fn check(d: &DeviceNet, mac: [u8; 6]) -> Result<(), String> {
    let l = std::net::TcpListener::bind((d.host_ip, 0)).map_err(|e| format!("bind: {e}"))?;
    let to = l.local_addr().map_err(|e| e.to_string())?;
    let sent = in_namespace(&d.name, move || {
        std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2))
            .and_then(|mut s| s.write_all(b"hi"))
            .map_err(|e| e.to_string())
    });
    // iproute2 reads the link back (not timed)
    let shown = std::process::Command::new("ip")
        .args(["-n", &d.name, "-o", "link", "show", &d.device_if])
        .output()
        .map_err(|e| e.to_string())?;
    let shown = String::from_utf8_lossy(&shown.stdout);
    let shown_mac = shown
        .split("link/ether ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("");
    sent.map_err(|e| format!("from inside {}: {e}", d.name))?;
    let (mut s, peer) = l.accept().map_err(|e| e.to_string())?;
    if peer.ip() != std::net::IpAddr::V4(d.device_ip) {
        return Err(format!("the connection came from {peer}, not {}", d.device_ip));
    }
    let mut got = Vec::new();
    s.read_to_end(&mut got).map_err(|e| e.to_string())?;
    if got != b"hi" {
        return Err(format!("got {got:?}"));
    }
    let want = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    if shown_mac.trim() != want {
        return Err(format!("the device's end has MAC {:?}, not {want}", shown_mac.trim()));
    }
    Ok(())
}

/// Nothing of `d` is left.
fn gone(name: &str, host_if: &str) -> Result<(), String> {
    if std::path::Path::new(&format!("/run/netns/{name}")).exists() {
        return Err(format!("namespace {name} is still there"));
    }
    if std::path::Path::new(&format!("/sys/class/net/{host_if}")).exists() {
        return Err(format!("link {host_if} is still there"));
    }
    Ok(())
}

fn mac(i: usize) -> [u8; 6] {
    [0x02, 0xcb, 0x00, 0x00, (i >> 8) as u8, i as u8]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // SAFETY: geteuid has no preconditions
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("P9 needs root (network namespaces): skipped");
        return;
    }
    // one board at a time
    let (mut wall, mut cpus) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let (c0, t0) = (cpu(), Instant::now());
        let d = DeviceNet::create(Some(mac(i))).expect("a device namespace");
        let made = (cpu() - c0, t0.elapsed());
        if let Err(e) = check(&d, mac(i)) {
            panic!("round {i} invalid, not timed: {e}");
        }
        let (name, host_if) = (d.name.clone(), d.host_if.clone());
        let (c1, t1) = (cpu(), Instant::now());
        drop(d);
        let removed = (cpu() - c1, t1.elapsed());
        if let Err(e) = gone(&name, &host_if) {
            panic!("round {i} invalid, not timed: {e}");
        }
        cpus.push(made.0 + removed.0);
        wall.push(made.1 + removed.1);
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "P9 one board at a time ({ROUNDS} rounds, each checked): harness CPU per board mean {:.1} ms, p95 {:.1} ms; wall mean {:.1} ms, p95 {:.1} ms",
        mean(&cpus).as_secs_f64() * 1e3,
        percentile(&mut cpus, 0.95).as_secs_f64() * 1e3,
        mean(&wall).as_secs_f64() * 1e3,
        percentile(&mut wall, 0.95).as_secs_f64() * 1e3,
    );
    // many boards at once
    let (c0, t0) = (cpu(), Instant::now());
    let made: Vec<DeviceNet> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..MANY)
            .map(|i| s.spawn(move || DeviceNet::create(Some(mac(1000 + i))).expect("a device namespace")))
            .collect();
        hs.into_iter().map(|h| h.join().expect("create thread")).collect()
    });
    let (create_cpu, create_wall) = (cpu() - c0, t0.elapsed());
    for (i, d) in made.iter().enumerate() {
        if let Err(e) = check(d, mac(1000 + i)) {
            panic!("board {i} of {MANY} invalid, not timed: {e}");
        }
    }
    let names: Vec<(String, String)> = made.iter().map(|d| (d.name.clone(), d.host_if.clone())).collect();
    let (c1, t1) = (cpu(), Instant::now());
    std::thread::scope(|s| {
        for d in made {
            s.spawn(move || drop(d));
        }
    });
    let (drop_cpu, drop_wall) = (cpu() - c1, t1.elapsed());
    for (n, h) in &names {
        if let Err(e) = gone(n, h) {
            panic!("{MANY} boards invalid: {e}");
        }
    }
    println!(
        "P9 {MANY} boards at once (each checked): made in {:.0} ms wall, removed in {:.0} ms wall; harness CPU per board {:.1} ms",
        create_wall.as_secs_f64() * 1e3,
        drop_wall.as_secs_f64() * 1e3,
        (create_cpu + drop_cpu).as_secs_f64() * 1e3 / MANY as f64,
    );
}
