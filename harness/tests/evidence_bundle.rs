//! Every run folder gets a manifest; `certbench verify` names any file changed by even one
//! byte, checks the lab's signature, and refuses a manifest signed by another key.

mod common;

use common::*;

#[test]
fn verify_detects_a_one_byte_change_in_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("lab.key");
    let k = certbench(&["keygen", "--out", key.to_str().expect("utf8")]);
    let pubkey = String::from_utf8_lossy(&k.stdout).trim().to_string();
    assert_eq!(pubkey.len(), 64, "{}", text(&k));
    let res = dir.path().join("results");
    let o = certbench(&[
        "run",
        "--skip-setup",
        "--only",
        "password-reset-enforcement",
        "--sign-key",
        key.to_str().expect("utf8"),
        "--lab-name",
        "Bench 3",
        "--operator",
        "QA",
        "--out",
        res.to_str().expect("utf8"),
        "--workdir",
        dir.path().join("w").to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in [
        "report.html",
        "report.json",
        "junit.xml",
        "events.jsonl",
        "manifest.json",
        "manifest.sig",
    ] {
        assert!(res.join(f).exists(), "{f} is written by every run");
    }
    let v = certbench(&["verify", res.to_str().expect("utf8"), "--pubkey", &pubkey]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("manifest.json")).expect("manifest")).expect("json");
    let files: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_string())
        .collect();
    assert!(files.len() >= 6, "{files:?}");
    for f in &files {
        let p = res.join(f);
        let original = std::fs::read(&p).expect("read");
        let mut changed = original.clone();
        if changed.is_empty() {
            changed.push(b'x');
        } else {
            changed[0] ^= 0x01;
        }
        std::fs::write(&p, &changed).expect("tamper");
        let v = certbench(&["verify", res.to_str().expect("utf8"), "--pubkey", &pubkey]);
        assert_eq!(v.status.code(), Some(1), "{f}: {}", text(&v));
        assert!(text(&v).contains(&format!("CHANGED  {f}")), "{f}: {}", text(&v));
        std::fs::write(&p, &original).expect("restore");
    }
    // a signature by another key is refused
    let other = "0".repeat(64);
    let v = certbench(&["verify", res.to_str().expect("utf8"), "--pubkey", &other]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(text(&v).contains("INVALID"), "{}", text(&v));
    let html = std::fs::read_to_string(res.join("report.html")).expect("report");
    for needle in [
        "Bench 3",
        "ETSI EN 303 645",
        "V2.1.1",
        "Decision rule",
        "SimBoard SB-1",
        "results in this report relate only to the item tested",
    ] {
        assert!(html.contains(needle), "report lacks {needle:?}");
    }
}

/// A result file that cannot be written makes the run exit 3, whatever the verdicts: its
/// evidence is incomplete (here report.html is blocked, mid-run, by a folder of that name).
/// A results folder that is not empty is refused before anything runs (exit 2).
#[test]
fn results_that_cannot_be_written_exit_3_and_a_used_folder_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("results");
    let child = std::process::Command::new(bin())
        .current_dir(repo())
        .args(["run", "-d", "fixtures/devices/power-only.yaml", "--set", "flaky=no"])
        .args(["-s", "fixtures/scenarios/brief-power.yaml", "--out"])
        .arg(&res)
        .arg("--workdir")
        .arg(dir.path().join("w"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !res.join("events.jsonl").exists() {
        assert!(std::time::Instant::now() < deadline, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::create_dir_all(res.join("report.html")).expect("blocker");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("could not all be written"), "{}", text(&o));
    // the folder now holds a run: a second run into it is refused
    let again = certbench(&[
        "run",
        "-d",
        "fixtures/devices/power-only.yaml",
        "--set",
        "flaky=no",
        "--out",
        res.to_str().expect("utf8"),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));
}

/// `verify` trusts only keys it is given: a signed bundle without --pubkey/--known-keys is
/// not intact (anyone can re-sign), an unsigned one only with --allow-unsigned, and the key
/// it trusted is printed.
#[test]
fn verify_trusts_only_the_keys_it_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("lab.key");
    let k = certbench(&["keygen", "--out", key.to_str().expect("utf8")]);
    let pubkey = String::from_utf8_lossy(&k.stdout).trim().to_string();
    let run = |out: &std::path::Path, sign: bool| {
        let mut args = vec![
            "run",
            "-d",
            "fixtures/devices/power-only.yaml",
            "--set",
            "flaky=no",
            "--only",
            "update-auto-default",
            "--out",
            out.to_str().expect("utf8"),
        ];
        if sign {
            args.extend(["--sign-key", key.to_str().expect("utf8")]);
        }
        certbench(&args);
    };
    let signed = dir.path().join("signed");
    run(&signed, true);
    let s = signed.to_str().expect("utf8");
    let v = certbench(&["verify", s]);
    assert_eq!(v.status.code(), Some(1), "no trusted key: {}", text(&v));
    assert!(text(&v).contains("no trusted lab key was given"), "{}", text(&v));
    let known = dir.path().join("known-keys");
    std::fs::write(&known, format!("# lab keys\n{pubkey}  # bench 3\n")).expect("write");
    let v = certbench(&["verify", s, "--known-keys", known.to_str().expect("utf8")]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(text(&v).contains(&format!("trusted lab key {pubkey}")), "{}", text(&v));

    let unsigned = dir.path().join("unsigned");
    run(&unsigned, false);
    let u = unsigned.to_str().expect("utf8");
    assert_eq!(
        certbench(&["verify", u]).status.code(),
        Some(1),
        "unsigned is not intact"
    );
    let v = certbench(&["verify", u, "--allow-unsigned"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(text(&v).contains("anyone could have re-generated them"), "{}", text(&v));
}
