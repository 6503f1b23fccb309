//! What the item under test is: vendor, model, revision, serial, firmware.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Identity")] // the profile's schema keeps its name
pub struct DeviceIdentity {
    pub vendor: String,
    pub model: String,
    pub hardware_revision: String,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub firmware_version: Option<String>,
    /// The firmware image under test; its SHA-256 goes into the report.
    #[serde(default)]
    pub firmware_file: Option<PathBuf>,
}
