//! The network bench: services certbench runs itself, which the device under test talks
//! to (its "cloud"): plaintext and TLS MQTT listeners and the PKI a man-in-the-middle
//! would use. Every connection is recorded as evidence.

pub mod http;
pub mod mqtt;
pub mod pki;
pub mod probe;
pub mod sessions;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use mqtt::{Listener, Mode, Router};
use pki::{CertVariant, Pki, TrustSource};
use sessions::{ListenerName, SessionLog};

/// How the bench is set up for a device (from the profile and the lab binding).
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// The host name the device connects to; certificates are issued for it.
    pub host: String,
    pub trust: TrustSource,
    pub bind: IpAddr,
    pub plain_port: u16,
    pub tls_port: u16,
    /// A client that has not finished its TLS handshake by then is recorded as stalled.
    pub handshake_timeout: std::time::Duration,
}

/// Names the bench adds for `{{name}}` in commands and scenarios.
pub const VARS: &[&str] = &[
    "bench.host",
    "bench.mqtt_plain.port",
    "bench.mqtt_tls.port",
    "bench.ca_cert",
    "mqtt.host",
];

#[derive(Debug)]
pub struct NetBench {
    pub plain: Listener,
    pub tls: Listener,
    pub log: Arc<SessionLog>,
    pki: Pki,
    router: Arc<Router>,
    phase: u64,
    configs: HashMap<CertVariant, Arc<rustls::ServerConfig>>,
    spec: BenchSpec,
}

/// The one crypto provider certbench uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl NetBench {
    /// Binds the listeners (off until a scenario configures them) and makes the PKI.
    pub async fn start(spec: &BenchSpec, dir: &Path) -> Result<Self, String> {
        let log = SessionLog::new();
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
        let pki = Pki::new(&spec.host, &spec.trust, dir)?;
        Ok(Self {
            plain,
            tls,
            log,
            pki,
            router,
            phase: 0,
            configs: HashMap::new(),
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
            self.pki
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        v
    }

    /// Publishes on the bench broker to the devices subscribed; returns how many got it.
    pub fn publish(&self, topic: &str, payload: &[u8]) -> usize {
        self.router.route(topic, &bytes::Bytes::copy_from_slice(payload))
    }

    pub fn has_trusted_ca(&self) -> bool {
        self.pki.has_trusted_ca()
    }

    fn server_config(&mut self, v: CertVariant) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        if let Some(c) = self.configs.get(&v) {
            return Ok(Some(c.clone()));
        }
        let Some(id) = self.pki.issue(v)? else { return Ok(None) };
        let cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(id.chain, id.key.clone_key())
            .map_err(|e| format!("TLS server config: {e}"))?;
        let cfg = Arc::new(cfg);
        self.configs.insert(v, cfg.clone());
        Ok(Some(cfg))
    }

    /// Starts a new phase: the listeners behave as given and sessions of the previous
    /// phase are closed. Ok(None) when a variant needs a trusted CA that is missing.
    pub fn configure(&mut self, plain: bool, tls: Option<CertVariant>) -> Result<Option<u64>, String> {
        let tls_mode = match tls {
            None => Mode::Off,
            Some(v) => match self.server_config(v)? {
                Some(c) => Mode::Tls(c),
                None => return Ok(None),
            },
        };
        self.phase += 1;
        self.plain
            .set_mode(if plain { Mode::Plain } else { Mode::Off }, self.phase);
        self.tls.set_mode(tls_mode, self.phase);
        Ok(Some(self.phase))
    }

    pub fn phase(&self) -> u64 {
        self.phase
    }

    pub fn sessions_json(&self) -> String {
        self.log
            .snapshot()
            .iter()
            .filter_map(|s| serde_json::to_string(s).ok())
            .map(|l| l + "\n")
            .collect()
    }
}
