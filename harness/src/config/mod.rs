//! User files: device profiles, lab bindings, scenarios. Raw serde types stay here; the
//! rest of certbench gets validated structures.

pub mod device;
pub mod duration;
pub mod scenario;
pub mod template;
pub mod yaml;

/// JSON Schemas for editor completion, by file kind.
pub fn schema(kind: &str) -> Option<serde_json::Value> {
    let s = match kind {
        "device" => schemars::schema_for!(device::RawProfile),
        "lab" => schemars::schema_for!(device::RawLab),
        "scenario" => schemars::schema_for!(scenario::RawScenario),
        _ => return None,
    };
    serde_json::to_value(s).ok()
}
