//! Issue 32: what a labgrid place costs a run (target ≤ 1 s per board: acquire + connect +
//! release) against a local coordinator, through certbench's own code. Needs root (the
//! exporter is given a /dev path) and the labgrid and ser2net that `.ci/run` installs.
//!
//! A real labgrid 26 coordinator and exporter; the exporter exports a PTY (its ser2net,
//! RFC 2217) and a network power port. Each round does what a run does with its place:
//! `lab::labgrid::acquire` (the client opened, the place acquired), the place's resources read
//! (console and power), the console connected through RFC 2217 until a byte written on the
//! board's side of the PTY arrives, then the console closed and the place released. A round
//! counts only if the console was the exported one, the power resource was seen, the byte
//! arrived, and `labgrid-client show` says the place is free afterwards; otherwise the bench
//! stops. Both ways of driving a place are timed: the session certbench keeps for a run, and
//! one `labgrid-client` per action (what a lab's non-Python client wrapper gets).
//!
//!   cargo bench -p certbench --bench labgrid

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use certbench::lab::labgrid::Client;
use certbench::model::labgrid::Place;

const ROUNDS: usize = 10;
const LABGRID: &str = "/var/cache/certbench-deps/labgrid/bin";

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cmd` started in `dir` with its output discarded; killed when dropped.
fn quiet(cmd: &mut Command, dir: &Path) -> Killed {
    Killed(
        cmd.current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("a labgrid program"),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn client(coordinator: &str, args: &[&str]) -> String {
    let o = Command::new(format!("{LABGRID}/labgrid-client"))
        .args(["-x", coordinator])
        .args(args)
        .output()
        .expect("labgrid-client");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A PTY pair: (master, slave kept open, slave path).
fn pty() -> (std::fs::File, std::fs::File, String) {
    use std::os::fd::FromRawFd;
    let (mut m, mut s) = (-1, -1);
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: openpty fills two fds and a NUL-terminated name
    let rc = unsafe { libc::openpty(&mut m, &mut s, name.as_mut_ptr(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: fresh descriptors from openpty; the name is NUL-terminated
    unsafe {
        (
            std::fs::File::from_raw_fd(m),
            std::fs::File::from_raw_fd(s),
            std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned(),
        )
    }
}

/// One round, checked: the place's wall time, and the first power action's and the next ones'.
fn round(
    make: &dyn Fn() -> Client,
    coordinator: &str,
    master: &mut std::fs::File,
    pdu: &std::sync::atomic::AtomicUsize,
    n: usize,
) -> Result<(Duration, (Duration, Duration)), String> {
    use std::io::Write;
    let marker = std::env::temp_dir().join(format!("certbench-bench-labgrid-{}.labgrid", std::process::id()));
    let never = std::sync::atomic::AtomicBool::new(false);
    let t0 = Instant::now();
    let held = certbench::lab::labgrid::acquire_with(make(), Duration::ZERO, &never, &marker)?;
    let res = held.client.resources()?;
    let console = res.console.ok_or("no console resource")?;
    if !res.power {
        return Err("no power resource".into());
    }
    let Some(Ok((mode, addr))) = certbench::model::console_port::parse(&console) else {
        return Err(format!("a console certbench cannot open: {console}"));
    };
    let feed = certbench::console::Feed::new(Instant::now());
    let con = certbench::console::network::connect(mode, &addr, 115_200, feed);
    let token = format!("round-{n}-{}\n", std::process::id());
    let redactor = certbench::redact::Redactor::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // written until the console is connected and it arrives (ser2net drops what comes
        // before a client)
        master.write_all(token.as_bytes()).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(5));
        let raw = con.with_transcript(|t| t.render_raw(0, &redactor));
        if String::from_utf8_lossy(&raw).contains(token.trim()) {
            break;
        }
        if Instant::now() > deadline {
            return Err("the byte written on the board's side never arrived".into());
        }
    }
    con.close();
    drop(con);
    // (not part of the place's cost: a power cycle, timed apart and checked at the PDU)
    let t1 = Instant::now();
    let before = pdu.load(std::sync::atomic::Ordering::SeqCst);
    held.client.power(false)?;
    let first = t1.elapsed();
    for on in [true, false, true] {
        held.client.power(on)?;
    }
    let switched = pdu.load(std::sync::atomic::Ordering::SeqCst) - before;
    if switched != 4 {
        return Err(format!("the PDU saw {switched} switch requests for four"));
    }
    let power = (first, (t1.elapsed() - first) / 3);
    let t2 = Instant::now();
    drop(held);
    let took = t1 - t0 + t2.elapsed();
    let shown = client(coordinator, &["-p", "bench-place", "show"]);
    if !shown.contains("acquired: None") {
        return Err(format!("the place was not released:\n{shown}"));
    }
    Ok((took, power))
}

/// A network power switch (labgrid's `simplerest` model): counts the switch requests.
fn pdu() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let mut r = BufReader::new(&conn);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let mut h = String::new();
            while r.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("");
            if path == "/outlet/0/0" || path == "/outlet/0/1" {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = (&conn).write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, count)
}

fn main() {
    if !Path::new(&format!("{LABGRID}/labgrid-client")).exists() || Command::new("ser2net").arg("-v").output().is_err()
    {
        println!("labgrid bench skipped: labgrid ({LABGRID}) or ser2net is not installed (.ci/run installs them)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = format!("127.0.0.1:{}", free_port());
    let _coordinator = quiet(
        Command::new(format!("{LABGRID}/labgrid-coordinator")).args(["-l", &coordinator]),
        dir.path(),
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&coordinator).is_err() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut master, _slave, slave_path) = pty();
    let dev = format!("/dev/certbench-bench-{}", std::process::id());
    let _ = std::fs::remove_file(&dev);
    std::os::unix::fs::symlink(&slave_path, &dev).expect("a /dev link (root)");
    let (pdu_port, pdu) = pdu();
    let cfg = dir.path().join("exporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "board1:\n  RawSerialPort:\n    port: {dev}\n    speed: 115200\n  NetworkPowerPort:\n    model: simplerest\n    host: 'http://127.0.0.1:{pdu_port}/outlet/{{index}}/{{value}}'\n    index: 0\n"
        ),
    )
    .expect("exporter config");
    let _exporter = quiet(
        Command::new(format!("{LABGRID}/labgrid-exporter"))
            .args(["-c", &coordinator, "-n", "bench", "--hostname", "127.0.0.1"])
            .arg(&cfg),
        dir.path(),
    );
    let t0 = Instant::now();
    while !client(&coordinator, &["resources"]).contains("bench/board1") && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    client(&coordinator, &["-p", "bench-place", "create"]);
    client(&coordinator, &["-p", "bench-place", "add-match", "bench/board1/*"]);
    let place = Place {
        coordinator: coordinator.clone(),
        place: "bench-place".into(),
        client: format!("{LABGRID}/labgrid-client").into(),
    };
    let session = || Client::open(&place).expect("the coordinator answers");
    let commands = || Client::commands(&place, "timed for comparison");
    let mut failed = false;
    for (name, make) in [
        ("one labgrid session per run", &session as &dyn Fn() -> Client),
        ("one labgrid-client per action", &commands),
    ] {
        let mut times = Vec::new();
        let (mut first, mut next) = (Duration::ZERO, Duration::ZERO);
        for n in 0..ROUNDS {
            match round(make, &coordinator, &mut master, &pdu, n) {
                Ok((t, (f, n))) => {
                    times.push(t);
                    first += f;
                    next += n;
                }
                Err(e) => {
                    println!("{name}: round {n} is not valid, not timed: {e}");
                    failed = true;
                    break;
                }
            }
        }
        if times.is_empty() {
            continue;
        }
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        let worst = times.iter().max().copied().unwrap_or_default();
        println!(
            "{name}: acquire + resources + console connected + release: mean {:.3} s, worst {:.3} s, {} of {ROUNDS} rounds valid; power: first action {:.3} s, each next {:.3} s (means)",
            mean.as_secs_f64(),
            worst.as_secs_f64(),
            times.len(),
            (first / times.len() as u32).as_secs_f64(),
            (next / times.len() as u32).as_secs_f64()
        );
    }
    let _ = std::fs::remove_file(&dev);
    if failed {
        std::process::exit(1);
    }
}
