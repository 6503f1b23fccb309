//! Proof against a console nobody here wrote: Debian's /bin/login with PAM on a PTY (see
//! fixtures/real-login/device.sh). Only the device profile differs from the simulated
//! board's run; the scenario is the same file.

mod common;

use common::*;

/// What the real-login device needs; in CI (.ci/run installs it) a gap is a failure.
/// The brute-force test times lockouts of a few seconds: it runs alone (the other tests of
/// this file share the lock, and may run together).
static TIMING: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    TIMING.read().unwrap_or_else(|p| p.into_inner())
}

fn prerequisites() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (mount namespaces, /bin/login)".into());
    }
    for tool in ["socat", "unshare", "openssl"] {
        let ok = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success());
        if !matches!(ok, Ok(true)) {
            return Err(format!("{tool} is not installed"));
        }
    }
    let module = std::env::var("PAM_PWQUALITY").unwrap_or_else(|_| "/var/cache/certbench-deps/pam_pwquality.so".into());
    if !std::path::Path::new(&module).exists() {
        return Err(format!(
            "{module} is missing (.ci/run extracts it from Debian's libpam-pwquality)"
        ));
    }
    Ok(())
}

fn ready() -> bool {
    match prerequisites() {
        Ok(()) => true,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("real-login test cannot run in CI: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED real-login test: {why}");
            false
        }
    }
}

fn run_real(profile: &str) -> (Option<i32>, Vec<Case>, String) {
    let r = Certbench::profile(profile)
        .env("REAL_LOGIN_FACTORY_PASSWORD", "Factory-Default-1")
        .only("password-reset-enforcement")
        .run();
    // junit.xml, events.jsonl, the testcase's console.log and every other result file
    assert!(assert_no_secret(&r.results(), &["Factory-Default-1"]) >= 3, "{}", r.log);
    (r.code, r.cases, r.log)
}

#[test]
fn real_login_with_expired_password_passes() {
    let _shared = shared();
    if !ready() {
        return;
    }
    let (code, cases, out) = run_real("fixtures/devices/real-login-expired.yaml");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(cases[0].status, "pass", "{cases:?}");
    let shadow = std::fs::read_to_string("/etc/shadow").expect("read host shadow");
    assert!(
        !shadow.contains("certtest:"),
        "the host's accounts must never be touched"
    );
}

#[test]
fn real_login_without_expiry_fails_pwd_01() {
    let _shared = shared();
    if !ready() {
        return;
    }
    let (code, cases, out) = run_real("fixtures/devices/real-login-valid.yaml");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(cases[0].status, "failure", "{cases:?}");
    assert!(cases[0].message.starts_with("PWD-01:"), "{cases:?}");
    assert!(cases[0].message.contains("gave a shell"), "{cases:?}");
}

/// The same Debian login over Debian's telnetd (inetutils) and OpenSSH server (with PAM),
/// on the device's address. `env`: extra environment for the device (REAL_LOGIN_AUTH, ...).
fn run_remote(
    profile: &str,
    env: &[(&str, &str)],
    only: &[&str],
    scenarios: Option<&std::path::Path>,
) -> (
    Option<i32>,
    std::collections::BTreeMap<String, Case>,
    tempfile::TempDir,
    String,
) {
    let mut run = Certbench::profile(profile).env("REAL_LOGIN_FACTORY_PASSWORD", "Factory-Default-1");
    for (k, v) in env {
        run = run.env(k, v);
    }
    for id in only {
        run = run.only(id);
    }
    if let Some(s) = scenarios {
        run = run.args(&["-s", s.to_str().expect("utf8")]);
    }
    let r = run.run();
    (r.code, r.by_id(), r.dir, r.log)
}

fn remote_ready() -> bool {
    if !ready() {
        return false;
    }
    for (var, default) in [
        ("TELNETD", "/var/cache/certbench-deps/telnetd"),
        ("SSHD", "/var/cache/certbench-deps/sshd"),
    ] {
        let path = std::env::var(var).unwrap_or_else(|_| default.into());
        if !std::path::Path::new(&path).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{path} is missing in CI (.ci/run extracts it)"
            );
            eprintln!("SKIPPED: {path} is missing");
            return false;
        }
    }
    true
}

/// A copy of a real-login profile with only its SSH service, in `dir` (beside the
/// fixture's folder layout, so its commands still find device.sh).
fn ssh_only(profile: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join(profile)).expect("profile");
    let (a, b) = (
        text.find("  - name: telnet\n").expect("telnet"),
        text.find("  - name: ssh\n").expect("ssh"),
    );
    let text = format!("{}{}", &text[..a], &text[b..]).replace(
        "{{profile_dir}}/../real-login",
        &format!("{}/fixtures/real-login", repo().display()),
    );
    let p = dir.join("ssh-only.yaml");
    std::fs::write(&p, text).expect("write");
    p
}

/// PWD-02 over telnet and SSH against Debian's login: an expired factory password only
/// opens the change dialog (PASS: no access before setup, the new password works, the old
/// one is dead); a factory password that is not expired gives a shell over telnet and over
/// SSH (FAIL, each on its own); an SSH server taking no passwords cannot be opened by one.
#[test]
fn factory_credentials_over_telnet_and_ssh_against_debian_login() {
    let _shared = shared();
    if !remote_ready() {
        return;
    }
    let (code, cases, d, out) = run_remote(
        "fixtures/devices/real-login-expired.yaml",
        &[],
        &["remote-factory-credentials"],
        None,
    );
    let c = &cases["remote-factory-credentials"];
    assert_eq!((code, c.status.as_str()), (Some(0), "pass"), "{c:?}\n{out}");
    let events = std::fs::read_to_string(d.path().join("results/events.jsonl")).expect("events");
    assert!(
        events.contains("ssh (ssh on 127.0.0.2:")
            && events.contains("took the credentials and demanded a new password"),
        "{events}"
    );
    let (code, cases, _d, out) = run_remote(
        "fixtures/devices/real-login-valid.yaml",
        &[],
        &["remote-factory-credentials"],
        None,
    );
    let c = &cases["remote-factory-credentials"];
    assert_eq!((code, c.status.as_str()), (Some(1), "failure"), "{c:?}\n{out}");
    assert!(
        c.message
            .contains("before setup, the factory password opens a remote service: telnet"),
        "{c:?}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ssh_only("fixtures/devices/real-login-valid.yaml", dir.path());
    let (code, cases, _d, out) = run_remote(p.to_str().expect("utf8"), &[], &["remote-factory-credentials"], None);
    let c = &cases["remote-factory-credentials"];
    assert_eq!((code, c.status.as_str()), (Some(1), "failure"), "{c:?}\n{out}");
    assert!(
        c.message.contains("opens a remote service: ssh (ssh on") && c.message.contains("logged in"),
        "{c:?}"
    );
    let p = ssh_only("fixtures/devices/real-login-expired.yaml", dir.path());
    let (code, cases, _d, out) = run_remote(
        p.to_str().expect("utf8"),
        &[("REAL_LOGIN_SSH_PASSWORDS", "no")],
        &["remote-factory-credentials"],
        None,
    );
    let c = &cases["remote-factory-credentials"];
    assert_eq!(
        (code, c.status.as_str()),
        (Some(0), "pass"),
        "keys only: no password opens it {c:?}\n{out}"
    );
}

/// PWD-09 against Debian's login: with pam_faillock (2 wrong → 15 s) the telnet brute force
/// is locked out and the right password works again (PASS); without it, wrong passwords are
/// answered over telnet and SSH every two seconds or so and the right one still works (FAIL). (PWD-03 against software
/// nobody here wrote: mosquitto in remote_login.rs; here Debian's two-second answers to a
/// wrong password would make the 120 sweep attempts take minutes.)
#[test]
fn brute_force_against_debian_login_with_and_without_faillock() {
    let _alone = TIMING.write().unwrap_or_else(|p| p.into_inner());
    if !remote_ready() {
        return;
    }
    // 12 attempts keep the test short (Debian's login answers a wrong password after its delay)
    let dir = tempfile::tempdir().expect("tempdir");
    let s = variant(
        "scenarios/brute-force-protection.yaml",
        "attempts: 100",
        "attempts: 12",
        dir.path(),
    );
    // With faillock the lockout is judged over telnet only: in suite runs the extracted sshd
    // sometimes did not count its failures in the tally (sshd.log: every "Failed password",
    // the tally empty, the right password taken at once) — certbench then rightly FAILs that
    // device, which made this test depend on the fixture's mood. The SSH brute force is
    // still exercised below (no lockout: FAIL) and against the simulated board.
    let faillock = [("REAL_LOGIN_AUTH", "faillock")];
    let telnet_only = {
        let text = std::fs::read_to_string(repo().join("fixtures/devices/real-login-expired.yaml")).expect("profile");
        let cut = text.find("  - name: ssh\n").expect("ssh");
        let text = text[..cut].replace(
            "{{profile_dir}}/../real-login",
            &format!("{}/fixtures/real-login", repo().display()),
        );
        let p = dir.path().join("telnet-only.yaml");
        std::fs::write(&p, text).expect("write");
        p
    };
    let (code, cases, d, out) = run_remote(telnet_only.to_str().expect("utf8"), &faillock, &[], Some(&s));
    let c = &cases["brute-force-protection"];
    assert_eq!((code, c.status.as_str()), (Some(0), "pass"), "{c:?}\n{out}");
    let events = std::fs::read_to_string(d.path().join("results/events.jsonl")).expect("events");
    assert!(
        events.contains("telnet (telnet on 127.0.0.2:")
            && events.matches("then the right one was refused (locked)").count() >= 1,
        "telnet locked out: {events}"
    );
    let (code, cases, _d, out) = run_remote("fixtures/devices/real-login-expired.yaml", &[], &[], Some(&s));
    let c = &cases["brute-force-protection"];
    assert_eq!((code, c.status.as_str()), (Some(1), "failure"), "{c:?}\n{out}");
    assert!(c.message.contains("nothing slows a brute force"), "{c:?}");
}

/// COM-03's SSH part against Debian's OpenSSH server: its default offer holds no weak
/// algorithm (PASS); a maker who turned diffie-hellman-group1-sha1, 3des-cbc and hmac-md5
/// back on fails, each named, with the offer as evidence.
#[test]
fn ssh_algorithms_against_debian_openssh() {
    let _shared = shared();
    if !remote_ready() {
        return;
    }
    // this device's power-on needs its account files: a factory reset first
    let dir = tempfile::tempdir().expect("tempdir");
    let s = variant(
        "scenarios/ssh-algorithms.yaml",
        "steps:\n",
        "steps:\n  - factory_reset: {}\n",
        dir.path(),
    );
    let (code, cases, d, out) = run_remote("fixtures/devices/real-login-expired.yaml", &[], &[], Some(&s));
    let c = &cases["ssh-algorithms"];
    assert_eq!(
        (code, c.status.as_str(), c.classname.as_str()),
        (Some(0), "pass", "COM-03"),
        "{c:?}\n{out}"
    );
    let offer =
        std::fs::read_to_string(d.path().join("results/scenarios/ssh-algorithms/ssh-offers.json")).expect("offer");
    assert!(
        offer.contains("curve25519-sha256") && offer.contains("SSH-2.0-OpenSSH"),
        "{offer}"
    );
    let (code, cases, _d, out) = run_remote(
        "fixtures/devices/real-login-expired.yaml",
        &[("REAL_LOGIN_SSH_WEAK", "yes")],
        &[],
        Some(&s),
    );
    let c = &cases["ssh-algorithms"];
    assert_eq!((code, c.status.as_str()), (Some(1), "failure"), "{c:?}\n{out}");
    for weak in ["diffie-hellman-group1-sha1", "3des-cbc", "hmac-md5"] {
        assert!(c.message.contains(weak), "{weak} named: {c:?}");
    }
}

/// PWD-07 over the network against Debian's passwd + PAM behind Debian's OpenSSH: the
/// maker's remote path (`password_command: passwd` on the SSH service) gets the same weak
/// passwords as the console. pam_pwquality refuses them at a shell (valid password) and in
/// the forced change at login (expired password: every refusal round ends the session, the
/// next login reopens the dialog, and the strong one is proven by logging in with it);
/// without a policy the first weak one is taken (FAIL).
/// `first_login`: the fixture scenario that offers them in the forced change of the first
/// SSH login (no console setup); the suite's scenario sets the owner's password on the
/// console first (pam_pwquality's `badwords` holds the factory password, as a maker would
/// configure it).
#[rstest::rstest]
#[case::policy_at_the_shell("fixtures/devices/real-login-valid.yaml", "", false, "pass")]
#[case::policy_after_a_forced_change("fixtures/devices/real-login-expired.yaml", "", false, "pass")]
#[case::policy_in_the_forced_change("fixtures/devices/real-login-expired.yaml", "", true, "pass")]
#[case::no_policy("fixtures/devices/real-login-valid.yaml", "none", false, "failure")]
fn remote_password_strength_against_debian_passwd_over_ssh(
    #[case] profile: &str,
    #[case] policy: &str,
    #[case] first_login: bool,
    #[case] want: &str,
) {
    let _shared = shared();
    if !remote_ready() {
        return;
    }
    let fixture = repo().join("fixtures/scenarios/remote-password-strength-first-login.yaml");
    let id = if first_login {
        "remote-password-strength-first-login"
    } else {
        "remote-password-strength"
    };
    let (code, cases, d, out) = run_remote(
        profile,
        &[("REAL_LOGIN_POLICY", policy)],
        &[id],
        first_login.then_some(fixture.as_path()),
    );
    let c = &cases[id];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    let shell = std::fs::read_to_string(d.path().join(format!("results/scenarios/{id}/remote-shell.txt")))
        .expect("the session's transcript");
    assert!(shell.contains("== SSH session to ssh"), "{shell}");
    if want == "pass" {
        assert_eq!(code, Some(0));
        assert!(shell.contains("BAD PASSWORD"), "pam_pwquality's refusals: {shell}");
        assert!(shell.contains("password updated successfully"), "{shell}");
        if first_login {
            // the strong password was proven by a login with it
            assert!(shell.matches("== SSH session to ssh").count() >= 2, "{shell}");
        }
    } else {
        assert_eq!(code, Some(1));
        assert!(
            c.message
                .starts_with("PWD-07: a short numeric password was not refused"),
            "{c:?}"
        );
    }
    assert_no_secret(&d.path().join("results"), &["Factory-Default-1"]);
}

/// PWD-08 on sessions against software nobody here wrote (issue 34): Debian's OpenSSH and
/// inetutils telnetd keep the sessions the old password opened after `passwd` — FAIL, on
/// the console's change and on the change over SSH; the same with a maker's hook that ends
/// the user's other sessions on a change (pam_exec in the password stack) — PASS.
#[rstest::rstest]
#[case::debian_default(&[], "failure")]
#[case::maker_hook(&[("REAL_LOGIN_END_SESSIONS", "yes")], "pass")]
fn debian_sshd_and_telnetd_sessions_survive_a_change_unless_the_maker_ends_them(
    #[case] env: &[(&str, &str)],
    #[case] want: &str,
) {
    if !remote_ready() {
        return;
    }
    const IDS: [&str; 2] = ["password-change-ends-sessions", "remote-password-change-ends-sessions"];
    let (_code, cases, _dir, out) = run_remote("fixtures/devices/real-login-valid.yaml", env, &IDS, None);
    for id in IDS {
        let c = &cases[id];
        assert_eq!(c.status, want, "{id}: {c:?}\n{out}");
        if want == "failure" {
            assert!(c.message.starts_with("PWD-08:"), "{c:?}");
            assert!(
                c.message.contains("telnet (telnet on"),
                "the telnet session is named: {c:?}"
            );
        }
    }
    if want == "failure" {
        assert!(
            cases["remote-password-change-ends-sessions"]
                .message
                .contains("the serial console"),
            "the console's session outlived the change over SSH: {:?}",
            cases["remote-password-change-ends-sessions"]
        );
    }
}

/// A device as labs get them, profiled from README alone: a CLI on the UART with no login
/// (`declarations.console_login: false`), the owner's account on Debian's OpenSSH with PAM
/// (the factory password expired: the first SSH login must change it; `passwd` with
/// pam_pwquality afterwards), and a status page anyone may read over TLS (`no_login`,
/// OpenSSL's s_server). Every check decides without an ERROR: the password is set over SSH
/// where the console has none, the console's CLI fails ATK-02 (a real finding), PWD-01 is not
/// applicable as declared, the status page's TLS is judged. The same device declared to
/// have a fixed password fails AUT-02 (5.1-4) and the checks that would change it are not
/// applicable.
#[test]
fn a_console_without_a_login_sets_the_password_over_ssh_and_a_fixed_password_fails_5_1_4() {
    if !remote_ready() {
        return;
    }
    let _t = shared();
    let profile = "fixtures/devices/real-login-cli-console.yaml";
    let only = [
        "console-access",
        "password-reset-enforcement",
        "password-changeable",
        "password-strength",
        "password-factory-reuse",
        "password-change-effective",
        "remote-factory-credentials",
        "remote-password-strength",
        "tls-service-config",
    ];
    let (code, cases, dir, log) = run_remote(profile, &[], &only, None);
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(cases.len(), only.len(), "{log}");
    let want = |id: &str| match id {
        "console-access" => "failure",
        "password-reset-enforcement" => "skipped",
        _ => "pass",
    };
    for id in only {
        assert_eq!(cases[id].status, want(id), "{id}: {:?}\n{log}", cases[id]);
    }
    assert!(
        cases["console-access"].message.starts_with("ATK-02:") && cases["console-access"].message.contains("cli> ")
    );
    assert!(
        cases["password-reset-enforcement"]
            .message
            .contains("console_login: false")
    );
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(
        events.contains("the console has no login (declared): the password is set over the network; a shell over ssh"),
        "{events}"
    );
    // the new password is proven by a login with it, judged by the SSH driver
    let attempts = std::fs::read_to_string(
        dir.path()
            .join("results/scenarios/password-changeable/remote-attempts.jsonl"),
    )
    .expect("attempts");
    assert!(
        attempts.contains("\"credential\":\"the password of this step\",\"outcome\":\"accepted\""),
        "{attempts}"
    );
    assert_no_secret(&dir.path().join("results"), &["Factory-Default-1"]);

    // the same device, its maker declaring the password cannot be changed
    let tmp = tempfile::tempdir().expect("tempdir");
    let fixed = variant(
        profile,
        "  console_login: false        # the UART has a CLI and no login\n",
        "  console_login: false\n  password_change: { applies: false, reason: \"the password is fixed in ROM\" }\n",
        tmp.path(),
    );
    let only = ["password-changeable", "password-strength", "default-credentials"];
    let (code, cases, _d, log) = run_remote(fixed.to_str().expect("utf8"), &[], &only, None);
    assert_eq!(code, Some(1), "{log}");
    let c = &cases["password-changeable"];
    assert_eq!(
        (c.status.as_str(), c.classname.as_str()),
        ("failure", "AUT-02"),
        "{c:?}"
    );
    assert!(
        c.message.contains("the password is fixed in ROM") && c.message.contains("5.1-4"),
        "{c:?}"
    );
    for id in ["password-strength", "default-credentials"] {
        assert_eq!(cases[id].status, "skipped", "{id}: {:?}", cases[id]);
        assert!(cases[id].message.contains("AUT-02"), "{:?}", cases[id]);
    }

    // no service to set the password on: not decided, saying what to declare
    let text = std::fs::read_to_string(repo().join(profile)).expect("profile");
    let text = text[..text.find("services:\n").expect("services")].replace(
        "{{profile_dir}}/../real-login",
        &format!("{}/fixtures/real-login", repo().display()),
    );
    let bare = tmp.path().join("no-services.yaml");
    std::fs::write(&bare, text).expect("write");
    let (code, cases, _d, log) = run_remote(bare.to_str().expect("utf8"), &[], &["password-changeable"], None);
    assert_eq!(code, Some(3), "{log}");
    let c = &cases["password-changeable"];
    assert_eq!(c.status, "error", "{c:?}");
    assert!(
        c.message
            .contains("declares no SSH or telnet service to set the password on")
            && c.message.contains("password_change: false"),
        "{c:?}"
    );
}

/// AUT-01 (5.1-3, issue 28) against Debian's own shadow and pam_unix: the forced change at
/// the first login stores the new password with yescrypt — PASS; a maker whose pam_unix
/// stores MD5-crypt (its factory hash made with `openssl passwd -1`) — FAIL, naming the
/// account and the scheme, never the hash.
#[rstest::rstest]
#[case::yescrypt("yescrypt", "pass")]
#[case::md5_crypt("md5", "failure")]
fn debians_password_store_is_judged_by_its_hash_scheme(#[case] hash: &str, #[case] want: &str) {
    let _shared = shared();
    if !ready() {
        return;
    }
    let r = Certbench::profile("fixtures/devices/real-login-expired.yaml")
        .env("REAL_LOGIN_FACTORY_PASSWORD", "Factory-Default-1")
        .env("REAL_LOGIN_HASH", hash)
        .env("REAL_LOGIN_SHADOW", "readable")
        // (PWD-01 runs first: it makes the factory state and sets the owner's password)
        .only("password-reset-enforcement")
        .only("password-storage")
        .run();
    let c = &r.by_id()["password-storage"];
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    if want == "failure" {
        assert!(
            c.message.starts_with("AUT-01") && c.message.contains("certtest (MD5-crypt)"),
            "{c:?}"
        );
    }
    let store = std::fs::read_to_string(r.results().join("scenarios/password-storage/password-store.json"))
        .expect("password-store.json");
    let scheme = if hash == "md5" { "MD5-crypt" } else { "yescrypt" };
    assert!(store.contains("\"certtest\"") && store.contains(scheme), "{store}");
    assert!(
        !store.contains("$1$") && !store.contains("$y$"),
        "no hash is shown: {store}"
    );
    // nor in any transcript: the hashes the device printed are redacted like passwords
    assert_no_secret(&r.results(), &["Factory-Default-1", "$1$", "$y$", "$6$"]);
}

/// VUL-03 on software nobody here wrote: Debian's sshd as the device's SSH service. Its
/// banner (SSH-2.0-OpenSSH_9.2p1 Debian-…) and `sshd -V` at the device's shell (OpenSSL's
/// version) are what the running device says it ships; an SBOM as syft writes it for these
/// Debian packages (the versions dpkg reports here) describes it: PASS. The same SBOM naming
/// OpenSSH 9.6p1 does not: FAIL, naming the banner.
#[test]
fn debians_sshd_reports_the_versions_its_sbom_must_list() {
    if !remote_ready() {
        return;
    }
    let _t = shared();
    let version = |p: &str| {
        std::fs::read_to_string(format!("/var/cache/certbench-deps/vstrings/{p}.version"))
            .ok()
            .or_else(|| {
                let o = std::process::Command::new("dpkg-query")
                    .args(["-W", "-f=${Version}", p])
                    .output()
                    .ok()?;
                Some(String::from_utf8_lossy(&o.stdout).to_string())
            })
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let (Some(ssh), Some(ssl)) = (version("openssh-server"), version("libssl3")) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "under CI both packages' versions are known"
        );
        return;
    };
    let upstream = |v: &str| {
        v.split_once(':')
            .map_or(v, |(_, r)| r)
            .rsplit_once('-')
            .map_or(v.to_string(), |(u, _)| u.to_string())
    };
    for (listed, want) in [(upstream(&ssh), "pass"), ("9.6p1".to_string(), "failure")] {
        let sbom = format!(
            r#"{{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{{"timestamp":"2026-11-20T00:00:00Z"}},"components":[
              {{"type":"library","name":"openssh-server","version":"{ssh_v}","purl":"pkg:deb/debian/openssh-server@{ssh_v}?arch=amd64&upstream=openssh&distro=debian-12","cpe":"cpe:2.3:a:openbsd:openssh:{listed}:*:*:*:*:*:*:*"}},
              {{"type":"library","name":"libssl3","version":"{ssl}","purl":"pkg:deb/debian/libssl3@{ssl}?arch=amd64&upstream=openssl&distro=debian-12"}}]}}"#,
            ssh_v = if want == "pass" {
                ssh.clone()
            } else {
                format!("1:{listed}-1")
            },
        );
        let (dir, p) = edited_profile(
            "fixtures/devices/real-login-valid.yaml",
            &[(
                "declarations:",
                // (the device's accounts are made by its factory reset: once, before the run)
                "software:\n  sbom: sbom.cdx.json\n  components_command: /var/cache/certbench-deps/sshd -V\nsetup:\n  - \"{{profile_dir}}/../real-login/device.sh factory-reset {{workdir}}/state valid\"\ndeclarations:",
            )],
        );
        std::fs::write(dir.path().join("sbom.cdx.json"), sbom).expect("sbom");
        let (code, cases, results, log) = run_remote(p.to_str().expect("utf8"), &[], &["sbom-describes-device"], None);
        let c = &cases["sbom-describes-device"];
        assert_eq!(c.status, want, "{c:?}\n{log}");
        let events = std::fs::read_to_string(results.path().join("results/events.jsonl")).expect("events");
        if want == "pass" {
            assert_eq!(code, Some(0), "{log}");
            assert!(
                events.contains(&format!("openssh {} (the device)", upstream(&ssh))) && events.contains("openssl "),
                "{events}"
            );
        } else {
            assert!(
                c.message
                    .contains(&format!("openssh {} (the device: the banner of ssh", upstream(&ssh)))
                    && c.message.contains("is listed in the SBOM as version 1:9.6p1-1"),
                "{c:?}"
            );
        }
    }
}
