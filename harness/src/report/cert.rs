//! The certification report: one self-contained HTML file and the same content as JSON,
//! with what ISO/IEC 17025 7.8.2 and TS 103 701 expect of a test report. The page is
//! rendered by `report::page` from an auto-escaping template: a console that prints
//! `<script>` renders as text.

use std::path::PathBuf;

use serde::Serialize;

use super::events::{Reporter, RunEvent, ScenarioResult};
use super::rating::RequirementRating;
use crate::model::Identity;
use crate::model::catalogue::Catalogue;
use crate::util::sha256_file;

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

/// Evidence files the report shows in full (already redacted by the engine), and how much
/// of each at most.
const SHOWN: &[&str] = &["destinations.txt"];
const SHOWN_MAX: usize = 64 << 10;

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
    pub device: Identity,
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

#[derive(Debug)]
pub struct CertReporter {
    out_dir: PathBuf,
    ctx: Context,
    started: Option<(String, String, Identity, String, String)>,
    results: Vec<ScenarioResult>,
}

impl CertReporter {
    pub fn new(out_dir: PathBuf, ctx: Context) -> Self {
        Self {
            out_dir,
            ctx,
            started: None,
            results: Vec::new(),
        }
    }

    fn build(&self, finished_at: &str, interrupted: bool, requirements: &[RequirementRating]) -> Report {
        let cat = Catalogue::get();
        let (run_id, started_at, device, version, profile) = self.started.clone().unwrap_or_else(|| {
            (
                String::new(),
                String::new(),
                Identity::default(),
                String::new(),
                String::new(),
            )
        });
        let checks: Vec<CheckEntry> = self
            .results
            .iter()
            .map(|r| {
                let mut provisions = Vec::new();
                if let Some(e) = &r.evidences {
                    for p in &e.provisions {
                        let title = cat
                            .provision(&p.value)
                            .map(|(pr, _)| pr.title.clone())
                            .unwrap_or_default();
                        provisions.push((p.value.clone(), title));
                    }
                }
                let requirements = super::rating::requirements_of(r);
                let evidence = r
                    .evidence_files
                    .iter()
                    .map(|f| {
                        let (sha256, bytes) = sha256_file(&self.out_dir.join(f)).unwrap_or_default();
                        EvidenceFile {
                            path: f.clone(),
                            sha256,
                            bytes,
                        }
                    })
                    .collect();
                let shown = r
                    .evidence_files
                    .iter()
                    .filter(|f| SHOWN.iter().any(|s| f.ends_with(&format!("/{s}"))))
                    .filter_map(|f| {
                        let bytes = std::fs::read(self.out_dir.join(f)).ok()?;
                        let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN_MAX)]).into_owned();
                        if bytes.len() > SHOWN_MAX {
                            text.push_str("\n[… the rest is in the file]");
                        }
                        Some((f.rsplit('/').next().unwrap_or(f).to_string(), text))
                    })
                    .collect();
                CheckEntry {
                    result: r.clone(),
                    provisions,
                    requirements,
                    evidence,
                    shown,
                }
            })
            .collect();
        let summary = requirements
            .iter()
            .map(|r| MatrixRow {
                requirement: r.requirement,
                title: r.title.clone(),
                status: r.rating.to_string().to_lowercase(),
                checks: r.checks.clone(),
                detail: r.detail.clone(),
                rating: r.clone(),
            })
            .collect();
        Report {
            report_id: run_id,
            lab: self.ctx.lab.clone(),
            operator: self.ctx.operator.clone(),
            started_at,
            finished_at: finished_at.to_string(),
            standards: cat
                .standards
                .iter()
                .map(|s| (s.id.clone(), s.edition.clone()))
                .collect(),
            decision_rule: DECISION_RULE.into(),
            device,
            profile,
            profile_sha256: self.ctx.profile_sha256.clone(),
            lab_file_sha256: self.ctx.lab_file_sha256.clone(),
            firmware_sha256: self.ctx.firmware_sha256.clone(),
            harness_version: version,
            harness_commit: env!("CERTBENCH_COMMIT").into(),
            bench: self.ctx.bench.clone(),
            ixit: self.ctx.ixit.clone(),
            not_applicable: self.ctx.not_applicable.clone(),
            warnings: self.ctx.warnings.clone(),
            summary,
            checks,
            deviations: self.ctx.deviations.clone(),
            interrupted,
            statement: STATEMENT.into(),
        }
    }

    fn write(&self, report: &Report) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
        std::fs::write(self.out_dir.join("report.json"), json)?;
        std::fs::write(self.out_dir.join("report.html"), super::page::html(report))
    }
}

impl Reporter for CertReporter {
    fn event(&mut self, ev: &RunEvent) -> std::io::Result<()> {
        match ev {
            RunEvent::RunStarted {
                run_id,
                started_at,
                harness_version,
                device,
                profile,
                ..
            } => {
                self.started = Some((
                    run_id.clone(),
                    started_at.clone(),
                    device.clone(),
                    harness_version.clone(),
                    profile.clone(),
                ));
                Ok(())
            }
            RunEvent::ScenarioFinished { result } => {
                self.results.push(result.clone());
                Ok(())
            }
            RunEvent::RunFinished {
                finished_at,
                interrupted,
                requirements,
                ..
            } => {
                let r = self.build(finished_at, *interrupted, requirements);
                self.write(&r)
            }
            _ => Ok(()),
        }
    }
}
