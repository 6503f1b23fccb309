//! The profile cookbook (docs/cookbook/, README "Profile cookbook"): each worked profile
//! validates, and runs against a device that behaves that way — Debian's login, OpenSSH and
//! telnetd behind a serial login or a CLI console, the simulated board as a web camera,
//! Debian's mosquitto_pub as an MQTT sensor, the QEMU microcontroller board — with the
//! verdicts that device deserves and no ERROR.

mod common;

use std::collections::BTreeMap;

use common::*;

const FACTORY: &str = "Factory-Default-1";

fn cookbook(name: &str) -> String {
    format!("docs/cookbook/{name}.yaml")
}

/// Runs `only` of the cookbook profile `name`; every planned testcase has the verdict
/// `want` gives it (none is an ERROR) and no result file holds the factory password.
fn run(name: &str, want: &[(&str, &str)]) -> (BTreeMap<String, Case>, tempfile::TempDir) {
    let mut b = Certbench::profile(cookbook(name)).env("REAL_LOGIN_FACTORY_PASSWORD", FACTORY);
    for (id, _) in want {
        b = b.only(id);
    }
    let r = b.run();
    let cases = r.by_id();
    assert_eq!(cases.len(), want.len(), "{}", r.log);
    for (id, status) in want {
        assert_eq!(cases[*id].status, *status, "{name} {id}: {:?}\n{}", cases[*id], r.log);
    }
    assert!(!cases.values().any(|c| c.status == "error"), "{}", r.log);
    assert_no_secret(&r.results(), &[FACTORY]);
    (cases, r.dir)
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let ok = unsafe { libc::geteuid() } == 0;
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "the cookbook's devices need root in CI"
    );
    ok
}

#[test]
fn every_cookbook_profile_validates_without_a_notice() {
    let o = certbench(&["validate", repo().join("docs/cookbook").to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("5 file(s) valid") && !text(&o).contains("notice:"),
        "{}",
        text(&o)
    );
}

/// A Linux board with a serial login and SSH: the expired factory password forces a change
/// at the first login on the console (PWD-01) and over SSH (PWD-02); the password can be
/// changed (AUT-02).
#[test]
fn a_linux_board_with_a_serial_login_and_ssh() {
    if !root()
        || !deps_ready(&[
            "/var/cache/certbench-deps/sshd",
            "/var/cache/certbench-deps/pam_pwquality.so",
        ])
    {
        return;
    }
    run(
        "linux-board",
        &[
            ("password-reset-enforcement", "pass"),
            ("remote-factory-credentials", "pass"),
            ("password-changeable", "pass"),
        ],
    );
}

/// A CLI on the UART and the account over telnet, its factory password expired: the first
/// telnet login is a forced change, answered there (the password is set over telnet); the
/// factory password gives no access before setup (PWD-02); the CLI fails ATK-02, PWD-01 is
/// not applicable as declared.
#[test]
fn a_cli_console_with_telnet() {
    if !root()
        || !deps_ready(&[
            "/var/cache/certbench-deps/telnetd",
            "/var/cache/certbench-deps/pam_pwquality.so",
        ])
    {
        return;
    }
    let (cases, dir) = run(
        "cli-console-telnet",
        &[
            ("console-access", "failure"),
            ("password-reset-enforcement", "skipped"),
            ("password-changeable", "pass"),
            ("password-strength", "pass"),
            ("remote-factory-credentials", "pass"),
        ],
    );
    assert!(
        cases["console-access"].message.contains("cli> "),
        "{:?}",
        cases["console-access"]
    );
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(
        events.contains("the password is set over the network; a shell over telnet"),
        "{events}"
    );
}

/// A web camera: HTTPS login form, a login-free HTTPS status page and a plain-HTTP redirect,
/// all declared: ATK-01 passes, COM-03 judges both TLS services, the password checks leave
/// the two no-login services out and say so.
#[test]
fn a_web_camera_with_a_status_page_and_a_redirect() {
    if !root() || !tools_ready(&["ip", "nft"]) {
        return;
    }
    let (_, dir) = run(
        "web-camera",
        &[
            ("open-ports", "pass"),
            ("tls-service-config", "pass"),
            ("remote-factory-credentials", "pass"),
        ],
    );
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(
        events.contains("declared without a login (no_login), not tried") && events.contains("http-redirect (tcp/"),
        "{events}"
    );
    let tls = std::fs::read_to_string(
        dir.path()
            .join("results/scenarios/tls-service-config/tls-certificates.json"),
    )
    .expect("certificates");
    assert!(tls.contains("status") && tls.contains("web"), "{tls}");
}

/// An MQTT sensor with no inbound service: it refuses plaintext and every man in the middle,
/// and talks to a valid certificate (the positive control).
#[test]
fn an_mqtt_sensor_without_inbound_services() {
    if !tools_ready(&["mosquitto_pub", "mosquitto"]) {
        return;
    }
    run(
        "mqtt-sensor",
        &[("plaintext-mqtt-rejection", "pass"), ("tls-old-version", "pass")],
    );
}

/// A microcontroller with a debug port and a console login: the console's login forces a
/// change (PWD-01), the open debug port gives its flash away (ATK-03 FAIL), and secure boot
/// refuses an image written through it (UPD-10).
#[test]
fn an_mcu_with_a_debug_port() {
    if !tools_ready(&["qemu-system-arm", "arm-none-eabi-gcc", "make", "signify-openbsd"]) {
        return;
    }
    let (cases, _) = run(
        "mcu-debug-port",
        &[
            ("password-reset-enforcement", "pass"),
            ("debug-port-locked", "failure"),
            ("secure-boot", "pass"),
        ],
    );
    assert!(
        cases["debug-port-locked"].message.starts_with("ATK-03"),
        "{:?}",
        cases["debug-port-locked"]
    );
}
