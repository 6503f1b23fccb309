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
