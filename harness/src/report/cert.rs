//! The certification report: one self-contained HTML file and the same content as JSON,
//! with what ISO/IEC 17025 7.8.2 and TS 103 701 expect of a test report. The page is
//! rendered by `report::page` from an auto-escaping template: a console that prints
//! `<script>` renders as text.

use std::path::PathBuf;

use super::document::{CheckEntry, Context, DECISION_RULE, EvidenceFile, MatrixRow, Report, STATEMENT};
use super::events::{Reporter, RequirementRating, RunEvent, ScenarioResult};
use crate::model::DeviceIdentity;
use crate::model::catalogue::Catalogue;
use crate::util::sha256_file;

/// Evidence files the report shows in full (already redacted by the engine), and how much
/// of each at most.
const SHOWN: &[&str] = &["destinations.txt", "components.txt", "vulnerabilities.txt"];
const SHOWN_MAX: usize = 64 << 10;

#[derive(Debug)]
pub struct CertReporter {
    out_dir: PathBuf,
    ctx: Context,
    started: Option<(String, String, DeviceIdentity, String, String)>,
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
                DeviceIdentity::default(),
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
