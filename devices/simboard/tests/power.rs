//! The board's power supply: power-on brings up its serial line, power-off cuts it.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn simboard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_simboard"))
        .args(args)
        .output()
        .expect("run simboard")
}

#[test]
fn power_on_links_a_serial_line_that_boots_to_login_and_power_off_removes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("tty");
    let state = dir.path().join("state");
    let pid = dir.path().join("pid");
    let (l, s, p) = (
        link.to_str().expect("utf8"),
        state.to_str().expect("utf8"),
        pid.to_str().expect("utf8"),
    );
    let out = simboard(&["power-on", "--link", l, "--state", s, "--pidfile", p, "--boot-ms", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(link.exists());

    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&link)
        .expect("open tty");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains("login: ") && Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        let n = tty.read(&mut buf).expect("read");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("simboard login: "));
    tty.write_all(b"admin\r").expect("write");

    let out = simboard(&["power-off", "--link", l, "--pidfile", p]);
    assert!(out.status.success());
    assert!(!link.exists(), "power-off must take the serial line away");
    assert!(!pid.exists());
}

#[test]
fn unknown_flaw_is_a_usage_error() {
    let out = simboard(&[
        "run",
        "--link",
        "/nonexistent/x",
        "--state",
        "/nonexistent/s",
        "--flaw",
        "bogus",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flaw"));
}
