//! The MQTT/TLS bench as the profile and the lab binding set it up.

use std::net::IpAddr;
use std::time::Duration;

use crate::model::{Attribution, TrustSource};

/// A client that has not finished its TLS handshake by then is recorded as stalled.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Whose connections count as the device's.
    pub attribution: Attribution,
}

/// Names the bench adds for `{{name}}` in commands and scenarios.
pub const VARS: &[&str] = &[
    "bench.host",
    "bench.mqtt_plain.port",
    "bench.mqtt_tls.port",
    "bench.ca_cert",
    "mqtt.host",
];
