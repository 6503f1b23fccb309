//! Remote login drivers: one login attempt over a device's network service (telnet, SSH,
//! HTTP Basic and Digest, an HTML form, the device's MQTT broker, FTP), classified from what the device
//! answered. Every driver implements [`Login`]; the engine's remote password checks
//! (PWD-02, PWD-03, PWD-09) only see [`Tried`].
//!
//! A refusal counts only when the device said so (a "Login incorrect", HTTP 401, CONNACK
//! "bad user name or password"): silence, a closed port or an unknown answer is
//! [`LoginAnswer::Unanswered`], which no check takes as a refusal.

pub mod banner;
pub mod defaults;
pub mod ftp;
pub mod http;
pub mod kexinit;
pub mod mqtt;
pub mod ssh;
pub mod target;
pub mod telnet;

use std::time::Instant;

use crate::config::services::ServiceKind;
use target::tail_bytes;
pub use target::{
    DETAIL_BYTES, LoginAnswer, LoginDriver, PROBE_WAIT, ProbeAnswer, ShellProbe, Stream, Target, Tried, connect,
    credential_prompt, insecure_tls, printable, printable_tail,
};

impl LoginDriver for Target {
    async fn attempt(&self, user: &str, password: &str) -> Tried {
        let t0 = Instant::now();
        let driver = async {
            match self.service.kind {
                ServiceKind::Telnet => telnet::attempt(self, user, password).await,
                ServiceKind::HttpBasic => http::attempt_basic(self, user, password).await,
                ServiceKind::HttpDigest => http::attempt_digest(self, user, password).await,
                ServiceKind::Ftp => ftp::attempt(self, user, password).await,
                ServiceKind::HttpForm => http::attempt_form(self, user, password).await,
                ServiceKind::Mqtt => mqtt::attempt(self, user, password).await,
                ServiceKind::Ssh => ssh::attempt(self, user, password).await,
                // never a target: the engine leaves no_login services out of every login
                ServiceKind::NoLogin => {
                    let why = "the service is declared without a login (no_login): nothing was sent";
                    (LoginAnswer::Unanswered(why.into()), why.into())
                }
            }
        };
        // one deadline for the whole attempt: connect, every read and every write
        let limit = self.attempt_limit();
        let (outcome, detail) = tokio::time::timeout(limit, driver).await.unwrap_or_else(|_| {
            let why = format!("no decision within {limit:?} (the attempt's deadline: connect, reads and writes)");
            (LoginAnswer::Unanswered(why.clone()), why)
        });
        Tried {
            outcome,
            detail: tail_bytes(&detail, DETAIL_BYTES),
            latency: t0.elapsed(),
        }
    }
}

/// A shell of the device over `t` (SSH or telnet), logged in, as a console; true when its
/// shell prompt was already read (telnet: the login ends at it), false when it is still to come.
pub async fn shell_console(t: &Target, user: &str, password: &str) -> Result<(crate::console::Console, bool), String> {
    match t.service.kind {
        ServiceKind::Ssh => Ok((ssh::shell_console(t, user, password).await?, false)),
        ServiceKind::Telnet => telnet::shell_console(t, user, password).await,
        k => Err(format!("a {} service gives no shell", k.name())),
    }
}
