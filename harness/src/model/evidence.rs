//! What a scenario evidences: seed requirements, EN 303 645 provisions, catalogue checks.

use schemars::JsonSchema;
use serde::Deserialize;

use super::position::Loc;

#[derive(Debug, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Evidences {
    /// Seed requirement numbers (1..5) of the founding letter.
    pub requirements: Vec<Loc<u8>>,
    /// ETSI EN 303 645 provisions, e.g. "5.1-1".
    pub provisions: Vec<Loc<String>>,
    /// Check ids from the security test catalogue, e.g. PWD-01.
    pub checks: Vec<Loc<String>>,
}
