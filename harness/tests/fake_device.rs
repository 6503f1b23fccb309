//! A device played by the test itself on a PTY: hostile output, silence, interruption.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// A PTY whose slave is linked at `link`; `talk` runs on the master side until dropped.
struct FakeDevice {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _slave: std::fs::File,
}

impl FakeDevice {
    fn start(link: &std::path::Path, talk: impl Fn(&mut std::fs::File) + Send + 'static) -> Self {
        let (mut master, slave, path) = open_pty();
        std::os::unix::fs::symlink(&path, link).expect("link pty");
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                talk(&mut master);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            stop,
            thread: Some(thread),
            _slave: slave,
        }
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_fake(
    scenario: &str,
    talk: impl Fn(&mut std::fs::File) + Send + 'static,
) -> (Option<i32>, Vec<Case>, tempfile::TempDir, String, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("fake.tty");
    let _dev = FakeDevice::start(&link, talk);
    let work = dir.path().to_path_buf();
    let t0 = Instant::now();
    let r = Certbench::profile("fixtures/devices/fake-pty.yaml")
        .port(&link)
        .args(&["-s", scenario])
        .workdir(&work)
        .in_dir(dir)
        .run();
    let took = t0.elapsed();
    (r.code, r.cases, r.dir, r.log, took)
}

const HOSTILE: &[u8] = b"\x00\x01\x07\x08\x0b\x0c\x1b[31mred\x1b[0m ]]> <script>alert(1)</script> & \"q\" \xef\xbf\xbe \xef\xbf\xbf \xff\xfe\x7f READY\r\n";

#[test]
fn junit_stays_valid_xml_whatever_the_device_prints() {
    let (code, cases, _dir, out, _) = run_fake("fixtures/scenarios/hostile-output.yaml", |m| {
        let _ = m.write_all(HOSTILE);
    });
    assert_eq!(code, Some(1), "{out}");
    // `junit` parses with a real XML parser and panics on malformed XML
    let case = &cases[0];
    assert_eq!(case.status, "failure", "{case:?}");
    assert!(case.message.starts_with("COM-01:"), "{case:?}");
    assert!(
        case.body.contains("]]>"),
        "the device's bytes are in the evidence, escaped: {}",
        case.body
    );
    assert!(case.body.contains("<script>"), "{}", case.body);
}

#[test]
fn a_board_that_never_answers_is_an_error_at_the_deadline_not_a_hang() {
    let (code, cases, _dir, out, took) = run_fake("fixtures/scenarios/silent-login.yaml", |_| {});
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(cases[0].status, "error", "{:?}", cases[0]);
    assert!(cases[0].message.contains("no login prompt within 2s"), "{:?}", cases[0]);
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn a_scenario_needing_an_undeclared_feature_is_skipped_with_the_reason() {
    let (code, cases, _dir, out, _) = run_fake("fixtures/scenarios/not-applicable.yaml", |_| {});
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(cases[0].status, "skipped");
    assert!(cases[0].message.contains("telnet_service"), "{:?}", cases[0]);
}

#[test]
fn sigterm_mid_run_leaves_valid_junit_with_every_planned_check_and_powers_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("fake.tty");
    let _dev = FakeDevice::start(&link, |_| {});
    let res = dir.path().join("results");
    let scen = |s: &str| repo().join("fixtures/scenarios").join(s).display().to_string();
    let mut child = Command::new(bin())
        .current_dir(repo())
        .args(["run", "-d", "fixtures/devices/fake-pty.yaml", "--port"])
        .arg(&link)
        .args(["-s", &scen("slow.yaml"), "-s", &scen("after-slow.yaml"), "--out"])
        .arg(&res)
        .arg("--workdir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // wait until the slow scenario is running (its power-on left a trace)
    let power_log: PathBuf = dir.path().join("power.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&power_log).unwrap_or_default().contains("on") {
        assert!(Instant::now() < deadline, "the slow scenario never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(3));
    let cases = junit(&res.join("junit.xml"));
    assert_eq!(cases.len(), 2, "{cases:?}");
    assert!(cases.iter().all(|c| c.status == "error"), "{cases:?}");
    assert!(cases[0].message.contains("interrupted by SIGTERM"), "{cases:?}");
    assert!(cases[1].message.contains("not run"), "{cases:?}");
    assert!(
        std::fs::read_to_string(&power_log).expect("log").ends_with("off\n"),
        "board powered off on the way out"
    );
}

#[test]
fn a_board_that_dies_mid_wait_is_an_error_at_once_not_at_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("results");
    let mut child = Command::new(bin())
        .current_dir(repo())
        .args([
            "run",
            "--skip-setup",
            "-d",
            "devices/simboard.yaml",
            "-s",
            "fixtures/scenarios/wait-forever.yaml",
            "--out",
        ])
        .arg(&res)
        .arg("--workdir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // wait until the board is up and the scenario is in its long wait
    let events = res.join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&events)
        .unwrap_or_default()
        .contains("\"index\":2,\"name\":\"expect\"")
    {
        assert!(Instant::now() < deadline, "the board never booted");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // the board dies: its process is killed (the tty goes away), no power command involved
    let pid: i32 = std::fs::read_to_string(dir.path().join("simboard.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    // SAFETY: killing the board process this test's certbench started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let killed = Instant::now();
    let status = child.wait().expect("wait");
    let took = killed.elapsed();
    assert_eq!(status.code(), Some(3));
    let cases = junit(&res.join("junit.xml"));
    assert!(cases[0].message.contains("console was lost"), "{cases:?}");
    // generous bound for a loaded CI machine; BENCHMARKS.md has the measured figure
    assert!(took < Duration::from_secs(30), "reported {took:?} after the board died");
}

#[test]
fn a_lab_binding_wires_the_profile_to_this_bench() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut master, _slave, path) = open_pty();
    let writer = std::thread::spawn(move || {
        for _ in 0..40 {
            let _ = master.write_all(b"READY\r\n");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // the profile says {{workdir}}/fake.tty and logs power to power.log; this bench's
    // lab file puts the console on our PTY and the power on a relay (here: another log)
    let lab = dir.path().join("bench7.yaml");
    let relay = dir.path().join("relay.log");
    std::fs::write(
        &lab,
        format!(
            "port: {path}\nbaud: 9600\npower:\n  external:\n    on: \"echo relay1 on >> {{{{relay_log}}}}\"\n    off: \"echo relay1 off >> {{{{relay_log}}}}\"\nvars:\n  relay_log: {}\n",
            relay.display()
        ),
    )
    .expect("lab");
    let res = dir.path().join("results");
    let o = certbench(&[
        "run",
        "-d",
        "fixtures/devices/fake-pty.yaml",
        "--lab",
        lab.to_str().expect("utf8"),
        "-s",
        "fixtures/scenarios/slow.yaml",
        "-s",
        "fixtures/scenarios/hostile-output.yaml",
        "--only",
        "hostile-output",
        "--out",
        res.to_str().expect("utf8"),
        "--workdir",
        dir.path().to_str().expect("utf8"),
    ]);
    let cases = junit(&res.join("junit.xml"));
    assert_eq!(cases[0].status, "pass", "{cases:?}\n{}", text(&o));
    let log = std::fs::read_to_string(res.join("console-full.log")).expect("console log");
    assert!(log.contains(&format!("console {path} opened at 9600 baud")), "{log}");
    assert!(
        std::fs::read_to_string(&relay)
            .expect("relay log")
            .contains("relay1 off"),
        "the lab's power wiring was used"
    );
    let _ = writer.join();
}

/// The board resets between the password and its answer: its tty goes away and comes back
/// (a new PTY, the link renewed) with a fresh login prompt. That prompt is not the device
/// refusing the credentials: the dialog spanned a console loss, so the verdict is ERROR.
#[test]
fn a_console_lost_and_back_during_login_is_an_error_not_a_refusal() {
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("fake.tty");
    let (mut master, slave, name) = open_pty();
    for fd in [&master, &slave] {
        // certbench (a child) must not inherit the board's tty: the reset must free it
        // SAFETY: fcntl on descriptors this test owns.
        unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(fd), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    std::os::unix::fs::symlink(&name, &link).expect("link");
    let board_link = link.clone();
    let board = std::thread::spawn(move || {
        let read_line = |m: &mut std::fs::File| {
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while m.read(&mut b).map(|n| n == 1).unwrap_or(false) && b[0] != b'\r' && b[0] != b'\n' {
                line.push(b[0]);
            }
            line
        };
        // prompt until certbench answers (it may open the console after the first prompt)
        loop {
            let _ = master.write_all(b"\r\nfake login: ");
            let mut p = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&master),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for a descriptor this test owns.
            if unsafe { libc::poll(&mut p, 1, 200) } > 0 {
                break;
            }
        }
        read_line(&mut master);
        let _ = master.write_all(b"Password: ");
        read_line(&mut master);
        // reset: the tty disappears, a new one comes up under the renewed link
        drop(slave);
        drop(master);
        std::thread::sleep(Duration::from_millis(300));
        let (mut m2, s2, name2) = open_pty();
        let tmp = board_link.with_extension("new");
        std::os::unix::fs::symlink(&name2, &tmp).expect("link");
        std::fs::rename(&tmp, &board_link).expect("relink");
        for _ in 0..40 {
            let _ = m2.write_all(b"\r\nBoot ROM\r\nfake login: ");
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(s2);
    });
    let res = dir.path().join("results");
    let o = certbench(&[
        "run",
        "-d",
        "fixtures/devices/fake-pty.yaml",
        "--port",
        link.to_str().expect("utf8"),
        "-s",
        "fixtures/scenarios/login-across-reset.yaml",
        "--out",
        res.to_str().expect("utf8"),
        "--workdir",
        dir.path().to_str().expect("utf8"),
    ]);
    let _ = board.join();
    let cases = junit(&res.join("junit.xml"));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(cases[0].status, "error", "{:?}", cases[0]);
    assert!(cases[0].message.contains("lost and came back"), "{:?}", cases[0]);
}
