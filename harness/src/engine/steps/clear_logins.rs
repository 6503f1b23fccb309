//! AUT-01 / 5.5-7 (issue 28): credentials only over encryption. Every remote login service
//! certbench knows — declared, or found by the port scan — that is neither TLS-wrapped nor
//! SSH is given one login attempt with a throwaway password (random, no account's): a
//! service that decides on it (refuses it, takes it, or asks for a new one) read a password
//! sent in clear, whatever the password — FAIL. One that takes no passwords passes; one
//! that gives no decision within 30 s (tried again each second: the device may be booting)
//! leaves it undecided (ERROR): silence is not evidence.
//!
//! Two ways a password leaks although the login itself is encrypted are findings too
//! (5.1-3): HTTP Digest offering MD5 only (the hash a captured exchange is cracked from),
//! and a login form on an HTTPS page whose `action` posts to plain HTTP.

use super::prelude::*;
use crate::config::services::ServiceKind;
use crate::remote::target::{Target, printable};
use crate::remote::{LoginAnswer, LoginDriver, http};

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
        let user = self
            .rig
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
            while matches!(tried.outcome, LoginAnswer::Unanswered(_)) && Instant::now() < until {
                tokio::time::sleep(Duration::from_secs(1)).await;
                tried = t.attempt(&user, &throwaway).await;
            }
            let said = shown(&self.rig.redactor, &tried.detail);
            match tried.outcome {
                LoginAnswer::Accepted | LoginAnswer::Rejected | LoginAnswer::PasswordChange => took.push(format!(
                    "{} read a password sent in clear ({}: {said})",
                    t.describe(),
                    tried.outcome.word()
                )),
                LoginAnswer::NoPasswords(m) => fine.push(format!("{} takes no passwords ({m})", t.describe())),
                LoginAnswer::Unanswered(why) => undecided.push(format!("{}: {why}", t.describe())),
            }
        }
        // the encrypted ones must really be: a TLS handshake each (SSH is encrypted by its
        // protocol), tried through the boot window; none means the declaration is untested
        for t in encrypted.iter().filter(|t| t.service.tls) {
            let mut shook = crate::remote::target::connect(t).await.map(drop);
            while shook.is_err() && Instant::now() < until {
                tokio::time::sleep(Duration::from_secs(1)).await;
                shook = crate::remote::target::connect(t).await.map(drop);
            }
            if let Err(e) = shook {
                undecided.push(format!(
                    "{} is declared TLS but gave no TLS handshake: {e}",
                    t.describe()
                ));
            }
        }
        // how the encrypted ones take the password (and the clear Digest ones' hash)
        let mut weak = Vec::new();
        for t in &targets {
            match t.service.kind {
                ServiceKind::HttpDigest => digest_md5(t, until, &mut weak, &mut fine, &mut undecided).await,
                ServiceKind::HttpForm if t.service.tls => form_posts(t, until, &mut weak, &mut fine).await,
                _ => {}
            }
        }
        if !took.is_empty() || !weak.is_empty() {
            let mut said = Vec::new();
            if !took.is_empty() {
                said.push(format!("credentials over an unencrypted channel — {}", took.join("; ")));
            }
            if !weak.is_empty() {
                said.push(format!("passwords exposed by how they are sent — {}", weak.join("; ")));
            }
            return Err(Stop::Fail {
                check: Some("AUT-01".into()),
                reason: format!("AUT-01: {}", said.join(". ")),
            });
        }
        if !undecided.is_empty() {
            return Err(Stop::Error(format!(
                "no decision on a login in clear, so whether it reads passwords is not known: {}",
                undecided.join("; ")
            )));
        }
        Ok(format!(
            "no login service reads a password in clear{}{}",
            if fine.is_empty() {
                String::new()
            } else {
                format!(": {}", fine.join(", "))
            },
            if encrypted_words.is_empty() {
                String::new()
            } else {
                format!("; encrypted: {}", encrypted_words.join(", "))
            }
        ))
    }
}

/// HTTP Digest offering MD5 only: a captured exchange gives an MD5 of the password to crack
/// offline (RFC 7616 keeps MD5 only for backward compatibility) — a finding (5.1-3), over
/// TLS or not. No challenge read within the boot window is undecided.
async fn digest_md5(
    t: &Target,
    until: Instant,
    weak: &mut Vec<String>,
    fine: &mut Vec<String>,
    undecided: &mut Vec<String>,
) {
    let mut offer = http::digest_offer(t).await;
    while offer.is_err() && Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        offer = http::digest_offer(t).await;
    }
    match offer {
        Ok((_, algs)) if !algs.is_empty() && algs.iter().all(|a| http::is_md5(a)) => weak.push(format!(
            "{} offers HTTP Digest with MD5 only ({}): a captured login gives the password's MD5 to crack offline (5.1-3)",
            t.describe(),
            algs.join(", ")
        )),
        Ok((_, algs)) if !algs.is_empty() => fine.push(format!("{} offers Digest {}", t.describe(), algs.join(", "))),
        Ok((status, _)) => undecided.push(format!(
            "{}: HTTP {status} and no Digest challenge to a request without credentials for {}",
            t.describe(),
            printable(&t.service.path, 80)
        )),
        Err(e) => undecided.push(format!("{}: {e}", t.describe())),
    }
}

/// A login form on an HTTPS page that posts to plain HTTP sends the password in clear
/// although the page was encrypted — a finding (5.1-3, 5.5-7). A page that cannot be read
/// or holds no form leaves that question open and says so (the login itself is encrypted).
async fn form_posts(t: &Target, until: Instant, weak: &mut Vec<String>, fine: &mut Vec<String>) {
    let page = t.service.login_page.as_deref().unwrap_or(&t.service.path);
    let shown = printable(page, 80);
    let mut read = http::form_actions(t, page).await;
    while read.is_err() && Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        read = http::form_actions(t, page).await;
    }
    match read {
        Ok((200..=299, actions)) if !actions.is_empty() => {
            let clear: Vec<&String> = actions
                .iter()
                .filter(|a| a.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("http:")))
                .collect();
            if clear.is_empty() {
                fine.push(format!("{}: the form on {shown} posts over HTTPS", t.describe()));
            } else {
                weak.push(format!(
                    "{}: the login form on the HTTPS page {shown} posts to plain HTTP ({}): the password crosses the wire in clear (5.1-3)",
                    t.describe(),
                    clear.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok((status, _)) => fine.push(format!(
            "{}: no login form found on {shown} (HTTP {status}; declare `login_page`), where a browser's form posts not examined",
            t.describe()
        )),
        Err(e) => fine.push(format!(
            "{}: the login page {shown} could not be read ({e}), where a browser's form posts not examined",
            t.describe()
        )),
    }
}
