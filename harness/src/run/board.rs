//! One board's run: its options, loading and selecting the scenarios, preparing the device
//! and its benches, running every scenario, tearing down, and the report's context.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::device::Device;
use crate::config::power::PowerSpec;
use crate::config::scenario::{self, Scenario};
use crate::config::yaml::{InputError, InputErrors};

use crate::engine::Rig;
use crate::exit;
use crate::power::Action;

use crate::report::Reporters;
use crate::report::events::{PlannedScenario, RunEvent, ScenarioResult, Verdict};

use super::options::{FACTORY_PASSWORD_IS_USER, RunOptions};

/// Loads every scenario under the given paths, collecting all errors.
pub fn load_scenarios(paths: &[PathBuf]) -> Result<Vec<Scenario>, InputErrors> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| InputError::new(p, None, "", format!("cannot read folder: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    let mut errs = Vec::new();
    let mut out: Vec<Scenario> = Vec::new();
    for f in files {
        match scenario::load(&f) {
            Ok(s) => {
                if let Some(prev) = out.iter().find(|o| o.id == s.id) {
                    errs.push(
                        InputError::new(
                            &f,
                            None,
                            "id",
                            format!("scenario id {:?} is also used by {}", s.id, prev.file.display()),
                        )
                        .with_hint("scenario ids must be unique"),
                    );
                } else {
                    out.push(s);
                }
            }
            Err(e) => errs.extend(e.0),
        }
    }
    if errs.is_empty() {
        // stable: `first` ones before the others, `last` ones after, each keeping its order
        out.sort_by_key(|s| (!s.first, s.last));
        Ok(out)
    } else {
        Err(InputErrors(errs))
    }
}

pub(super) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(super) fn new_run_id() -> String {
    let t = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    format!("{}-{:04x}", t.format(&fmt).unwrap_or_default(), rand::random::<u16>())
}

/// Resolves which signal ended the run, if one did.
pub(super) fn signal_watch() -> tokio::sync::watch::Receiver<Option<&'static str>> {
    let (tx, rx) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        let _ = tx.send(Some(name));
    });
    rx
}

/// Reads the lab signing key named by `--sign-key`, if any.
pub fn sign_key(opts: &RunOptions) -> Result<Option<ed25519_dalek::SigningKey>, InputErrors> {
    match &opts.sign_key {
        Some(k) => Ok(Some(crate::report::manifest::read_key(k).map_err(|e| {
            InputError::new(k, None, "--sign-key", e.to_string())
                .with_hint("make one with `certbench keygen --out FILE`")
        })?)),
        None => Ok(None),
    }
}

/// Selects scenarios by id; an unknown id is an input error.
pub fn select_scenarios(mut scenarios: Vec<Scenario>, only: &[String]) -> Result<Vec<Scenario>, InputErrors> {
    if only.is_empty() {
        return Ok(scenarios);
    }
    let errs: Vec<InputError> = only
        .iter()
        .filter(|id| !scenarios.iter().any(|s| &s.id == *id))
        .map(|id| InputError::new(Path::new("--only"), None, "", format!("no scenario has id {id:?}")))
        .collect();
    if !errs.is_empty() {
        return Err(InputErrors(errs));
    }
    scenarios.retain(|s| only.contains(&s.id));
    Ok(scenarios)
}

/// One device's run into `out_dir`: results, report, manifest. Returns the exit code and
/// the results.
pub async fn run_board(
    opts: &RunOptions,
    device: Device,
    scenarios: Vec<Scenario>,
    run_id: &str,
    out_dir: &Path,
    sign_key: Option<&ed25519_dalek::SigningKey>,
) -> Result<(u8, Vec<ScenarioResult>), InputErrors> {
    // a run writes only into a new or empty folder: whatever was there would be signed into
    // this run's manifest as if the run had made it
    if let Ok(mut rd) = std::fs::read_dir(out_dir)
        && rd.next().is_some()
    {
        return Err(InputError::new(
            out_dir,
            None,
            "--out",
            "the results folder is not empty: a run writes only into a new or empty folder",
        )
        .into());
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| InputError::new(out_dir, None, "--out", format!("cannot create results folder: {e}")))?;
    // before anything touches the board: the results must be writable
    let probe = out_dir.join(".certbench-write-test");
    std::fs::write(&probe, b"ok")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            InputError::new(
                out_dir,
                None,
                "--out",
                format!("cannot write into the results folder: {e}"),
            )
        })?;
    let (workdir, temp_workdir) = match &opts.workdir {
        Some(w) => (w.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "certbench-{run_id}-{}",
                opts.board.as_deref().unwrap_or("board")
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&workdir)
        .map_err(|e| InputError::new(&workdir, None, "--workdir", format!("cannot create work folder: {e}")))?;
    let (mut code, results) = execute(opts, device, scenarios, run_id, out_dir, &workdir).await;
    if let Err(e) = crate::report::manifest::write(out_dir, run_id, sign_key) {
        eprintln!("certbench: cannot write the evidence manifest: {e}");
        code = exit::HARNESS_ERROR;
    }
    if temp_workdir {
        let _ = std::fs::remove_dir_all(&workdir);
    }
    Ok((code, results))
}

async fn execute(
    opts: &RunOptions,
    mut device: Device,
    scenarios: Vec<Scenario>,
    run_id: &str,
    out_dir: &Path,
    workdir: &Path,
) -> (u8, Vec<ScenarioResult>) {
    let started = Instant::now();
    let mut signals = signal_watch();
    let mut prepared = super::prepare::prepare(opts, &mut device, run_id, out_dir, workdir, &mut signals).await;
    let scenarios = super::dispatch::expand(scenarios, &device);
    let ctx = report_context(opts, &device, &prepared.vars, prepared.net.as_ref());
    let mut reporters = Reporters::standard(
        out_dir,
        opts.color,
        opts.verbose,
        opts.board.clone(),
        opts.share_of_model,
        ctx,
    );
    reporters.emit(RunEvent::RunStarted {
        run_id: run_id.to_string(),
        started_at: now_rfc3339(),
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        device: device.identity.clone(),
        profile: device.profile_file.display().to_string(),
        out_dir: out_dir.display().to_string(),
        planned: scenarios
            .iter()
            .map(|s| PlannedScenario {
                id: s.id.clone(),
                title: s.title.clone(),
                checks: s.evidences.checks.iter().map(|c| c.value.clone()).collect(),
            })
            .collect(),
    });
    for text in std::mem::take(&mut prepared.notes) {
        reporters.emit(RunEvent::Notice { text });
    }
    let blockers = super::dispatch::Blockers {
        setup: None,
        net: prepared.net_error.take(),
        update: prepared.update_error.take(),
    };
    // the lock is held until the board is off and its console closed
    let (mut bench, setup, lock) = prepared.into_bench(opts, device, out_dir, &mut reporters).await;
    let blockers = super::dispatch::Blockers { setup, ..blockers };
    let (results, interrupted) = super::dispatch::run_all(
        opts,
        &mut bench,
        &scenarios,
        out_dir,
        &mut reporters,
        &mut signals,
        &blockers,
    )
    .await;
    teardown(&mut bench, out_dir, &mut reporters).await;
    // (a labgrid place is released by a client command: off the runtime's workers)
    let _ = tokio::task::spawn_blocking(move || drop(lock)).await;
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let (passed, failed, errors, not_applicable) = (
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Error),
        count(Verdict::NotApplicable),
    );
    reporters.emit(RunEvent::RunFinished {
        passed,
        failed,
        errors,
        not_applicable,
        review: count(Verdict::Review),
        duration_ms: started.elapsed().as_millis(),
        interrupted: interrupted.is_some(),
        finished_at: now_rfc3339(),
        requirements: crate::report::rating::rate(&results, &bench.device.not_applicable),
    });
    let code = if reporters.1 {
        eprintln!("certbench: results could not all be written; the run's evidence is incomplete (exit 3)");
        exit::HARNESS_ERROR
    } else if failed > 0 {
        exit::DEVICE_FAILED
    } else if errors > 0 {
        exit::HARNESS_ERROR
    } else {
        exit::OK
    };
    (code, results)
}

/// Leaves the board unpowered and its console closed, and writes the run-wide evidence: the
/// bench's sessions, the name server's queries, the capture (a copy with every known secret
/// masked, complete before the manifest hashes it), the whole console transcript.
async fn teardown(bench: &mut Rig, out_dir: &Path, reporters: &mut Reporters) {
    if bench.power.is_some()
        && let Err(e) = bench.power(Action::Off).await
    {
        reporters.emit(RunEvent::Notice {
            text: format!("could not power the board off: {e}"),
        });
    }
    // What is left waits on the capture thread and the kernel, masks and writes files: on a
    // runtime worker that would hold up every other board's task (with 64 boards the
    // runtime's two workers were blocked for seconds, and other boards' commands were seen
    // to end up to 2 s before their tasks noticed).
    let redactor = bench.redactor.clone();
    if let Some(n) = &bench.net {
        for s in n.log.secrets() {
            redactor.add("device.password", &s);
        }
    }
    let texts = [
        ("bench-sessions.jsonl", bench.net.as_ref().map(|n| n.sessions_json())),
        ("dns-queries.jsonl", bench.gateway.dns.as_ref().map(|d| d.jsonl())),
        ("dhcp.jsonl", bench.gateway.dhcp.as_ref().map(|d| d.jsonl())),
    ];
    let capture = bench.gateway.capture.take();
    let console = bench.console.clone();
    let net = bench.gateway.net.take();
    let intercept = bench.gateway.intercept.take();
    let out = out_dir.to_path_buf();
    let notes = tokio::task::spawn_blocking(move || {
        let mut notes = Vec::new();
        for (name, text) in texts {
            if let Some(text) = text {
                let _ = std::fs::write(out.join(name), redactor.redact(&text));
            }
        }
        if let Some(mut c) = capture {
            c.stop();
            match crate::gateway::pcapng::copy_masked(&c.path, &out.join("capture.pcapng"), |p| redactor.mask_bytes(p))
            {
                Ok((_, masked)) if masked > 0 => notes.push(format!(
                    "capture.pcapng: {masked} occurrence(s) of known secrets masked with '*'"
                )),
                Ok(_) => {}
                Err(e) => notes.push(format!("capture.pcapng could not be written: {e}")),
            }
            let _ = std::fs::remove_file(&c.path);
        }
        if let Some(c) = console {
            let text = c.with_transcript(|t| t.render_text(0, &redactor));
            let _ = std::fs::write(out.join("console-full.log"), text);
            c.close();
        }
        // the interception table's and the namespace's removal wait on the kernel (nf_tables,
        // RTNL, RCU) for tens of milliseconds
        drop(intercept);
        drop(net);
        notes
    })
    .await
    .unwrap_or_else(|e| vec![format!("the run's last evidence could not all be written: {e}")]);
    for text in notes {
        reporters.emit(RunEvent::Notice { text });
    }
}

/// What the report says about the lab, the bench and departures from the method.
pub(super) fn report_context(
    opts: &RunOptions,
    device: &Device,
    vars: &BTreeMap<String, String>,
    net: Option<&crate::bench::NetBench>,
) -> crate::report::document::Context {
    use crate::util::sha256_file;
    let mut bench = Vec::new();
    if let Some(c) = &device.console {
        bench.push((
            "console".to_string(),
            format!(
                "{} at {} baud",
                vars.get("console").cloned().unwrap_or_default(),
                c.baud
            ),
        ));
    }
    bench.push((
        "power".to_string(),
        match &device.power {
            Some(PowerSpec::Manual) => "manual (operator)".to_string(),
            Some(PowerSpec::External { .. }) => "external commands".to_string(),
            Some(PowerSpec::Labgrid { place, .. }) => format!("labgrid place {place}'s power resource"),
            None => "none".to_string(),
        },
    ));
    if let Some(n) = net {
        bench.push(("MQTT plaintext listener".into(), n.plain.addr.to_string()));
        bench.push(("MQTT TLS listener".into(), n.tls.addr.to_string()));
        bench.push((
            "cloud host name".into(),
            vars.get("mqtt.host").cloned().unwrap_or_default(),
        ));
        bench.push(("TLS crypto provider".into(), "rustls with ring".into()));
    }
    let mut deviations = Vec::new();
    if opts.skip_setup {
        deviations.push("the profile's setup commands were skipped (--skip-setup)".into());
    }
    if let Some(p) = &opts.overrides.port {
        deviations.push(format!("serial port overridden on the command line: {p}"));
    }
    if let Some(b) = opts.overrides.baud {
        deviations.push(format!("baud rate overridden on the command line: {b}"));
    }
    if !opts.only.is_empty() {
        deviations.push(format!(
            "only a subset of the scenarios was selected: {}",
            opts.only.join(", ")
        ));
    }
    crate::report::document::Context {
        lab: opts
            .lab_name
            .clone()
            .unwrap_or_else(|| "not named (use --lab-name)".into()),
        operator: opts
            .operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "not named (use --operator)".into()),
        profile_sha256: sha256_file(&device.profile_file).map(|(h, _)| h).unwrap_or_default(),
        lab_file_sha256: opts.lab.as_deref().and_then(sha256_file).map(|(h, _)| h),
        firmware_sha256: device
            .identity
            .firmware_file
            .as_deref()
            // (through the gate: a FIFO or device named as firmware is never read)
            .filter(|p| {
                crate::util::check_user_file(p, &[crate::util::folder_of(p)], crate::util::limits::IMAGE).is_ok()
            })
            .and_then(sha256_file)
            .map(|(h, _)| h),
        ixit: device.ixit.clone().into_iter().collect(),
        not_applicable: device.not_applicable.clone().into_iter().collect(),
        bench,
        deviations,
        warnings: device
            .factory
            .as_ref()
            .filter(|f| f.password.eq_ignore_ascii_case(&f.user))
            .map(|_| FACTORY_PASSWORD_IS_USER.to_string())
            .into_iter()
            .chain(device.notices.iter().map(|n| format!("profile format: {n}")))
            .collect(),
    }
}
