//! The certification report: one self-contained HTML file and the same content as JSON,
//! with what ISO/IEC 17025 7.8.2 and TS 103 701 expect of a test report. Every piece of
//! device text is escaped: a console that prints `<script>` renders as text.

use std::path::PathBuf;

use serde::Serialize;

use super::events::{Reporter, RunEvent, ScenarioResult, Verdict};
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
                CheckEntry {
                    result: r.clone(),
                    provisions,
                    requirements,
                    evidence,
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
        std::fs::write(self.out_dir.join("report.html"), html(report))
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

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{fffe}' | '\u{ffff}' => o.push_str("\\u{fffe}"),
            c => o.push(c),
        }
    }
    o
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "PASS" | "pass" => "pass",
        "FAIL" | "fail" => "fail",
        "ERROR" | "inconclusive" => "error",
        "REVIEW" | "review" => "review",
        "incomplete" => "incomplete",
        _ => "na",
    }
}

fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "INCONCLUSIVE",
        Verdict::NotApplicable => "NOT APPLICABLE",
        Verdict::Review => "REVIEW",
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ccc;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;width:24%}.v{font-weight:700;padding:.15em .5em;border-radius:3px;white-space:nowrap}
.pass{background:#d6f5d6;color:#0a5a0a}.fail{background:#f9d0d0;color:#8a0000}.error{background:#f3dcf3;color:#6a006a}
.review{background:#fff0c2;color:#6a4b00}.incomplete{background:#ffe2c4;color:#7a3d00}.na{background:#e8e8e8;color:#444}
pre{background:#f8f8f8;border:1px solid #ddd;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:.85em}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}.check{border:1px solid #ddd;border-radius:4px;padding:.6em 1em;margin:1em 0}
.muted{color:#666;font-size:.9em}code{font-size:.9em}
@media print{body{margin:0;max-width:none}details{display:block}details>summary{list-style:none}.check{page-break-inside:avoid}}";

pub fn html(r: &Report) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    h.push_str(&format!(
        "<title>certbench report {}</title><style>{CSS}</style></head><body>\n",
        esc(&r.report_id)
    ));
    h.push_str(&format!(
        "<h1>Security test report</h1><p class=\"muted\">Report <code>{}</code> — certbench {} (commit {})</p>\n",
        esc(&r.report_id),
        esc(&r.harness_version),
        esc(&r.harness_commit)
    ));
    if r.interrupted {
        h.push_str("<p class=\"v fail\">The run was interrupted; checks that did not finish are inconclusive.</p>\n");
    }
    h.push_str("<h2>Summary of the five requirements</h2>\n<p class=\"muted\">A requirement is PASS only when every EN 303 645 provision mapped to it was tested and passed (or the maker declared it not applicable, with the reason) and every check the catalogue lists for it was decided in this run; otherwise it is INCOMPLETE and the row says what was not tested.</p>\n<table id=\"summary-matrix\"><tr><th>Requirement</th><th>Result</th><th>Coverage</th><th>Checks</th></tr>\n");
    for row in &r.summary {
        h.push_str(&format!(
            "<tr><td>{}. {}</td><td><span class=\"v {}\">{}</span></td><td>{}</td><td>{}</td></tr>\n",
            row.requirement,
            esc(&row.title),
            verdict_class(&row.status),
            esc(&row.status.to_uppercase()),
            esc(&row.detail),
            esc(&row.checks.join(", "))
        ));
    }
    h.push_str("</table>\n<h2>Item tested</h2><table>\n");
    let mut kv = |k: &str, v: &str| h.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), esc(v)));
    kv("Vendor", &r.device.vendor);
    kv("Model", &r.device.model);
    kv("Hardware revision", &r.device.hardware_revision);
    kv("Serial number", r.device.serial.as_deref().unwrap_or("not declared"));
    kv(
        "Firmware version",
        r.device.firmware_version.as_deref().unwrap_or("not declared"),
    );
    kv(
        "Firmware SHA-256",
        r.firmware_sha256
            .as_deref()
            .unwrap_or("not available (no firmware image declared)"),
    );
    kv(
        "Device profile (ICS/IXIT)",
        &format!("{} (SHA-256 {})", r.profile, r.profile_sha256),
    );
    if let Some(l) = &r.lab_file_sha256 {
        kv("Lab binding SHA-256", l);
    }
    for (k, v) in &r.ixit {
        kv(&format!("Declared (IXIT): {k}"), v);
    }
    for (p, why) in &r.not_applicable {
        kv(&format!("Not applicable (ICS): EN 303 645 {p}"), why);
    }
    for w in &r.warnings {
        kv("Noted", w);
    }
    h.push_str("</table>\n<h2>Method</h2><table>\n");
    let mut kv = |k: &str, v: &str| h.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), esc(v)));
    kv("Laboratory", &r.lab);
    kv("Operator", &r.operator);
    kv("Started", &r.started_at);
    kv("Finished", &r.finished_at);
    for (s, e) in &r.standards {
        kv(s, e);
    }
    kv("Decision rule", &r.decision_rule);
    kv(
        "Harness",
        &format!("certbench {} commit {}", r.harness_version, r.harness_commit),
    );
    for (k, v) in &r.bench {
        kv(&format!("Bench: {k}"), v);
    }
    h.push_str("</table>\n<h2>Deviations</h2>\n");
    if r.deviations.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<ul>");
        for d in &r.deviations {
            h.push_str(&format!("<li>{}</li>", esc(d)));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Checks</h2>\n");
    for c in &r.checks {
        let res = &c.result;
        let label = verdict_label(res.verdict);
        let checks = res
            .evidences
            .as_ref()
            .map(|e| e.checks.iter().map(|c| c.value.clone()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        h.push_str(&format!(
            "<div class=\"check\" id=\"check-{}\"><h3><span class=\"v {}\">{}</span> {} — {}</h3>\n<p class=\"muted\">Checks {} · scenario <code>{}</code> · {:.1} s</p>\n",
            esc(&res.id),
            verdict_class(label.split(' ').next().unwrap_or(label)),
            label,
            esc(&res.id),
            esc(&res.title),
            esc(&checks),
            esc(&res.file),
            res.duration_ms as f64 / 1000.0
        ));
        if let Some(reason) = &res.reason {
            h.push_str(&format!("<p><strong>Finding:</strong> {}</p>\n", esc(reason)));
        }
        h.push_str("<table><tr><th>Provisions</th><td>");
        for (id, title) in &c.provisions {
            h.push_str(&format!("EN 303 645 {} — {}<br>", esc(id), esc(title)));
        }
        h.push_str("</td></tr></table>\n");
        if !res.steps.is_empty() {
            h.push_str("<details><summary>Steps</summary><table><tr><th>#</th><th>Step / outcome</th></tr>");
            for s in &res.steps {
                h.push_str(&format!(
                    "<tr><td>{} {}</td><td>{:?}: {} <span class=\"muted\">({}, {} ms)</span></td></tr>",
                    s.index,
                    esc(&s.name),
                    s.status,
                    esc(&s.detail),
                    esc(&s.at),
                    s.duration_ms
                ));
            }
            h.push_str("</table></details>\n");
        }
        if !res.excerpt.is_empty() {
            h.push_str(&format!(
                "<details><summary>Console excerpt</summary><pre>{}</pre></details>\n",
                esc(&res.excerpt)
            ));
        }
        // plots (the brute-force timeline) are shown; loaded as images, an SVG runs nothing
        for e in c.evidence.iter().filter(|e| e.path.ends_with(".svg")) {
            h.push_str(&format!(
                "<figure><img src=\"{}\" alt=\"{}\" width=\"640\"><figcaption>{}</figcaption></figure>\n",
                esc(&e.path),
                esc(&e.path),
                esc(&e.path)
            ));
        }
        if !c.evidence.is_empty() {
            h.push_str("<details><summary>Evidence files</summary><ul>");
            for e in &c.evidence {
                h.push_str(&format!(
                    "<li><a href=\"{}\">{}</a> — {} bytes, SHA-256 <code>{}</code></li>",
                    esc(&e.path),
                    esc(&e.path),
                    e.bytes,
                    esc(&e.sha256)
                ));
            }
            h.push_str("</ul></details>\n");
        }
        h.push_str("</div>\n");
    }
    h.push_str(&format!("<h2>Statement</h2><p>{}</p>\n", esc(&r.statement)));
    h.push_str("<p class=\"muted\">The integrity of this report and its evidence is recorded in <code>manifest.json</code>; check it with <code>certbench verify</code>.</p>\n</body></html>\n");
    h
}
