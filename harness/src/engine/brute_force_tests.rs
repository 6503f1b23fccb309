//! PWD-09 in process, against scripted login services on loopback: each way a device can
//! make a brute force look slowed without slowing it (holding wrong guesses unanswered,
//! slowing each connection only, dropping connections, falling over) gets its verdict, and
//! a device that really slows the guesses passes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use super::run_scenario;
use crate::config::resolver::Overrides;
use crate::redact::Redactor;
use crate::report::events::{ScenarioResult, Verdict};

const RIGHT: &str = "right-pw-8217";

/// How the scripted service treats a wrong password.
#[derive(Debug, Clone, Copy)]
enum Wrong {
    /// Never answers it (holds the connection).
    Holds,
    /// Answers after this long, each connection on its own.
    PerConnection(Duration),
    /// Answers one wrong password per this long across all connections.
    Global(Duration),
    /// After this many wrong ones in a row, closes every connection for a while.
    DropsFor(u32, Duration),
    /// After this many wrong ones, stops serving for good.
    FallsOver(u32),
    /// Answers at once, echoing what it was sent with colour codes between the letters;
    /// the right password is echoed too, a kilobyte before the prompt (where an evidence
    /// window cuts it).
    Echoes,
}

#[derive(Debug, Default)]
struct Shared {
    next_answer: Option<Instant>,
    wrong_in_row: u32,
    closed_until: Option<Instant>,
    dead: bool,
}

async fn service(mode: Wrong) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let shared = Arc::new(Mutex::new(Shared::default()));
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let shared = shared.clone();
            {
                let g = shared.lock().await;
                if g.dead {
                    return; // the listener goes with the task: connections are refused
                }
                if g.closed_until.is_some_and(|u| Instant::now() < u) {
                    continue; // dropped at once
                }
            }
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                loop {
                    let _ = w.write_all(b"login: ").await;
                    let Ok(Some(_user)) = lines.next_line().await else {
                        return;
                    };
                    let _ = w.write_all(b"Password: ").await;
                    let Ok(Some(pw)) = lines.next_line().await else { return };
                    if pw.trim_end() == RIGHT {
                        shared.lock().await.wrong_in_row = 0;
                        if matches!(mode, Wrong::Echoes) {
                            let filler = "=".repeat(1010);
                            let _ = w.write_all(format!("\r\nwelcome {RIGHT}{filler}").as_bytes()).await;
                        }
                        let _ = w.write_all(b"\r\nwelcome\r\n$ ").await;
                        let _ = lines.next_line().await;
                        return;
                    }
                    let wait = {
                        let mut g = shared.lock().await;
                        g.wrong_in_row += 1;
                        match mode {
                            Wrong::Holds => None,
                            Wrong::PerConnection(d) => Some(d),
                            Wrong::Global(d) => {
                                let now = Instant::now();
                                let at = g.next_answer.map_or(now, |n| n.max(now)) + d;
                                g.next_answer = Some(at);
                                Some(at - now)
                            }
                            Wrong::DropsFor(k, d) => {
                                if g.wrong_in_row >= k {
                                    g.wrong_in_row = 0;
                                    g.closed_until = Some(Instant::now() + d);
                                }
                                Some(Duration::ZERO)
                            }
                            Wrong::Echoes => {
                                let coloured: String = pw.trim_end().chars().map(|c| format!("{c}\x1b[1m")).collect();
                                let _ = w.write_all(format!("\r\nyou typed {coloured}\x1b[0m").as_bytes()).await;
                                Some(Duration::ZERO)
                            }
                            Wrong::FallsOver(k) => {
                                if g.wrong_in_row >= k {
                                    g.dead = true;
                                    return;
                                }
                                Some(Duration::ZERO)
                            }
                        }
                    };
                    match wait {
                        None => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        Some(d) => tokio::time::sleep(d).await,
                    }
                    let _ = w.write_all(b"\r\nLogin incorrect\r\n").await;
                }
            });
        }
    });
    port
}

fn profile(port: u16, throttle: &str, timeout: &str) -> String {
    format!(
        r#"identity: {{ vendor: test, model: brute, hardware_revision: "0" }}
credentials:
  factory: {{ user: admin, password: {{ value: {RIGHT} }} }}
network:
  address: 127.0.0.1
services:
  - name: telnet
    kind: telnet
    port: "{port}"
    timeout: {timeout}
    prompts: {{ login: 'login: $', password: 'Password: $', shell: '\$ $', login_rejected: 'Login incorrect' }}
    {throttle}
"#
    )
}

fn scenario(attempts: u32, max_rate: u32) -> String {
    format!(
        r#"id: brute
title: Guessing passwords over the network is made impracticable
evidences: {{ requirements: [3], provisions: ["5.1-5"], checks: [PWD-09] }}
requires: {{ interfaces: [remote_login] }}
timeout: 10m
steps:
  - brute_force: {{ attempts: {attempts}, max_rate: {max_rate}, unlock_within: 8s }}
"#
    )
}

async fn run(mode: Wrong, throttle: &str, attempts: u32, max_rate: u32, dir: &Path) -> ScenarioResult {
    let redactor = Redactor::default();
    redactor.add_public("admin");
    redactor.add("factory.password", RIGHT);
    let port = service(mode).await;
    // a service that holds a guess is given up on after 1 s; the others answer within 5 s
    let timeout = if matches!(mode, Wrong::Holds) { "1s" } else { "5s" };
    std::fs::write(dir.join("board.yaml"), profile(port, throttle, timeout)).expect("write profile");
    std::fs::write(dir.join("brute.yaml"), scenario(attempts, max_rate)).expect("write scenario");
    let device = crate::config::device::load(&dir.join("board.yaml"), None, &Overrides::default()).expect("profile");
    let sc = crate::config::scenario::load(&dir.join("brute.yaml")).expect("scenario");
    let mut bench = super::tests::bench(device, None, None, redactor, dir);
    run_scenario(&mut bench, &sc, &dir.join("evidence"), "evidence", |_| {}).await
}

fn reason(r: &ScenarioResult) -> String {
    r.reason.clone().unwrap_or_default()
}

#[tokio::test]
async fn wrong_passwords_held_unanswered_are_no_slowed_guesses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(Wrong::Holds, "", 6, 10, dir.path()).await;
    assert_eq!(r.verdict, Verdict::Error, "{r:?}");
    assert!(
        reason(&r).contains("gave no decision on 6 of 6 wrong passwords"),
        "{}",
        reason(&r)
    );
}

#[tokio::test]
async fn a_device_that_slows_each_connection_but_not_the_guesses_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(
        Wrong::PerConnection(Duration::from_millis(1500)),
        "",
        12,
        60,
        dir.path(),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    assert_eq!(r.check.as_deref(), Some("PWD-09"));
    assert!(
        reason(&r).contains("slows each connection but not the guesses"),
        "{}",
        reason(&r)
    );
    let attempts = std::fs::read_to_string(dir.path().join("evidence/remote-attempts.jsonl")).expect("attempts");
    assert!(
        attempts.contains("(parallel, connection 8)"),
        "every connection is in the evidence"
    );
    assert!(!attempts.contains("cb-wrong-"), "guesses are named, never written");
}

#[tokio::test]
async fn a_device_that_slows_the_guesses_across_connections_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(Wrong::Global(Duration::from_millis(1500)), "", 12, 60, dir.path()).await;
    assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    let detail = &r.steps.last().expect("step").detail;
    assert!(detail.contains("on 8 connections at once"), "{detail}");
}

#[tokio::test]
async fn a_dropped_connection_is_a_lockout_only_when_the_maker_declares_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mode = Wrong::DropsFor(3, Duration::from_secs(6));
    let r = run(mode, "", 12, 60, dir.path()).await;
    assert_eq!(r.verdict, Verdict::Error, "{r:?}");
    assert!(reason(&r).contains("while_locked: drops"), "{}", reason(&r));
    let dir = tempfile::tempdir().expect("tempdir");
    let declared = "throttle: { after: 3, unlock: 6s, while_locked: drops }";
    let r = run(mode, declared, 12, 60, dir.path()).await;
    assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
}

#[tokio::test]
async fn a_service_that_falls_over_under_wrong_passwords_fails_as_a_denial_of_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(Wrong::FallsOver(4), "", 12, 10, dir.path()).await;
    assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    assert!(reason(&r).contains("denial of service"), "{}", reason(&r));
}

#[tokio::test]
async fn a_device_that_echoes_passwords_with_colour_codes_or_across_a_window_edge_leaks_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(Wrong::Echoes, "", 12, 10, dir.path()).await;
    assert_eq!(r.verdict, Verdict::Fail, "nothing slows it: {r:?}");
    let attempts = std::fs::read_to_string(dir.path().join("evidence/remote-attempts.jsonl")).expect("attempts");
    assert!(attempts.contains("you typed <secret:password>"), "{attempts}");
    for leak in ["cb-wrong-", "8217", "right-pw"] {
        assert!(!attempts.contains(leak), "{leak} in {attempts}");
    }
}
