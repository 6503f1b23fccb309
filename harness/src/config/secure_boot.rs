//! `secure_boot:` — how an image reaches the device's boot slot without the update
//! mechanism (the maker's raw write path, IXIT), and what the device does when secure boot
//! refuses it, for UPD-10 (5.7-1).

use schemars::JsonSchema;
use serde::Deserialize;

use super::resolver::Resolver;
use super::yaml::{InputError, Loc};
pub use crate::model::secure_boot::{OnFailure, SecureBoot};

/// As written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecureBoot {
    /// How an image is written where the device boots from, bypassing its update agent:
    /// a command at the console's shell naming `{{image.url}}` (the bench serves the image),
    /// e.g. `flash-raw {{image.url}}` or `curl -s {{image.url}} | dd of=/dev/mtdblock2`.
    pub tamper: RawTamper,
    /// What the maker claims secure boot does with an image whose signature fails:
    /// `fallback` (boots the previous valid firmware) or `halt` (stops safely, no shell).
    pub on_failure: OnFailure,
    /// A regex of what the device prints when secure boot refuses an image (evidence; for
    /// `halt`, the only sign of a safe stop).
    #[serde(default)]
    pub refused: Option<Loc<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTamper {
    pub console: Loc<String>,
    /// A regex the device answers the command with when it wrote the image (default: the
    /// prompt back with no error).
    #[serde(default)]
    pub written: Option<Loc<String>>,
}

pub fn resolve(rx: &Resolver, raw: Option<&RawSecureBoot>, has_update: bool) -> Option<SecureBoot> {
    let raw = raw?;
    if !has_update {
        rx.error(
            InputError::new(
                rx.file,
                Some(raw.tamper.console.pos),
                "secure_boot.tamper.console",
                "the images written to the boot slot are the update section's: there is none".to_string(),
            )
            .with_hint("declare `update:` with the maker's valid image"),
        );
        return None;
    }
    let command = rx.template(rx.file, "secure_boot.tamper.console", &raw.tamper.console)?;
    if !command.vars().any(|v| v == "image.url") {
        rx.error(InputError::new(
            rx.file,
            Some(raw.tamper.console.pos),
            "secure_boot.tamper.console",
            "the command does not name `{{image.url}}`: certbench serves the image it writes".to_string(),
        ));
        return None;
    }
    if raw.on_failure == OnFailure::Halt && raw.refused.is_none() {
        rx.error(
            InputError::new(
                rx.file,
                Some(raw.tamper.console.pos),
                "secure_boot.refused",
                "a device that halts shows nothing else: what it prints when it refuses is the only evidence"
                    .to_string(),
            )
            .with_hint("declare refused: '<regex of the boot log line>'"),
        );
        return None;
    }
    let written = raw
        .tamper
        .written
        .as_ref()
        .and_then(|w| rx.regex("secure_boot.tamper.written", w).map(|_| w.value.clone()));
    let refused = raw
        .refused
        .as_ref()
        .and_then(|w| rx.regex("secure_boot.refused", w).map(|_| w.value.clone()));
    Some(SecureBoot {
        command,
        written,
        on_failure: raw.on_failure,
        refused,
    })
}
