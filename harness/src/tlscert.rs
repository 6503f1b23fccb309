//! The certificate a device's TLS service presents (COM-03, its certificate part): fetched
//! with a full TLS 1.2/1.3 handshake that trusts anything (the point is to read it, not to
//! be protected by it), then judged: valid now, a key of at least 2048 bits (RSA, DSA) or
//! 256 bits (EC), a signature that is not MD5 or SHA-1 (unless the certificate signs
//! itself, where the signature protects nothing), and a key no other unit of the model
//! holds (when the lab gives other units' certificates).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// Smallest acceptable keys, in bits (ETSI TS 103 701 points to current guidance: NIST
/// SP 800-57 / BSI TR-02102 put RSA at 2048 and elliptic curves at 250).
pub const MIN_RSA_BITS: usize = 2048;
pub const MIN_EC_BITS: usize = 256;

/// Signature algorithms that no longer protect a certificate (collisions are practical).
const BROKEN_SIGNATURES: [(&str, &str); 6] = [
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption"),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.3.14.3.2.29", "sha1WithRSAEncryption (OIW)"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10040.4.3", "dsa-with-sha1"),
];

/// A verifier that accepts every certificate and keeps the chain it was shown.
#[derive(Debug)]
pub struct Recorder {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        if let Ok(mut kept) = self.chain.lock() {
            *kept = chain;
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS 1.2/1.3 client that trusts any certificate (it is read, not relied on), and the
/// recorder that keeps the last chain it was shown.
pub fn trusting_client(
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<(Arc<rustls::ClientConfig>, Arc<Recorder>), String> {
    let recorder = Arc::new(Recorder {
        provider: provider.clone(),
        chain: Mutex::new(Vec::new()),
    });
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    Ok((Arc::new(cfg), recorder))
}

/// The chain the service at `addr` presents (leaf first), from a TLS 1.2/1.3 handshake.
/// The handshake itself may still fail after the certificate was read (a signature rustls
/// does not verify, e.g. RSA-1024): the chain counts once it was seen.
pub async fn fetch(
    provider: Arc<rustls::crypto::CryptoProvider>,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let (cfg, recorder) = trusting_client(provider)?;
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("no TCP connection within {timeout:?}"))?
        .map_err(|e| format!("TCP connect: {e}"))?;
    let handshake = tokio::time::timeout(
        timeout,
        tokio_rustls::TlsConnector::from(cfg).connect(ServerName::from(addr.ip()), tcp),
    )
    .await;
    let chain = recorder.chain.lock().map(|c| c.clone()).unwrap_or_default();
    if !chain.is_empty() {
        return Ok(chain);
    }
    Err(match handshake {
        Err(_) => format!("no certificate within {timeout:?}"),
        Ok(Err(e)) => format!("TLS handshake: {e}"),
        Ok(Ok(_)) => "the handshake presented no certificate".into(),
    })
}

/// What was read from a certificate, and what is wrong with it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Judged {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    /// e.g. "RSA 2048 bits", "EC 256 bits".
    pub key: String,
    pub signature: String,
    pub self_signed: bool,
    /// SHA-256 of the DER certificate and of its SubjectPublicKeyInfo.
    pub sha256: String,
    pub key_sha256: String,
    /// Empty when nothing is wrong.
    pub findings: Vec<String>,
}

/// Bits of a big-endian unsigned integer (leading zero bytes and bits not counted).
fn bits(n: &[u8]) -> usize {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

/// Judges the DER certificate `der` at `now` (seconds since the epoch), against other
/// units' certificates (`(name, DER)`): a unit sharing its key with another is a finding.
pub fn judge(der: &[u8], now: i64, others: &[(String, Vec<u8>)]) -> Result<Judged, String> {
    let (_, cert) = parse_x509_certificate(der).map_err(|e| format!("the certificate does not parse: {e}"))?;
    let mut findings = Vec::new();
    let validity = cert.validity();
    let (nb, na) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    if now < nb {
        findings.push(format!("its certificate is not valid before {}", validity.not_before));
    }
    if now > na {
        findings.push(format!("its certificate expired on {}", validity.not_after));
    }
    let spki = cert.public_key();
    let key = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA", bits(rsa.modulus), MIN_RSA_BITS),
        Ok(PublicKey::DSA(y)) => ("DSA", bits(y), MIN_RSA_BITS),
        Ok(PublicKey::EC(point)) => ("EC", point.key_size(), MIN_EC_BITS),
        // Ed25519 / Ed448: fixed sizes, both strong
        Ok(PublicKey::Unknown(_)) if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => ("Ed25519", 256, 0),
        Ok(PublicKey::Unknown(_)) if spki.algorithm.algorithm.to_id_string() == "1.3.101.113" => ("Ed448", 456, 0),
        Ok(_) => ("an unrecognised algorithm", 0, 1),
        Err(e) => return Err(format!("its public key does not parse: {e}")),
    };
    let key_words = format!("{} {} bits", key.0, key.1);
    if key.1 < key.2 {
        findings.push(format!(
            "its certificate's key is {key_words} ({} at least {} bits)",
            key.0, key.2
        ));
    }
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    let broken = BROKEN_SIGNATURES.iter().find(|(o, _)| *o == sig_oid).map(|(_, n)| *n);
    let signature = broken.map(str::to_string).unwrap_or_else(|| signature_name(&sig_oid));
    let self_signed = cert.subject() == cert.issuer();
    if let Some(name) = broken
        && !self_signed
    {
        findings.push(format!(
            "its certificate is signed with {name}, which no longer protects it"
        ));
    }
    let key_sha256 = crate::util::sha256_hex(spki.raw);
    for (name, other) in others {
        let Ok((_, o)) = parse_x509_certificate(other) else {
            continue;
        };
        if o.public_key().raw == spki.raw {
            findings.push(format!(
                "its key is the one in {name} (another unit's certificate): every unit holds the same private key"
            ));
        }
    }
    Ok(Judged {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.to_string(),
        not_after: validity.not_after.to_string(),
        key: key_words,
        signature,
        self_signed,
        sha256: crate::util::sha256_hex(der),
        key_sha256,
        findings,
    })
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => return other.to_string(),
    }
    .to_string()
}

/// The certificates in a PEM text, as DER.
pub fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for pem in Pem::iter_from_buffer(text) {
        let pem = pem.map_err(|e| format!("not PEM: {e}"))?;
        if pem.label == "CERTIFICATE" {
            out.push(pem.contents);
        }
    }
    if out.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    Ok(out)
}

/// `der` as a PEM block, for the evidence.
pub fn to_pem(der: &[u8]) -> String {
    let b64 = crate::util::base64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(alg: &'static rcgen::SignatureAlgorithm, days: (i64, i64), name: &str) -> (Vec<u8>, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
        let now = ::time::OffsetDateTime::now_utc();
        p.not_before = now + ::time::Duration::days(days.0);
        p.not_after = now + ::time::Duration::days(days.1);
        let c = p.self_signed(&key).expect("cert");
        (c.der().to_vec(), key)
    }

    fn now() -> i64 {
        ::time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn a_current_p256_certificate_has_no_finding() {
        let (der, _) = cert(&rcgen::PKCS_ECDSA_P256_SHA256, (-1, 30), "device.test");
        let j = judge(&der, now(), &[]).expect("judged");
        assert!(j.findings.is_empty(), "{j:?}");
        assert_eq!(j.key, "EC 256 bits");
        assert_eq!(j.signature, "ecdsa-with-SHA256");
        assert!(j.self_signed);
        let (der, _) = cert(&rcgen::PKCS_ED25519, (-1, 30), "device.test");
        assert!(judge(&der, now(), &[]).expect("judged").findings.is_empty());
    }

    #[test]
    fn expired_and_not_yet_valid_are_findings() {
        let (der, _) = cert(&rcgen::PKCS_ECDSA_P256_SHA256, (-30, -1), "device.test");
        let j = judge(&der, now(), &[]).expect("judged");
        assert!(j.findings.len() == 1 && j.findings[0].contains("expired on"), "{j:?}");
        let (der, _) = cert(&rcgen::PKCS_ECDSA_P256_SHA256, (2, 30), "device.test");
        let j = judge(&der, now(), &[]).expect("judged");
        assert!(
            j.findings.len() == 1 && j.findings[0].contains("not valid before"),
            "{j:?}"
        );
    }

    #[test]
    fn a_key_shared_with_another_unit_is_a_finding_a_different_one_is_not() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let make = |name: &str| {
            let p = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
            p.self_signed(&key).expect("cert").der().to_vec()
        };
        let (unit1, unit2) = (make("unit-1.test"), make("unit-2.test"));
        let (other, _) = cert(&rcgen::PKCS_ECDSA_P256_SHA256, (-1, 30), "unit-3.test");
        let j = judge(
            &unit1,
            now(),
            &[("unit-2.pem".into(), unit2), ("unit-3.pem".into(), other.clone())],
        )
        .expect("judged");
        assert_eq!(j.findings.len(), 1, "{j:?}");
        assert!(j.findings[0].contains("unit-2.pem"), "{j:?}");
        let j = judge(&unit1, now(), &[("unit-3.pem".into(), other)]).expect("judged");
        assert!(j.findings.is_empty(), "{j:?}");
    }

    #[test]
    fn pem_round_trip_and_bits() {
        let (der, _) = cert(&rcgen::PKCS_ECDSA_P256_SHA256, (-1, 30), "device.test");
        assert_eq!(pem_certificates(to_pem(&der).as_bytes()).expect("pem"), vec![der]);
        assert!(pem_certificates(b"no pem here").is_err());
        assert_eq!(bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bits(&[0x01, 0xff]), 9);
        assert_eq!(bits(&[0, 0]), 0);
        assert!(judge(b"\x30\x03garbage", now(), &[]).is_err());
    }
}
