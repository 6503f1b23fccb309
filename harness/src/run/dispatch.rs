//! The scenario loop: each planned scenario runs (or is recorded as not run, with why), with
//! the health probe, retries of an ERROR, signals; for_each groups are expanded and their
//! items held until their positive control has decided.

use std::path::Path;

use super::options::{RunOptions, not_run};
use crate::config::device::Device;
use crate::config::scenario::Scenario;
use crate::engine::{self, Applicability, Rig};
use crate::report::Reporters;
use crate::report::events::{RunEvent, ScenarioResult, Verdict};

type Signals = tokio::sync::watch::Receiver<Option<&'static str>>;

/// Why scenarios cannot run, known before the loop: setup (or the lock) failed, a bench did
/// not start.
#[derive(Debug, Default)]
pub(super) struct Blockers {
    pub setup: Option<String>,
    pub net: Option<String>,
    pub update: Option<String>,
}

/// The loop's state across scenarios.
struct Loop<'a> {
    opts: &'a RunOptions,
    bench: &'a mut Rig,
    reporters: &'a mut Reporters,
    signals: &'a mut Signals,
    interrupted: Option<&'static str>,
    offline: Option<String>,
    need_health: bool,
}

/// Runs every planned scenario in order; each gets a result, run or not.
pub(super) async fn run_all(
    opts: &RunOptions,
    bench: &mut Rig,
    scenarios: &[Scenario],
    out_dir: &Path,
    reporters: &mut Reporters,
    signals: &mut Signals,
    blockers: &Blockers,
) -> (Vec<ScenarioResult>, Option<&'static str>) {
    let mut l = Loop {
        opts,
        bench,
        reporters,
        signals,
        interrupted: None,
        offline: None,
        need_health: opts.health,
    };
    let mut results = Vec::new();
    let mut controls = Controls::default();
    let total = scenarios.len();
    for (index, sc) in scenarios.iter().enumerate() {
        if l.interrupted.is_none() {
            l.interrupted = *l.signals.borrow();
        }
        // a scenario that boots the board first is its own health probe: one boot, not two
        // (if it ends in ERROR the probe runs then, as after any ERROR)
        let probe_by_boot = l.need_health && boots_first(sc) && l.bench.gate(sc) == Applicability::Run;
        if l.interrupted.is_none() && blockers.setup.is_none() && l.offline.is_none() && l.need_health && !probe_by_boot
        {
            l.health_before(sc).await;
        }
        let result = if let Some(sig) = l.interrupted {
            not_run(sc, format!("not run: the run was interrupted by {sig}"))
        } else if let Some(e) = &blockers.setup {
            not_run(sc, e.clone())
        } else if let Some(e) = bench_missing(sc, &blockers.net, &blockers.update) {
            not_run(sc, e)
        } else if let Some(e) = &l.offline {
            not_run(sc, format!("board offline: the health probe failed: {e}"))
        } else {
            l.reporters.emit(RunEvent::ScenarioStarted {
                id: sc.id.clone(),
                index,
                total,
            });
            let r = l.run_one(sc, out_dir).await;
            if probe_by_boot && r.verdict != Verdict::Error && l.offline.is_none() {
                l.need_health = false;
                l.reporters.emit(RunEvent::Notice {
                    text: format!("health probe: {}'s own boot showed the board working", sc.id),
                });
            }
            r
        };
        for r in controls.add(sc, result) {
            l.reporters.emit(RunEvent::ScenarioFinished { result: r.clone() });
            results.push(r);
        }
    }
    for r in controls.flush() {
        l.reporters.emit(RunEvent::ScenarioFinished { result: r.clone() });
        results.push(r);
    }
    (results, l.interrupted)
}

/// Whether the scenario power-cycles the board before anything else touches it (steps
/// that only set up the bench or reset the board's state may come first).
fn boots_first(sc: &Scenario) -> bool {
    use crate::config::scenario::{PowerAction, StepKind};
    sc.steps
        .iter()
        .find(|s| !matches!(s.kind, StepKind::Bench { .. } | StepKind::FactoryReset))
        .is_some_and(|s| {
            matches!(
                s.kind,
                StepKind::Power(PowerAction::Cycle | PowerAction::CycleUnlessFresh)
            )
        })
}

impl Loop<'_> {
    /// The health probe before a scenario that will run (first one, or after an ERROR).
    async fn health_before(&mut self, sc: &Scenario) {
        if self.bench.gate(sc) != Applicability::Run {
            return;
        }
        self.reporters.emit(RunEvent::Notice {
            text: "health probe: power cycle and wait for the console".into(),
        });
        match self.bench.health().await {
            Ok(()) => self.need_health = false,
            Err(e) => {
                self.reporters.emit(RunEvent::Notice {
                    text: format!("board offline: {e}"),
                });
                self.offline = Some(e);
            }
        }
    }

    /// One scenario, re-run after an ERROR up to `--retries` times (never after a FAIL), the
    /// board's health checked after each ERROR; a signal ends it at once.
    async fn run_one(&mut self, sc: &Scenario, out_dir: &Path) -> ScenarioResult {
        let rel = format!("scenarios/{}", sc.id);
        let dir = out_dir.join(&rel);
        let mut earlier: Vec<String> = Vec::new();
        loop {
            // steps are reported as they finish, so the event log is live
            let reps = &mut *self.reporters;
            let fut = engine::run_scenario(self.bench, sc, &dir, &rel, |s| {
                reps.emit(RunEvent::StepFinished {
                    scenario: sc.id.clone(),
                    step: s.clone(),
                })
            });
            let mut r = tokio::select! {
                r = fut => r,
                _ = self.signals.changed() => {
                    self.interrupted = *self.signals.borrow();
                    let sig = self.interrupted.unwrap_or("a signal");
                    let mut r = not_run(sc, format!("interrupted by {sig} while running"));
                    let b = &self.bench;
                    r.excerpt = b.console.as_ref().map(|c| c.with_transcript(|t| t.tail_text(t.mark().saturating_sub(50), 3000, &b.redactor))).unwrap_or_default();
                    r
                }
            };
            r.earlier_attempts = earlier.clone();
            if r.verdict != Verdict::Error || self.interrupted.is_some() {
                return r;
            }
            // an ERROR: is the board still healthy? (retries never apply to FAIL)
            if self.opts.health {
                if let Err(e) = self.bench.health().await {
                    self.reporters.emit(RunEvent::Notice {
                        text: format!("board offline: {e}"),
                    });
                    self.offline = Some(e);
                    return r;
                }
                self.need_health = false;
            }
            if earlier.len() as u32 >= self.opts.retries {
                return r;
            }
            earlier.push(r.reason.clone().unwrap_or_default());
            self.reporters.emit(RunEvent::Notice {
                text: format!("{}: ERROR, retry {} of {}", sc.id, earlier.len(), self.opts.retries),
            });
        }
    }
}

/// Expands each for_each scenario into one testcase per item the device allows, then its
/// positive control last (a control run first would change what the items are tested against).
pub fn expand(scenarios: Vec<Scenario>, device: &Device) -> Vec<Scenario> {
    use crate::config::scenario::{ForEach, Instance};
    let mut out = Vec::new();
    for sc in scenarios {
        let Some(kind) = sc.for_each else {
            out.push(sc);
            continue;
        };
        // (item, its title, its check); the control's check and what it shows
        let (items, control_check, control_title): (Vec<(String, String, String)>, &str, &str) = match kind {
            ForEach::UpdateImage => (
                device
                    .update
                    .as_ref()
                    .map(|u| u.hostile_images())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|i| (i.as_str(), i.describe(), i.check().as_str().to_string()))
                    .collect(),
                "UPD-02",
                "the valid image installs",
            ),
            ForEach::TlsIdentity => (
                crate::model::CertVariant::MITM
                    .into_iter()
                    .map(|v| {
                        (
                            v.as_str().to_string(),
                            format!("a man in the middle presenting {}", v.describe()),
                            v.check().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                "",
                "with a valid certificate the device connects",
            ),
        };
        let checks_for = |ids: &[&str]| -> Vec<crate::config::yaml::Loc<String>> {
            sc.evidences
                .checks
                .iter()
                .filter(|c| ids.contains(&c.value.as_str()))
                .cloned()
                .collect()
        };
        if items.is_empty() {
            // no update section: one testcase, which the engine fails (requirement 2 needs updates)
            out.push(sc);
            continue;
        }
        for (item, describe, check) in items {
            let mut one = sc.clone();
            one.id = format!("{}.{}", sc.id, item);
            one.title = format!("{}: {}", sc.title, describe);
            one.evidences.checks = checks_for(&[check.as_str()]);
            one.positive_control = Vec::new();
            one.instance = Some(Instance {
                group: sc.id.clone(),
                item: Some(item),
                var: kind.var(),
            });
            out.push(one);
        }
        let mut control = sc.clone();
        control.id = format!("{}.positive_control", sc.id);
        control.title = format!("{}: positive control ({control_title})", sc.title);
        control.evidences.checks = checks_for(&[control_check]);
        control.steps = std::mem::take(&mut control.positive_control);
        control.instance = Some(Instance {
            group: sc.id.clone(),
            item: None,
            var: kind.var(),
        });
        out.push(control);
    }
    out
}

/// Holds the results of a for_each group until its positive control has run: an item's
/// PASS stands only beside a passing control, otherwise it becomes ERROR.
#[derive(Debug, Default)]
struct Controls {
    held: Vec<ScenarioResult>,
}

impl Controls {
    fn add(&mut self, sc: &Scenario, r: ScenarioResult) -> Vec<ScenarioResult> {
        match &sc.instance {
            None => vec![r],
            Some(i) if i.item.is_some() => {
                self.held.push(r);
                Vec::new()
            }
            Some(_) => {
                let why = match r.verdict {
                    Verdict::Pass => None,
                    v => Some(format!(
                        "the positive control {} did not pass ({v}: {}), so a refusal proves nothing: the device was not shown to accept what is valid in this run",
                        r.id,
                        r.reason.clone().unwrap_or_default()
                    )),
                };
                let mut out = self.settle(why);
                out.push(r);
                out
            }
        }
    }

    fn settle(&mut self, why: Option<String>) -> Vec<ScenarioResult> {
        let mut out = std::mem::take(&mut self.held);
        if let Some(why) = why {
            for r in out.iter_mut().filter(|r| r.verdict == Verdict::Pass) {
                r.verdict = Verdict::Error;
                r.reason = Some(why.clone());
            }
        }
        out
    }

    /// Items whose control never ran.
    fn flush(&mut self) -> Vec<ScenarioResult> {
        self.settle(Some(
            "the positive control did not run, so a refusal proves nothing".into(),
        ))
    }
}

/// Why a scenario cannot run when a bench it needs did not start.
fn bench_missing(sc: &Scenario, net: &Option<String>, update: &Option<String>) -> Option<String> {
    use crate::config::scenario::Interface as I;
    let needs = |set: &[I]| sc.requires.interfaces.iter().any(|i| set.contains(i));
    match (net, update) {
        (Some(e), _) if needs(&[I::MqttBench, I::MqttTrustedCa, I::MqttTls]) => Some(e.clone()),
        (_, Some(e)) if needs(&[I::Update, I::UpdateImages, I::UpdatePull, I::UpdateHttps]) => Some(e.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scenario::Instance;

    fn scenario(item: Option<&str>) -> Scenario {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.yaml");
        std::fs::write(
            &p,
            "id: s\ntitle: t\nevidences: { requirements: [2], provisions: [\"5.3-2\"], checks: [UPD-03] }\nsteps:\n  - sleep: 1ms\n",
        )
        .expect("write");
        let mut s = crate::config::scenario::load(&p).expect("scenario");
        s.instance = Some(Instance {
            group: "s".into(),
            item: item.map(str::to_string),
            var: "image",
        });
        s
    }

    fn result(id: &str, v: Verdict) -> ScenarioResult {
        ScenarioResult::new(id, id, "s.yaml", None, v)
    }

    #[test]
    fn an_item_pass_stands_only_beside_a_passing_positive_control() {
        let (item, control) = (scenario(Some("flip")), scenario(None));
        let mut c = Controls::default();
        assert!(
            c.add(&item, result("s.flip", Verdict::Pass)).is_empty(),
            "held until the control"
        );
        let out = c.add(&control, result("s.positive_control", Verdict::Pass));
        assert_eq!(
            out.iter().map(|r| r.verdict).collect::<Vec<_>>(),
            [Verdict::Pass, Verdict::Pass]
        );

        let mut c = Controls::default();
        c.add(&item, result("s.flip", Verdict::Pass));
        c.add(&item, result("s.trunc", Verdict::Fail));
        let out = c.add(&control, result("s.positive_control", Verdict::Fail));
        let got: Vec<_> = out.iter().map(|r| (r.id.as_str(), r.verdict)).collect();
        // a refusal beside a failed control proves nothing; a FAIL stays a FAIL
        assert_eq!(
            got,
            [
                ("s.flip", Verdict::Error),
                ("s.trunc", Verdict::Fail),
                ("s.positive_control", Verdict::Fail)
            ]
        );
        assert!(
            out[0]
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("positive control")
        );
    }

    #[test]
    fn items_whose_control_never_ran_are_errors() {
        let mut c = Controls::default();
        c.add(&scenario(Some("flip")), result("s.flip", Verdict::Pass));
        let out = c.flush();
        assert_eq!(out[0].verdict, Verdict::Error);
    }
}
