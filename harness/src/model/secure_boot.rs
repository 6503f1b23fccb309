//! The maker's secure boot declaration (`secure_boot:`), validated: how certbench writes an
//! image where the device boots from, and what the device claims to do with a bad one.

/// What secure boot does with an image whose signature fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Boots the previous valid firmware.
    Fallback,
    /// Stops safely (no firmware runs).
    Halt,
}

#[derive(Debug, Clone)]
pub struct SecureBoot {
    /// Typed at the shell, `{{image.url}}` where the bench serves the image.
    pub command: super::template::Template,
    /// What the device says when it wrote it (regex).
    pub written: Option<String>,
    pub on_failure: OnFailure,
    /// What it prints when it refuses an image (regex).
    pub refused: Option<String>,
}
