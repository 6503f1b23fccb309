//! `secure_boot:` — how an image reaches the device's boot slot without the update
//! mechanism (the maker's raw write path, IXIT), and what the device does when secure boot
//! refuses it, for UPD-10 (5.7-1).

use schemars::JsonSchema;
use serde::Deserialize;

use super::resolver::Resolver;
use super::yaml::{InputError, Loc};
use crate::model::secure_boot::{OnFailure, SecureBoot, Tamper};

/// As written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecureBoot {
    /// How an image is written where the device boots from, bypassing its update agent:
    /// a command at the console's shell naming `{{image.url}}` (the bench serves the image),
    /// e.g. `flash-raw {{image.url}}` or `curl -s {{image.url}} | dd of=/dev/mtdblock2`;
    /// or through the unlocked debug port at a flash address.
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
    /// A command at the console's shell naming `{{image.url}}`.
    #[serde(default)]
    pub console: Option<Loc<String>>,
    /// A regex the device answers the command with when it wrote the image (default: the
    /// prompt back with no error).
    #[serde(default)]
    pub written: Option<Loc<String>>,
    /// Through the debug port (`debug:`, unlocked): the image is written at `address` of the
    /// part's flash (GDB `M` packets, or probe-rs's flash algorithm) and read back.
    #[serde(default)]
    pub debug: Option<RawDebugWrite>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDebugWrite {
    /// Where the boot stage reads the image from, e.g. 0x8000.
    pub address: Loc<u64>,
}

pub fn resolve(rx: &Resolver, raw: Option<&RawSecureBoot>, has_update: bool, has_debug: bool) -> Option<SecureBoot> {
    let raw = raw?;
    let at = raw
        .tamper
        .console
        .as_ref()
        .map(|c| c.pos)
        .or(raw.tamper.debug.as_ref().map(|d| d.address.pos));
    if !has_update {
        rx.error(
            InputError::new(
                rx.file,
                at,
                "secure_boot.tamper",
                "the images written to the boot slot are the update section's: there is none".to_string(),
            )
            .with_hint("declare `update:` with the maker's valid image (its delivery may be left out)"),
        );
        return None;
    }
    if raw.on_failure == OnFailure::Halt && raw.refused.is_none() {
        rx.error(
            InputError::new(
                rx.file,
                at,
                "secure_boot.refused",
                "a device that halts shows nothing else: what it prints when it refuses is the only evidence"
                    .to_string(),
            )
            .with_hint("declare refused: '<regex of the boot log line>'"),
        );
        return None;
    }
    let tamper = match (&raw.tamper.console, &raw.tamper.debug) {
        (Some(console), None) => {
            let command = rx.template(rx.file, "secure_boot.tamper.console", console)?;
            if !command.vars().any(|v| v == "image.url") {
                rx.error(InputError::new(
                    rx.file,
                    Some(console.pos),
                    "secure_boot.tamper.console",
                    "the command does not name `{{image.url}}`: certbench serves the image it writes".to_string(),
                ));
                return None;
            }
            let written = raw
                .tamper
                .written
                .as_ref()
                .and_then(|w| rx.regex("secure_boot.tamper.written", w).map(|_| w.value.clone()));
            Tamper::Console { command, written }
        }
        (None, Some(d)) => {
            if !has_debug {
                rx.error(
                    InputError::new(
                        rx.file,
                        Some(d.address.pos),
                        "secure_boot.tamper.debug",
                        "the image is written through the debug port, and the profile declares none".to_string(),
                    )
                    .with_hint("declare `debug:` with its driver"),
                );
                return None;
            }
            if let Some(w) = &raw.tamper.written {
                rx.error(InputError::new(
                    rx.file,
                    Some(w.pos),
                    "secure_boot.tamper.written",
                    "a debug-port write is read back, not answered: `written` belongs to a console command".to_string(),
                ));
                return None;
            }
            Tamper::Debug {
                address: d.address.value,
            }
        }
        _ => {
            rx.error(
                InputError::new(
                    rx.file,
                    at,
                    "secure_boot.tamper",
                    "exactly one write path is needed: `console` (a command) or `debug` (an address)".to_string(),
                )
                .with_hint(
                    "e.g. tamper: { console: 'flash-raw {{image.url}}' } or tamper: { debug: { address: 0x8000 } }",
                ),
            );
            return None;
        }
    };
    let refused = raw
        .refused
        .as_ref()
        .and_then(|w| rx.regex("secure_boot.refused", w).map(|_| w.value.clone()));
    Some(SecureBoot {
        tamper,
        on_failure: raw.on_failure,
        refused,
    })
}
