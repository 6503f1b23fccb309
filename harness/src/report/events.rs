//! The run-event stream: the runner emits these, reporters consume them. The runner
//! never formats output.

use std::time::Duration;

use serde::Serialize;

use crate::model::DeviceIdentity;
use crate::model::Evidences;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    /// The check does not apply (the maker's ICS, a declaration, or an interface the device
    /// lacks), with the reason. One word everywhere: terminal, JUnit message, HTML, JSON.
    #[serde(rename = "NOT APPLICABLE")]
    NotApplicable,
    /// Documentary evidence collected; a reviewer decides.
    Review,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::NotApplicable => "NOT APPLICABLE",
            Verdict::Review => "REVIEW",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Fail,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub index: usize,
    pub name: String,
    /// file:line of the step.
    pub at: String,
    pub status: StepStatus,
    pub detail: String,
    pub duration_ms: u128,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub id: String,
    pub title: String,
    pub file: String,
    pub evidences: Option<Evidences>,
    pub verdict: Verdict,
    /// Why it failed, errored or was skipped.
    pub reason: Option<String>,
    /// The check the deciding step evidences.
    pub check: Option<String>,
    /// Index of the step that decided a FAIL or ERROR.
    pub deciding_step: Option<usize>,
    /// Console text around the decision, secrets redacted.
    pub excerpt: String,
    pub steps: Vec<StepRecord>,
    pub duration_ms: u128,
    /// Evidence files, relative to the run folder.
    pub evidence_files: Vec<String>,
    /// Why earlier attempts ended in ERROR, when the scenario was retried; a PASS with
    /// earlier attempts is flaky.
    pub earlier_attempts: Vec<String>,
    /// Parts of the testcase decided on their own, found only while it ran (each TLS
    /// destination of the device and each identity offered to it): a testcase of their own
    /// in JUnit (`<id>.<part>`), a table in the report. The testcase's verdict is the worst
    /// of them and its own steps'.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// The unit of the model it ran on (a model's suite over several units: its name and
    /// serial); None in a run of one device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One part of a testcase (see `ScenarioResult::parts`).
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// Unique within the testcase, e.g. `self_signed@api.example.test`.
    pub name: String,
    pub verdict: Verdict,
    /// The check this part decides (none for a positive control).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    pub reason: String,
}

impl ScenarioResult {
    /// A result with `verdict` and nothing observed yet.
    pub fn new(id: &str, title: &str, file: &str, evidences: Option<Evidences>, verdict: Verdict) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            file: file.into(),
            evidences,
            verdict,
            reason: None,
            check: None,
            deciding_step: None,
            excerpt: String::new(),
            steps: Vec::new(),
            duration_ms: 0,
            evidence_files: Vec::new(),
            earlier_attempts: Vec::new(),
            parts: Vec::new(),
            unit: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedScenario {
    pub id: String,
    pub title: String,
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        run_id: String,
        started_at: String,
        harness_version: String,
        device: DeviceIdentity,
        profile: String,
        out_dir: String,
        planned: Vec<PlannedScenario>,
    },
    ScenarioStarted {
        id: String,
        index: usize,
        total: usize,
    },
    StepFinished {
        scenario: String,
        step: StepRecord,
    },
    ScenarioFinished {
        result: ScenarioResult,
    },
    /// Something the operator should know that is not a result (setup output, signals).
    Notice {
        text: String,
    },
    RunFinished {
        passed: usize,
        failed: usize,
        errors: usize,
        not_applicable: usize,
        /// Checks awaiting a reviewer's sign-off.
        review: usize,
        duration_ms: u128,
        interrupted: bool,
        finished_at: String,
        /// The five requirements rated from what was observed (see `report::rating`).
        requirements: Vec<RequirementRating>,
    },
}

/// A consumer of run events.
pub trait Reporter: Send {
    fn event(&mut self, ev: &RunEvent) -> std::io::Result<()>;
}

pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The rating of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Rating {
    Pass,
    Fail,
    /// Not every mapped provision or check was tested; the detail lists what was not.
    Incomplete,
    /// Everything was tested; documentary evidence awaits a reviewer's decision.
    Review,
    /// The maker declared every provision of the requirement not applicable, with reasons.
    #[serde(rename = "NOT APPLICABLE")]
    NotApplicable,
}

impl std::fmt::Display for Rating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rating::Pass => "PASS",
            Rating::Fail => "FAIL",
            Rating::Incomplete => "INCOMPLETE",
            Rating::Review => "REVIEW",
            Rating::NotApplicable => "NOT APPLICABLE",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RequirementRating {
    pub requirement: u8,
    pub title: String,
    pub rating: Rating,
    /// Provisions mapped to the requirement that were tested (or declared not applicable).
    pub provisions_tested: usize,
    pub provisions_total: usize,
    /// Provisions no decided check evidenced.
    pub provisions_not_tested: Vec<String>,
    /// Provisions the maker declared not applicable (ICS), with the reason.
    pub provisions_not_applicable: Vec<(String, String)>,
    /// Catalogue checks for this requirement that no scenario decided in this run.
    pub checks_not_run: Vec<String>,
    /// Testcases mapped to the requirement that ended inconclusive (ERROR).
    pub inconclusive: Vec<String>,
    /// Testcases mapped to the requirement that failed.
    pub failed: Vec<String>,
    /// Every testcase mapped to the requirement with its verdict.
    pub checks: Vec<String>,
    /// One line saying why the rating is what it is.
    pub detail: String,
}
