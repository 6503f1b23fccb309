//! AUT-01 / 5.5-7 (issue 28): credentials only over encryption. Every remote login service
//! certbench knows — declared, or found by the port scan — that is neither TLS-wrapped nor
//! SSH is given one login attempt with a throwaway password (random, no account's): a
//! service that decides on it (refuses it, takes it, or asks for a new one) read a password
//! sent in clear, whatever the password — FAIL. One that takes no passwords passes; one
//! that gives no decision within 30 s (tried again each second: the device may be booting)
//! leaves it undecided (ERROR): silence is not evidence.

use super::prelude::*;
use crate::config::services::ServiceKind;
use crate::remote::{Login, Outcome};

/// How long a service that gives no decision is tried again (a device still booting).
const BOOTING: Duration = Duration::from_secs(30);

impl Run<'_> {
    /// `clear_logins`: which login services read a password sent in clear.
    pub(in crate::engine) async fn clear_logins(&mut self) -> StepResult {
        let targets = self.targets(true)?;
        let (clear, encrypted): (Vec<_>, Vec<_>) = targets
            .iter()
            .partition(|t| !t.service.tls && t.service.kind != ServiceKind::Ssh);
        let encrypted_words: Vec<String> = encrypted.iter().map(|t| t.describe()).collect();
        if clear.is_empty() {
            return Ok(format!(
                "every login service is encrypted: {}",
                encrypted_words.join(", ")
            ));
        }
        let user = self
            .bench
            .current
            .as_ref()
            .map_or("admin".to_string(), |l| l.user.clone());
        let (mut took, mut undecided, mut fine) = (Vec::new(), Vec::new(), Vec::new());
        // a device just powered on may still be starting its services
        let until = Instant::now() + BOOTING;
        for t in clear {
            // a password no account has: nothing real crosses the wire
            let throwaway = crate::redact::generate_password(20);
            let mut tried = t.attempt(&user, &throwaway).await;
            while matches!(tried.outcome, Outcome::Unanswered(_)) && Instant::now() < until {
                tokio::time::sleep(Duration::from_secs(1)).await;
                tried = t.attempt(&user, &throwaway).await;
            }
            let said = shown(&self.bench.redactor, &tried.detail);
            match tried.outcome {
                Outcome::Accepted | Outcome::Rejected | Outcome::PasswordChange => took.push(format!(
                    "{} read a password sent in clear ({}: {said})",
                    t.describe(),
                    tried.outcome.word()
                )),
                Outcome::NoPasswords(m) => fine.push(format!("{} takes no passwords ({m})", t.describe())),
                Outcome::Unanswered(why) => undecided.push(format!("{}: {why}", t.describe())),
            }
        }
        if !took.is_empty() {
            return Err(Stop::Fail {
                check: Some("AUT-01".into()),
                reason: format!("AUT-01: credentials over an unencrypted channel — {}", took.join("; ")),
            });
        }
        if !undecided.is_empty() {
            return Err(Stop::Error(format!(
                "no decision on a login in clear, so whether it reads passwords is not known: {}",
                undecided.join("; ")
            )));
        }
        Ok(format!(
            "no login service reads a password in clear: {}{}",
            fine.join(", "),
            if encrypted_words.is_empty() {
                String::new()
            } else {
                format!("; encrypted: {}", encrypted_words.join(", "))
            }
        ))
    }
}
