//! The bench PKI, made per run: the certificates a man-in-the-middle would present, and
//! a valid one for the positive control.
//!
//! "Trusted CA" is the maker's test CA from the device profile (certificate and key), or
//! a bench CA the device was provisioned to trust. Variants that need it are unavailable
//! without it, and their checks are SKIPPED, never passed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::model::{CertVariant, TrustSource};

/// Why the bench PKI could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{what}: {source}")]
    Generate { what: String, source: rcgen::Error },
    #[error("{0}")]
    Params(rcgen::Error),
    /// The maker's CA certificate or key cannot be read or used.
    #[error("{what} {}: {reason}", path.display())]
    Maker {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Tls(rustls::Error),
    #[error("TLS server config: {0}")]
    ServerConfig(rustls::Error),
}

impl PkiError {
    fn maker(what: &'static str, path: &Path, e: impl std::fmt::Display) -> Self {
        PkiError::Maker {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

fn new_ca(name: &str) -> Result<Ca, PkiError> {
    let key = KeyPair::generate().map_err(|source| PkiError::Generate {
        what: "CA key".into(),
        source,
    })?;
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(PkiError::Params)?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.distinguished_name
        .push(DnType::OrganizationName, "certbench bench PKI");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(30);
    let cert = p.self_signed(&key).map_err(|source| PkiError::Generate {
        what: "CA certificate".into(),
        source,
    })?;
    Ok(Ca {
        cert_pem: cert.pem(),
        issuer: Issuer::new(p, key),
    })
}

/// A server certificate chain and key, ready for rustls.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
}

pub struct Pki {
    host: String,
    /// Server configurations made so far, one per variant and host name.
    configs: std::collections::HashMap<(CertVariant, String), Arc<rustls::ServerConfig>>,
    trusted: Option<Ca>,
    untrusted: Ca,
    /// The trusted CA certificate, written for provisioning the device.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("host", &self.host)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Pki {
    /// Makes the run's PKI for the device's cloud host name.
    pub fn new(host: &str, trust: &TrustSource, dir: &Path) -> Result<Self, PkiError> {
        let trusted = match trust {
            TrustSource::BenchCa => Some(new_ca("certbench bench CA")?),
            TrustSource::Maker { cert, key } => {
                let text = |p: &Path, what: &'static str| {
                    crate::util::read_named_file(p, crate::util::limits::TEXT)
                        .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
                        .map_err(|e| PkiError::maker(what, p, e))
                };
                let cert_pem = text(cert, "maker CA")?;
                let key_pem = text(key, "maker CA key")?;
                let kp = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::maker("maker CA key", key, e))?;
                let issuer =
                    Issuer::from_ca_cert_pem(&cert_pem, kp).map_err(|e| PkiError::maker("maker CA", cert, e))?;
                Some(Ca { issuer, cert_pem })
            }
            TrustSource::None => None,
        };
        let ca_file = match &trusted {
            Some(ca) => {
                let f = dir.join("bench-ca.pem");
                std::fs::write(&f, &ca.cert_pem).map_err(|source| PkiError::Write {
                    path: f.clone(),
                    source,
                })?;
                Some(f)
            }
            None => None,
        };
        Ok(Self {
            host: host.to_string(),
            configs: std::collections::HashMap::new(),
            trusted,
            untrusted: new_ca("certbench untrusted CA")?,
            ca_file,
        })
    }

    /// A TLS server configuration presenting variant `v` (made once, then reused); Ok(None)
    /// when the variant needs a trusted CA that is missing.
    pub fn server_config(&mut self, v: CertVariant) -> Result<Option<Arc<rustls::ServerConfig>>, PkiError> {
        let host = self.host.clone();
        self.server_config_for(v, &host)
    }

    /// As [`Pki::server_config`], for another destination of the device (`host`: the name it
    /// asked for, or the address it connected to).
    pub fn server_config_for(
        &mut self,
        v: CertVariant,
        host: &str,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, PkiError> {
        if let Some(c) = self.configs.get(&(v, host.to_string())) {
            return Ok(Some(c.clone()));
        }
        let Some(id) = self.issue_for(v, host)? else {
            return Ok(None);
        };
        let cfg = rustls::ServerConfig::builder_with_provider(super::base::provider())
            .with_safe_default_protocol_versions()
            .map_err(PkiError::Tls)?
            .with_no_client_auth()
            .with_single_cert(id.chain, id.key.clone_key())
            .map_err(PkiError::ServerConfig)?;
        let cfg = Arc::new(cfg);
        self.configs.insert((v, host.to_string()), cfg.clone());
        Ok(Some(cfg))
    }

    pub fn has_trusted_ca(&self) -> bool {
        self.trusted.is_some()
    }

    /// TLS-05's identity: a certificate for the device's host name from the trusted CA, with
    /// an RSA key (a TLS 1.0 client goes on with an RSA key exchange only for an RSA
    /// certificate). The key is a fixed test key shipped with certbench (`data/`): the bench is
    /// the adversary here, its key protects nothing. None without a trusted CA.
    pub fn issue_rsa(&self) -> Result<Option<Vec<Vec<u8>>>, PkiError> {
        self.issue_rsa_for(&self.host)
    }

    /// As [`Pki::issue_rsa`], for `host`.
    pub fn issue_rsa_for(&self, host: &str) -> Result<Option<Vec<Vec<u8>>>, PkiError> {
        let Some(ca) = &self.trusted else { return Ok(None) };
        let key =
            KeyPair::from_pem(include_str!("../../data/bench-rsa-tls10.key")).map_err(|source| PkiError::Generate {
                what: "the bench's RSA test key".into(),
                source,
            })?;
        let mut p = CertificateParams::new(vec![host.to_string()]).map_err(PkiError::Params)?;
        p.distinguished_name.push(DnType::CommonName, host);
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(7);
        let cert = p.signed_by(&key, &ca.issuer).map_err(|source| PkiError::Generate {
            what: "issue the RSA certificate".into(),
            source,
        })?;
        Ok(Some(vec![cert.der().to_vec()]))
    }

    /// Issues the certificate of a variant; None when it needs the trusted CA and there is none.
    pub fn issue(&self, v: CertVariant) -> Result<Option<ServerIdentity>, PkiError> {
        self.issue_for(v, &self.host)
    }

    /// As [`Pki::issue`], for `host`.
    pub fn issue_for(&self, v: CertVariant, host: &str) -> Result<Option<ServerIdentity>, PkiError> {
        let host = match v {
            CertVariant::WrongHost => "not-the-device-cloud.invalid".to_string(),
            _ => host.to_string(),
        };
        let key = KeyPair::generate().map_err(|source| PkiError::Generate {
            what: "leaf key".into(),
            source,
        })?;
        let mut p = CertificateParams::new(vec![host.clone()]).map_err(PkiError::Params)?;
        p.distinguished_name.push(DnType::CommonName, host);
        let now = time::OffsetDateTime::now_utc();
        if v == CertVariant::Expired {
            p.not_before = now - time::Duration::days(30);
            p.not_after = now - time::Duration::days(2);
        } else {
            p.not_before = now - time::Duration::days(1);
            p.not_after = now + time::Duration::days(7);
        }
        let cert = match v {
            CertVariant::SelfSigned => p.self_signed(&key),
            CertVariant::UntrustedCa => p.signed_by(&key, &self.untrusted.issuer),
            CertVariant::Valid | CertVariant::Expired | CertVariant::WrongHost => match &self.trusted {
                Some(ca) => p.signed_by(&key, &ca.issuer),
                None => return Ok(None),
            },
        }
        .map_err(|source| PkiError::Generate {
            what: format!("issue {v:?} certificate"),
            source,
        })?;
        Ok(Some(ServerIdentity {
            chain: vec![cert.der().clone()],
            key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_variants_are_unavailable_without_a_trusted_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new("broker.test", &TrustSource::None, dir.path()).expect("pki");
        assert!(pki.issue(CertVariant::Valid).expect("issue").is_none());
        assert!(pki.issue(CertVariant::Expired).expect("issue").is_none());
        assert!(pki.issue(CertVariant::SelfSigned).expect("issue").is_some());
        assert!(pki.ca_file.is_none());
    }

    #[test]
    fn bench_ca_issues_every_variant_and_writes_its_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new("broker.test", &TrustSource::BenchCa, dir.path()).expect("pki");
        for v in [
            CertVariant::Valid,
            CertVariant::SelfSigned,
            CertVariant::UntrustedCa,
            CertVariant::Expired,
            CertVariant::WrongHost,
        ] {
            assert!(pki.issue(v).expect("issue").is_some(), "{v:?}");
        }
        let pem = std::fs::read_to_string(pki.ca_file.as_ref().expect("ca file")).expect("read");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
