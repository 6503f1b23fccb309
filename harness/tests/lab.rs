//! A lab of boards: parallel boards with separate verdicts, locks that die with their
//! holder, an unhealthy board taken offline, shards that partition the work, retries of
//! ERROR only with flaky marking.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn write_inventory(dir: &Path, boards: &str) -> String {
    let p = dir.join("lab.yaml");
    std::fs::write(
        &p,
        format!("lock_dir: {}\nboards:\n{boards}", dir.join("locks").display()),
    )
    .expect("inventory");
    p.display().to_string()
}

fn repo_path(p: &str) -> String {
    repo().join(p).display().to_string()
}

#[test]
fn two_boards_in_parallel_report_their_own_verdicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write_inventory(
        dir.path(),
        &format!(
            "  - {{ name: sb-good, profile: {}, tags: [sim] }}\n  - {{ name: sb-weak, profile: {}, tags: [sim, flawed] }}\n",
            repo_path("devices/simboard.yaml"),
            repo_path("devices/simboard-weak-passwords.yaml")
        ),
    );
    let out = dir.path().join("results");
    let o = certbench(&[
        "run",
        "--skip-setup",
        "--inventory",
        &inv,
        "--only",
        "password-strength",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let good = junit(&out.join("sb-good/junit.xml"));
    let weak = junit(&out.join("sb-weak/junit.xml"));
    assert_eq!(good[0].status, "pass", "{good:?}");
    assert_eq!(weak[0].status, "failure", "{weak:?}");
    assert!(weak[0].message.starts_with("PWD-07"), "{weak:?}");
    assert!(
        text(&o).contains("[sb-good]") && text(&o).contains("[sb-weak]"),
        "lines carry the board"
    );
    // selection by tag
    let out2 = dir.path().join("r2");
    let o = certbench(&[
        "run",
        "--skip-setup",
        "--inventory",
        &inv,
        "--tag",
        "flawed",
        "--only",
        "password-strength",
        "--out",
        out2.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(out2.join("sb-weak").exists() && !out2.join("sb-good").exists());
}

fn power_only_inventory(dir: &Path, names: &[&str]) -> String {
    let boards: String = names
        .iter()
        .map(|n| {
            format!(
                "  - {{ name: {n}, profile: {}, vars: {{ flaky: never }} }}\n",
                repo_path("fixtures/devices/power-only.yaml")
            )
        })
        .collect();
    write_inventory(dir, &boards)
}

#[test]
fn a_busy_board_blocks_a_second_certbench_until_the_holder_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = power_only_inventory(dir.path(), &["bench-board"]);
    let mut holder = Command::new(bin())
        .current_dir(repo())
        .args([
            "run",
            "--inventory",
            &inv,
            "-s",
            "fixtures/scenarios/slow-power.yaml",
            "--out",
        ])
        .arg(dir.path().join("a"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn holder");
    let lock = dir.path().join("locks/bench-board.lock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .contains(&format!("pid={}", holder.id()))
    {
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    // fail fast, naming the holder, and without touching the holder's board: no power
    // switched, nothing written into the shared work folder
    let b = dir.path().join("b");
    let shared = dir.path().join("shared-work");
    let o = certbench(&[
        "run",
        "--inventory",
        &inv,
        "-s",
        "fixtures/scenarios/quick-power.yaml",
        "--lock-wait",
        "0s",
        "--workdir",
        shared.to_str().expect("utf8"),
        "--out",
        b.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let cases = junit(&b.join("bench-board/junit.xml"));
    assert!(
        cases[0].message.contains(&format!("busy: held by pid={}", holder.id())),
        "{cases:?}"
    );
    let power_log = shared.join("bench-board/power.log");
    assert!(
        !power_log.exists(),
        "the run that never held the board switched its power: {:?}",
        std::fs::read_to_string(&power_log)
    );

    // kill -9 the holder: the lock goes with it
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(holder.id() as i32, libc::SIGKILL) };
    let _ = holder.wait();
    let c = dir.path().join("c");
    let o = certbench(&[
        "run",
        "--inventory",
        &inv,
        "-s",
        "fixtures/scenarios/quick-power.yaml",
        "--lock-wait",
        "5s",
        "--out",
        c.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn an_unhealthy_board_is_taken_offline_and_its_checks_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write_inventory(
        dir.path(),
        &format!(
            "  - {{ name: dead-board, profile: {}, port: {} }}\n",
            repo_path("fixtures/devices/fake-pty.yaml"),
            dir.path().join("no-such-tty").display()
        ),
    );
    let out = dir.path().join("results");
    let o = certbench(&[
        "run",
        "--inventory",
        &inv,
        "-s",
        "fixtures/scenarios/silent-login.yaml",
        "-s",
        "fixtures/scenarios/hostile-output.yaml",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let cases = junit(&out.join("dead-board/junit.xml"));
    assert_eq!(cases.len(), 2);
    for c in &cases {
        assert_eq!(c.status, "error", "{c:?}");
        assert!(
            c.message.contains("board offline") && c.message.contains("no login or shell prompt"),
            "{c:?}"
        );
    }
}

#[test]
fn shards_partition_board_scenario_pairs_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = power_only_inventory(dir.path(), &["b1", "b2"]);
    let mut seen = Vec::new();
    for i in 1..=3 {
        let out = dir.path().join(format!("s{i}"));
        let o = certbench(&[
            "run",
            "--inventory",
            &inv,
            "-s",
            "fixtures/scenarios/quick-power.yaml",
            "-s",
            "fixtures/scenarios/after-slow.yaml",
            "-s",
            "fixtures/scenarios/not-applicable.yaml",
            "--shard",
            &format!("{i}/3"),
            "--out",
            out.to_str().expect("utf8"),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        for b in ["b1", "b2"] {
            let f = out.join(b).join("junit.xml");
            if f.exists() {
                for c in junit(&f) {
                    let key = (b.to_string(), c.name.split(' ').next().unwrap_or_default().to_string());
                    assert!(!seen.contains(&key), "{key:?} ran in two shards");
                    seen.push(key);
                }
            }
        }
    }
    assert_eq!(seen.len(), 6, "2 boards x 3 scenarios, each exactly once: {seen:?}");
}

#[test]
fn errors_are_retried_and_a_pass_on_retry_is_flaky_while_fail_is_never_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let boards = format!(
        "  - {{ name: sticky, profile: {}, vars: {{ flaky: once }} }}\n",
        repo_path("fixtures/devices/power-only.yaml")
    );
    let inv = write_inventory(dir.path(), &boards);
    let out = dir.path().join("with-retry");
    let o = certbench(&[
        "run",
        "--inventory",
        &inv,
        "-s",
        "fixtures/scenarios/quick-power.yaml",
        "--retries",
        "2",
        "--workdir",
        dir.path().join("w1").to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let xml = std::fs::read_to_string(out.join("sticky/junit.xml")).expect("junit");
    assert!(xml.contains("<flakyError") && xml.contains("relay stuck"), "{xml}");
    junit(&out.join("sticky/junit.xml"));

    let out = dir.path().join("no-retry");
    let o = certbench(&[
        "run",
        "--inventory",
        &inv,
        "-s",
        "fixtures/scenarios/quick-power.yaml",
        "--workdir",
        dir.path().join("w2").to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    // a FAIL is a finding: never retried
    let out = dir.path().join("fail");
    let inv2 = write_inventory(
        dir.path(),
        &format!(
            "  - {{ name: weak, profile: {} }}\n",
            repo_path("devices/simboard-weak-passwords.yaml")
        ),
    );
    let o = certbench(&[
        "run",
        "--skip-setup",
        "--inventory",
        &inv2,
        "--only",
        "password-strength",
        "--retries",
        "3",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!text(&o).contains("retry"), "{}", text(&o));
}

#[test]
fn manual_power_asks_the_operator_and_without_one_is_an_error() {
    if !tools_ready(&["script", "setsid"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("with-operator");
    let cmd = format!(
        "{} run -d fixtures/devices/manual-power.yaml -s fixtures/scenarios/quick-power.yaml --out {}",
        bin().display(),
        out.display()
    );
    // `script` gives certbench a terminal; the operator presses Enter at each prompt
    let mut child = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        for _ in 0..20 {
            let _ = stdin.write_all(b"\n");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let o = child.wait_with_output().expect("wait");
    let _ = feeder.join();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("please switch the board ON"), "{shown}");
    assert_eq!(junit(&out.join("junit.xml"))[0].status, "pass", "{shown}");

    // no terminal (a new session, no controlling tty): the check cannot be decided
    let out = dir.path().join("no-operator");
    let o = Command::new("setsid")
        .arg(bin())
        .args([
            "run",
            "-d",
            "fixtures/devices/manual-power.yaml",
            "-s",
            "fixtures/scenarios/quick-power.yaml",
            "--out",
        ])
        .arg(&out)
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let cases = junit(&out.join("junit.xml"));
    assert!(
        cases[0].message.contains("needs an operator at a terminal"),
        "{cases:?}"
    );
}

/// With an inventory the health probe is on; when the first scenario powers the board up
/// first, its boot is the probe (one boot, not two); one that does not start with a boot
/// gets the probe's own power cycle.
#[test]
fn the_first_scenarios_own_boot_is_the_health_probe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write_inventory(
        dir.path(),
        &format!("  - {{ name: sb, profile: {} }}\n", repo_path("devices/simboard.yaml")),
    );
    let run = |only: &str, out: &str| {
        certbench(&[
            "run",
            "--skip-setup",
            "--inventory",
            &inv,
            "--only",
            only,
            "--out",
            dir.path().join(out).to_str().expect("utf8"),
        ])
    };
    let o = run("console-access", "boots-first");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("health probe: console-access's own boot showed the board working"),
        "{t}"
    );
    assert!(!t.contains("health probe: power cycle"), "no extra boot: {t}");
    let o = run("doc-support-period", "probe-first");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("health probe: power cycle and wait for the console"), "{t}");
}

/// A free TCP port on loopback (bound, then released for ser2net to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Debian's ser2net serving `device` on `port` (telnet with RFC 2217), in the foreground;
/// killed when dropped.
struct Ser2net(std::process::Child);

impl Ser2net {
    fn start(dir: &Path, device: &str, port: u16) -> Self {
        let cfg = dir.join("ser2net.yaml");
        std::fs::write(
            &cfg,
            format!(
                "%YAML 1.1\n---\nconnection: &board\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n  connector: serialdev,{device},9600n81,local\n  options:\n    kickolduser: true\n"
            ),
        )
        .expect("config");
        let child = Command::new("ser2net")
            .args(["-n", "-c"])
            .arg(&cfg)
            .arg("-P")
            .arg(dir.join("ser2net.pid"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ser2net");
        // listening?
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ser2net(child)
    }
}

impl Drop for Ser2net {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A raw PTY pair: (master, slave path); the slave is kept open by the caller's handle.
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

/// RFC 2217 against ser2net's implementation: certbench asks for 57600 baud, 8N1, no flow
/// control; ser2net sets them on the PTY (read back from its termios) and says so; bytes
/// cross both ways, 0xFF included (telnet's IAC, doubled on the wire and undone); ser2net
/// going away is the console lost.
#[test]
fn rfc2217_through_ser2net_sets_the_far_line_and_carries_every_byte() {
    use std::io::{Read, Write};
    if !tools_ready(&["ser2net"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut master, _slave, name) = pty();
    let port = free_port();
    let server = Ser2net::start(dir.path(), &name, port);
    let c = certbench::console::network::connect(
        certbench::model::console_port::PortMode::Rfc2217,
        &format!("127.0.0.1:{port}"),
        57_600,
        certbench::console::Feed::new(Instant::now()),
    );
    let text = || c.with_transcript(|t| t.render_text(0, &certbench::redact::Redactor::default()));
    let wait_for = |what: &str| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) && !text().contains(what) {
            std::thread::sleep(Duration::from_millis(20));
        }
        text().contains(what)
    };
    assert!(
        wait_for("the terminal server set the serial line: baud 57600"),
        "{}",
        text()
    );
    // the PTY's line discipline as ser2net left it
    // SAFETY: tcgetattr on an open descriptor into a zeroed termios
    let (speed, csize, parenb, crtscts) = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(std::os::fd::AsRawFd::as_raw_fd(&master), &mut t), 0);
        (
            libc::cfgetospeed(&t),
            t.c_cflag & libc::CSIZE,
            t.c_cflag & libc::PARENB,
            t.c_cflag & libc::CRTSCTS,
        )
    };
    assert_eq!(speed, libc::B57600, "the baud rate certbench asked for");
    assert_eq!(
        (csize, parenb, crtscts),
        (libc::CS8, 0, 0),
        "8 data bits, no parity, no flow control"
    );
    // device -> certbench, with an IAC byte in it
    master.write_all(b"login: \xff\r\n").expect("write");
    assert!(wait_for("login: "), "{}", text());
    let raw = c.with_transcript(|t| t.render_raw(0, &certbench::redact::Redactor::default()));
    assert!(raw.windows(3).any(|w| w == b"\xff\r\n"), "one 0xFF, as sent");
    // certbench -> device
    c.send(b"typed\xffline\n", "typed line".into()).expect("send");
    let mut got = Vec::new();
    let t0 = Instant::now();
    let mut buf = [0u8; 256];
    // SAFETY: a non-blocking flag on our own descriptor
    unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&master),
            libc::F_SETFL,
            libc::O_NONBLOCK,
        )
    };
    while t0.elapsed() < Duration::from_secs(5) && !got.ends_with(b"line\n") {
        match master.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    assert_eq!(got, b"typed\xffline\n", "the device got exactly what was sent");
    // the exporter goes away: the console is lost, not silent
    drop(server);
    assert!(wait_for("lost"), "{}", text());
    c.close();
}

/// The simulated board's UART exported by ser2net, the way a labgrid exporter does: the
/// console scenarios decide through `rfc2217://` exactly as on the local PTY (the board's
/// power cycles drop ser2net's connection; certbench connects again).
#[test]
fn the_simulated_board_through_ser2net_passes_as_on_its_own_pty() {
    if !tools_ready(&["ser2net"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work");
    let port = free_port();
    let _server = Ser2net::start(dir.path(), &work.join("simboard.tty").display().to_string(), port);
    let (_copy, profile) = edited_profile(
        "devices/simboard.yaml",
        &[
            (
                "port: \"{{workdir}}/simboard.tty\"",
                "port: \"rfc2217://127.0.0.1:{{ser2net_port}}\"",
            ),
            (
                "power-on --link {{console}}",
                "power-on --link {{workdir}}/simboard.tty",
            ),
            (
                "power-off --link {{console}}",
                "power-off --link {{workdir}}/simboard.tty",
            ),
        ],
    );
    let r = Certbench::profile(&profile)
        .args(&["--set", &format!("ser2net_port={port}")])
        .workdir(&work)
        .only("password-reset-enforcement")
        .only("password-change-effective")
        .run();
    let cases = r.by_id();
    for id in ["password-reset-enforcement", "password-change-effective"] {
        let c = cases
            .get(id)
            .unwrap_or_else(|| panic!("{id} not in the results:\n{}", r.log));
        assert_eq!(c.status, "pass", "{id}: {c:?}\n{}", r.log);
    }
    assert_eq!(r.code, Some(0), "{}", r.log);
    let console = std::fs::read_to_string(r.dir.path().join("results/console-full.log")).expect("console log");
    assert!(
        console.contains("the terminal server set the serial line: baud 115200"),
        "{console}"
    );
}

/// labgrid's programs, from the virtual environment .ci/run installs them in.
const LABGRID: &str = "/var/cache/certbench-deps/labgrid/bin";

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lab's network power port for the test's board: labgrid's `simplerest` model
/// (`GET /outlet/0/1` on, `/outlet/0/0` off, `/outlet/0` the state), switching the
/// simulated board (booting in `boot_ms`).
fn power_port(work: &Path, boot_ms: u32) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let simboard = bin().with_file_name("simboard");
    let work = work.to_path_buf();
    std::thread::spawn(move || {
        let mut on = false;
        for conn in listener.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(&conn);
            if r.read_line(&mut line).is_err() {
                continue;
            }
            // the rest of the request's head
            let mut h = String::new();
            while r.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let link = work.join("simboard.tty");
            let pidfile = work.join("simboard.pid");
            let body = match path {
                "/outlet/0/1" => {
                    let _ = Command::new(&simboard)
                        .arg("power-on")
                        .arg("--link")
                        .arg(&link)
                        .arg("--state")
                        .arg(work.join("simboard.state"))
                        .arg("--pidfile")
                        .arg(&pidfile)
                        .args(["--boot-ms", &boot_ms.to_string()])
                        .status();
                    on = true;
                    String::new()
                }
                "/outlet/0/0" => {
                    let _ = Command::new(&simboard)
                        .arg("power-off")
                        .arg("--link")
                        .arg(&link)
                        .arg("--pidfile")
                        .arg(&pidfile)
                        .status();
                    on = false;
                    String::new()
                }
                _ => if on { "1" } else { "0" }.to_string(),
            };
            let _ = (&conn)
                .write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
        }
    });
    port
}

/// An exporter `name` (in network namespace `netns`, publishing `hostname`) for the board
/// whose work folder is `work` (booting in `boot_ms`), and the place `place` matching it.
struct Exporter<'a> {
    name: &'a str,
    netns: Option<&'a str>,
    hostname: &'a str,
    work: &'a Path,
    place: &'a str,
    boot_ms: u32,
}

/// A labgrid coordinator (a real labgrid 26 program) and its exporters, each exporting a
/// simulated board's UART (`RawSerialPort`: the exporter runs ser2net for it) and a network
/// power port, with a place matching them.
struct Lab {
    coordinator: String,
    children: Vec<Child>,
    dev_links: Vec<std::path::PathBuf>,
}

impl Lab {
    fn start(dir: &Path, listen: &str) -> Self {
        let cport = free_port();
        let coordinator = format!("{listen}:{cport}");
        let c = Child(
            Command::new(format!("{LABGRID}/labgrid-coordinator"))
                .args(["-l", &coordinator])
                .current_dir(dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("coordinator"),
        );
        let t0 = Instant::now();
        while std::net::TcpStream::connect(&coordinator).is_err() && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        Lab {
            coordinator,
            children: vec![c],
            dev_links: Vec::new(),
        }
    }

    /// An exporter for one board, and the place matching it.
    fn exporter(&mut self, dir: &Path, e: &Exporter<'_>) {
        let Exporter {
            name,
            netns,
            hostname,
            work,
            place,
            boot_ms,
        } = *e;
        // the exporter wants a /dev path: the board's UART as a USB-UART's by-id link would be
        let dev_link = std::path::PathBuf::from(format!("/dev/certbench-test-{}-{place}", std::process::id()));
        let _ = std::fs::remove_file(&dev_link);
        std::os::unix::fs::symlink(work.join("simboard.tty"), &dev_link).expect("/dev link (root)");
        self.dev_links.push(dev_link.clone());
        let pdu = power_port(work, boot_ms);
        let cfg = dir.join(format!("exporter-{name}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "board1:\n  RawSerialPort:\n    port: {}\n    speed: 115200\n  NetworkPowerPort:\n    model: simplerest\n    host: 'http://127.0.0.1:{pdu}/outlet/{{index}}/{{value}}'\n    index: 0\n",
                dev_link.display()
            ),
        )
        .expect("exporter config");
        let exporter = format!("{LABGRID}/labgrid-exporter");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, &exporter]);
                c
            }
            None => Command::new(&exporter),
        };
        let e = Child(
            cmd.args(["-c", &self.coordinator, "-n", name, "--hostname", hostname])
                .arg(&cfg)
                .current_dir(dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("exporter"),
        );
        self.children.push(e);
        let t0 = Instant::now();
        while !self.client(&["resources"]).contains(&format!("{name}/board1")) && t0.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.client(&["-p", place, "create"]);
        self.client(&["-p", place, "add-match", &format!("{name}/board1/*")]);
        assert!(
            self.client(&["-p", place, "show"])
                .contains(&format!("{name}/board1/*"))
        );
    }

    /// Waits (up to 30 s) until `place` holds the resources of `exporter`.
    fn wait_acquired(&self, place: &str, exporter: &str) {
        let t0 = Instant::now();
        while !self
            .client(&["-p", place, "show"])
            .contains(&format!("acquired resources:\n    {exporter}"))
            && t0.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn client(&self, args: &[&str]) -> String {
        let o = Command::new(format!("{LABGRID}/labgrid-client"))
            .args(["-x", &self.coordinator])
            .args(args)
            .output()
            .expect("labgrid-client");
        text(&o)
    }

    fn lab_file(&self, dir: &Path, work: &Path, place: &str) -> std::path::PathBuf {
        let p = dir.join(format!("lab-{place}.yaml"));
        std::fs::write(
            &p,
            format!(
                "labgrid: {{ coordinator: \"{}\", place: {place}, client: {LABGRID}/labgrid-client }}\nvars: {{ simboard: {}, board_state: {} }}\n",
                self.coordinator,
                bin().with_file_name("simboard").display(),
                work.join("simboard.state").display()
            ),
        )
        .expect("lab file");
        p
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // exporters first, then the coordinator
        while let Some(c) = self.children.pop() {
            drop(c);
        }
        for l in &self.dev_links {
            let _ = std::fs::remove_file(l);
        }
    }
}

fn power_off(work: &Path) {
    let _ = Command::new(bin().with_file_name("simboard"))
        .arg("power-off")
        .arg("--pidfile")
        .arg(work.join("simboard.pid"))
        .status();
}

/// A run on the place `sb-lg` in the background, once it holds the place and is under way.
fn started_holding_the_place(
    lab: &Lab,
    lab_file: &Path,
    results: &Path,
    work: &Path,
    locks: &Path,
) -> std::process::Child {
    let child = Command::new(bin())
        .current_dir(repo())
        .env("TMPDIR", locks)
        .args(["run", "-d", "fixtures/devices/labgrid-board.yaml", "--lab"])
        .arg(lab_file)
        .arg("--out")
        .arg(results)
        .arg("--workdir")
        .arg(work)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    lab.wait_acquired("sb-lg", "exp1");
    std::thread::sleep(Duration::from_millis(500));
    child
}

fn labgrid_ready() -> bool {
    // SAFETY: geteuid has no preconditions
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("SKIPPED: the exporter's serial port is a /dev link: root");
        return false;
    }
    tools_ready(&["ser2net"]) && deps_ready(&[&format!("{LABGRID}/labgrid-client")])
}

/// A board in a labgrid place: certbench acquires the place through the coordinator, takes
/// the console from the exporter's ser2net (RFC 2217) and power from the place's power port,
/// decides as on a local board, and releases the place. A place another user holds is
/// waited for per --lock-wait, then every check is ERROR naming it. A run killed with
/// SIGKILL leaves the place acquired; the next run on this host releases it, saying so.
#[test]
fn a_board_in_a_labgrid_place_is_acquired_driven_and_released() {
    if !labgrid_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work");
    let mut lab = Lab::start(dir.path(), "127.0.0.1");
    lab.exporter(
        dir.path(),
        &Exporter {
            name: "exp1",
            netns: None,
            hostname: "127.0.0.1",
            work: &work,
            place: "sb-lg",
            boot_ms: 0,
        },
    );
    let lab_file = lab.lab_file(dir.path(), &work, "sb-lg");
    let locks = dir.path().join("locks");
    let run = |wait: &str| {
        Certbench::profile("fixtures/devices/labgrid-board.yaml")
            .args(&["--lab", lab_file.to_str().expect("utf8"), "--lock-wait", wait])
            .env("TMPDIR", locks.to_str().expect("utf8"))
            .workdir(&work)
            .only("password-reset-enforcement")
            .only("password-change-effective")
    };
    std::fs::create_dir_all(&locks).expect("locks");
    // 1. the place is free: acquired, driven, released
    let r = run("10s").run();
    let cases = r.by_id();
    for id in ["password-reset-enforcement", "password-change-effective"] {
        let c = cases.get(id).unwrap_or_else(|| panic!("{id}:\n{}", r.log));
        assert_eq!(c.status, "pass", "{id}: {c:?}\n{}", r.log);
    }
    assert_eq!(r.code, Some(0), "{}", r.log);
    let console = std::fs::read_to_string(r.dir.path().join("results/console-full.log")).expect("console");
    assert!(console.contains("console rfc2217://127.0.0.1:"), "{console}");
    assert!(
        r.log.contains("labgrid place sb-lg")
            && r.log.contains("power through the place's power resource")
            && r.log.contains("driven by one labgrid 26.0.1 session for the run"),
        "{}",
        r.log
    );
    assert!(
        lab.client(&["-p", "sb-lg", "show"]).contains("acquired: None"),
        "released after the run"
    );
    // 2. another user holds it: waited for, then ERROR naming the place, nothing run
    let held = lab.client(&["-p", "sb-lg", "acquire"]);
    assert!(!held.contains("rror"), "{held}");
    let r = run("2s").run();
    assert!(!r.cases.is_empty(), "{}", r.log);
    for c in &r.cases {
        assert_eq!(c.status, "error", "{c:?}");
        assert!(
            c.message.contains("labgrid place sb-lg") && c.message.contains("held by another user"),
            "{c:?}"
        );
    }
    assert_eq!(r.code, Some(3), "{}", r.log);
    lab.client(&["-p", "sb-lg", "release"]);
    // 3. a run killed outright leaves the place acquired; the next run releases it
    let results = dir.path().join("killed");
    let mut killed = started_holding_the_place(&lab, &lab_file, &results, &work, &locks);
    let _ = killed.kill();
    let _ = killed.wait();
    assert!(
        !lab.client(&["-p", "sb-lg", "show"]).contains("acquired: None"),
        "SIGKILL left it acquired"
    );
    let r = run("10s").run();
    assert_eq!(r.code, Some(0), "{}", r.log);
    assert!(
        r.log.contains("left acquired by a certbench run that was killed"),
        "{}",
        r.log
    );
    assert!(lab.client(&["-p", "sb-lg", "show"]).contains("acquired: None"));
    // 4. SIGTERM mid-run: the run ends (exit 3, every planned check reported) and the place
    // is released
    let results = dir.path().join("terminated");
    let mut run4 = started_holding_the_place(&lab, &lab_file, &results, &work, &locks);
    // SAFETY: a signal to the child this test started
    unsafe { libc::kill(run4.id() as i32, libc::SIGTERM) };
    let status = run4.wait().expect("wait");
    assert_eq!(status.code(), Some(3), "interrupted");
    assert!(
        !junit(&results.join("junit.xml")).is_empty(),
        "the planned checks are reported"
    );
    assert!(
        lab.client(&["-p", "sb-lg", "show"]).contains("acquired: None"),
        "released after SIGTERM"
    );
    power_off(&work);
}

/// A labgrid binding certbench cannot honour is refused before anything runs, with the lab
/// file's line and column and the field: a coordinator without its port, a second console
/// or power in the lab file, a device certbench itself starts in a namespace.
#[test]
fn labgrid_bindings_that_cannot_be_honoured_are_input_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "labgrid: { coordinator: lab.example, place: p1 }\n",
            "fixtures/devices/labgrid-board.yaml",
            ":1:25: error in `labgrid.coordinator`: \"lab.example\" is not HOST:PORT",
        ),
        (
            "port: /dev/ttyUSB0\nlabgrid: { coordinator: \"lab.example:20408\", place: p1 }\n",
            "fixtures/devices/labgrid-board.yaml",
            ":1:7: error in `port`: the board's console is the labgrid place's serial port",
        ),
        (
            "power: manual\nlabgrid: { coordinator: \"lab.example:20408\", place: p1 }\n",
            "fixtures/devices/labgrid-board.yaml",
            "error in `power`: the board's power is the labgrid place's power port",
        ),
        (
            "labgrid: { coordinator: \"lab.example:20408\", place: p1 }\n",
            "devices/simboard.yaml",
            "error in `labgrid`: the profile's device is started by certbench in a network namespace",
        ),
    ];
    for (i, (lab, profile, said)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("lab{i}.yaml"));
        std::fs::write(&f, lab).expect("lab");
        let o = certbench(&["validate", "--lab", f.to_str().expect("utf8"), profile]);
        assert_eq!(o.status.code(), Some(2), "{lab}: {}", text(&o));
        assert!(text(&o).contains(said), "{lab}: {}", text(&o));
        assert!(
            text(&o).contains(&f.display().to_string()),
            "names the lab file: {}",
            text(&o)
        );
    }
}

/// A network namespace standing for an exporter host, on a veth link from this one:
/// `host_ip`/30 here, `ns_ip`/30 there, its default route back here. Removed (with every
/// process in it) when dropped.
struct Host {
    ns: String,
    link: String,
}

impl Host {
    fn new(tag: &str, host_ip: &str, ns_ip: &str) -> Self {
        let ns = format!("cbtest-lg-{}-{tag}", std::process::id());
        let link = format!("cbl{}{tag}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().expect("ip");
            assert!(o.status.success(), "ip {}: {}", args.join(" "), text(&o));
        };
        ip(&["netns", "add", &ns]);
        ip(&[
            "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{ns_ip}/30"), "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "route", "add", "default", "via", host_ip]);
        Host { ns, link }
    }

    /// The host goes down: every process in it is killed (the exporter and its ser2net).
    fn crash(&self) {
        let o = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
            .expect("ip");
        for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.crash();
        let _ = Command::new("ip").args(["link", "del", &self.link]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Two places on two exporter hosts (each exporter in a network namespace of its own,
/// reached over its own link; the coordinator here), run as one inventory in parallel: both
/// boards decide as local boards do. Then the second exporter's host dies mid-run: only that
/// board's remaining checks are ERROR (its console lost), the first board passes, and both
/// places are released.
#[test]
fn places_on_two_exporter_hosts_run_in_parallel_and_a_dead_host_errors_only_its_board() {
    if !labgrid_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let host_a = Host::new("a", "198.19.251.1", "198.19.251.2");
    let host_b = Host::new("b", "198.19.251.5", "198.19.251.6");
    let (work_a, work_b) = (dir.path().join("work-a"), dir.path().join("work-b"));
    std::fs::create_dir_all(&work_a).expect("work");
    std::fs::create_dir_all(&work_b).expect("work");
    let mut lab = Lab::start(dir.path(), "198.19.251.1");
    lab.exporter(
        dir.path(),
        &Exporter {
            name: "expA",
            netns: Some(&host_a.ns),
            hostname: "198.19.251.2",
            work: &work_a,
            place: "sb-a",
            boot_ms: 0,
        },
    );
    // board B boots slowly, so its run is still going when its host dies
    lab.exporter(
        dir.path(),
        &Exporter {
            name: "expB",
            netns: Some(&host_b.ns),
            hostname: "198.19.251.6",
            work: &work_b,
            place: "sb-b",
            boot_ms: 1500,
        },
    );
    let (lab_a, lab_b) = (
        lab.lab_file(dir.path(), &work_a, "sb-a"),
        lab.lab_file(dir.path(), &work_b, "sb-b"),
    );
    let profile = repo_path("fixtures/devices/labgrid-board.yaml");
    let inv = write_inventory(
        dir.path(),
        &format!(
            "  - {{ name: sb-a, profile: {profile}, lab: {} }}\n  - {{ name: sb-b, profile: {profile}, lab: {} }}\n",
            lab_a.display(),
            lab_b.display()
        ),
    );
    let run = |out: &Path| {
        Command::new(bin())
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .args(["run", "--inventory", &inv, "--only", "password-reset-enforcement"])
            .args([
                "--only",
                "password-change-effective",
                "--only",
                "password-strength",
                "--out",
            ])
            .arg(out)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run")
    };
    // 1. both hosts up: both boards pass, each console from its own exporter host
    let out1 = dir.path().join("r1");
    let o = run(&out1).wait_with_output().expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for (b, host) in [("sb-a", "198.19.251.2"), ("sb-b", "198.19.251.6")] {
        for c in junit(&out1.join(format!("{b}/junit.xml"))) {
            assert_eq!(c.status, "pass", "{b}: {c:?}\n{}", text(&o));
        }
        let console = std::fs::read_to_string(out1.join(format!("{b}/console-full.log"))).expect("console");
        assert!(
            console.contains(&format!("console rfc2217://{host}:")),
            "{b}: {console}"
        );
    }
    for p in ["sb-a", "sb-b"] {
        assert!(
            lab.client(&["-p", p, "show"]).contains("acquired: None"),
            "{p} released"
        );
    }
    // 2. host B dies while its board is being tested
    let out2 = dir.path().join("r2");
    let child = run(&out2);
    lab.wait_acquired("sb-b", "expB");
    std::thread::sleep(Duration::from_millis(2500));
    host_b.crash();
    let o = child.wait_with_output().expect("run");
    assert_eq!(o.status.code(), Some(3), "ERRORs, no FAIL: {}", text(&o));
    for c in junit(&out2.join("sb-a/junit.xml")) {
        assert_eq!(c.status, "pass", "sb-a is not affected: {c:?}\n{}", text(&o));
    }
    let b = junit(&out2.join("sb-b/junit.xml"));
    assert_eq!(b.len(), 3, "every planned check of sb-b is reported: {b:?}");
    assert!(
        b.iter().all(|c| c.status != "failure"),
        "a dead exporter is no device FAIL: {b:?}"
    );
    assert!(b.iter().any(|c| c.status == "error"), "{b:?}\n{}", text(&o));
    for p in ["sb-a", "sb-b"] {
        assert!(
            lab.client(&["-p", p, "show"]).contains("acquired: None"),
            "{p} released"
        );
    }
    power_off(&work_a);
    power_off(&work_b);
}

/// check-jsonschema (PyPI), with the GitHub workflow and GitLab CI schemas it vendors from
/// SchemaStore, from the virtual environment .ci/run installs it in.
const CHECK_JSONSCHEMA: &str = "/var/cache/certbench-deps/schema/bin/check-jsonschema";

/// The CI templates a lab copies are valid for the CI systems that run them, checked with
/// the schemas those ecosystems publish; a broken copy of each is refused (the validator is
/// live, not a formality).
#[test]
fn the_ci_templates_validate_against_their_ecosystems_schemas() {
    if !deps_ready(&[CHECK_JSONSCHEMA]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, schema, break_it) in [
        (
            "ci/github-actions-board.yml",
            "vendor.github-workflows",
            ("runs-on:", "runs_on:"),
        ),
        (
            "ci/gitlab-ci-board.yml",
            "vendor.gitlab-ci",
            ("  resource_group: cam-01", "  resource_group: [cam-01]"),
        ),
    ] {
        let check = |path: &Path| {
            Command::new(CHECK_JSONSCHEMA)
                .args(["--builtin-schema", schema])
                .arg(path)
                .output()
                .expect("check-jsonschema")
        };
        let o = check(&repo().join(file));
        assert!(o.status.success(), "{file}: {}", text(&o));
        let broken = dir.path().join(Path::new(file).file_name().expect("name"));
        let t = std::fs::read_to_string(repo().join(file)).expect("template");
        assert!(t.contains(break_it.0), "{file}");
        std::fs::write(&broken, t.replacen(break_it.0, break_it.1, 1)).expect("write");
        let o = check(&broken);
        assert!(
            !o.status.success(),
            "{file} with {:?} must be refused: {}",
            break_it.1,
            text(&o)
        );
    }
}

/// What goes wrong with a place is an ERROR that says what to fix, for every planned check,
/// never a hang: a coordinator that refuses, a place that does not exist, a place that matches
/// nothing, a place without a serial port.
#[test]
fn labgrid_failures_are_errors_that_say_what_to_fix() {
    if !labgrid_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lab = Lab::start(dir.path(), "127.0.0.1");
    // an exporter with a power port and no serial port, and a place matching only it
    let cfg = dir.path().join("power-only.yaml");
    std::fs::write(
        &cfg,
        "board9:\n  NetworkPowerPort:\n    model: simplerest\n    host: 'http://127.0.0.1:9/outlet/{index}/{value}'\n    index: 0\n",
    )
    .expect("config");
    lab.children.push(Child(
        Command::new(format!("{LABGRID}/labgrid-exporter"))
            .args(["-c", &lab.coordinator, "-n", "expP", "--hostname", "127.0.0.1"])
            .arg(&cfg)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("exporter"),
    ));
    let t0 = Instant::now();
    while !lab.client(&["resources"]).contains("expP/board9") && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.client(&["-p", "power-only", "create"]);
    lab.client(&["-p", "power-only", "add-match", "expP/board9/*"]);
    lab.client(&["-p", "matches-nothing", "create"]);
    lab.client(&["-p", "matches-nothing", "add-match", "nobody/*/*"]);
    let refusing = format!("127.0.0.1:{}", free_port());
    // a coordinator that takes the connection and never answers
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_at = format!("127.0.0.1:{}", silent.local_addr().expect("addr").port());
    let held: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>> = Default::default();
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in silent.incoming().map_while(Result::ok) {
            keep.lock().expect("keep").push(c);
        }
    });
    // a client that is not Python's labgrid-client itself (a wrapper a lab may use): run once
    // per action
    let wrapper = dir.path().join("lg-wrapper");
    std::fs::write(&wrapper, format!("#!/bin/sh\nexec {LABGRID}/labgrid-client \"$@\"\n")).expect("wrapper");
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let client = format!("{LABGRID}/labgrid-client");
    let wrapped = wrapper.to_str().expect("utf8").to_string();
    for (coordinator, place, client, said) in [
        (refusing.as_str(), "p1", &client, "Could not connect to coordinator"),
        (silent_at.as_str(), "p2", &client, "did not answer within 10 s"),
        (
            lab.coordinator.as_str(),
            "no-such-place",
            &client,
            "could not be acquired",
        ),
        (
            lab.coordinator.as_str(),
            "no-such-place",
            &wrapped,
            "could not be acquired",
        ),
        (
            lab.coordinator.as_str(),
            "matches-nothing",
            &client,
            "has no matching remote resource",
        ),
        (
            lab.coordinator.as_str(),
            "power-only",
            &client,
            "has no acquired serial port (NetworkSerialPort)",
        ),
        (
            lab.coordinator.as_str(),
            "power-only",
            &wrapped,
            "has no acquired serial port (NetworkSerialPort)",
        ),
    ] {
        let lab_file = dir.path().join(format!("lab-{place}.yaml"));
        std::fs::write(
            &lab_file,
            format!("labgrid: {{ coordinator: \"{coordinator}\", place: {place}, client: {client} }}\nvars: {{ simboard: x, board_state: y }}\n"),
        )
        .expect("lab");
        let t0 = Instant::now();
        let r = Certbench::profile("fixtures/devices/labgrid-board.yaml")
            .args(&["--lab", lab_file.to_str().expect("utf8"), "--lock-wait", "1s"])
            .env("TMPDIR", dir.path().to_str().expect("utf8"))
            .only("password-reset-enforcement")
            .only("password-change-effective")
            .run();
        assert_eq!(r.code, Some(3), "{place}: {}", r.log);
        assert_eq!(r.cases.len(), 2, "{place}: every planned check reported: {}", r.log);
        for c in &r.cases {
            assert_eq!(c.status, "error", "{place}: {c:?}");
            assert!(c.message.contains(said), "{place}: {said:?} in {c:?}");
            assert!(c.message.contains(place), "{place}: names the place: {c:?}");
        }
        assert!(t0.elapsed() < Duration::from_secs(40), "{place}: no hang");
        if coordinator == lab.coordinator {
            assert!(
                lab.client(&["-p", "power-only", "show"]).contains("acquired: None"),
                "{place}"
            );
        }
    }
}

/// Ten minutes of boot log at 115 200 baud (6.9 MB: 11 520 bytes a second, 8N1) through
/// ser2net over RFC 2217 arrive whole and in order: every byte counted and compared.
#[test]
fn ten_minutes_of_console_output_cross_ser2net_without_loss() {
    use std::io::Write;
    if !tools_ready(&["ser2net"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut master, _slave, name) = pty();
    let port = free_port();
    let _server = Ser2net::start(dir.path(), &name, port);
    let c = certbench::console::network::connect(
        certbench::model::console_port::PortMode::Rfc2217,
        &format!("127.0.0.1:{port}"),
        115_200,
        certbench::console::Feed::new(Instant::now()),
    );
    let raw = || c.with_transcript(|t| t.render_raw(0, &certbench::redact::Redactor::default()));
    let said = || c.with_transcript(|t| t.render_text(0, &certbench::redact::Redactor::default()));
    let t0 = Instant::now();
    while !said().contains("baud 115200") && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(said().contains("baud 115200"), "{}", said());
    // a boot log's lines, numbered, with every byte value a UART carries (0xFF: telnet's IAC)
    let total = 11_520 * 600;
    let mut log = Vec::with_capacity(total + 200);
    let mut n = 0u32;
    while log.len() < total {
        log.extend_from_slice(format!("[{n:7}] kernel: line of boot output \u{1b}[0m ").as_bytes());
        log.extend((0..=255u8).filter(|b| *b != b'\n').take((n % 7) as usize * 3));
        log.extend_from_slice(b"\xff\r\n");
        n += 1;
    }
    let writer = std::thread::spawn(move || {
        for chunk in log.chunks(4096) {
            master.write_all(chunk).expect("write");
        }
        (log, master)
    });
    let (log, _master) = writer.join().expect("writer");
    let t0 = Instant::now();
    let mut rx = raw();
    while rx.len() < log.len() && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(200));
        rx = raw();
    }
    assert_eq!(rx.len(), log.len(), "bytes received");
    assert!(rx == log, "every byte in order");
    c.close();
}
