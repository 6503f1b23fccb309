//! The HTML report in a real browser (Debian's headless Chromium): device output that
//! contains `<script>` renders as text and never runs; the summary matrix is there.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn chromium() -> Option<&'static str> {
    tools_ready(&["chromium"]).then_some("chromium")
}

#[test]
fn device_printed_script_does_not_run_in_the_report_and_the_matrix_is_present() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    // a device on a PTY that prints a script tag, then READY
    let (mut master, _slave, path) = open_pty();
    let payload = b"<script>document.body.setAttribute('data-pwned','yes')</script> ]]> READY\r\n";
    let writer = std::thread::spawn(move || {
        for _ in 0..60 {
            let _ = master.write_all(payload);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let res = dir.path().join("results");
    let o = certbench(&[
        "run",
        "-d",
        "fixtures/devices/fake-pty.yaml",
        "--port",
        &path,
        "-s",
        "fixtures/scenarios/hostile-output.yaml",
        "--out",
        res.to_str().expect("utf8"),
        "--workdir",
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = res.join("report.html");
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(
        html.contains("&lt;script&gt;document.body.setAttribute"),
        "device bytes are escaped in the file"
    );

    let profile = dir.path().join("chromium-profile");
    let dom = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=2000", "--dump-dom"])
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("id=\"summary-matrix\""),
        "summary matrix rendered: {}",
        &dom[..dom.len().min(500)]
    );
    assert!(
        dom.contains("&lt;script&gt;document.body.setAttribute"),
        "the script shows as text"
    );
    let body_tag = dom
        .split("<body")
        .nth(1)
        .and_then(|b| b.split('>').next())
        .expect("body tag");
    assert!(
        !body_tag.contains("data-pwned"),
        "the device's script ran in the report: <body{body_tag}>"
    );
    assert!(!dom.contains("<script"), "no script element in the rendered report");
    let _ = writer.join();
}
