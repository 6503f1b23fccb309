//! The lab layer: an inventory of boards, each run as its own device run (own lock, results
//! folder, report, manifest), at most `parallel` at once, optionally one shard of the work.

use std::path::PathBuf;

use super::board::{load_scenarios, new_run_id, run_board, select_scenarios, sign_key};
use super::options::RunOptions;
use crate::config::device;
use crate::config::resolver::Overrides;
use crate::config::scenario::Scenario;
use crate::config::yaml::{InputError, InputErrors};
use crate::exit;

/// How to run a lab inventory.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub inventory: PathBuf,
    /// Only these boards (all when empty).
    pub boards: Vec<String>,
    /// Only boards carrying every one of these tags.
    pub tags: Vec<String>,
    pub shard: Option<crate::lab::Shard>,
    /// Boards run at once (`None`: every selected board at once, as `--parallel` says).
    pub parallel: Option<usize>,
}

/// Runs the selected scenarios on every selected board of an inventory, one task per
/// board, at most `parallel` at once; each board gets its own results folder, report,
/// manifest and JUnit (testcase names carry the board).
pub async fn run_lab(base: RunOptions, lab: LabOptions) -> Result<u8, InputErrors> {
    let inv = crate::lab::load(&lab.inventory)?;
    let selected = crate::lab::select(&inv, &lab.boards, &lab.tags).map_err(|e| {
        InputError::new(&lab.inventory, None, "--board", e).with_hint("board names are listed in the inventory")
    })?;
    let scenarios = select_scenarios(load_scenarios(&base.scenarios)?, &base.only)?;
    let key = sign_key(&base)?;
    // every board's files are checked before anything runs
    let work = load_boards(&base, &lab, &selected)?;
    let names: Vec<&str> = selected.iter().map(|b| b.name.as_str()).collect();
    let ids: Vec<&str> = scenarios.iter().map(|s| s.id.as_str()).collect();
    let shard = lab.shard.unwrap_or(crate::lab::Shard { index: 1, count: 1 });
    let pairs: Vec<(String, String)> = crate::lab::shard(&names, &ids, shard)
        .into_iter()
        .map(|(b, s)| (b.to_string(), s.to_string()))
        .collect();
    let run_id = new_run_id();
    let out_root = base
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&run_id));
    // all at once unless told otherwise (it was 64: 256 boards ran in four waves, 4.8x one
    // board's time instead of 2.9x)
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(
        lab.parallel
            .unwrap_or(work.len())
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
    ));
    let key = std::sync::Arc::new(key);
    let mut tasks = tokio::task::JoinSet::new();
    for (b, device, ov) in work {
        let mine: Vec<Scenario> = scenarios
            .iter()
            .filter(|s| pairs.iter().any(|(pb, ps)| pb == &b.name && ps == &s.id))
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut o = base.clone();
        o.profile = b.profile.clone();
        o.lab = b.lab.clone();
        o.overrides = ov;
        o.board = Some(b.name.clone());
        o.lock_dir = base.lock_dir.clone().or(Some(inv.lock_dir.clone()));
        o.workdir = base.workdir.as_ref().map(|w| w.join(&b.name));
        let out = out_root.join(&b.name);
        let (permits, key, run_id, name) = (permits.clone(), key.clone(), run_id.clone(), b.name.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let code = run_board(&o, device, mine, &run_id, &out, key.as_ref().as_ref())
                .await
                .map(|(code, _)| code)
                .unwrap_or_else(|e| {
                    eprintln!("[{name}] {e}");
                    exit::HARNESS_ERROR
                });
            (name, code)
        });
    }
    let mut codes = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(c) => codes.push(c),
            Err(e) => {
                eprintln!("certbench: a board task failed: {e}");
                codes.push(("?".into(), exit::HARNESS_ERROR));
            }
        }
    }
    Ok(summary(codes, &run_id, shard, &out_root))
}

/// Each selected board's profile and lab, loaded with its port, unit and variables over the
/// command line's; every board's errors are reported together.
fn load_boards<'a>(
    base: &RunOptions,
    lab: &LabOptions,
    selected: &[&'a crate::lab::Board],
) -> Result<Vec<(&'a crate::lab::Board, device::Device, Overrides)>, InputErrors> {
    let mut errs = Vec::new();
    let mut work = Vec::new();
    for b in selected {
        let mut vars = base.overrides.vars.clone();
        vars.extend(b.vars.clone());
        let ov = Overrides {
            port: b.port.clone().or(base.overrides.port.clone()),
            baud: base.overrides.baud,
            vars,
            skip_secrets: false,
            check_files: false,
            known_chip: base.overrides.known_chip,
            unit: b.unit.clone().or(base.overrides.unit.clone()),
        };
        match device::load(&b.profile, b.lab.as_deref(), &ov) {
            // a board is one unit: a lab that lists units must say which
            Ok(d) if ov.unit.is_none() && !d.units.is_empty() => errs.push(
                InputError::new(
                    &lab.inventory,
                    None,
                    format!("boards[{}].unit", b.name),
                    format!(
                        "the board's lab file lists units ({}): name the one this board is",
                        d.units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )
                .with_hint("a model's units run together with `certbench run --lab LAB` (no inventory)"),
            ),
            Ok(d) => work.push((*b, d, ov)),
            Err(e) => errs.extend(e.0),
        }
    }
    if !errs.is_empty() {
        return Err(InputErrors(errs));
    }
    Ok(work)
}

/// Prints each board's outcome; the run's exit code: a device failure over a harness error
/// over success.
fn summary(mut codes: Vec<(String, u8)>, run_id: &str, shard: crate::lab::Shard, out_root: &std::path::Path) -> u8 {
    codes.sort();
    println!(
        "\nlab run {run_id}: {} board(s), shard {}/{}",
        codes.len(),
        shard.index,
        shard.count
    );
    for (name, code) in &codes {
        let what = match *code {
            exit::OK => "all passed",
            exit::DEVICE_FAILED => "device failed a check",
            _ => "harness error",
        };
        println!("  {name}: {what} (results {})", out_root.join(name).display());
    }
    let any = |c: u8| codes.iter().any(|(_, x)| *x == c);
    if any(exit::DEVICE_FAILED) {
        exit::DEVICE_FAILED
    } else if any(exit::HARNESS_ERROR) {
        exit::HARNESS_ERROR
    } else {
        exit::OK
    }
}
