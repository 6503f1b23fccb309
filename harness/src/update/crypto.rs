//! UPD-11 (5.3-7): the update's own cryptography, read from the maker's valid image where
//! its format carries it — the CMS (PKCS#7) signature of an SWUpdate `.swu` (the signer's
//! certificate gives the key, the signer info the digest), or SWUpdate's raw RSA signature
//! (its length is the key size) — or verified: an Ed25519 signature trailing the image that
//! the maker's declared public key verifies. What cannot be read is taken from the maker's
//! declaration and shown as declared (a reviewer's decision), never assumed.
//!
//! Weak: RSA below 2048 bits, DSA, ECDSA below 256 bits, MD5 or SHA-1 digests.

use std::fmt;

use super::variants::cpio_entries;
use crate::config::update::Layout;
use crate::model::signature::{Declared, DeclaredAlgorithm, DeclaredDigest};

/// How the scheme became known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Read from the image's own structures (what was read).
    Read(String),
    /// The signature was verified with the declared key.
    Verified,
    /// Only the maker's word.
    Declared,
}

/// A signature scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureScheme {
    /// `RSA`, `ECDSA`, `Ed25519`, `DSA`, or an OID certbench does not know.
    pub algorithm: String,
    pub key_bits: Option<u32>,
    /// `SHA-256`, ..., `SHA-1`, `MD5` (Ed25519: SHA-512 inside the scheme).
    pub digest: Option<String>,
    pub source: Source,
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.algorithm)?;
        if let Some(b) = self.key_bits {
            write!(f, "-{b}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, " with {d}")?;
        }
        match &self.source {
            Source::Read(what) => write!(f, " (read from {what})"),
            Source::Verified => write!(f, " (the trailing signature verified with the declared public key)"),
            Source::Declared => write!(f, " (as the maker declares; not readable from the image)"),
        }
    }
}

impl SignatureScheme {
    /// Why the scheme is not best practice, if it is not.
    pub fn weakness(&self) -> Option<String> {
        let mut w = Vec::new();
        match (self.algorithm.as_str(), self.key_bits) {
            ("RSA", Some(b)) if b < 2048 => w.push(format!("an RSA key of {b} bits (at least 2048)")),
            ("ECDSA", Some(b)) if b < 256 => w.push(format!("an ECDSA key of {b} bits (at least P-256)")),
            ("DSA", _) => w.push("DSA".to_string()),
            ("RSA" | "ECDSA" | "Ed25519", _) => {}
            (other, _) => w.push(format!(
                "an algorithm certbench does not know as best practice ({other})"
            )),
        }
        if let Some(d) = &self.digest
            && (d == "MD5" || d == "SHA-1")
        {
            w.push(format!("a {d} digest (SHA-256 or stronger)"));
        }
        (!w.is_empty()).then(|| w.join(" and "))
    }
}

/// The declared scheme, known by `source`.
fn declared_scheme(d: &Declared, source: Source) -> SignatureScheme {
    {
        let algorithm = match d.algorithm {
            DeclaredAlgorithm::Ed25519 => "Ed25519",
            DeclaredAlgorithm::Rsa | DeclaredAlgorithm::RsaPss => "RSA",
            DeclaredAlgorithm::Ecdsa => "ECDSA",
            DeclaredAlgorithm::Dsa => "DSA",
        };
        SignatureScheme {
            algorithm: algorithm.into(),
            key_bits: d.key_bits,
            digest: match d.algorithm {
                DeclaredAlgorithm::Ed25519 => Some("SHA-512".into()),
                _ => d.digest.map(|x| digest_name(x).into()),
            },
            source,
        }
    }
}

/// The valid image's signature scheme: read, verified, or declared. Err: the image does not
/// hold what its layout says (or the declared key does not verify it), and nothing is
/// declared to fall back on is never assumed.
pub fn scheme(image: &[u8], layout: &Layout, declared: Option<&Declared>) -> Result<Option<SignatureScheme>, String> {
    match layout {
        Layout::Swu { .. } => {
            let entries = cpio_entries(image)?;
            let (_, at, len) = entries
                .iter()
                .find(|(n, ..)| n == "sw-description.sig")
                .ok_or("the .swu holds no sw-description.sig: it is not signed")?;
            let sig = &image[*at..at + len];
            Ok(Some(match cms_scheme(sig)? {
                Some(s) => s,
                // SWUpdate's other form: a raw PKCS#1 v1.5 signature of SHA-256
                None => SignatureScheme {
                    algorithm: "RSA".into(),
                    key_bits: Some(u32::try_from(sig.len() * 8).unwrap_or(u32::MAX)),
                    digest: Some("SHA-256".into()),
                    source: Source::Read(format!(
                        "sw-description.sig: not CMS, a raw RSA signature of {} bytes",
                        sig.len()
                    )),
                },
            }))
        }
        Layout::SignedTrailer { signature_len, .. } => match declared {
            Some(d) if d.algorithm == DeclaredAlgorithm::Ed25519 && d.public_key.is_some() => {
                if *signature_len != 64 || image.len() < 64 {
                    return Err(format!(
                        "an Ed25519 signature is 64 bytes; the layout declares {signature_len}"
                    ));
                }
                let key = parse_key(d.public_key.as_deref().unwrap_or(""))?;
                let (msg, sig) = image.split_at(image.len() - 64);
                let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|e| e.to_string())?;
                key.verify_strict(msg, &sig).map_err(|_| {
                    "the declared public key does not verify the valid image's trailing signature: the declaration is wrong, or the signature covers something else".to_string()
                })?;
                Ok(Some(declared_scheme(d, Source::Verified)))
            }
            Some(d) => Ok(Some(declared_scheme(d, Source::Declared))),
            None => Ok(None),
        },
        Layout::Generic | Layout::Ranges { .. } => Ok(declared.map(|d| declared_scheme(d, Source::Declared))),
    }
}

fn digest_name(d: DeclaredDigest) -> &'static str {
    match d {
        DeclaredDigest::Sha256 => "SHA-256",
        DeclaredDigest::Sha384 => "SHA-384",
        DeclaredDigest::Sha512 => "SHA-512",
        DeclaredDigest::Sha1 => "SHA-1",
        DeclaredDigest::Md5 => "MD5",
    }
}

/// An Ed25519 public key written as 64 hex digits.
pub fn parse_key(hex: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    let h = hex.trim();
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("an Ed25519 public key is 64 hex digits".into());
    }
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    ed25519_dalek::VerifyingKey::from_bytes(&k).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// One DER element: its tag, its content, and the whole element's bytes.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    raw: &'a [u8],
}

/// The DER elements one after another in `b` (Err on a malformed one).
fn elements(mut b: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (t, rest) = element(b)?;
        out.push(t);
        b = rest;
    }
    Ok(out)
}

fn element(b: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let bad = || "a malformed DER element".to_string();
    let tag = *b.first().ok_or_else(bad)?;
    if tag & 0x1f == 0x1f {
        return Err("a DER element with a long tag".into());
    }
    let first = *b.get(1).ok_or_else(bad)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err("a DER length of an unsupported form".into());
        }
        let mut l = 0usize;
        for i in 0..n {
            l = (l << 8) | usize::from(*b.get(2 + i).ok_or_else(bad)?);
        }
        (l, 2 + n)
    };
    let end = head.checked_add(len).filter(|e| *e <= b.len()).ok_or_else(bad)?;
    Ok((
        Tlv {
            tag,
            content: &b[head..end],
            raw: &b[..end],
        },
        &b[end..],
    ))
}

/// An OBJECT IDENTIFIER's content in dotted form.
fn oid(content: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut v = 0u64;
    for b in content {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = if v < 80 { v / 40 } else { 2 };
                parts.push(first);
                parts.push(v - first * 40);
            } else {
                parts.push(v);
            }
            v = 0;
        }
    }
    parts.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// The first OID of an AlgorithmIdentifier.
fn algorithm_oid(alg: &Tlv) -> Option<String> {
    elements(alg.content)
        .ok()?
        .first()
        .filter(|t| t.tag == 0x06)
        .map(|t| oid(t.content))
}

fn digest_of(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.113549.2.5" => "MD5",
        "1.3.14.3.2.26" => "SHA-1",
        "2.16.840.1.101.3.4.2.1" => "SHA-256",
        "2.16.840.1.101.3.4.2.2" => "SHA-384",
        "2.16.840.1.101.3.4.2.3" => "SHA-512",
        // signature algorithms that name their digest
        "1.2.840.113549.1.1.4" => "MD5",
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" => "SHA-1",
        "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => "SHA-256",
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => "SHA-384",
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => "SHA-512",
        _ => return None,
    })
}

/// The scheme of a CMS SignedData (DER): None when `der` is not CMS SignedData at all.
fn cms_scheme(der: &[u8]) -> Result<Option<SignatureScheme>, String> {
    const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    let Ok((top, _)) = element(der) else { return Ok(None) };
    if top.tag != 0x30 {
        return Ok(None);
    }
    let Ok(ci) = elements(top.content) else { return Ok(None) };
    if ci.first().map(|t| (t.tag, oid(t.content))) != Some((0x06, SIGNED_DATA.into())) {
        return Ok(None);
    }
    let sd = ci
        .get(1)
        .filter(|t| t.tag == 0xa0)
        .and_then(|t| elements(t.content).ok())
        .and_then(|v| v.first().copied())
        .filter(|t| t.tag == 0x30)
        .ok_or("CMS: no SignedData inside the ContentInfo")?;
    let parts = elements(sd.content)?;
    let certs: Vec<Tlv> = match parts.iter().find(|t| t.tag == 0xa0) {
        Some(c) => elements(c.content)?,
        None => Vec::new(),
    };
    let signer = parts
        .iter()
        .rev()
        .find(|t| t.tag == 0x31)
        .and_then(|s| elements(s.content).ok())
        .and_then(|v| v.first().copied())
        .ok_or("CMS: no SignerInfo")?;
    let si = elements(signer.content)?;
    // version, sid, digestAlgorithm, [0] signedAttrs?, signatureAlgorithm, signature
    let sid = si.get(1).ok_or("CMS: a SignerInfo without its signer")?;
    let digest_alg = si.get(2).and_then(algorithm_oid).ok_or("CMS: no digest algorithm")?;
    let sig_alg = si
        .iter()
        .skip(3)
        .find(|t| t.tag == 0x30)
        .and_then(algorithm_oid)
        .ok_or("CMS: no signature algorithm")?;
    // the signer's certificate: the one whose serial the SignerInfo names
    let serial = (sid.tag == 0x30)
        .then(|| elements(sid.content).ok())
        .flatten()
        .and_then(|v| v.get(1).map(|t| t.content.to_vec()));
    let cert = certs
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c.raw).ok().map(|(_, x)| x))
        .find(|x| serial.as_deref().is_none_or(|s| x.raw_serial() == s))
        .ok_or("CMS: the signer's certificate is not in the signature, so its key cannot be read (declare `update.signature`)")?;
    use x509_parser::public_key::PublicKey;
    let (algorithm, key_bits) = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => ("RSA".to_string(), Some(k.key_size() as u32)),
        Ok(PublicKey::EC(k)) => ("ECDSA".to_string(), Some(k.key_size() as u32)),
        Ok(PublicKey::DSA(_)) => ("DSA".to_string(), None),
        _ => match cert.public_key().algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => ("Ed25519".to_string(), None),
            other => (other.to_string(), None),
        },
    };
    let digest = digest_of(&digest_alg)
        .or_else(|| digest_of(&sig_alg))
        .map(str::to_string)
        .or((algorithm == "Ed25519").then(|| "SHA-512".to_string()));
    Ok(Some(SignatureScheme {
        algorithm,
        key_bits,
        digest,
        source: Source::Read(format!(
            "sw-description.sig: CMS SignedData, signer \"{}\", digest {digest_alg}, signature {sig_alg}",
            // the maker's certificate is input: shown escaped and bounded
            cert.subject()
                .to_string()
                .chars()
                .flat_map(char::escape_debug)
                .take(160)
                .collect::<String>()
        )),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_and_weaknesses() {
        // 1.2.840.113549.1.7.2 as DER content
        assert_eq!(
            oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]),
            "1.2.840.113549.1.7.2"
        );
        let s = |a: &str, b: Option<u32>, d: &str| SignatureScheme {
            algorithm: a.into(),
            key_bits: b,
            digest: Some(d.into()),
            source: Source::Declared,
        };
        assert_eq!(s("RSA", Some(3072), "SHA-256").weakness(), None);
        assert_eq!(s("ECDSA", Some(256), "SHA-256").weakness(), None);
        assert_eq!(s("Ed25519", None, "SHA-512").weakness(), None);
        assert!(
            s("RSA", Some(1024), "SHA-256")
                .weakness()
                .is_some_and(|w| w.contains("1024 bits"))
        );
        assert!(
            s("RSA", Some(2048), "SHA-1")
                .weakness()
                .is_some_and(|w| w.contains("SHA-1"))
        );
        assert!(s("ECDSA", Some(192), "SHA-256").weakness().is_some());
        assert!(s("DSA", Some(2048), "SHA-256").weakness().is_some());
    }

    #[test]
    fn a_trailing_ed25519_signature_is_verified_with_the_declared_key() {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let hex: String = key
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut img = b"header and payload".to_vec();
        let sig = key.sign(&img);
        img.extend_from_slice(&sig.to_bytes());
        let layout = Layout::SignedTrailer {
            header_len: 6,
            signature_len: 64,
        };
        let d = Declared {
            algorithm: DeclaredAlgorithm::Ed25519,
            key_bits: None,
            digest: None,
            public_key: Some(hex),
        };
        let s = scheme(&img, &layout, Some(&d)).expect("verified").expect("a scheme");
        assert_eq!((s.algorithm.as_str(), &s.source), ("Ed25519", &Source::Verified));
        img[3] ^= 1;
        assert!(
            scheme(&img, &layout, Some(&d)).is_err(),
            "a changed image does not verify"
        );
        // without a key: the maker's word only
        let word = Declared { public_key: None, ..d };
        let s = scheme(&img, &layout, Some(&word)).expect("declared").expect("a scheme");
        assert_eq!(s.source, Source::Declared);
        assert_eq!(scheme(&img, &layout, None), Ok(None));
    }
}
