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

/// How certbench puts an image where the device boots from.
#[derive(Debug, Clone)]
pub enum Tamper {
    /// A command typed at the shell, `{{image.url}}` where the bench serves the image; what
    /// the device says when it wrote it (regex).
    Console {
        command: super::template::Template,
        written: Option<String>,
    },
    /// Written through the debug port (`debug:`) at this address of the part's flash, then
    /// read back.
    Debug { address: u64 },
}

#[derive(Debug, Clone)]
pub struct SecureBoot {
    pub tamper: Tamper,
    pub on_failure: OnFailure,
    /// What it prints when it refuses an image (regex).
    pub refused: Option<String>,
}
