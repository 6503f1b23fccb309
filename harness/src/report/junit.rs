//! JUnit XML for CI: a testsuite per device run, a testcase per scenario; FAIL is
//! `<failure>`, ERROR is `<error>`, NOT APPLICABLE is `<skipped>` (message "NOT APPLICABLE: reason") with its reason. Written with
//! quick-junit after every scenario, so an interrupted run still leaves a valid file.

use std::path::PathBuf;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::events::{Reporter, RunEvent, ScenarioResult, Verdict};
use super::xml_safe;

#[derive(Debug)]
pub struct JunitReporter {
    path: PathBuf,
    suite_name: String,
    board: String,
    /// Vendor and model (a unit's testcases are named by it and the unit).
    model: String,
    properties: Vec<(String, String)>,
    cases: Vec<ScenarioResult>,
    planned: Vec<(String, String, String)>,
    duration: Duration,
}

impl JunitReporter {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            suite_name: "certbench".into(),
            board: String::new(),
            model: String::new(),
            properties: Vec::new(),
            cases: Vec::new(),
            planned: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    fn write(&self) -> std::io::Result<()> {
        let mut report = Report::new("certbench");
        let mut suite = TestSuite::new(xml_safe(&self.suite_name));
        for (k, v) in &self.properties {
            suite.add_property(Property::new(xml_safe(k), xml_safe(v)));
        }
        for r in &self.cases {
            // a model's suite over several units: each testcase names the unit it ran on
            let board = match &r.unit {
                Some(u) => format!("{} {u}", self.model),
                None => self.board.clone(),
            };
            suite.add_test_case(case(r, &board));
            suite.add_test_cases(part_cases(r, &board));
        }
        // scenarios planned but not reported yet (the run is still going, or was cut):
        // present as errors so nothing planned is ever missing from the file
        for (id, title, classname) in &self.planned {
            if !self.cases.iter().any(|c| &c.id == id) {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message("not run: the run ended before this scenario finished");
                status.set_type("not-run");
                let mut tc = TestCase::new(xml_safe(&format!("{id} [{}]", self.board)), status);
                tc.set_classname(xml_safe(classname));
                tc.set_system_out(xml_safe(title));
                suite.add_test_case(tc);
            }
        }
        suite.set_time(self.duration);
        report.add_test_suite(suite);
        let text = report.to_string().map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("xml.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

fn case(r: &ScenarioResult, board: &str) -> TestCase {
    let checks: Vec<String> = r
        .evidences
        .as_ref()
        .map(|e| e.checks.iter().map(|c| c.value.clone()).collect())
        .unwrap_or_default();
    let mut body = String::new();
    for s in &r.steps {
        body.push_str(&format!(
            "step {} {} [{:?}] {} ({})\n",
            s.index, s.name, s.status, s.detail, s.at
        ));
    }
    if !r.excerpt.is_empty() {
        body.push_str("\n--- console excerpt ---\n");
        body.push_str(&r.excerpt);
    }
    let reason = r.reason.clone().unwrap_or_default();
    let mut status = status(r.verdict, &reason, r.check.as_deref(), &body);
    // passed only on retry: flaky, with why the earlier attempts errored
    if r.verdict == Verdict::Pass {
        for why in &r.earlier_attempts {
            let mut rerun = quick_junit::TestRerun::new(NonSuccessKind::Error);
            rerun.set_message(xml_safe(why));
            status.add_rerun(rerun);
        }
    }
    let mut tc = TestCase::new(xml_safe(&format!("{} [{board}]", r.id)), status);
    // classname = the check ids, stable across verdicts so CI history lines up
    tc.set_classname(xml_safe(&if checks.is_empty() {
        r.id.clone()
    } else {
        checks.join("+")
    }));
    tc.set_time(Duration::from_millis(r.duration_ms as u64));
    if let Some(e) = &r.evidences {
        for c in &e.checks {
            tc.add_property(Property::new("check", xml_safe(&c.value)));
        }
        for p in &e.provisions {
            tc.add_property(Property::new("provision", xml_safe(&format!("EN 303 645 {}", p.value))));
        }
    }
    let mut out = format!("{}\nscenario file: {}\n", r.title, r.file);
    for f in &r.evidence_files {
        out.push_str(&format!("evidence: {f}\n"));
    }
    if r.verdict == Verdict::Pass {
        out.push_str(&body);
    }
    tc.set_system_out(xml_safe(&out));
    tc
}

/// A verdict as JUnit sees it: FAIL a failure, ERROR an error, NOT APPLICABLE and REVIEW
/// skipped with their reason.
fn status(verdict: Verdict, reason: &str, check: Option<&str>, body: &str) -> TestCaseStatus {
    match verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::NotApplicable | Verdict::Review => {
            let (label, kind) = if verdict == Verdict::Review {
                ("REVIEW", "review")
            } else {
                ("NOT APPLICABLE", "not-applicable")
            };
            let mut s = TestCaseStatus::skipped();
            s.set_message(xml_safe(&format!("{label}: {reason}")));
            s.set_type(kind);
            s
        }
        Verdict::Fail | Verdict::Error => {
            let kind = if verdict == Verdict::Fail {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(xml_safe(reason));
            s.set_type(xml_safe(check.unwrap_or(if verdict == Verdict::Fail {
                "device-failed"
            } else {
                "harness-error"
            })));
            s.set_description(xml_safe(body));
            s
        }
    }
}

/// The testcases of a testcase's parts (`<id>.<part> [board]`), in the classname of the
/// check each part decides, so a CI history lines up per destination and identity.
fn part_cases(r: &ScenarioResult, board: &str) -> Vec<TestCase> {
    r.parts
        .iter()
        .map(|p| {
            let mut tc = TestCase::new(
                xml_safe(&format!("{}.{} [{board}]", r.id, p.name)),
                status(p.verdict, &p.reason, p.check.as_deref(), &p.reason),
            );
            tc.set_classname(xml_safe(p.check.as_deref().unwrap_or(&r.id)));
            tc.set_system_out(xml_safe(&format!("part of {}: {}\n{}\n", r.id, r.title, p.reason)));
            tc
        })
        .collect()
}

impl Reporter for JunitReporter {
    fn event(&mut self, ev: &RunEvent) -> std::io::Result<()> {
        match ev {
            RunEvent::RunStarted {
                run_id,
                started_at,
                harness_version,
                device,
                profile,
                planned,
                ..
            } => {
                let board = device.serial.clone().unwrap_or_else(|| {
                    std::path::Path::new(profile)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default()
                });
                self.model = format!("{} {}", device.vendor, device.model);
                self.board = format!("{} {board}", self.model);
                self.suite_name = format!("certbench {}", self.board);
                self.properties = vec![
                    ("run_id".into(), run_id.clone()),
                    ("started_at".into(), started_at.clone()),
                    ("harness_version".into(), harness_version.clone()),
                    ("device.vendor".into(), device.vendor.clone()),
                    ("device.model".into(), device.model.clone()),
                    ("device.hardware_revision".into(), device.hardware_revision.clone()),
                    ("device.profile".into(), profile.clone()),
                ];
                if let Some(s) = &device.serial {
                    self.properties.push(("device.serial".into(), s.clone()));
                }
                if let Some(f) = &device.firmware_version {
                    self.properties.push(("device.firmware_version".into(), f.clone()));
                }
                self.planned = planned
                    .iter()
                    .map(|p| {
                        (
                            p.id.clone(),
                            p.title.clone(),
                            if p.checks.is_empty() {
                                p.id.clone()
                            } else {
                                p.checks.join("+")
                            },
                        )
                    })
                    .collect();
                self.write()
            }
            RunEvent::ScenarioFinished { result } => {
                self.cases.push(result.clone());
                self.write()
            }
            RunEvent::RunFinished {
                duration_ms,
                requirements,
                ..
            } => {
                self.duration = Duration::from_millis(*duration_ms as u64);
                for r in requirements {
                    self.properties.push((
                        format!("requirement.{}", r.requirement),
                        format!("{}: {}", r.rating, r.detail),
                    ));
                }
                self.write()
            }
            _ => Ok(()),
        }
    }
}
