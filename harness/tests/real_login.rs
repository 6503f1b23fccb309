//! Proof against a console nobody here wrote: Debian's /bin/login with PAM on a PTY (see
//! fixtures/real-login/device.sh). Only the device profile differs from the simulated
//! board's run; the scenario is the same file.

mod common;

use common::*;

/// What the real-login device needs; in CI (.ci/run installs it) a gap is a failure.
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
    let out = tempfile::tempdir().expect("tempdir");
    let res = out.path().join("results");
    let o = std::process::Command::new(bin())
        .current_dir(repo())
        .env("REAL_LOGIN_FACTORY_PASSWORD", "Factory-Default-1")
        .args(["run", "-d", profile, "--only", "password-reset-enforcement", "--out"])
        .arg(&res)
        .arg("--workdir")
        .arg(out.path().join("work"))
        .output()
        .expect("run certbench");
    let cases = junit(&res.join("junit.xml"));
    for f in [
        "junit.xml",
        "events.jsonl",
        "scenarios/password-reset-enforcement/console.log",
    ] {
        let t = std::fs::read_to_string(res.join(f)).unwrap_or_default();
        assert!(!t.contains("Factory-Default-1"), "{f} leaks the factory password");
    }
    (o.status.code(), cases, text(&o))
}

#[test]
fn real_login_with_expired_password_passes() {
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
    if !ready() {
        return;
    }
    let (code, cases, out) = run_real("fixtures/devices/real-login-valid.yaml");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(cases[0].status, "failure", "{cases:?}");
    assert!(cases[0].message.starts_with("PWD-01:"), "{cases:?}");
    assert!(cases[0].message.contains("gave a shell"), "{cases:?}");
}
