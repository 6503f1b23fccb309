//! TCP or UDP: what a profile's `no_login` service listens on, and what a flow on the device's
//! link was carried by.

use schemars::JsonSchema;
use serde::Deserialize;

/// A connection's transport.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Deserialize,
    JsonSchema,
    serde::Serialize,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[schemars(description = "A no_login service's transport.")]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
}
