//! The scenario engine: runs a validated scenario's steps against a device through the
//! console and power capabilities and decides a verdict. It names no transport type.

#[cfg(test)]
mod brute_force_tests;
mod evidence;
mod gate;
mod records;
mod rig;
mod run;
mod shell;
mod state;
mod steps;
#[cfg(test)]
mod tests;

pub use gate::Applicability;
#[cfg(test)]
pub(crate) use gate::NO_LINK;
pub use rig::Rig;
pub use state::BoardState;

use run::{Run, Stop};

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::config::scenario::Scenario;
use crate::redact::{self};
use crate::report::events::{Part, ScenarioResult, StepRecord, StepStatus, Verdict};

/// Runs one scenario and saves its evidence under `dir`. `step_done` sees each step.
pub async fn run_scenario(
    rig: &mut Rig,
    sc: &Scenario,
    dir: &Path,
    rel_dir: &str,
    step_done: impl FnMut(&StepRecord),
) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult::new(
        &sc.id,
        &sc.title,
        &sc.file.display().to_string(),
        Some(sc.evidences.clone()),
        Verdict::Pass,
    );
    match rig.gate(sc) {
        Applicability::Run => {}
        Applicability::NotApplicable(why) => {
            result.verdict = Verdict::NotApplicable;
            result.reason = Some(why);
            return result;
        }
        Applicability::Fail { check, reason } => {
            result.verdict = Verdict::Fail;
            result.check = check;
            result.reason = Some(reason);
            return result;
        }
    }
    let vars = scenario_vars(rig, sc);
    let marks = evidence::Marks::take(rig, sc);
    // the shell prompt the last testcase ended at is kept (checked again: console quiet since)
    rig.state.between_testcases();
    let mut run = Run {
        reviews: Vec::new(),
        rig,
        vars,
        evidence: Vec::new(),
        attempts: Vec::new(),
        remote_t0: None,
        remote_shell: None,
        held: Vec::new(),
        session_log: Vec::new(),
        power_mark: marks.update.unwrap_or(0),
        id: sc.id.clone(),
        parts: Vec::new(),
    };
    run.steps(sc, started + sc.timeout, &mut result, step_done).await;
    if result.verdict == Verdict::Pass && !run.reviews.is_empty() {
        result.verdict = Verdict::Review;
        result.reason = Some(run.reviews.join("; "));
    }
    if let Some(r) = run.remote_shell.take() {
        r.console.close();
        let text = r.console.with_transcript(|t| t.render_text(0, &run.rig.redactor));
        run.keep_evidence("remote-shell.txt", format!("{}{text}", r.earlier));
        // the serial console's prompt state is not the remote shell's
        run.rig.state.lost();
    }
    result.parts = std::mem::take(&mut run.parts)
        .into_iter()
        .map(|p| Part {
            reason: run.rig.redactor.redact(&p.reason),
            ..p
        })
        .collect();
    let mut extra = std::mem::take(&mut run.evidence);
    if !run.attempts.is_empty() {
        extra.insert(0, ("remote-attempts.jsonl".into(), evidence::jsonl(&run.attempts)));
    }
    run.rig.state.between_testcases();
    evidence::save(run.rig, sc, &marks, &extra, dir, rel_dir, &mut result);
    result.duration_ms = started.elapsed().as_millis();
    result
}

/// The scenario's variables: the factory credentials, its generated passwords (known to the
/// redactor before anything can print them), the rig's names, the image of a `for_each`.
fn scenario_vars(rig: &mut Rig, sc: &Scenario) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    if let Some(f) = &rig.device.factory {
        vars.insert("factory.user".to_string(), f.user.clone());
        vars.insert("factory.password".to_string(), f.password.clone());
        rig.redactor.add("factory.password", &f.password);
    }
    for (name, _, len) in &sc.variables {
        let v = redact::generate_password(*len);
        rig.redactor.add(name, &v);
        vars.insert(name.clone(), v);
    }
    for (k, v) in rig.net.as_ref().map(|n| n.vars()).unwrap_or_default() {
        vars.insert(k, v);
    }
    if let Some(inst) = &sc.instance
        && let Some(item) = &inst.item
    {
        vars.insert(inst.var.into(), item.clone());
    }
    vars
}

impl Run<'_> {
    /// Runs the steps in order until one decides the verdict (or ends the scenario); every
    /// step that ran is recorded.
    async fn steps(
        &mut self,
        sc: &Scenario,
        deadline: Instant,
        result: &mut ScenarioResult,
        mut step_done: impl FnMut(&StepRecord),
    ) {
        for (i, step) in sc.steps.iter().enumerate() {
            let at = format!("{}:{}", sc.file.display(), step.pos.line);
            if let Some(c) = &self.rig.console {
                c.marker(format!("step {}: {} ({at})", i + 1, step.kind.name()));
            }
            let t0 = Instant::now();
            let remaining = deadline.saturating_duration_since(t0);
            let res = match tokio::time::timeout(remaining, self.step(&step.kind)).await {
                Ok(r) => r,
                Err(_) => Err(Stop::Error(format!("scenario timeout of {:?} reached", sc.timeout))),
            };
            let (status, detail) = match &res {
                Ok(d) => (StepStatus::Ok, d.clone()),
                Err(Stop::Fail { reason, .. }) => (StepStatus::Fail, reason.clone()),
                Err(Stop::Error(e)) => (StepStatus::Error, e.clone()),
                Err(Stop::Skip(e)) => (StepStatus::Error, format!("not applicable: {e}")),
                Err(Stop::End(e)) => (StepStatus::Ok, e.clone()),
            };
            let rec = StepRecord {
                index: i + 1,
                name: step.kind.name().to_string(),
                at,
                status,
                detail: self.rig.redactor.redact(&detail),
                duration_ms: t0.elapsed().as_millis(),
            };
            step_done(&rec);
            result.steps.push(rec);
            let (verdict, check, reason) = match res {
                Ok(_) => continue,
                Err(Stop::End(_)) => break,
                Err(Stop::Fail { check, reason }) => (Verdict::Fail, check, reason),
                Err(Stop::Error(e)) => (Verdict::Error, None, e),
                Err(Stop::Skip(e)) => (Verdict::NotApplicable, None, e),
            };
            result.verdict = verdict;
            result.check = check;
            result.reason = Some(self.rig.redactor.redact(&reason));
            result.deciding_step = Some(i + 1);
            break;
        }
    }
}
