//! What the bench saw: one record per connection, updated live, never holding a secret.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Notify;

use crate::model::ListenerName;

use super::peers::{RecordBudget, bounded};
use crate::model::{Attribution, Origin};

/// Distinct topics (and subscriptions) recorded per session; more are only counted.
pub const TOPICS_MAX: usize = 64;
/// Bytes of a topic, subscription, client id or user name kept in the record.
pub const NAME_MAX: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum TlsOutcome {
    /// Handshake done; protocol version.
    Established(String),
    /// The client aborted the handshake with this alert.
    AlertReceived(String),
    /// The client closed the connection during the handshake without an alert.
    PeerHungUp,
    /// The handshake did not finish in time.
    Stalled,
    /// Not TLS, or another handshake error.
    Failed(String),
    /// The bench could not take its offer far enough to tell (why): the check is not decided.
    Undecided(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectInfo {
    pub protocol_level: u8,
    pub client_id: String,
    pub username: Option<String>,
    pub password_sent: bool,
    /// Length and a salted SHA-256 prefix of the password, never the password.
    pub password_len: Option<usize>,
    pub password_salted_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: u64,
    pub listener: ListenerName,
    pub peer: String,
    /// Whose connection it is: only the device's count.
    pub origin: Origin,
    /// Which bench configuration was in force when the connection arrived.
    pub phase: u64,
    pub at_ms: u128,
    /// The listener was switched off: the bench closed the connection at once.
    pub refused_by_bench: bool,
    /// The bench refused the connection for capacity (why): nothing can be concluded from it.
    pub refused: Option<String>,
    pub tls: Option<TlsOutcome>,
    /// Name the client asked for (SNI).
    pub sni: Option<String>,
    /// The identity the bench presented to this connection when it rotates them (TLS-01..04
    /// in one boot); None otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::model::CertVariant>,
    pub connect: Option<ConnectInfo>,
    /// Topic -> number of PUBLISH packets.
    pub published: BTreeMap<String, u64>,
    /// PUBLISH packets to topics beyond the first TOPICS_MAX.
    pub published_other_topics: u64,
    pub subscribed: Vec<String>,
    /// Application bytes received (after the TLS handshake on the TLS listener).
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub protocol_error: Option<String>,
    pub closed: Option<String>,
}

impl Session {
    pub fn publish_count(&self) -> u64 {
        self.published.values().sum::<u64>() + self.published_other_topics
    }

    /// Counts a PUBLISH to `topic`, keeping at most TOPICS_MAX names of at most NAME_MAX bytes.
    pub fn count_publish(&mut self, topic: &str) {
        let name = bounded(topic, NAME_MAX);
        if let Some(n) = self.published.get_mut(&name) {
            *n += 1;
        } else if self.published.len() < TOPICS_MAX {
            self.published.insert(name, 1);
        } else {
            self.published_other_topics += 1;
        }
    }

    /// Records a subscription filter, bounded like the topics.
    pub fn count_subscribe(&mut self, filter: &str) {
        if self.subscribed.len() < TOPICS_MAX {
            self.subscribed.push(bounded(filter, NAME_MAX));
        }
    }

    /// One line for a verdict's evidence.
    pub fn describe(&self) -> String {
        let mut s = format!("session #{} from {} on the {}", self.id, self.peer, self.listener);
        if self.origin == Origin::OtherPeer {
            s.push_str(" (another peer, not the device)");
        }
        if let Some(v) = self.identity {
            s.push_str(&format!(", presented {}", v.describe()));
        }
        if let Some(why) = &self.refused {
            s.push_str(&format!(": {why}"));
            return s;
        }
        if self.refused_by_bench {
            s.push_str(": closed by the bench (listener off)");
            return s;
        }
        match &self.tls {
            Some(TlsOutcome::Established(v)) => s.push_str(&format!(": TLS handshake completed ({v})")),
            Some(TlsOutcome::AlertReceived(a)) => {
                s.push_str(&format!(": the client aborted the TLS handshake with alert {a}"))
            }
            Some(TlsOutcome::PeerHungUp) => s.push_str(": the client hung up during the TLS handshake"),
            Some(TlsOutcome::Stalled) => s.push_str(": TLS handshake stalled"),
            Some(TlsOutcome::Failed(e)) => s.push_str(&format!(": TLS handshake failed: {e}")),
            Some(TlsOutcome::Undecided(why)) => s.push_str(&format!(": not decided: {why}")),
            None => {}
        }
        if let Some(c) = &self.connect {
            s.push_str(&format!(
                "; MQTT CONNECT (level {}) client id {:?}{}{}",
                c.protocol_level,
                c.client_id,
                c.username.as_ref().map(|u| format!(", user {u:?}")).unwrap_or_default(),
                if c.password_sent {
                    format!(", password sent ({} bytes)", c.password_len.unwrap_or(0))
                } else {
                    String::new()
                }
            ));
        }
        if !self.published.is_empty() {
            let mut topics: Vec<String> = self.published.iter().map(|(t, n)| format!("{t} x{n}")).collect();
            if self.published_other_topics > 0 {
                topics.push(format!("{} more to other topics", self.published_other_topics));
            }
            s.push_str(&format!(
                "; published {} message(s): {}",
                self.publish_count(),
                topics.join(", ")
            ));
        }
        if self.bytes_in > 0 {
            s.push_str(&format!("; {} application bytes received", self.bytes_in));
        }
        if let Some(e) = &self.protocol_error {
            s.push_str(&format!("; protocol error: {e}"));
        }
        s
    }
}

/// Bytes of one PUBLISH payload kept for the recipients check (PRV-04).
pub const PAYLOAD_MAX: usize = 4096;
/// Bytes of payload kept in all; later payloads are only counted.
pub const PAYLOADS_TOTAL: usize = 8 << 20;

/// A PUBLISH payload the device sent the bench's broker, which ends its TLS: what the
/// device told its cloud, readable. In memory only, never written (it holds the owner's data).
#[derive(Debug, Clone)]
pub struct Payload {
    pub session: u64,
    pub topic: String,
    /// The host the device asked for (SNI), when it used TLS.
    pub sni: Option<String>,
    pub at: Instant,
    /// At most PAYLOAD_MAX bytes.
    pub bytes: Vec<u8>,
    /// The payload was longer than what is kept.
    pub cut: bool,
}

/// The device's payloads kept, and what was not kept: (payloads, bytes kept, payloads dropped).
#[derive(Debug, Default)]
struct Payloads(Vec<Payload>, usize, u64);

/// The live log of sessions.
#[derive(Debug)]
pub struct SessionLog {
    inner: Mutex<(Vec<Session>, RecordBudget)>,
    payloads: Mutex<Payloads>,
    /// Passwords peers sent (at most 64): kept in memory only so evidence that holds them
    /// raw (the link's capture) can be masked; never written.
    secrets: Mutex<Vec<String>>,
    pub notify: Notify,
    epoch: Instant,
    pub attribution: Attribution,
}

impl SessionLog {
    /// Remembers a password a peer sent (see `secrets`).
    pub fn remember_secret(&self, s: &str) {
        let mut g = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if !s.is_empty() && g.len() < 64 && !g.iter().any(|x| x == s) {
            g.push(s.to_string());
        }
    }

    /// Keeps a PUBLISH payload of the device's session `id` (bounded; see [`Payload`]).
    pub fn keep_payload(&self, id: u64, topic: &str, payload: &[u8]) {
        let (counts, sni) = {
            let g = self.lock();
            match g.0.get(id as usize - 1) {
                Some(s) => (s.origin.counts(), s.sni.clone()),
                None => (false, None),
            }
        };
        if !counts {
            return;
        }
        let mut g = self.payloads.lock().unwrap_or_else(|p| p.into_inner());
        let n = payload.len().min(PAYLOAD_MAX);
        if g.1 + n > PAYLOADS_TOTAL {
            g.2 += 1;
            return;
        }
        g.1 += n;
        g.0.push(Payload {
            session: id,
            topic: bounded(topic, NAME_MAX),
            sni,
            at: Instant::now(),
            bytes: payload[..n].to_vec(),
            cut: payload.len() > n,
        });
    }

    /// The device's payloads received since `since`, and how many of all were not kept.
    pub fn payloads_since(&self, since: Instant) -> (Vec<Payload>, u64) {
        let g = self.payloads.lock().unwrap_or_else(|p| p.into_inner());
        (g.0.iter().filter(|p| p.at >= since).cloned().collect(), g.2)
    }

    /// The passwords peers sent, to mask them in raw evidence.
    pub fn secrets(&self) -> Vec<String> {
        self.secrets.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn new(attribution: Attribution) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new((Vec::new(), RecordBudget::default())),
            payloads: Mutex::new(Payloads::default()),
            secrets: Mutex::new(Vec::new()),
            notify: Notify::new(),
            epoch: Instant::now(),
            attribution,
        })
    }

    fn lock(&self) -> MutexGuard<'_, (Vec<Session>, RecordBudget)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new connection; None when the log is full (the connection is then refused
    /// and only counted, see `dropped`).
    pub fn open(&self, listener: ListenerName, peer: std::net::SocketAddr, phase: u64) -> Option<u64> {
        let origin = self.attribution.origin(peer.ip());
        let mut g = self.lock();
        if !g.1.take(origin) {
            return None;
        }
        let id = g.0.len() as u64 + 1;
        g.0.push(Session {
            id,
            listener,
            peer: peer.to_string(),
            origin,
            phase,
            at_ms: self.epoch.elapsed().as_millis(),
            refused_by_bench: false,
            refused: None,
            tls: None,
            sni: None,
            identity: None,
            connect: None,
            published: BTreeMap::new(),
            published_other_topics: 0,
            subscribed: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            protocol_error: None,
            closed: None,
        });
        drop(g);
        self.notify.notify_waiters();
        Some(id)
    }

    pub fn update(&self, id: u64, f: impl FnOnce(&mut Session)) {
        let mut g = self.lock();
        if let Some(s) = g.0.get_mut(id as usize - 1) {
            f(s);
        }
        drop(g);
        self.notify.notify_waiters();
    }

    /// The sessions the checks count: the device's (every one, when its address is unknown).
    pub fn snapshot(&self) -> Vec<Session> {
        self.lock().0.iter().filter(|s| s.origin.counts()).cloned().collect()
    }

    /// Every recorded session, other peers' included (the evidence file).
    pub fn all(&self) -> Vec<Session> {
        self.lock().0.clone()
    }

    /// Connections not recorded because the log was full: (device's, other peers').
    pub fn dropped(&self) -> (u64, u64) {
        self.lock().1.dropped
    }

    pub fn origin_of(&self, id: u64) -> Option<Origin> {
        self.lock().0.get(id as usize - 1).map(|s| s.origin)
    }

    /// Waits until `found` picks something out of the sessions seen so far, or the deadline
    /// passes (then the sessions as they stand are returned).
    pub async fn wait_until<T>(
        &self,
        deadline: Instant,
        found: impl FnMut(&[Session]) -> Option<T>,
    ) -> Result<T, Vec<Session>> {
        super::base::wait_for(&self.notify, deadline, || self.snapshot(), found).await
    }
}
