//! A model's suite over its units (lab `units:`): each scenario runs on one unit, chosen so
//! the whole takes the least wall time (longest first, onto the unit with the least work);
//! scenarios about each unit (`every_unit`, `first`, `last`) run on every unit. Each unit is
//! a device run of its own (own lock, namespace, bench identities, factory state, results
//! under `units/<name>/`); one report, JUnit and event log for the model sit above them, each
//! testcase naming the unit it ran on, the requirements rated over every unit's results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::board::now_rfc3339;
use super::board::{report_context, run_board};
use super::options::RunOptions;
use crate::config::device::{self, Device};
use crate::config::scenario::Scenario;
use crate::config::yaml::InputErrors;
use crate::exit;
use crate::model::unit::Unit;
use crate::report::Reporters;
use crate::report::events::{PlannedScenario, RunEvent, ScenarioResult, Verdict};

/// Runs `scenarios` over the model's units (`model.units`) into `out_root`; returns the
/// exit code of the model (a FAIL on any unit fails the model).
pub async fn run_units(
    opts: &RunOptions,
    model: Device,
    scenarios: Vec<Scenario>,
    run_id: &str,
    out_root: &Path,
    sign_key: Option<&ed25519_dalek::SigningKey>,
) -> Result<u8, InputErrors> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    // every unit's files are checked before anything runs
    let work = load_units(opts, &model)?;
    // durations: the folder named, else the newest earlier run of this profile beside this one
    let earlier = opts
        .history
        .clone()
        .or_else(|| earlier_run(out_root, &model.profile_file.display().to_string()));
    let history = earlier.as_deref().map(history).unwrap_or_default();
    let estimates: Vec<Duration> = scenarios.iter().map(|s| estimate(s, &model, &history)).collect();
    let plan = plan(&scenarios, &estimates, work.len());
    std::fs::create_dir_all(out_root).map_err(|e| {
        crate::config::yaml::InputError::new(out_root, None, "--out", format!("cannot create results folder: {e}"))
    })?;
    let mut reporters = model_reporters(out_root, opts, model_context(opts, &model, &work));
    let planned = planned(&plan, &scenarios);
    reporters.emit(RunEvent::RunStarted {
        run_id: run_id.to_string(),
        started_at: started_at.clone(),
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        device: model.identity.clone(),
        profile: model.profile_file.display().to_string(),
        out_dir: out_root.display().to_string(),
        planned,
    });
    announce_plan(
        &mut reporters,
        earlier.as_deref(),
        history.len(),
        &work,
        &plan,
        &estimates,
        &scenarios,
    );
    // one task per unit, all at once: they are separate boards
    let key = std::sync::Arc::new(sign_key.cloned());
    let all_units: Vec<Unit> = work.iter().map(|(u, _)| u.clone()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (u, d)) in work.into_iter().enumerate() {
        let mine: Vec<Scenario> = plan[i].iter().map(|&s| scenarios[s].clone()).collect();
        let mut o = opts.clone();
        o.overrides.unit = Some(u.name.clone());
        o.board = Some(u.name.clone());
        o.share_of_model = true;
        o.workdir = opts.workdir.as_ref().map(|w| w.join(&u.name));
        let out = out_root.join("units").join(&u.name);
        let (key, run_id) = (key.clone(), run_id.to_string());
        tasks.spawn(async move {
            let r = run_board(&o, d, mine, &run_id, &out, key.as_ref().as_ref()).await;
            (i, u, r)
        });
    }
    let mut done: Vec<(usize, Unit, u8, Vec<ScenarioResult>)> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((i, u, Ok((code, results)))) => done.push((i, u, code, results)),
            Ok((i, u, Err(e))) => {
                eprintln!("[{}] {e}", u.name);
                done.push((i, u, exit::HARNESS_ERROR, Vec::new()));
            }
            Err(e) => eprintln!("certbench: a unit's task failed: {e}"),
        }
    }
    // a unit whose task died still shows every scenario planned for it
    for (i, u) in all_units.into_iter().enumerate() {
        if !done.iter().any(|d| d.0 == i) {
            done.push((i, u, exit::HARNESS_ERROR, Vec::new()));
        }
    }
    done.sort_by_key(|d| d.0);
    let (results, worst) = merge_units(done, &plan, &scenarios, &mut reporters);
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    reporters.emit(RunEvent::RunFinished {
        passed: count(Verdict::Pass),
        failed: count(Verdict::Fail),
        errors: count(Verdict::Error),
        not_applicable: count(Verdict::NotApplicable),
        review: count(Verdict::Review),
        duration_ms: started.elapsed().as_millis(),
        // a signal reaches every unit's run: each marks what it did not finish
        interrupted: results
            .iter()
            .any(|r| r.reason.as_deref().is_some_and(|m| m.contains("interrupted by"))),
        finished_at: now_rfc3339(),
        requirements: crate::report::rating::rate(&results, &model.not_applicable),
    });
    let mut code = if count(Verdict::Fail) > 0 {
        exit::DEVICE_FAILED
    } else if count(Verdict::Error) > 0 {
        exit::HARNESS_ERROR
    } else {
        worse(exit::OK, worst)
    };
    if reporters.1 {
        code = exit::HARNESS_ERROR;
    }
    if let Err(e) = crate::report::manifest::write(out_root, run_id, sign_key) {
        eprintln!("certbench: cannot write the evidence manifest: {e}");
        code = exit::HARNESS_ERROR;
    }
    Ok(code)
}

/// Each unit of the model loaded on its own (its wiring, its variables); every unit's
/// errors are reported together.
fn load_units(opts: &RunOptions, model: &Device) -> Result<Vec<(Unit, Device)>, InputErrors> {
    let mut errs = Vec::new();
    let mut work: Vec<(Unit, Device)> = Vec::new();
    for u in &model.units {
        let mut ov = opts.overrides.clone();
        ov.unit = Some(u.name.clone());
        match device::load(&opts.profile, opts.lab.as_deref(), &ov) {
            Ok(d) => work.push((u.clone(), d)),
            Err(e) => errs.extend(e.0),
        }
    }
    if !errs.is_empty() {
        return Err(InputErrors(errs));
    }
    Ok(work)
}

/// Tells where the durations came from, and what each unit is to run.
fn announce_plan(
    reporters: &mut Reporters,
    earlier: Option<&Path>,
    known: usize,
    work: &[(Unit, Device)],
    plan: &[Vec<usize>],
    estimates: &[Duration],
    scenarios: &[Scenario],
) {
    reporters.emit(RunEvent::Notice {
    text: match earlier {
        Some(d) => format!(
            "the suite is shared out by the durations recorded in {} ({} scenario(s) known; others estimated from their boots)",
            d.display(),
            known
        ),
        None => "the suite is shared out by estimates (each scenario's boots): no earlier run of this profile beside the results folder, and no --history".into(),
    },
});
    for (i, (u, _)) in work.iter().enumerate() {
        let load: Duration = plan[i].iter().map(|&s| estimates[s]).sum();
        reporters.emit(RunEvent::Notice {
            text: format!(
                "unit {}: {} scenario(s), about {} s planned: {}",
                u.label(),
                plan[i].len(),
                load.as_secs(),
                plan[i]
                    .iter()
                    .map(|&s| scenarios[s].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
}

/// Every unit's results in the model's report, each naming its unit and with its evidence
/// under the unit's folder (a unit whose run never started shows its planned scenarios as
/// not run); the worst exit code of the units' runs.
fn merge_units(
    done: Vec<(usize, Unit, u8, Vec<ScenarioResult>)>,
    plan: &[Vec<usize>],
    scenarios: &[Scenario],
    reporters: &mut Reporters,
) -> (Vec<ScenarioResult>, u8) {
    let mut results = Vec::new();
    let mut worst = exit::OK;
    for (i, u, code, rs) in done {
        worst = worse(worst, code);
        // a unit whose run never started still shows every scenario planned for it
        let rs = if rs.is_empty() && !plan[i].is_empty() {
            plan[i]
                .iter()
                .map(|&s| {
                    super::options::not_run(
                        &scenarios[s],
                        format!(
                            "not run: the run of unit {} ended before this scenario (see its terminal lines)",
                            u.label()
                        ),
                    )
                })
                .collect()
        } else {
            rs
        };
        for mut r in rs {
            r.unit = Some(u.label());
            for f in &mut r.evidence_files {
                *f = format!("units/{}/{f}", u.name);
            }
            reporters.emit(RunEvent::ScenarioFinished { result: r.clone() });
            results.push(r);
        }
    }
    (results, worst)
}

/// The report's context for the model: its units in place of one console.
fn model_context(opts: &RunOptions, model: &Device, work: &[(Unit, Device)]) -> crate::report::document::Context {
    let mut c = report_context(opts, model, &model.vars, None);
    c.bench.retain(|(k, _)| k != "console");
    c.bench.push((
        "units".into(),
        work.iter().map(|(u, _)| u.label()).collect::<Vec<_>>().join(", "),
    ));
    c
}

/// Every scenario of the plan, unit by unit.
fn planned(plan: &[Vec<usize>], scenarios: &[Scenario]) -> Vec<PlannedScenario> {
    plan.iter()
        .flatten()
        .map(|&s| &scenarios[s])
        .map(|s| PlannedScenario {
            id: s.id.clone(),
            title: s.title.clone(),
            checks: s.evidences.checks.iter().map(|c| c.value.clone()).collect(),
        })
        .collect()
}

/// The model's reporters: the terminal (told only the start, the plan and the summary: each
/// unit prints its own scenarios), JUnit, the report and the event log at the top.
fn model_reporters(out_root: &Path, opts: &RunOptions, ctx: crate::report::document::Context) -> Reporters {
    use crate::report::{cert, events, jsonl, junit, terminal};
    /// The terminal, without the scenarios the units already printed.
    struct Summary(terminal::TerminalReporter<std::io::Stdout>);
    impl events::Reporter for Summary {
        fn event(&mut self, ev: &RunEvent) -> std::io::Result<()> {
            match ev {
                RunEvent::ScenarioFinished { .. } | RunEvent::StepFinished { .. } => Ok(()),
                _ => self.0.event(ev),
            }
        }
    }
    let mut r = Reporters(
        vec![
            Box::new(Summary(terminal::TerminalReporter::new(
                std::io::stdout(),
                opts.color,
                opts.verbose,
            ))),
            Box::new(junit::JunitReporter::new(out_root.join("junit.xml"))),
            Box::new(cert::CertReporter::new(out_root.to_path_buf(), ctx)),
        ],
        false,
    );
    match jsonl::JsonlReporter::create(&out_root.join("events.jsonl")) {
        Ok(j) => r.0.push(Box::new(j)),
        Err(e) => {
            eprintln!("certbench: cannot write events.jsonl: {e}");
            r.1 = true;
        }
    }
    r
}

/// The worse of two exit codes: a device failure over a harness error over success.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        exit::DEVICE_FAILED => 2,
        exit::OK => 0,
        _ => 1,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Each scenario's recorded duration in an earlier run's folder (a run of one device, or a
/// run over units: every unit's `events.jsonl`), summed over its testcases (`id.item`);
/// the longest where a scenario ran on several units.
fn history(dir: &Path) -> BTreeMap<String, Duration> {
    let mut files: Vec<PathBuf> = vec![dir.join("events.jsonl")];
    if let Ok(rd) = std::fs::read_dir(dir.join("units")) {
        files.extend(rd.flatten().map(|e| e.path().join("events.jsonl")));
    }
    let mut out: BTreeMap<String, Duration> = BTreeMap::new();
    for f in files {
        let Ok(text) = crate::util::read_user_text(&f, &[dir], crate::util::limits::RUN_FILE) else {
            continue;
        };
        let mut per_file: BTreeMap<String, Duration> = BTreeMap::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["event"] != "scenario_finished" || v["result"]["unit"].is_string() {
                continue; // a model's own log repeats its units' results
            }
            let (Some(id), Some(ms)) = (v["result"]["id"].as_str(), v["result"]["duration_ms"].as_u64()) else {
                continue;
            };
            let group = id.split('.').next().unwrap_or(id).to_string();
            *per_file.entry(group).or_default() += Duration::from_millis(ms);
        }
        for (id, d) in per_file {
            let e = out.entry(id).or_default();
            *e = (*e).max(d);
        }
    }
    out
}

/// The newest finished run of `profile` in the folder that holds `out_root` (its siblings:
/// `results/<run-id>/` by default), at most 256 looked at.
fn earlier_run(out_root: &Path, profile: &str) -> Option<PathBuf> {
    let parent = out_root.parent()?;
    let mut runs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(parent)
        .ok()?
        .flatten()
        .take(256)
        .map(|e| e.path())
        .filter(|p| p != out_root && p.join("manifest.json").is_file())
        .filter_map(|p| {
            let events = p.join("events.jsonl");
            let modified = std::fs::metadata(&events).and_then(|m| m.modified()).ok()?;
            Some((modified, p))
        })
        .collect();
    runs.sort();
    runs.into_iter().rev().map(|(_, p)| p).find(|p| {
        let Ok(text) =
            crate::util::read_user_text(&p.join("events.jsonl"), &[p.as_path()], crate::util::limits::RUN_FILE)
        else {
            return false;
        };
        let mut lines = text.lines();
        let started = lines
            .next()
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .is_some_and(|v| v["event"] == "run_started" && v["profile"] == profile);
        started && text.contains("\"event\":\"run_finished\"")
    })
}

/// How long a scenario is expected to take: its recorded duration, else a second per step
/// plus a boot for each power step and factory reset, times its testcases.
fn estimate(sc: &Scenario, model: &Device, history: &BTreeMap<String, Duration>) -> Duration {
    if let Some(d) = history.get(&sc.id) {
        return *d;
    }
    use crate::config::scenario::StepKind;
    let boot = model
        .console
        .as_ref()
        .map(|c| c.boot_time)
        .unwrap_or(Duration::from_secs(10));
    let steps = sc.steps.iter().chain(&sc.positive_control);
    let per_case: Duration = steps
        .map(|s| match s.kind {
            StepKind::Power(_) | StepKind::FactoryReset => boot + Duration::from_secs(1),
            _ => Duration::from_secs(1),
        })
        .sum();
    let cases = super::dispatch::expand(vec![sc.clone()], model).len().max(1) as u32;
    per_case * cases
}

/// Which scenarios (indices) each of `units` runs: every-unit scenarios on all, the others
/// longest first onto the unit with the least planned work (ties: the first unit).
fn plan(scenarios: &[Scenario], estimates: &[Duration], units: usize) -> Vec<Vec<usize>> {
    let mut load = vec![Duration::ZERO; units];
    let mut on: Vec<Vec<usize>> = vec![Vec::new(); units];
    for (i, s) in scenarios.iter().enumerate() {
        if s.every_unit {
            for u in 0..units {
                on[u].push(i);
                load[u] += estimates[i];
            }
        }
    }
    let mut rest: Vec<usize> = (0..scenarios.len()).filter(|&i| !scenarios[i].every_unit).collect();
    rest.sort_by(|&a, &b| estimates[b].cmp(&estimates[a]).then(a.cmp(&b)));
    for i in rest {
        let u = (0..units).min_by_key(|&u| (load[u], u)).unwrap_or(0);
        on[u].push(i);
        load[u] += estimates[i];
    }
    // each unit runs its share in the suite's order
    for v in &mut on {
        v.sort_unstable();
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(id: &str, every: bool) -> Scenario {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.yaml");
        std::fs::write(
            &p,
            format!("id: {id}\ntitle: t\nevery_unit: {every}\nevidences: {{ requirements: [3], provisions: [\"5.1-1\"], checks: [PWD-05] }}\nsteps:\n  - sleep: 1s\n"),
        )
        .expect("write");
        crate::config::scenario::load(&p).expect("scenario")
    }

    #[test]
    fn the_longest_go_first_onto_the_least_loaded_unit_and_every_unit_checks_go_everywhere() {
        let s = vec![
            sc("a", false),
            sc("b", false),
            sc("c", false),
            sc("d", true),
            sc("e", false),
        ];
        let est: Vec<Duration> = [50, 40, 30, 5, 20].map(Duration::from_secs).to_vec();
        let p = plan(&s, &est, 2);
        // d (every unit) on both; a → u0 (55), b → u1 (45), c → u1 (75), e → u0 (75)
        assert_eq!(p, vec![vec![0, 3, 4], vec![1, 2, 3]]);
        // one unit: everything, in order
        assert_eq!(plan(&s, &est, 1), vec![vec![0, 1, 2, 3, 4]]);
        // every scenario is planned exactly once per unit that runs it
        let p = plan(&s, &est, 3);
        for (i, x) in s.iter().enumerate() {
            let n = p.iter().filter(|v| v.contains(&i)).count();
            assert_eq!(n, if x.every_unit { 3 } else { 1 }, "{}", x.id);
        }
    }

    #[test]
    fn durations_come_from_the_newest_finished_run_of_the_same_profile() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = |name: &str, profile: &str, finished: bool, lines: &[(&str, u64, Option<&str>)]| {
            let d = root.path().join(name);
            std::fs::create_dir_all(d.join("units/u1")).expect("mkdir");
            std::fs::write(d.join("manifest.json"), "{}").expect("manifest");
            let mut text = format!("{{\"event\":\"run_started\",\"profile\":\"{profile}\"}}\n");
            for (id, ms, unit) in lines {
                let unit = unit.map(|u| format!(",\"unit\":\"{u}\"")).unwrap_or_default();
                text.push_str(&format!(
                    "{{\"event\":\"scenario_finished\",\"result\":{{\"id\":\"{id}\",\"duration_ms\":{ms}{unit}}}}}\n"
                ));
            }
            if finished {
                text.push_str("{\"event\":\"run_finished\"}\n");
            }
            std::fs::write(d.join("events.jsonl"), text).expect("events");
            std::thread::sleep(Duration::from_millis(20));
            d
        };
        // the model's own log repeats its units' results (skipped); a unit's log counts;
        // a for_each's testcases add up under their scenario
        let a = run("a", "devices/x.yaml", true, &[("s1", 9_000, Some("u1"))]);
        std::fs::write(
            a.join("units/u1/events.jsonl"),
            "{\"event\":\"scenario_finished\",\"result\":{\"id\":\"s1.one\",\"duration_ms\":2000}}\n{\"event\":\"scenario_finished\",\"result\":{\"id\":\"s1.two\",\"duration_ms\":3000}}\n",
        )
        .expect("unit events");
        run("b", "devices/other.yaml", true, &[]);
        run("c", "devices/x.yaml", false, &[]);
        let here = root.path().join("new");
        assert_eq!(earlier_run(&here, "devices/x.yaml"), Some(a.clone()));
        assert_eq!(history(&a).get("s1"), Some(&Duration::from_secs(5)));
        assert_eq!(earlier_run(&here, "devices/none.yaml"), None);
    }

    #[test]
    fn exit_codes_combine_worst_first() {
        assert_eq!(worse(exit::OK, exit::HARNESS_ERROR), exit::HARNESS_ERROR);
        assert_eq!(worse(exit::HARNESS_ERROR, exit::DEVICE_FAILED), exit::DEVICE_FAILED);
        assert_eq!(worse(exit::DEVICE_FAILED, exit::OK), exit::DEVICE_FAILED);
    }
}
