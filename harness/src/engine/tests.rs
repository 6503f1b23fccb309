//! The engine in process: a scripted board behind the fake console transport and fake power
//! (no PTY, no process), a profile and a scenario written here, the verdict and evidence read
//! back. Each check's flawed board turns it red; the good board passes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{Rig, run_scenario};
use crate::config::resolver::Overrides;
use crate::power::Action;
use crate::power::fake::FakePower;
use crate::redact::Redactor;
use crate::report::events::{ScenarioResult, Verdict};

const PROFILE: &str = r#"identity: { vendor: test, model: in-process, hardware_revision: "0" }
console:
  port: fake
  prompts:
    login: 'login: $'
    password: 'Password: $'
    shell: '\$ $'
    login_rejected: 'Login incorrect'
    password_change: 'required to change your password'
    new_password: 'New password: $'
    confirm_password: 'Retype new password: $'
    password_rejected: 'do not match|too short'
  boot_time: 2s
  wake_after: 100ms
credentials:
  factory: { user: admin, password: { value: factory-pw-1 } }
declarations:
  console_login: true
"#;

const SCENARIO: &str = r#"id: forced-change
title: The factory password must be replaced at first login
evidences: { requirements: [3], provisions: ["5.1-1"], checks: [PWD-01] }
requires: { interfaces: [console, power, factory_credentials] }
variables:
  strong: { generate: password, length: 20 }
timeout: 30s
steps:
  - power: cycle
  - login:
      user: "{{factory.user}}"
      password: "{{factory.password}}"
      expect: password_change
      within: 3s
      otherwise: { verdict: fail, check: PWD-01, reason: "factory credentials must force a password change, but {{outcome}}" }
  - change_password:
      new: "{{strong}}"
      expect: accepted
      otherwise: { verdict: error, reason: "a strong password was refused" }
"#;

/// What the scripted board does; `forced: false` is the flaw (the factory password gives a
/// shell), `alive: false` a board that never answers.
#[derive(Debug, Clone, Copy)]
struct Traits {
    forced: bool,
    alive: bool,
}

#[derive(Debug)]
enum St {
    Login,
    Password(String),
    Shell,
    NewPassword,
    Confirm(String),
}

#[derive(Debug)]
struct Board {
    traits: Traits,
    st: St,
    password: String,
    changed: bool,
}

impl Board {
    fn answer(&mut self, line: &str) -> Vec<u8> {
        if !self.traits.alive {
            return Vec::new();
        }
        let (next, out) = match std::mem::replace(&mut self.st, St::Login) {
            St::Login if line.is_empty() => (St::Login, "login: ".to_string()),
            St::Login => (St::Password(line.to_string()), "Password: ".into()),
            St::Password(user) if user == "admin" && line == self.password => {
                if self.traits.forced && !self.changed {
                    (
                        St::NewPassword,
                        "You are required to change your password immediately\r\nNew password: ".into(),
                    )
                } else {
                    (St::Shell, "\r\n$ ".into())
                }
            }
            St::Password(_) => (St::Login, "\r\nLogin incorrect\r\nlogin: ".into()),
            St::NewPassword if line.len() < 12 => (St::NewPassword, "too short\r\nNew password: ".into()),
            St::NewPassword => (St::Confirm(line.to_string()), "Retype new password: ".into()),
            St::Confirm(p) if p == line => {
                self.password = p;
                self.changed = true;
                (St::Shell, "password updated\r\n$ ".into())
            }
            St::Confirm(_) => (St::NewPassword, "do not match\r\nNew password: ".into()),
            St::Shell if line == "exit" => (St::Login, "login: ".into()),
            St::Shell => (St::Shell, "$ ".into()),
        };
        self.st = next;
        out.into_bytes()
    }
}

/// A bench for an in-process run: no network bench, no update bench, no link; the factory
/// credentials are the current ones.
pub(super) fn bench(
    device: crate::config::device::Device,
    console: Option<crate::console::Console>,
    power: Option<Box<dyn crate::power::Power>>,
    redactor: Redactor,
    dir: &Path,
) -> Rig {
    Rig {
        state: crate::engine::BoardState::default(),
        current: device.factory.clone(),
        device,
        console,
        power,
        redactor,
        command_vars: BTreeMap::new(),
        command_cwd: dir.to_path_buf(),
        net: None,
        update: None,
        gateway: crate::gateway::Gateway::default(),
        planted: Vec::new(),
        planted_at: None,
    }
}

/// Runs SCENARIO against a board with these traits; returns the result, the power log and
/// the evidence folder.
async fn run(traits: Traits, dir: &Path) -> (ScenarioResult, Vec<Action>) {
    std::fs::write(dir.join("board.yaml"), PROFILE).expect("write profile");
    std::fs::write(dir.join("forced-change.yaml"), SCENARIO).expect("write scenario");
    let device = crate::config::device::load(&dir.join("board.yaml"), None, &Overrides::default()).expect("profile");
    let sc = crate::config::scenario::load(&dir.join("forced-change.yaml")).expect("scenario");
    let board = Arc::new(Mutex::new(Board {
        traits,
        st: St::Login,
        password: "factory-pw-1".into(),
        changed: false,
    }));
    let b = board.clone();
    let (console, feed) = crate::console::fake::console(Box::new(move |line| b.lock().expect("board").answer(line)));
    let b = board.clone();
    let power = FakePower::new(Box::new(move || {
        let mut g = b.lock().expect("board");
        g.st = St::Login;
        if g.traits.alive {
            feed.rx(b"fake board booting\r\nlogin: ");
        }
    }));
    let log = power.log.clone();
    let mut bench = bench(device, Some(console), Some(Box::new(power)), Redactor::default(), dir);
    let result = run_scenario(&mut bench, &sc, &dir.join("evidence"), "evidence", |_| {}).await;
    let actions = log.lock().expect("log").clone();
    (result, actions)
}

#[tokio::test]
async fn a_board_that_forces_the_change_passes_and_its_evidence_holds_no_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r, power) = run(
        Traits {
            forced: true,
            alive: true,
        },
        dir.path(),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    assert_eq!(power, [Action::Cycle]);
    assert_eq!(r.steps.len(), 3);
    let log = std::fs::read_to_string(dir.path().join("evidence/console.log")).expect("console.log");
    assert!(
        log.contains("New password:") && log.contains("<secret:strong>"),
        "{log}"
    );
    assert!(
        !log.contains("factory-pw-1"),
        "the factory password is shown by name only"
    );
}

#[tokio::test]
async fn a_board_whose_factory_password_gives_a_shell_fails_pwd01_saying_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r, _) = run(
        Traits {
            forced: false,
            alive: true,
        },
        dir.path(),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    assert_eq!(r.check.as_deref(), Some("PWD-01"));
    let reason = r.reason.unwrap_or_default();
    assert!(reason.contains("the device gave a shell"), "{reason}");
    assert_eq!(r.deciding_step, Some(2));
}

#[tokio::test]
async fn a_silent_board_is_an_error_never_a_verdict_on_the_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r, _) = run(
        Traits {
            forced: true,
            alive: false,
        },
        dir.path(),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Error, "{r:?}");
    let reason = r.reason.unwrap_or_default();
    assert!(
        reason.contains("no login prompt within 3s"),
        "the cause is named: {reason}"
    );
}
