//! The network bench: services certbench runs itself, which the device under test talks
//! to (its "cloud"): plaintext and TLS MQTT listeners and the PKI a man-in-the-middle
//! would use. Every connection is recorded as evidence.

pub mod base;
pub mod error;
pub mod http;
pub mod mqtt;
pub mod peers;
pub mod pki;
pub mod probe;
pub mod sessions;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::model::CertVariant;
use crate::model::ListenerName;
use mqtt::{ListenMode, Listener, Router};
use pki::Pki;
use sessions::SessionLog;

pub use base::{provider, wait_for};
pub use error::BenchError;

use crate::config::bench::BenchSpec;

#[derive(Debug)]
pub struct NetBench {
    pub plain: Listener,
    pub tls: Listener,
    pub log: Arc<SessionLog>,
    /// Shared with the interception of the device's other TLS clients (issue 25): one
    /// trusted CA for every destination.
    pki: Arc<std::sync::Mutex<Pki>>,
    router: Arc<Router>,
    phase: u64,
    /// When the current phase began.
    phase_started: std::time::Instant,
    /// The identity rotation of the current phase, if it rotates (TLS-01..04 in one boot).
    rotation: Option<Arc<mqtt::Rotation>>,
    spec: BenchSpec,
}

impl NetBench {
    /// Binds the listeners (off until a scenario configures them) and makes the PKI.
    pub async fn start(spec: &BenchSpec, dir: &Path) -> Result<Self, BenchError> {
        let log = SessionLog::new(spec.attribution);
        let router = Arc::new(Router::default());
        let salt: [u8; 16] = rand::random();
        let plain = Listener::bind(
            ListenerName::MqttPlain,
            SocketAddr::new(spec.bind, spec.plain_port),
            log.clone(),
            router.clone(),
            salt,
            spec.handshake_timeout,
        )
        .await?;
        let tls = Listener::bind(
            ListenerName::MqttTls,
            SocketAddr::new(spec.bind, spec.tls_port),
            log.clone(),
            router.clone(),
            salt,
            spec.handshake_timeout,
        )
        .await?;
        let pki = Arc::new(std::sync::Mutex::new(Pki::new(&spec.host, &spec.trust, dir)?));
        Ok(Self {
            plain,
            tls,
            log,
            pki,
            router,
            phase: 0,
            phase_started: std::time::Instant::now(),
            rotation: None,
            spec: spec.clone(),
        })
    }

    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        v.insert("bench.host".into(), self.plain.addr.ip().to_string());
        v.insert("bench.mqtt_plain.port".into(), self.plain.addr.port().to_string());
        v.insert("bench.mqtt_tls.port".into(), self.tls.addr.port().to_string());
        v.insert("mqtt.host".into(), self.spec.host.clone());
        v.insert(
            "bench.ca_cert".into(),
            self.pki()
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        v
    }

    fn pki(&self) -> std::sync::MutexGuard<'_, Pki> {
        self.pki.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bench's PKI, for a man in the middle of the device's other TLS clients.
    pub fn shared_pki(&self) -> Arc<std::sync::Mutex<Pki>> {
        self.pki.clone()
    }

    /// Publishes on the bench broker to the devices subscribed; returns how many got it.
    pub fn publish(&self, topic: &str, payload: &[u8]) -> usize {
        self.router.route(topic, &bytes::Bytes::copy_from_slice(payload))
    }

    pub fn has_trusted_ca(&self) -> bool {
        self.pki().has_trusted_ca()
    }

    /// Starts a new phase: the listeners behave as given and sessions of the previous
    /// phase are closed. Ok(None) when a variant needs a trusted CA that is missing.
    pub fn configure(&mut self, plain: bool, tls: Option<CertVariant>) -> Result<Option<u64>, BenchError> {
        let tls_mode = match tls {
            None => ListenMode::Off,
            Some(v) => match self.pki().server_config(v)? {
                Some(c) => ListenMode::Tls(c),
                None => return Ok(None),
            },
        };
        self.next_phase(plain, tls_mode);
        Ok(Some(self.phase))
    }

    fn next_phase(&mut self, plain: bool, tls: ListenMode) {
        self.phase += 1;
        self.phase_started = std::time::Instant::now();
        self.rotation = match &tls {
            ListenMode::Rotate(r) => Some(r.clone()),
            _ => None,
        };
        self.plain
            .set_mode(if plain { ListenMode::Plain } else { ListenMode::Off }, self.phase);
        self.tls.set_mode(tls, self.phase);
    }

    /// TLS-01..04 in one boot: a phase in which each new connection of the device is
    /// presented the next man-in-the-middle identity. A rotation already running (with the
    /// same plaintext setting) is kept: (phase, true). Ok(None) without a trusted CA: the
    /// positive control (and two of the identities) need one.
    pub fn configure_rotation(&mut self, plain: bool) -> Result<Option<(u64, bool)>, BenchError> {
        if self.rotation.is_some() && matches!(self.plain.mode(), ListenMode::Plain) == plain {
            return Ok(Some((self.phase, true)));
        }
        if !self.pki().has_trusted_ca() {
            return Ok(None);
        }
        let mut identities = Vec::new();
        for v in CertVariant::MITM {
            if let Some(c) = self.pki().server_config(v)? {
                identities.push((v, c));
            }
        }
        self.next_phase(plain, ListenMode::Rotate(Arc::new(mqtt::Rotation::new(identities))));
        Ok(Some((self.phase, false)))
    }

    /// The current phase's rotation, if it rotates.
    pub fn rotation(&self) -> Option<&Arc<mqtt::Rotation>> {
        self.rotation.as_ref()
    }

    pub fn phase_started(&self) -> std::time::Instant {
        self.phase_started
    }

    /// Starts a new phase in which the TLS listener offers only TLS 1.0 (TLS-05), with the
    /// valid certificate should the client go on. Ok(None) without a trusted CA.
    pub fn configure_old_tls(&mut self, plain: bool) -> Result<Option<u64>, BenchError> {
        let Some(chain) = self.pki().issue_rsa()? else {
            return Ok(None);
        };
        self.next_phase(plain, ListenMode::OldTls(Arc::new(chain)));
        Ok(Some(self.phase))
    }

    pub fn phase(&self) -> u64 {
        self.phase
    }

    pub fn sessions_json(&self) -> String {
        crate::util::jsonl(self.log.all().iter())
    }
}
