//! The certification report's content: what the run was, what each check showed, and the
//! requirement ratings — the data both the JSON and the HTML page (`report::page`) are made
//! from (`report::cert` builds it from the events).

use serde::Serialize;

use super::events::{RequirementRating, ScenarioResult};
use crate::model::DeviceIdentity;

/// What the runner knows about the run beyond the events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Context {
    pub lab: String,
    pub operator: String,
    pub profile_sha256: String,
    pub lab_file_sha256: Option<String>,
    pub firmware_sha256: Option<String>,
    pub bench: Vec<(String, String)>,
    pub deviations: Vec<String>,
    /// Declared mechanisms (IXIT) and provisions declared not applicable (ICS).
    pub ixit: Vec<(String, String)>,
    pub not_applicable: Vec<(String, String)>,
    /// What the run noticed about the device outside any check (e.g. the factory password
    /// equals the user name).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckEntry {
    pub result: ScenarioResult,
    pub provisions: Vec<(String, String)>,
    pub requirements: Vec<u8>,
    pub evidence: Vec<EvidenceFile>,
    /// Evidence a reader needs on the page itself (file name, text): the device's network
    /// destinations (COM-01's destinations.txt).
    pub shown: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixRow {
    pub requirement: u8,
    pub title: String,
    /// pass / fail / incomplete / review / not applicable (see `report::rating`)
    pub status: String,
    pub checks: Vec<String>,
    /// What was tested and what was not.
    pub detail: String,
    pub rating: RequirementRating,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub report_id: String,
    pub lab: String,
    pub operator: String,
    pub started_at: String,
    pub finished_at: String,
    pub standards: Vec<(String, String)>,
    pub decision_rule: String,
    pub device: DeviceIdentity,
    pub profile: String,
    pub profile_sha256: String,
    pub lab_file_sha256: Option<String>,
    pub firmware_sha256: Option<String>,
    pub harness_version: String,
    pub harness_commit: String,
    pub bench: Vec<(String, String)>,
    pub ixit: Vec<(String, String)>,
    pub not_applicable: Vec<(String, String)>,
    pub warnings: Vec<String>,
    pub summary: Vec<MatrixRow>,
    pub checks: Vec<CheckEntry>,
    pub deviations: Vec<String>,
    pub interrupted: bool,
    pub statement: String,
}

pub const DECISION_RULE: &str = "Each check is decided by its scenario from what the device did. FAIL: the device's behaviour contradicts the provision; the evidence is attached. PASS: the required behaviour was observed, and a negative result (a refusal) counts only beside a passing positive control in the same run. INCONCLUSIVE (ERROR): the harness or bench could not decide. NOT APPLICABLE: the maker's declarations (ICS) exclude the provision, or the device lacks the interface. REVIEW: documentary evidence collected; a named reviewer decides. Verdicts are observations, not measurements: no measurement uncertainty is applied (simple acceptance).";

pub const STATEMENT: &str = "The results in this report relate only to the item tested, identified above, in the configuration and with the firmware stated. This report shall not be reproduced except in full without the written approval of the laboratory.";
