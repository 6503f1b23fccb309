//! The maker's declaration of how its update images are signed (`update.signature`), for
//! UPD-11 where the image itself does not show it.

/// What the maker declares (`update.signature`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    /// `ed25519`, `rsa`, `rsa-pss`, `ecdsa` or `dsa`.
    pub algorithm: DeclaredAlgorithm,
    /// rsa, ecdsa, dsa: the key size in bits (ECDSA: the curve's, e.g. 256 for P-256).
    #[serde(default)]
    pub key_bits: Option<u32>,
    /// `sha256`, `sha384`, `sha512`, `sha1` or `md5` (not for ed25519).
    #[serde(default)]
    pub digest: Option<DeclaredDigest>,
    /// ed25519 on a `signed_trailer` image: the maker's public key (64 hex digits), so
    /// certbench verifies the signature over everything before it instead of trusting the
    /// declaration.
    #[serde(default)]
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeclaredAlgorithm {
    Ed25519,
    Rsa,
    RsaPss,
    Ecdsa,
    Dsa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeclaredDigest {
    Sha256,
    Sha384,
    Sha512,
    Sha1,
    Md5,
}
