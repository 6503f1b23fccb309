//! What a testcase records as it runs, for its evidence folder: each remote login attempt
//! (`remote-attempts.jsonl`), the sessions held across a password change (`sessions.json`).

use std::time::Instant;

use serde::Serialize;

use crate::console::Console;
use crate::remote::Target;

/// One remote login attempt, as evidence.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// Milliseconds since the testcase's first remote attempt.
    pub t_ms: u128,
    pub service: String,
    pub user: String,
    /// Which password: a named one (`{{factory.password}}`, `the current password`), a
    /// list entry (`mirai #12`) or `wrong #n`. Never the password itself.
    pub credential: String,
    pub outcome: &'static str,
    pub latency_ms: u128,
    /// What the device answered (shortened; redacted when saved).
    pub detail: String,
}

/// A session held across a password change.
pub(crate) struct Held {
    /// `telnet (telnet over TLS on …)`, or `the serial console`.
    pub(crate) what: String,
    pub(crate) channel: Channel,
    /// When it was opened (and shown to work).
    pub(crate) opened: Instant,
}

/// What a held session is.
pub(crate) enum Channel {
    /// A shell: a remote session, or (None) the serial console's — the bench's own line,
    /// not a session of ours; with the shell prompt, when the profile declares one.
    Shell(Option<Console>, Option<regex::bytes::Regex>),
    /// A web login's session: its service and the cookies the login set.
    Web(Box<Target>, Vec<String>),
    /// A connection to the device's own MQTT broker.
    Mqtt(Box<crate::remote::mqtt::Held>),
}

/// One session's story, for `sessions.json`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionRecord {
    pub(crate) session: String,
    /// Milliseconds since the first session of the testcase was opened.
    pub(crate) opened_ms: u128,
    /// The command typed to tell a working shell, before and after the change.
    pub(crate) probes: Vec<String>,
    pub(crate) before_change: String,
    pub(crate) after_change: Option<String>,
}
