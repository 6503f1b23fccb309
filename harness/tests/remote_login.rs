//! Remote password checks (PWD-02, PWD-03, PWD-09) against the simulated board's telnet
//! console and web login: the good board passes each, each flaw turns exactly its check
//! red with evidence, and no password reaches a result file.

mod common;

use common::*;
use rstest::rstest;

const REMOTE: [&str; 3] = [
    "remote-factory-credentials",
    "default-credentials",
    "brute-force-protection",
];

fn read(dir: &tempfile::TempDir, rel: &str) -> String {
    std::fs::read_to_string(dir.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_good_board_passes_every_remote_check_with_the_attempts_as_evidence() {
    let (cases, code, dir, out) = run_only_with("devices/simboard.yaml", &REMOTE, &["--skip-setup"]);
    assert_eq!(code, Some(0), "{out}");
    for id in REMOTE {
        assert_eq!(cases[id].status, "pass", "{id}: {:?}\n{out}", cases[id]);
    }
    // PWD-02: refused before setup, the new password works remotely, the old one is dead
    let attempts = read(
        &dir,
        "results/scenarios/remote-factory-credentials/remote-attempts.jsonl",
    );
    let lines: Vec<serde_json::Value> = attempts
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 6, "2 services x 3 logins: {attempts}");
    let outcomes: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["credential"].as_str().unwrap_or(""),
                l["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("{{factory.password}}", "rejected"),
            ("{{factory.password}}", "rejected"),
            ("{{strong_password}}", "accepted"),
            ("{{strong_password}}", "accepted"),
            ("{{factory.password}}", "rejected"),
            ("{{factory.password}}", "rejected"),
        ]
    );
    // PWD-03: every list entry on both services in both states (before setup: the good
    // board refuses the factory password too, so those refusals are said to be unpaced;
    // after setup each refusal is followed by a right login)
    let sweep = read(&dir, "results/scenarios/default-credentials/remote-attempts.jsonl");
    for svc in ["telnet", "web"] {
        let n = sweep
            .lines()
            .filter(|l| l.contains(&format!("\"service\":\"{svc}\"")) && l.contains("\"credential\":\"mirai #"))
            .count();
        assert_eq!(n, 120, "{svc}: every entry tried once in each state");
    }
    let events = read(&dir, "results/events.jsonl");
    assert!(
        events.contains(
            "before setup (factory state): all 60 default credentials refused, and the factory credentials too"
        ) && events.contains("after setup: all 60 default credentials refused (paced"),
        "{events}"
    );
    assert!(
        !sweep.contains("xc3511"),
        "list passwords are named by entry, never written"
    );
    // PWD-09: the burst, the lockout, the unlock; the timeline plot
    let bf = &cases["brute-force-protection"];
    let steps = read(&dir, "results/events.jsonl");
    assert!(steps.contains("then the right one was refused (locked)"), "{steps}");
    let svg = read(&dir, "results/scenarios/brute-force-protection/brute-force-telnet.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("right password accepted"),
        "{bf:?}"
    );
    // no password in any result file: the factory one, nor the one the run set
    let state = read(&dir, "work/simboard.state");
    let set = state
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .expect("password set");
    for f in walk(&dir.path().join("results")) {
        let t = String::from_utf8_lossy(&std::fs::read(&f).expect("read")).into_owned();
        assert!(!t.contains(set), "{} holds the password set in the run", f.display());
        assert!(
            !t.contains("simboard-factory"),
            "{} holds the factory password",
            f.display()
        );
    }
}

#[rstest]
#[case::factory_login_before_setup(
    "devices/simboard-remote-factory-login.yaml",
    "remote-factory-credentials",
    "PWD-02",
    "before setup, the factory password opens a remote service: telnet"
)]
#[case::factory_login_behind_a_reminder(
    "devices/simboard-remote-factory-nag.yaml",
    "remote-factory-credentials",
    "PWD-02",
    "before setup, the factory password opens a remote service: ssh"
)]
#[case::factory_password_kept(
    "devices/simboard-factory-password-kept.yaml",
    "remote-factory-credentials",
    "PWD-02",
    "after setup, the factory password still opens a remote service"
)]
#[case::universal_account(
    "devices/simboard-default-account.yaml",
    "default-credentials",
    "PWD-03",
    "mirai #11 (user \"support\""
)]
#[case::no_throttle(
    "devices/simboard-no-login-throttle.yaml",
    "brute-force-protection",
    "PWD-09",
    "nothing slows a brute force"
)]
fn each_remote_flaw_fails_its_check(#[case] profile: &str, #[case] id: &str, #[case] check: &str, #[case] why: &str) {
    let (cases, code, dir, out) = run_only_with(profile, &[id], &["--skip-setup"]);
    assert_eq!(code, Some(1), "{out}");
    let c = &cases[id];
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    // the classname lists the scenario's checks (default-credentials: PWD-03+PWD-04); the
    // message names the one that failed
    assert!(c.classname.split('+').any(|x| x == check), "{}", c.classname);
    assert!(
        c.message.starts_with(&format!("{check}:")) && c.message.contains(why),
        "{c:?}"
    );
    let attempts = read(&dir, &format!("results/scenarios/{id}/remote-attempts.jsonl"));
    assert!(
        attempts.contains("\"outcome\":\"accepted\""),
        "the login that worked is in the evidence"
    );
    assert!(!attempts.contains("simboard-factory") && !attempts.contains("\"support\",\"credential\":\"support"));
}

/// A board whose lockout is too short (2 s after 2 wrong passwords: up to 60 guesses a
/// minute) fails with the rate it allows; one that never takes the right password again
/// fails as locking its owner out.
#[rstest]
#[case::short_lockout("2000", "", "but only for")]
#[case::locked_for_good("3600000", "unlock_within: 3s", "still did not take it")]
fn a_lockout_must_be_long_enough_and_must_end(#[case] lockout_ms: &str, #[case] extra: &str, #[case] why: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = variant(
        "devices/simboard.yaml",
        "--web-port {{port.web}}",
        &format!("--web-port {{{{port.web}}}} --lockout-ms {lockout_ms}"),
        dir.path(),
    );
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    let s = variant(
        "scenarios/brute-force-protection.yaml",
        "max_rate: 10 }",
        &format!("max_rate: 10{extra} }}"),
        dir.path(),
    );
    let (cases, code, _d, out) = run_only_with(
        p.to_str().expect("utf8"),
        &["brute-force-protection"],
        &["--skip-setup", "-s", s.to_str().expect("utf8")],
    );
    assert_eq!(code, Some(1), "{out}");
    let c = &cases["brute-force-protection"];
    assert_eq!(
        (c.status.as_str(), c.classname.as_str()),
        ("failure", "PWD-09"),
        "{c:?}\n{out}"
    );
    assert!(c.message.contains(why), "{c:?}");
}

/// Certbench sends password guesses only to the device: a service on another host is
/// refused before anything runs (exit 2), naming the field.
#[test]
fn a_service_on_another_host_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = variant(
        "devices/simboard.yaml",
        "    kind: telnet ",
        "    host: 10.1.2.3\n    kind: telnet ",
        dir.path(),
    );
    let o = certbench(&["validate", p.to_str().expect("utf8")]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("services[0].host") && t.contains("is not the device's address 127.0.0.2"),
        "{t}"
    );
}

/// Runs a fixture scenario against Debian's mosquitto with a password_file (a device's own
/// broker), the owner's password in the environment.
fn mosquitto_run(mode: &str, scenario: &str) -> (Option<i32>, Case, tempfile::TempDir, String) {
    let r = Certbench::profile("fixtures/devices/mosquitto-broker-logins.yaml")
        .env("BROKER_OWNER_PASSWORD", "Owner-Pass-7d2f-strong")
        .args(&["--set", &format!("broker_mode={mode}")])
        .args(&["-s", &format!("fixtures/scenarios/{scenario}.yaml")])
        .run();
    let case = r.cases.first().cloned().expect("one testcase");
    (r.code, case, r.dir, r.log)
}

/// MQTT logins against software nobody here wrote: Debian's mosquitto with a password
/// file. Only the owner's account → the sweep passes; an admin/admin account left in →
/// PWD-03 FAIL naming it. mosquitto does not slow down wrong passwords → PWD-09 FAIL.
#[test]
fn mqtt_logins_against_debian_mosquitto() {
    if !tools_ready(&["mosquitto", "mosquitto_passwd"]) {
        return;
    }
    let (code, c, _d, out) = mosquitto_run("logins", "sweep-only");
    assert_eq!((code, c.status.as_str()), (Some(0), "pass"), "{c:?}\n{out}");
    let (code, c, d, out) = mosquitto_run("logins-default", "sweep-only");
    assert_eq!((code, c.status.as_str()), (Some(1), "failure"), "{c:?}\n{out}");
    assert!(c.message.contains("mirai #4 (user \"admin\""), "{c:?}");
    let attempts = read(&d, "results/scenarios/sweep-only/remote-attempts.jsonl");
    assert!(
        attempts.contains("CONNACK Success") && attempts.contains("CONNACK NotAuthorized"),
        "{attempts}"
    );
    assert!(!attempts.contains("Owner-Pass-7d2f-strong"));
    let (code, c, _d, out) = mosquitto_run("logins", "brute-force-only");
    assert_eq!((code, c.status.as_str()), (Some(1), "failure"), "{c:?}\n{out}");
    assert!(c.message.contains("nothing slows a brute force"), "{c:?}");
}

/// HTTP Basic on the board's /admin page: the good board's page refuses every default
/// pair (401) and takes the right password; the universal account gets in (PWD-03 FAIL).
#[rstest]
#[case::good("devices/simboard.yaml", Some(0), "pass")]
#[case::universal_account("devices/simboard-default-account.yaml", Some(1), "failure")]
fn http_basic_logins_on_the_admin_page(#[case] profile: &str, #[case] code: Option<i32>, #[case] status: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = std::fs::read_to_string(repo().join(profile)).expect("profile");
    // only the web service, so its driver alone decides
    let (a, b) = (
        full.find("  - name: telnet\n").expect("telnet"),
        full.find("  - name: web\n").expect("web"),
    );
    // (Basic has no session cookie: the form's session page goes with the form)
    let text: String = format!("{}{}", &full[..a], &full[b..])
        .replace("    kind: http_form\n", "    kind: http_basic\n")
        .replace("    path: /login\n", "    path: /admin\n")
        .lines()
        .filter(|l| !l.starts_with("    session:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(text.contains("kind: http_basic") && !text.contains("kind: telnet"));
    let p = dir.path().join("basic.yaml");
    std::fs::write(&p, text).expect("write");
    let (cases, got, d, out) = run_only_with(p.to_str().expect("utf8"), &["default-credentials"], &["--skip-setup"]);
    let c = &cases["default-credentials"];
    assert_eq!((got, c.status.as_str()), (code, status), "{c:?}\n{out}");
    let attempts = read(&d, "results/scenarios/default-credentials/remote-attempts.jsonl");
    if status == "failure" {
        assert!(
            c.message.contains("web (http_basic over TLS on") && c.message.contains("mirai #11"),
            "{c:?}"
        );
    } else {
        assert!(
            attempts.contains("HTTP/1.1 401 Unauthorized") && attempts.contains("HTTP/1.1 200 OK"),
            "{attempts}"
        );
    }
}

/// PWD-07 over the board's telnet shell (`password_command: passwd` on the service): the
/// owner's password is set on the console, then the weak ones are offered over telnet. The
/// good board refuses them there as on the console; the weak-passwords board takes the
/// first (FAIL), and the session's transcript is the evidence.
/// Putting the factory password back over telnet is its own finding: the board with sound
/// rules that takes it fails only remote-password-factory-reuse.
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "pass")]
#[case::weak_passwords("devices/simboard-weak-passwords.yaml", "failure", "failure")]
#[case::factory_password_reusable("devices/simboard-factory-password-reusable.yaml", "pass", "failure")]
fn weak_passwords_over_the_boards_telnet_shell(#[case] profile: &str, #[case] want: &str, #[case] reuse: &str) {
    let r = Certbench::profile(profile)
        .args(&["--skip-setup"])
        .only("remote-password-factory-reuse")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, reuse, "{c:?}\n{}", r.log);
    if reuse == "failure" {
        assert!(c.message.starts_with("PWD-07: reuses the factory password"), "{c:?}");
        let shell = read(
            &r.dir,
            "results/scenarios/remote-password-factory-reuse/remote-shell.txt",
        );
        assert!(
            shell.contains(" > passwd<Enter>") && !shell.contains("simboard-factory"),
            "{shell}"
        );
    }
    let r = Certbench::profile(profile)
        .args(&["--skip-setup"])
        .only("remote-password-strength")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    let shell = read(&r.dir, "results/scenarios/remote-password-strength/remote-shell.txt");
    assert!(
        shell.contains("== telnet session to telnet (telnet over TLS"),
        "{shell}"
    );
    assert!(shell.contains(" > passwd<Enter>"), "{shell}");
    if want == "pass" {
        assert_eq!(r.code, Some(0));
        assert!(
            shell.contains("BAD PASSWORD: it is shorter than 10 characters"),
            "{shell}"
        );
        assert!(shell.contains("passwd: password updated successfully"), "{shell}");
    } else {
        assert_eq!(r.code, Some(1));
        assert!(
            c.message
                .starts_with("PWD-07: a short numeric password was not refused"),
            "{c:?}"
        );
    }
    // secrets by name only
    assert!(
        shell.contains("<password><Enter>") && !shell.contains("Factory"),
        "{shell}"
    );
}

const LIGHTTPD: &str = "/var/cache/certbench-deps/lighttpd/usr/sbin/lighttpd";

/// Web logins against software nobody here wrote: Debian's lighttpd guarding /admin/ with
/// HTTP Basic (an htpasswd file) and Digest (MD5 from an htdigest file, SHA-256 from a plain
/// one). Only the owner's account → the sweep passes; an admin/admin account left in →
/// PWD-03 FAIL naming it. lighttpd's 1 s pause after a wrong password is turned off (a
/// sweep of the whole list would take a minute; PWD-09 is proven on sshd and mosquitto).
#[rstest]
#[case::basic_owner("basic", "owner", "pass", "HTTP/1.1 401 Unauthorized")]
#[case::basic_default("basic", "owner+admin", "failure", "HTTP/1.1 200 OK")]
#[case::digest_md5_default("digest", "owner+admin", "failure", "HTTP/1.1 401 Unauthorized (MD5)")]
#[case::digest_sha256_owner("digest-sha256", "owner", "pass", "HTTP/1.1 401 Unauthorized (SHA-256)")]
fn web_logins_against_debian_lighttpd(
    #[case] method: &str,
    #[case] accounts: &str,
    #[case] want: &str,
    #[case] seen: &str,
) {
    if !deps_ready(&[LIGHTTPD]) {
        return;
    }
    let secret = "Owner-Web-5b1e-strong";
    let profile = if method == "basic" { "basic" } else { "digest" };
    let r = Certbench::profile(format!("fixtures/devices/lighttpd-{profile}-login.yaml"))
        .env("WEB_OWNER_PASSWORD", secret)
        .env("WEB_NO_DELAY", "1")
        .args(&[
            "--set",
            &format!("web_method={method}"),
            "--set",
            &format!("web_accounts={accounts}"),
        ])
        .args(&["-s", "fixtures/scenarios/sweep-only.yaml"])
        .run();
    let c = r.cases.first().cloned().expect("one testcase");
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    let attempts = read(&r.dir, "results/scenarios/sweep-only/remote-attempts.jsonl");
    assert!(attempts.contains(seen), "{attempts}");
    if want == "failure" {
        assert_eq!(r.code, Some(1));
        assert!(
            c.message.contains("admin-page (http_") && c.message.contains("mirai #4 (user \"admin\""),
            "{c:?}"
        );
    } else {
        assert_eq!(r.code, Some(0));
        // the positive control: the owner's password got in, beside every refusal
        assert!(
            attempts.contains("\"the current password\",\"outcome\":\"accepted\""),
            "{attempts}"
        );
    }
    // the device's own files in the work folder hold it; no result file may
    assert_no_secret(&r.dir.path().join("results"), &[secret]);
}

/// FTP logins against software nobody here wrote: Debian's pyftpdlib. Only the owner's
/// account → PASS; an admin/admin account left in → PWD-03 FAIL naming it.
#[rstest]
#[case::owner("owner", "pass")]
#[case::default_account("owner+admin", "failure")]
fn ftp_logins_against_debian_pyftpdlib(#[case] accounts: &str, #[case] want: &str) {
    if !deps_ready(&["/usr/lib/python3/dist-packages/pyftpdlib"]) {
        return;
    }
    let secret = "Owner-Ftp-77c0-strong";
    let r = Certbench::profile("fixtures/devices/pyftpdlib-ftp-login.yaml")
        .env("FTP_OWNER_PASSWORD", secret)
        .args(&["--set", &format!("ftp_accounts={accounts}"), "--set", "ftp_delay=0"])
        .args(&["-s", "fixtures/scenarios/sweep-only.yaml"])
        .run();
    let c = r.cases.first().cloned().expect("one testcase");
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    let attempts = read(&r.dir, "results/scenarios/sweep-only/remote-attempts.jsonl");
    assert!(attempts.contains("530 Authentication failed."), "{attempts}");
    if want == "failure" {
        assert!(
            c.message.contains("ftp (ftp on") && c.message.contains("mirai #4"),
            "{c:?}"
        );
    } else {
        assert!(attempts.contains("230 Login successful."), "{attempts}");
    }
    // the device's own files in the work folder hold it; no result file may
    assert_no_secret(&r.dir.path().join("results"), &[secret]);
}

/// COM-03's certificate part against OpenSSL's s_server: a CA-issued RSA-1024 certificate
/// signed with SHA-1 and expired fails on all three, and sslscan, reading the same server,
/// reports the same key size, signature algorithm and end of validity; Debian's defaults
/// (a fresh RSA-2048 self-signed certificate) pass with the certificate described.
#[test]
fn tls_service_certificate_agrees_with_sslscan() {
    if !tools_ready(&["openssl", "sslscan"]) {
        return;
    }
    let r = Certbench::profile("fixtures/devices/openssl-tls-service.yaml")
        .args(&["--set", "tls_mode=current+weak-cert"])
        .only("tls-service-config")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!((r.code, c.status.as_str()), (Some(1), "failure"), "{c:?}\n{}", r.log);
    for want in [
        "its certificate expired on",
        "its certificate's key is RSA 1024 bits",
        "signed with sha1WithRSAEncryption",
    ] {
        assert!(c.message.contains(want), "{want}: {c:?}");
    }
    // nothing else: the protocols and suites are Debian's current ones
    assert!(!c.message.contains("accepts"), "{c:?}");
    let seen = read(&r.dir, "results/scenarios/tls-service-config/tls-certificates.json");
    let pem = read(&r.dir, "results/scenarios/tls-service-config/tls-certificate-1.pem");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    // sslscan on the very server the run judged (its state folder kept the certificate)
    let state = r.dir.path().join("work/tlsdev");
    let port = std::net::TcpListener::bind("127.0.0.2:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let device = repo().join("fixtures/tlsdev/device.sh");
    let st = state.to_str().expect("utf8");
    let on = std::process::Command::new(&device)
        .args(["power-on", st, "current+weak-cert", "127.0.0.2", &port.to_string()])
        .status()
        .expect("power on");
    assert!(on.success());
    std::thread::sleep(std::time::Duration::from_millis(700));
    let scan = std::process::Command::new("sslscan")
        .args([
            "--no-colour",
            "--no-ciphersuites",
            "--no-groups",
            "--no-fallback",
            "--no-renegotiation",
        ])
        .arg(format!("127.0.0.2:{port}"))
        .output()
        .expect("sslscan");
    let _ = std::process::Command::new(&device).args(["power-off", st]).status();
    let scan = String::from_utf8_lossy(&scan.stdout);
    assert!(scan.contains("RSA Key Strength:    1024"), "{scan}");
    assert!(scan.contains("Signature Algorithm: sha1WithRSAEncryption"), "{scan}");
    let until = scan
        .lines()
        .find_map(|l| l.strip_prefix("Not valid after:"))
        .map(|l| l.trim().trim_end_matches(" GMT").to_string())
        .expect("sslscan names the end of validity");
    assert!(seen.contains(&until), "sslscan: {until}; certbench: {seen}");

    let r = Certbench::profile("fixtures/devices/openssl-tls-service.yaml")
        .args(&["--set", "tls_mode=current"])
        .only("tls-service-config")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, "pass", "{c:?}\n{}", r.log);
    let seen = read(&r.dir, "results/scenarios/tls-service-config/tls-certificates.json");
    assert!(
        seen.contains("\"key\": \"RSA 2048 bits\"") && seen.contains("sha256WithRSAEncryption"),
        "{seen}"
    );
}

/// Every unit holding the same TLS key, found the way a lab would: unit 1's run keeps the
/// certificate it presented; the lab file of unit 2's run names that file. Two units of a
/// firmware that ships one key → FAIL naming the file; a unit with a key of its own → PASS
/// saying it was compared.
#[test]
fn a_tls_key_shared_by_every_unit_is_found_from_another_units_certificate() {
    if !tools_ready(&["openssl"]) {
        return;
    }
    let unit = |mode: &str, lab: Option<&std::path::Path>| {
        tls_config_run(
            "fixtures/devices/openssl-tls-service.yaml",
            &["--set", &format!("tls_mode={mode}")],
            lab,
        )
    };
    let first = unit("current+firmware-key", None);
    let c = first.cases.first().expect("one testcase");
    assert_eq!(c.status, "pass", "{c:?}\n{}", first.log);
    assert!(
        first.log.contains("not compared with another unit (the lab gave none)"),
        "{}",
        first.log
    );
    let (dir, lab) = lab_with_other_unit(&first);

    let second = unit("current+firmware-key", Some(&lab));
    let c = second.cases.first().expect("one testcase");
    assert_eq!(
        (second.code, c.status.as_str()),
        (Some(1), "failure"),
        "{c:?}\n{}",
        second.log
    );
    assert!(
        c.message
            .contains("its key is the one in unit-1.pem (another unit's certificate)"),
        "{c:?}"
    );
    let own = unit("current", Some(&lab));
    let c = own.cases.first().expect("one testcase");
    assert_eq!(c.status, "pass", "{c:?}\n{}", own.log);
    assert!(
        own.log.contains("its key differs from the 1 other unit certificate(s)"),
        "{}",
        own.log
    );

    // a lab file naming a file that is no certificate: exit 2, file and field named
    std::fs::write(dir.path().join("unit-1.pem"), "not a certificate").expect("write");
    let bad = unit("current", Some(&lab));
    assert_eq!(bad.code, Some(2), "{}", bad.log);
    assert!(
        bad.log.contains("other_unit_certificates") && bad.log.contains("unit-1.pem"),
        "{}",
        bad.log
    );
}

/// A tls-service-config run of `profile` (`-v`: the passing message is in the log), with
/// the lab file `lab` when given.
fn tls_config_run(profile: &str, args: &[&str], lab: Option<&std::path::Path>) -> Ran {
    let mut b = Certbench::profile(profile)
        .args(args)
        .args(&["-v"])
        .only("tls-service-config");
    if let Some(l) = lab {
        b = b.args(&["--lab", l.to_str().expect("utf8")]);
    }
    b.run()
}

/// A lab file naming the certificate `unit` presented as another unit's (`unit-1.pem`).
fn lab_with_other_unit(unit: &Ran) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        unit.results()
            .join("scenarios/tls-service-config/tls-certificate-1.pem"),
        dir.path().join("unit-1.pem"),
    )
    .expect("unit 1's certificate");
    let lab = dir.path().join("lab.yaml");
    std::fs::write(&lab, "other_unit_certificates: [unit-1.pem]\n").expect("lab");
    (dir, lab)
}

/// COM-03's TLS part against OpenSSL's s_server as the device's HTTPS service: Debian's
/// defaults pass; security level 0 fails, naming TLS 1.0, TLS 1.1 and every anonymous suite
/// it takes. sslscan, run on the same server, must see the same: the same old protocols
/// enabled and as many weak TLS 1.2 suites accepted.
#[rstest]
#[case::current("current", "pass")]
#[case::legacy("legacy", "failure")]
fn tls_service_configuration_agrees_with_sslscan(#[case] mode: &str, #[case] want: &str) {
    if !tools_ready(&["openssl", "sslscan"]) {
        return;
    }
    let r = Certbench::profile("fixtures/devices/openssl-tls-service.yaml")
        .args(&["--set", &format!("tls_mode={mode}")])
        .only("tls-service-config")
        .run();
    let case = r.cases.first().expect("one testcase");
    assert_eq!(case.status, want, "{case:?}\n{}", r.log);
    let said = &case.message;

    // the same device, powered by the test, scanned by sslscan
    let state = r.dir.path().join("sslscan-device");
    let port = std::net::TcpListener::bind("127.0.0.2:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let device = repo().join("fixtures/tlsdev/device.sh");
    let st = state.to_str().expect("utf8");
    let on = std::process::Command::new(&device)
        .args(["power-on", st, mode, "127.0.0.2", &port.to_string()])
        .status()
        .expect("power on");
    assert!(on.success());
    std::thread::sleep(std::time::Duration::from_millis(700));
    let scan = std::process::Command::new("sslscan")
        .args([
            "--no-colour",
            "--no-check-certificate",
            "--no-fallback",
            "--no-renegotiation",
        ])
        .args(["--no-compression", "--no-heartbleed"])
        .arg(format!("127.0.0.2:{port}"))
        .output()
        .expect("sslscan");
    let _ = std::process::Command::new(&device).args(["power-off", st]).status();
    let scan = String::from_utf8_lossy(&scan.stdout).into_owned();
    for (sslscan, certbench) in [("SSLv3", "SSL 3.0"), ("TLSv1.0", "TLS 1.0"), ("TLSv1.1", "TLS 1.1")] {
        let enabled = scan.lines().any(|l| l.starts_with(sslscan) && l.contains("enabled"));
        assert!(scan.contains(sslscan), "sslscan said nothing of {sslscan}:\n{scan}");
        assert_eq!(
            enabled,
            said.contains(&format!("accepts {certbench}")),
            "{sslscan}: sslscan and certbench disagree\n{scan}\n{said}"
        );
    }
    let weak_sslscan = scan
        .lines()
        .filter(|l| l.starts_with("Accepted") || l.starts_with("Preferred"))
        .filter(|l| l.contains("TLSv1.2"))
        .filter(|l| {
            ["ADH-", "AECDH-", "NULL", "RC4", "DES-CBC3", "EXP"]
                .iter()
                .any(|w| l.contains(w))
        })
        .count();
    let weak_certbench = said
        .split("accepts the weak suite(s) ")
        .nth(1)
        .map_or(0, |list| list.split(", ").count());
    assert_eq!(weak_sslscan, weak_certbench, "weak TLS 1.2 suites\n{scan}\n{said}");
    if want == "pass" {
        let ev = std::fs::read_to_string(r.results().join("scenarios/tls-service-config/tls-config.json"))
            .expect("evidence");
        assert!(
            ev.contains("positive control") && ev.contains("ServerHello: TLS 1.3"),
            "{ev}"
        );
    }
}

/// A broker nobody here wrote (Debian's mosquitto, TLS listener) as the device's TLS endpoint:
/// its defaults refuse the old protocols and weak suites.
#[test]
fn tls_service_configuration_of_mosquittos_tls_listener() {
    if !tools_ready(&["mosquitto", "openssl"]) {
        return;
    }
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    };
    let r = Certbench::profile("fixtures/devices/mosquitto-broker-tls-only.yaml")
        .args(&["--set", &format!("broker_plain_port={}", free())])
        .args(&["--set", &format!("broker_tls_port={}", free())])
        .only("tls-service-config")
        .run();
    let case = r.cases.first().expect("one testcase");
    assert_eq!(case.status, "pass", "{case:?}\n{}", r.log);
}

/// COM-03 on the simulated board: its management services (rustls) pass; with the
/// legacy-tls flaw (an old TLS stack) they agree to TLS 1.0 and 1.1, and the check fails
/// naming both services and versions, with the offers in tls-config.json.
#[rstest]
#[case::good("devices/simboard.yaml", "pass")]
#[case::legacy_tls("devices/simboard-legacy-tls.yaml", "failure")]
fn tls_service_configuration_of_the_simulated_board(#[case] profile: &str, #[case] want: &str) {
    let r = Certbench::profile(profile)
        .args(&["--skip-setup"])
        .only("tls-service-config")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    let probes = read(&r.dir, "results/scenarios/tls-service-config/tls-config.json");
    if want == "failure" {
        for s in ["telnet (", "web ("] {
            assert!(c.message.contains(s), "{s}: {c:?}");
        }
        assert!(
            c.message.contains("accepts TLS 1.0") && c.message.contains("accepts TLS 1.1"),
            "{c:?}"
        );
        assert!(probes.contains("ServerHello: TLS 1.0"), "{probes}");
    } else {
        assert!(
            !probes.contains("\"accepted\": true,\n    \"offered\": \"TLS 1.0"),
            "{probes}"
        );
    }
}

/// COM-03's certificate part on the simulated board: its first-boot certificate made
/// already expired fails on both services; two units of a firmware that holds one TLS key
/// are told apart from their certificates (unit 1's run evidence given to unit 2's lab
/// file): FAIL naming the file, while a board with its own key passes against it.
#[test]
fn the_simulated_boards_certificate_flaws_are_found() {
    let r = Certbench::profile("devices/simboard-expired-certificate.yaml")
        .args(&["--skip-setup"])
        .only("tls-service-config")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!((r.code, c.status.as_str()), (Some(1), "failure"), "{c:?}\n{}", r.log);
    assert!(
        c.message.contains("telnet (")
            && c.message.contains("web (")
            && c.message.matches("its certificate expired on").count() == 2,
        "{c:?}"
    );

    let unit = |profile: &str, lab: Option<&std::path::Path>| tls_config_run(profile, &["--skip-setup"], lab);
    let first = unit("devices/simboard-shared-tls-key.yaml", None);
    assert_eq!(
        first.cases[0].status, "pass",
        "one unit alone shows nothing: {}",
        first.log
    );
    let (_dir, lab) = lab_with_other_unit(&first);
    let second = unit("devices/simboard-shared-tls-key.yaml", Some(&lab));
    let c = &second.cases[0];
    assert_eq!(c.status, "failure", "{c:?}\n{}", second.log);
    assert!(c.message.contains("its key is the one in unit-1.pem"), "{c:?}");
    let own = unit("devices/simboard.yaml", Some(&lab));
    assert_eq!(own.cases[0].status, "pass", "{}", own.log);
    assert!(
        own.log.contains("its key differs from the 1 other unit certificate(s)"),
        "{}",
        own.log
    );
}

/// A TLS service that takes the connection and never answers decides nothing: COM-03 is
/// an ERROR saying the positive control got no answer, never a PASS (nothing was refused).
#[test]
fn a_tls_service_that_never_answers_is_an_error_not_a_pass() {
    if !tools_ready(&["socat"]) {
        return;
    }
    let r = Certbench::profile("fixtures/devices/openssl-tls-service.yaml")
        .args(&[
            "--set",
            "tls_mode=silent",
            "-s",
            "fixtures/scenarios/tls-config-short.yaml",
        ])
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!((r.code, c.status.as_str()), (Some(3), "error"), "{c:?}\n{}", r.log);
    assert!(
        c.message
            .contains("no answer to a current TLS 1.2/1.3 client, so its configuration cannot be judged"),
        "{c:?}"
    );
}

/// COM-03's SSH part on the simulated board's SSH service (the weak-ssh profile starts and
/// declares it): with the flaw its key exchange still offers the SHA-1 Diffie-Hellman
/// groups, named; the same board without the flaw passes, and its SSH logins take part in
/// the default-credential sweep (refused, with the right password's control beside them).
#[rstest]
#[case::weak_ssh(true, "failure")]
#[case::good(false, "pass")]
fn ssh_algorithms_of_the_simulated_board(#[case] flaw: bool, #[case] want: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo().join("devices/simboard-weak-ssh.yaml")).expect("profile");
    let text = if flaw {
        text
    } else {
        text.replace(" --flaw weak-ssh", "")
    };
    // beside the board's other files, which the profile names relative to itself; removed
    // however the test ends
    struct Gone(std::path::PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let p = repo()
        .join("devices")
        .join(format!(".ssh-test-{}-{flaw}.yaml", std::process::id()));
    let _gone = Gone(p.clone());
    std::fs::write(&p, &text).expect("write");
    let only: &[&str] = if flaw {
        &["ssh-algorithms"]
    } else {
        &["ssh-algorithms", "default-credentials"]
    };
    let mut b = Certbench::profile(&p).args(&["--skip-setup"]).in_dir(dir);
    for id in only {
        b = b.only(id);
    }
    let r = b.run();
    let cases = r.by_id();
    let c = &cases["ssh-algorithms"];
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    if flaw {
        assert!(
            c.message
                .contains("key exchange: diffie-hellman-group1-sha1, diffie-hellman-group14-sha1"),
            "{c:?}"
        );
    } else {
        assert_eq!(cases["default-credentials"].status, "pass", "{}", r.log);
        let attempts = read(&r.dir, "results/scenarios/default-credentials/remote-attempts.jsonl");
        assert!(
            attempts.contains("\"service\":\"ssh\",\"user\":\"admin\",\"credential\":\"the current password\",\"outcome\":\"accepted\""),
            "{attempts}"
        );
        assert!(
            attempts
                .contains("\"service\":\"ssh\",\"user\":\"root\",\"credential\":\"mirai #1\",\"outcome\":\"rejected\""),
            "{attempts}"
        );
    }
}

/// `profile` with the board's own MQTT broker switched on (`--broker-port`) and declared as
/// a service, written into `dir`.
fn with_broker(profile: &str, dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(repo().join(profile)).expect("profile");
    let text = text
        .replacen(
            "--web-port {{port.web}}",
            "--web-port {{port.web}} --broker-port {{port.broker}}",
            1,
        )
        .replacen(
            "\nservices:\n",
            "\nservices:\n  - name: broker\n    kind: mqtt\n    port: \"{{port.broker}}\"\n    tls: true\n",
            1,
        );
    assert!(
        text.contains("--broker-port") && text.contains("kind: mqtt"),
        "{profile}"
    );
    let p = dir.join("with-broker.yaml");
    std::fs::write(&p, text).expect("write");
    p.to_str().expect("utf8").to_string()
}

/// PWD-08 on sessions (issue 34): on the good board a password change ends every session
/// the old password opened — changed on the console, judged over telnet (and SSH, and the
/// board's own MQTT broker); changed over telnet, judged on the console and the other
/// sessions. With the sessions-survive-change flaw both fail, naming the interface that
/// still ran a command (or, the broker, still carried a message).
#[rstest]
#[case::good("devices/simboard.yaml", false, "pass", "pass", &[])]
#[case::good_with_ssh_and_broker("devices/simboard-weak-ssh.yaml", true, "pass", "pass", &[])]
#[case::sessions_survive(
    "devices/simboard-sessions-survive-change.yaml",
    true,
    "failure",
    "failure",
    &["ssh (ssh on", "telnet (telnet over TLS on", "the serial console", "web (http_form over TLS on", "broker (mqtt over TLS on"]
)]
fn a_password_change_ends_the_sessions_the_old_password_opened(
    #[case] profile: &str,
    #[case] broker: bool,
    #[case] on_console: &str,
    #[case] over_network: &str,
    #[case] named: &[&str],
) {
    const IDS: [&str; 2] = ["password-change-ends-sessions", "remote-password-change-ends-sessions"];
    let scratch = tempfile::tempdir().expect("tempdir");
    let profile = if broker {
        with_broker(profile, scratch.path())
    } else {
        profile.to_string()
    };
    let (cases, _code, dir, out) = run_only_with(&profile, &IDS, &["--skip-setup"]);
    for (id, want) in IDS.iter().zip([on_console, over_network]) {
        let c = &cases[*id];
        assert_eq!(c.status, want, "{id}: {c:?}\n{out}");
        if want == "failure" {
            assert_eq!(c.classname, "PWD-08");
            assert!(
                c.message.starts_with("PWD-08:")
                    && c.message.contains("still ran a command after the change (`echo $(("),
                "{c:?}"
            );
        }
        let sessions = read(&dir, &format!("results/scenarios/{id}/sessions.json"));
        assert!(
            sessions.contains("\"before_change\": \"a command ran (the session works)\""),
            "{sessions}"
        );
    }
    let all: String = IDS.iter().map(|id| cases[*id].message.clone()).collect();
    for n in named {
        assert!(all.contains(n), "{n} is named: {all}");
    }
    if on_console == "pass" {
        let s = read(
            &dir,
            "results/scenarios/remote-password-change-ends-sessions/sessions.json",
        );
        assert!(s.contains("the serial console"), "the console was held: {s}");
        assert!(
            s.contains("the session page was refused"),
            "the web session was held and ended: {s}"
        );
        if broker {
            assert!(
                s.contains("\"before_change\": \"a message was carried (the connection works)\"")
                    && s.contains("ended by the device"),
                "the broker's connection was held and ended: {s}"
            );
        }
    }
    // the session cookie is a secret of the run
    let s = read(&dir, "results/scenarios/password-change-ends-sessions/sessions.json");
    assert!(!s.contains("sid="), "{s}");
}

/// A page without a login (lighttpd's `/`, declared `no_login`) beside a Basic login on
/// the same server: the sweep logs in only where there is a login and says which service
/// it left out and why. A device with nothing but no-login services: the password checks
/// are NOT APPLICABLE with that reason, and nothing is sent.
#[test]
fn services_without_a_login_are_left_out_of_the_password_checks_and_said_so() {
    if !deps_ready(&[LIGHTTPD]) {
        return;
    }
    let secret = "Owner-Web-5b1e-strong";
    let r = Certbench::profile("fixtures/devices/lighttpd-status-page.yaml")
        .env("WEB_OWNER_PASSWORD", secret)
        .env("WEB_NO_DELAY", "1")
        .args(&["-s", "fixtures/scenarios/sweep-only.yaml"])
        .run();
    let c = r.cases.first().cloned().expect("one testcase");
    assert_eq!((r.code, c.status.as_str()), (Some(0), "pass"), "{c:?}\n{}", r.log);
    let attempts = read(&r.dir, "results/scenarios/sweep-only/remote-attempts.jsonl");
    assert!(
        !attempts.contains("status-page") && attempts.contains("\"service\":\"admin-page\""),
        "{attempts}"
    );
    let events = read(&r.dir, "results/events.jsonl");
    assert!(
        events.contains("status-page (tcp/") && events.contains("declared without a login (no_login), not tried"),
        "{events}"
    );
    // only the status page: nothing to log in to
    let dir = tempfile::tempdir().expect("tempdir");
    let only = variant(
        "fixtures/devices/lighttpd-status-page.yaml",
        "  - name: admin-page\n    kind: http_basic\n    port: \"{{port.web}}\"\n    path: /admin/\n",
        "",
        dir.path(),
    );
    let r = Certbench::profile(&only)
        .env("WEB_OWNER_PASSWORD", secret)
        .args(&["-s", "fixtures/scenarios/sweep-only.yaml"])
        .run();
    let c = r.cases.first().cloned().expect("one testcase");
    assert_eq!(c.status, "skipped", "{c:?}\n{}", r.log);
    assert!(
        c.message.contains("declares no remote login services") && c.message.contains("no_login have none"),
        "{c:?}"
    );
}

/// PWD-03 in the state the device ships in: a board whose factory password is on the
/// Mirai list (admin/1234) and opens its remote services before setup. The sweep after
/// setup alone would pass (the owner's password replaced it); the sweep before setup,
/// paced by the factory login itself, finds it and says in which state.
#[test]
fn a_default_pair_that_works_only_before_setup_fails_pwd03_naming_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("simboard-mirai-factory.yaml");
    let text = std::fs::read_to_string(repo().join("devices/simboard-remote-factory-login.yaml"))
        .expect("profile")
        .replace("password: { value: simboard-factory }", "password: { value: \"1234\" }")
        .replace(
            "--flaw remote-factory-login",
            "--flaw remote-factory-login --factory-password 1234",
        );
    assert!(text.contains("--factory-password 1234") && text.contains("value: \"1234\""));
    std::fs::write(&profile, text).expect("write");
    let (cases, code, dir, out) = run_only_with(
        profile.to_str().expect("utf8"),
        &["default-credentials"],
        &["--skip-setup"],
    );
    assert_eq!(code, Some(1), "{out}");
    let c = &cases["default-credentials"];
    assert_eq!(
        (c.status.as_str(), c.message.split(':').next().unwrap_or("")),
        ("failure", "PWD-03"),
        "{c:?}\n{out}"
    );
    assert!(
        c.message.starts_with("PWD-03: before setup (factory state), telnet")
            && c.message.contains("mirai #")
            && c.message
                .contains("(user \"admin\", a password from the published list)"),
        "{c:?}"
    );
    let attempts = read(&dir, "results/scenarios/default-credentials/remote-attempts.jsonl");
    // paced by the factory login, which the board takes before setup
    assert!(
        attempts.contains("\"credential\":\"the factory password\",\"outcome\":\"accepted\""),
        "{attempts}"
    );
    assert!(
        !attempts.contains("\"1234\""),
        "the password is named by its entry, never written"
    );
}

/// AUT-01 / 5.5-7 (issue 28): Debian's lighttpd asking for HTTP Basic credentials on plain
/// HTTP reads a password sent in clear — FAIL, whatever the password (a throwaway one).
#[test]
fn debian_lighttpd_basic_auth_on_plain_http_takes_credentials_in_clear() {
    if !deps_ready(&[LIGHTTPD]) {
        return;
    }
    let r = Certbench::profile("fixtures/devices/lighttpd-basic-login.yaml")
        .env("WEB_OWNER_PASSWORD", "Owner-Web-5b1e-strong")
        .env("WEB_NO_DELAY", "1")
        .args(&["--set", "web_method=basic", "--set", "web_accounts=owner"])
        .only("credentials-in-clear")
        .run();
    let c = &r.by_id()["credentials-in-clear"];
    assert_eq!(c.status, "failure", "{c:?}\n{}", r.log);
    assert!(
        c.message.starts_with("AUT-01: credentials over an unencrypted channel")
            && c.message.contains("admin-page (http_basic on 127.0.0.2:")
            && c.message.contains("rejected"),
        "{c:?}"
    );
    assert_eq!(r.code, Some(1));
}

/// AUT-01 (issue 28) on servers nobody here wrote: a login in clear is FAIL whatever the
/// password (Debian's mosquitto with a password file on plain MQTT, pyftpdlib's FTP); the
/// same logins over HTTPS are PASS (Debian's lighttpd with mod_openssl: Basic, and a login
/// form on an HTTPS page posting back over HTTPS) — unless the form's action is http://
/// (the password leaves the encrypted page in clear) or HTTP Digest offers MD5 only (a
/// captured exchange gives the password's MD5 to crack): FAIL, each named (5.1-3).
#[rstest]
#[case::mqtt_plain("mosquitto-broker-logins", &["broker_mode=logins"], &[], "failure", "broker (mqtt on 127.0.0.2:")]
#[case::ftp_plain("pyftpdlib-ftp-login", &["ftp_accounts=owner", "ftp_delay=0"], &[], "failure", "ftp (ftp on 127.0.0.2:")]
#[case::https_good("lighttpd-https-logins", &["web_accounts=owner"], &[], "pass", "the form on /login.html posts over HTTPS")]
#[case::https_form_to_http(
    "lighttpd-https-logins",
    &["web_accounts=owner"],
    &[("WEB_FORM_ACTION", "http://127.0.0.2:8080/login")],
    "failure",
    "the login form on the HTTPS page /login.html posts to plain HTTP (http://127.0.0.2:8080/login)"
)]
#[case::digest_md5_only(
    "lighttpd-digest-login-https",
    &["web_method=digest", "web_accounts=owner"],
    &[],
    "failure",
    "offers HTTP Digest with MD5 only (MD5)"
)]
#[case::digest_sha256("lighttpd-digest-login-https", &["web_method=digest-sha256", "web_accounts=owner"], &[], "pass", "offers Digest SHA-256")]
fn credentials_only_over_encryption_on_real_servers(
    #[case] profile: &str,
    #[case] sets: &[&str],
    #[case] env: &[(&str, &str)],
    #[case] want: &str,
    #[case] says: &str,
) {
    let ready = match profile {
        "mosquitto-broker-logins" => tools_ready(&["mosquitto", "mosquitto_passwd"]),
        "pyftpdlib-ftp-login" => deps_ready(&["/usr/lib/python3/dist-packages/pyftpdlib"]),
        _ => deps_ready(&[
            LIGHTTPD,
            "/var/cache/certbench-deps/lighttpd/usr/lib/lighttpd/mod_openssl.so",
        ]),
    };
    if !ready {
        return;
    }
    let secret = "Owner-Pass-7d2f-strong";
    let mut run = Certbench::profile(format!("fixtures/devices/{profile}.yaml"))
        .env("BROKER_OWNER_PASSWORD", secret)
        .env("FTP_OWNER_PASSWORD", secret)
        .env("WEB_OWNER_PASSWORD", secret)
        .env("WEB_NO_DELAY", "1")
        .only("credentials-in-clear");
    for (k, v) in env {
        run = run.env(k, v);
    }
    for s in sets {
        run = run.args(&["--set", s]);
    }
    let r = run.run();
    let c = &r.by_id()["credentials-in-clear"];
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    if want == "failure" {
        assert!(c.message.starts_with("AUT-01: ") && c.message.contains(says), "{c:?}");
        assert_eq!(r.code, Some(1));
    } else {
        // what the pass rests on is in the run's events
        let events = read(&r.dir, "results/events.jsonl");
        assert!(events.contains(says), "{events}");
        assert_eq!(r.code, Some(0));
    }
    assert_no_secret(&r.dir.path().join("results"), &[secret]);
}

/// PWD-04: the default-credential sweep reaches every kind of login interface the device
/// has — here one board with its telnet and web logins (TLS), its SSH service, its own MQTT
/// broker, and a telnet left listening in clear that only the port scan finds. Every one of
/// them appears in the sweep's attempts, in both states (factory and after setup).
#[test]
fn the_default_credential_sweep_reaches_every_login_interface() {
    if unsafe { libc::geteuid() } != 0 {
        return; // the found service needs the board's namespace (root)
    }
    let (_copy, profile) = edited_profile(
        "devices/simboard.yaml",
        &[
            (
                "--web-port {{port.web}}",
                "--web-port {{port.web}} --ssh-port {{port.ssh}} --broker-port {{port.broker}} --flaw telnet-listening",
            ),
            (
                "\nservices:\n",
                "\nservices:\n  - name: ssh\n    kind: ssh\n    port: \"{{port.ssh}}\"\n    throttle: { after: 2, unlock: 15s }\n  - name: broker\n    kind: mqtt\n    port: \"{{port.broker}}\"\n    tls: true\n    throttle: { after: 2, unlock: 15s }\n",
            ),
        ],
    );
    // the port scan first: it hands the sweep what it found
    let (cases, _code, dir, out) = run_only_with(
        profile.to_str().expect("utf8"),
        &["open-ports", "default-credentials"],
        &["--skip-setup"],
    );
    let c = &cases["default-credentials"];
    assert_eq!(c.status, "pass", "{c:?}\n{out}");
    let attempts = read(&dir, "results/scenarios/default-credentials/remote-attempts.jsonl");
    for service in [
        "\"telnet\"",
        "\"web\"",
        "\"ssh\"",
        "\"broker\"",
        "\"telnet-23 (found by the port scan)\"",
    ] {
        assert!(
            attempts.contains(&format!("\"service\":{service}")),
            "{service} was not swept: {attempts}"
        );
    }
}

/// What a running device's services say they are, against the maker's SBOM (VUL-03), on
/// software nobody here wrote: Debian's mosquitto says its version on `$SYS/broker/version`
/// (to the owner's login: it takes no anonymous client), Debian's lighttpd in its `Server`
/// header. An SBOM listing the versions dpkg reports → PASS naming both; one listing other
/// versions → FAIL naming each service.
#[rstest]
#[case::mosquitto("mosquitto-broker-logins", &["broker_mode=logins"], "mosquitto", "mosquitto", "the banner of broker (mqtt on 127.0.0.2:")]
#[case::lighttpd("lighttpd-https-logins", &["web_accounts=owner"], "lighttpd", "lighttpd", "the banner of admin-page (http_basic over TLS on 127.0.0.2:")]
fn a_services_own_words_are_compared_with_the_sbom(
    #[case] fixture: &str,
    #[case] sets: &[&str],
    #[case] package: &str,
    #[case] component: &str,
    #[case] seen: &str,
) {
    let ready = if package == "mosquitto" {
        tools_ready(&["mosquitto", "mosquitto_passwd"])
    } else {
        deps_ready(&[LIGHTTPD])
    };
    if !ready {
        return;
    }
    // the version the package says it is: dpkg's for the installed broker, the extracted
    // lighttpd's own `-v`
    let deb = if package == "mosquitto" {
        std::process::Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", package])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        std::process::Command::new(LIGHTTPD)
            .arg("-v")
            .output()
            .ok()
            .and_then(|o| {
                let t = String::from_utf8_lossy(&o.stdout).to_string();
                t.split_once("lighttpd/")
                    .map(|(_, r)| r.split_whitespace().next().unwrap_or("").to_string())
            })
    };
    let Some(deb) = deb.filter(|v| !v.is_empty()) else {
        panic!("{package}: its version is not known");
    };
    let upstream = deb.split_once(':').map_or(deb.as_str(), |(_, r)| r);
    let upstream = upstream.rsplit_once('-').map_or(upstream, |(u, _)| u).to_string();
    for (listed, want) in [(upstream.clone(), "pass"), ("0.9.9".to_string(), "failure")] {
        let (dir, p) = edited_profile(
            &format!("fixtures/devices/{fixture}.yaml"),
            &[("services:", "software:\n  sbom: sbom.cdx.json\nservices:")],
        );
        std::fs::write(
            dir.path().join("sbom.cdx.json"),
            format!(
                r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{{"timestamp":"2026-11-20T00:00:00Z"}},"components":[{{"type":"application","name":"{component}","version":"{listed}"}}]}}"#
            ),
        )
        .expect("sbom");
        let mut run = Certbench::profile(&p)
            .env("BROKER_OWNER_PASSWORD", "Owner-Pass-7d2f-strong")
            .env("WEB_OWNER_PASSWORD", "Owner-Pass-7d2f-strong")
            .only("sbom-describes-device");
        for s in sets {
            run = run.args(&["--set", s]);
        }
        let r = run.run();
        let c = &r.by_id()["sbom-describes-device"];
        assert_eq!(c.status, want, "{c:?}\n{}", r.log);
        let events = read(&r.dir, "results/events.jsonl");
        if want == "pass" {
            assert!(
                events.contains(&format!("{component} {upstream} (the device)")),
                "{events}"
            );
        } else {
            assert!(
                c.message
                    .contains(&format!("{component} {upstream} (the device: {seen}"))
                    && c.message.contains("is listed in the SBOM as version 0.9.9"),
                "{c:?}"
            );
        }
    }
}
