//! Names the profile, the scenarios and the benches share: listeners, certificate variants,
//! where the trusted CA comes from.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListenerName {
    MqttPlain,
    MqttTls,
}

impl std::fmt::Display for ListenerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListenerName::MqttPlain => "plaintext MQTT listener",
            ListenerName::MqttTls => "TLS MQTT listener",
        })
    }
}

/// Which certificate the TLS listener presents.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CertVariant {
    /// Right host name, issued by the trusted CA: the positive control.
    Valid,
    /// Right host name, self-signed (TLS-01).
    SelfSigned,
    /// Right host name, from a CA the device does not trust (TLS-04).
    UntrustedCa,
    /// Issued by the trusted CA, expired (TLS-03).
    Expired,
    /// Issued by the trusted CA for another host name (TLS-02).
    WrongHost,
}

impl CertVariant {
    /// The man-in-the-middle identities (TLS-01..04), in the order the bench rotates them:
    /// the first is also the one a rotation serves once every identity had its attempts.
    pub const MITM: [CertVariant; 4] = [
        CertVariant::SelfSigned,
        CertVariant::WrongHost,
        CertVariant::Expired,
        CertVariant::UntrustedCa,
    ];

    /// The name in YAML and in the evidence (`str::parse` reads it back).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The check a man in the middle presenting this identity decides.
    pub fn check(self) -> Option<&'static str> {
        match self {
            CertVariant::Valid => None,
            CertVariant::SelfSigned => Some("TLS-01"),
            CertVariant::WrongHost => Some("TLS-02"),
            CertVariant::Expired => Some("TLS-03"),
            CertVariant::UntrustedCa => Some("TLS-04"),
        }
    }

    pub fn needs_trusted_ca(self) -> bool {
        matches!(self, CertVariant::Valid | CertVariant::Expired | CertVariant::WrongHost)
    }

    pub fn describe(self) -> &'static str {
        match self {
            CertVariant::Valid => "a valid certificate from the trusted CA",
            CertVariant::SelfSigned => "a self-signed certificate",
            CertVariant::UntrustedCa => "a certificate from a CA the device does not trust",
            CertVariant::Expired => "an expired certificate from the trusted CA",
            CertVariant::WrongHost => "a certificate for another host name from the trusted CA",
        }
    }
}

/// Where the trusted CA comes from.
#[derive(Debug, Clone)]
pub enum TrustSource {
    /// The bench makes a CA and writes it to `ca.pem` for the device to be provisioned with.
    BenchCa,
    /// The maker's test CA.
    Maker { cert: PathBuf, key: PathBuf },
    /// The device trusts nothing the bench can issue: variants needing it are unavailable.
    None,
}
