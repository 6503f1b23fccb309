//! One run: selected scenarios against one device, results in a per-run folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::device::{self, Device, Overrides, PowerSpec};
use crate::config::scenario::{self, Scenario};
use crate::config::yaml::{InputError, InputErrors};
use crate::console::{self, Console, Feed};
use crate::engine::{self, Bench};
use crate::exit;
use crate::power::{Action, Power, external::ExternalPower, manual::ManualPower};
use crate::redact::Redactor;
use crate::report::events::{PlannedScenario, Reporter, RunEvent, ScenarioResult, Verdict};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub profile: PathBuf,
    pub lab: Option<PathBuf>,
    pub overrides: Overrides,
    /// Scenario files or folders of them.
    pub scenarios: Vec<PathBuf>,
    /// Only these scenario ids (all when empty).
    pub only: Vec<String>,
    pub out: Option<PathBuf>,
    pub workdir: Option<PathBuf>,
    pub skip_setup: bool,
    pub verbose: bool,
    pub color: bool,
    /// Laboratory and operator named in the report.
    pub lab_name: Option<String>,
    pub operator: Option<String>,
    /// Lab key that signs the evidence manifest.
    pub sign_key: Option<PathBuf>,
    /// The board's name in a lab (lock, terminal prefix); None for a single device run.
    pub board: Option<String>,
    /// Where board locks live, and how long to wait for a busy board.
    pub lock_dir: Option<PathBuf>,
    pub lock_wait: std::time::Duration,
    /// Health probe before the first scenario and after any ERROR.
    pub health: bool,
    /// Re-runs of a scenario that ended in ERROR (never of a FAIL).
    pub retries: u32,
}

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
        // stable: scenarios marked `last` keep their order, after the others
        out.sort_by_key(|s| s.last);
        Ok(out)
    } else {
        Err(InputErrors(errs))
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn new_run_id() -> String {
    let t = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    format!("{}-{:04x}", t.format(&fmt).unwrap_or_default(), rand::random::<u16>())
}

/// The reporters, and whether any of them failed to write (then the run exits 3: its
/// results are incomplete, whatever the verdicts).
struct Reporters(Vec<Box<dyn Reporter>>, bool);

impl Reporters {
    fn emit(&mut self, ev: RunEvent) {
        for r in &mut self.0 {
            if let Err(e) = r.event(&ev) {
                eprintln!("certbench: a reporter failed to write: {e}");
                self.1 = true;
            }
        }
    }
}

/// Resolves which signal ended the run, if one did.
fn signal_watch() -> tokio::sync::watch::Receiver<Option<&'static str>> {
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

/// Runs and returns the exit code. Input errors are returned before anything runs.
pub async fn run(opts: RunOptions) -> Result<u8, InputErrors> {
    let device = device::load(&opts.profile, opts.lab.as_deref(), &opts.overrides)?;
    let sign_key = sign_key(&opts)?;
    let scenarios = select_scenarios(load_scenarios(&opts.scenarios)?, &opts.only)?;
    let run_id = new_run_id();
    let out_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&run_id));
    run_board(&opts, device, scenarios, &run_id, &out_dir, sign_key.as_ref()).await
}

/// How to run a lab inventory.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub inventory: PathBuf,
    /// Only these boards (all when empty).
    pub boards: Vec<String>,
    /// Only boards carrying every one of these tags.
    pub tags: Vec<String>,
    pub shard: Option<crate::lab::Shard>,
    /// Boards run at once.
    pub parallel: usize,
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
    let mut errs = Vec::new();
    let mut work = Vec::new();
    for b in &selected {
        let mut vars = base.overrides.vars.clone();
        vars.extend(b.vars.clone());
        let ov = Overrides {
            port: b.port.clone().or(base.overrides.port.clone()),
            baud: base.overrides.baud,
            vars,
            skip_secrets: false,
            check_files: false,
            known_chip: base.overrides.known_chip,
        };
        match device::load(&b.profile, b.lab.as_deref(), &ov) {
            Ok(d) => work.push((*b, d, ov)),
            Err(e) => errs.extend(e.0),
        }
    }
    if !errs.is_empty() {
        return Err(InputErrors(errs));
    }
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
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(lab.parallel.max(1)));
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
    Ok(if any(exit::DEVICE_FAILED) {
        exit::DEVICE_FAILED
    } else if any(exit::HARNESS_ERROR) {
        exit::HARNESS_ERROR
    } else {
        exit::OK
    })
}

/// Reads the lab signing key named by `--sign-key`, if any.
pub fn sign_key(opts: &RunOptions) -> Result<Option<ed25519_dalek::SigningKey>, InputErrors> {
    match &opts.sign_key {
        Some(k) => Ok(Some(crate::report::manifest::read_key(k).map_err(|e| {
            InputError::new(k, None, "--sign-key", e).with_hint("make one with `certbench keygen --out FILE`")
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

/// One device's run into `out_dir`: results, report, manifest. Returns the exit code.
pub async fn run_board(
    opts: &RunOptions,
    device: Device,
    scenarios: Vec<Scenario>,
    run_id: &str,
    out_dir: &Path,
    sign_key: Option<&ed25519_dalek::SigningKey>,
) -> Result<u8, InputErrors> {
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
    let mut code = execute(opts, device, scenarios, run_id, out_dir, &workdir).await;
    if let Err(e) = crate::report::manifest::write(out_dir, run_id, sign_key) {
        eprintln!("certbench: cannot write the evidence manifest: {e}");
        code = exit::HARNESS_ERROR;
    }
    if temp_workdir {
        let _ = std::fs::remove_dir_all(&workdir);
    }
    Ok(code)
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

async fn execute(
    opts: &RunOptions,
    mut device: Device,
    scenarios: Vec<Scenario>,
    run_id: &str,
    out_dir: &Path,
    workdir: &Path,
) -> u8 {
    let started = Instant::now();
    let profile_dir = abs(device.profile_file.parent().unwrap_or(Path::new(".")));
    let mut vars: BTreeMap<String, String> = device.vars.clone();
    vars.insert("workdir".into(), abs(workdir).display().to_string());
    vars.insert("results".into(), abs(out_dir).display().to_string());
    vars.insert("run_id".into(), run_id.to_string());
    vars.insert("profile_dir".into(), profile_dir.display().to_string());
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    vars.insert("exe_dir".into(), exe_dir.display().to_string());
    // `{{port.NAME}}`: a free TCP port for a simulator or emulated device to listen on
    // (picked on the device's address, else loopback; a lab's `vars` may fix it instead)
    for name in &device.port_vars {
        if !vars.contains_key(name) {
            let ip = device
                .attribution
                .device
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
            if let Ok(port) = std::net::TcpListener::bind((ip, 0))
                .or_else(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
                .and_then(|l| l.local_addr())
            {
                vars.insert(name.clone(), port.port().to_string());
            }
        }
    }
    let port = device
        .console
        .as_ref()
        .map(|c| c.port.render(&vars, crate::config::template::Quote::Raw));
    let port = match port {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprintln!("certbench: console port: {e}");
            None
        }
        None => None,
    };
    if let Some(p) = &port {
        vars.insert("console".into(), p.clone());
    }
    // Lock first: nothing touches the board, its console, its power or the work folder's
    // shared files (bench CA, images) before this run holds the board. The wait ends early
    // on SIGINT/SIGTERM; the lock dies with this process.
    let mut signals = signal_watch();
    let lock_name = opts
        .board
        .clone()
        .or_else(|| port.clone())
        .unwrap_or_else(|| device.profile_file.display().to_string());
    let lock_dir = opts.lock_dir.clone().unwrap_or_else(crate::lab::lock::default_dir);
    let wait = opts.lock_wait;
    let give_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = give_up.clone();
    let mut waiting =
        tokio::task::spawn_blocking(move || crate::lab::lock::acquire(&lock_dir, &lock_name, wait, &stop));
    let (lock, lock_error): (Option<crate::lab::lock::BoardLock>, Option<String>) = tokio::select! {
        r = &mut waiting => match r {
            Ok(Ok(l)) => (Some(l), None),
            Ok(Err(e)) => (None, Some(e)),
            Err(e) => (None, Some(format!("lock: {e}"))),
        },
        _ = signals.changed() => {
            give_up.store(true, std::sync::atomic::Ordering::Relaxed);
            let sig = (*signals.borrow()).unwrap_or("a signal");
            // the waiting thread sees `give_up` within 50 ms; a lock it got meanwhile is dropped
            let _ = waiting.await;
            (None, Some(format!("not run: interrupted by {sig} while waiting for the board")))
        }
    };
    let held = lock.is_some();
    // the device's link (its own namespace, or the lab's interface), captured from here on:
    // before the benches and power, so nothing the device sends is missed
    let (gateway, link_notes) = if held {
        open_link(&mut device, &mut vars, workdir).await
    } else {
        (crate::gateway::Gateway::default(), Vec::new())
    };
    // the network bench comes up before anything is powered, so its addresses can be
    // given to power-on commands; a bind failure is reported at once
    // a bench that cannot start makes only the checks that need it ERROR (with the cause)
    let mut net_error: Option<String> = None;
    let mut update_error: Option<String> = None;
    let net = match &device.mqtt {
        Some(_) if !held => None,
        Some(spec) => match crate::bench::NetBench::start(spec, workdir).await {
            Ok(n) => {
                vars.extend(n.vars());
                Some(n)
            }
            Err(e) => {
                eprintln!("certbench: network bench: {e}");
                net_error = Some(format!("the network bench could not start: {e}"));
                None
            }
        },
        None => None,
    };

    let update = match &device.update {
        Some(_) if !held => None,
        Some(spec) => {
            let (ip, http, https) = device.update_bind;
            match crate::update::bench::UpdateBench::start(spec, ip, (http, https), device.attribution, workdir).await {
                Ok(u) => {
                    vars.extend(u.vars());
                    Some(u)
                }
                Err(e) => {
                    eprintln!("certbench: update bench: {e}");
                    update_error = Some(format!("the update bench could not start: {e}"));
                    None
                }
            }
        }
        None => None,
    };
    let scenarios = expand(scenarios, &device);

    let mut reporters = Reporters(
        vec![
            Box::new(
                crate::report::terminal::TerminalReporter::new(std::io::stdout(), opts.color, opts.verbose)
                    .with_prefix(opts.board.clone()),
            ),
            Box::new(crate::report::junit::JunitReporter::new(out_dir.join("junit.xml"))),
        ],
        false,
    );
    let ctx = report_context(opts, &device, &vars, net.as_ref());
    reporters.0.push(Box::new(crate::report::cert::CertReporter::new(
        out_dir.to_path_buf(),
        ctx,
    )));
    match crate::report::jsonl::JsonlReporter::create(&out_dir.join("events.jsonl")) {
        Ok(j) => reporters.0.push(Box::new(j)),
        Err(e) => {
            eprintln!("certbench: cannot write events.jsonl: {e}");
            reporters.1 = true;
        }
    }
    let total = scenarios.len();
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

    for text in link_notes {
        reporters.emit(RunEvent::Notice { text });
    }
    let redactor = Redactor::default();
    if let Some(f) = &device.factory {
        redactor.add_public(&f.user);
        redactor.add("factory.password", &f.password);
        if f.password.eq_ignore_ascii_case(&f.user) {
            reporters.emit(RunEvent::Notice {
                text: FACTORY_PASSWORD_IS_USER.into(),
            });
        }
    }

    // setup commands (build, flash); a failure makes every check an ERROR with the cause
    let mut setup_error: Option<String> = lock_error;
    if !opts.skip_setup && held {
        let mut log = String::new();
        for t in &device.setup {
            reporters.emit(RunEvent::Notice {
                text: format!("setup: {}", t.source()),
            });
            match crate::power::external::run_command(t, &vars, &profile_dir, std::time::Duration::from_secs(1800))
                .await
            {
                Ok(o) => log.push_str(&o),
                Err(e) => {
                    setup_error = Some(format!("setup command failed: {}", redactor.redact(&e)));
                    break;
                }
            }
        }
        let _ = std::fs::write(out_dir.join("setup.log"), redactor.redact(&log));
    }
    // the lab asks for an image on the part before the run (probe-rs only)
    if setup_error.is_none()
        && let Some(d) = &device.debug
        && let Some(image) = d.flash_before_run.clone()
    {
        reporters.emit(RunEvent::Notice {
            text: format!("flashing {} through the debug probe", image.display()),
        });
        setup_error = match &d.driver {
            crate::debug::Driver::ProbeRs { chip, probe } => {
                let mut p = crate::debug::probe::ProbeRs::new(probe.as_deref(), chip, d.sacrificial);
                match tokio::task::spawn_blocking(move || crate::debug::DebugPort::flash(&mut p, &image)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("flash_before_run failed: {e}")),
                    Err(e) => Some(format!("flash_before_run stopped: {e}")),
                }
            }
            crate::debug::Driver::Gdb { .. } => Some(
                "flash_before_run needs the probe_rs debug driver; with a GDB server, flash in a setup command".into(),
            ),
        };
    }

    // without the board's lock this run must never switch its power or read its console
    let power: Option<Box<dyn Power>> = device.power.as_ref().filter(|_| held).map(|p| -> Box<dyn Power> {
        match p {
            PowerSpec::Manual => Box::new(ManualPower),
            PowerSpec::External {
                on,
                off,
                cycle,
                timeout,
                off_time,
            } => Box::new(ExternalPower {
                on: on.clone(),
                off: off.clone(),
                cycle: cycle.clone(),
                timeout: *timeout,
                off_time: *off_time,
                vars: vars.clone(),
                cwd: profile_dir.clone(),
            }),
        }
    });
    // open the console before anything is powered, so no byte is lost
    let console: Option<Console> = match (&device.console, &port) {
        (Some(c), Some(p)) if held => Some(
            console::serial::connect(Path::new(p), c.baud, Feed::new(Instant::now())).with_lost_grace(c.lost_grace),
        ),
        _ => None,
    };
    let mut bench = Bench {
        fresh: None,
        at_shell: None,
        current: device.factory.clone(),
        device,
        console,
        power,
        redactor,
        command_vars: vars,
        command_cwd: profile_dir,
        net,
        update,
        gateway,
    };

    let mut results: Vec<ScenarioResult> = Vec::new();
    let mut interrupted: Option<&'static str> = None;
    let _lock = lock;
    let mut offline: Option<String> = None;
    let mut need_health = opts.health;
    let mut controls = Controls::default();
    for (index, sc) in scenarios.iter().enumerate() {
        if interrupted.is_none() {
            interrupted = *signals.borrow();
        }
        let rel = format!("scenarios/{}", sc.id);
        let dir = out_dir.join(&rel);
        if interrupted.is_none()
            && setup_error.is_none()
            && offline.is_none()
            && need_health
            && bench.gate(sc) == crate::engine::Gate::Run
        {
            reporters.emit(RunEvent::Notice {
                text: "health probe: power cycle and wait for the console".into(),
            });
            match bench.health().await {
                Ok(()) => need_health = false,
                Err(e) => {
                    reporters.emit(RunEvent::Notice {
                        text: format!("board offline: {e}"),
                    });
                    offline = Some(e);
                }
            }
        }
        let result = if let Some(sig) = interrupted {
            not_run(sc, format!("not run: the run was interrupted by {sig}"))
        } else if let Some(e) = &setup_error {
            not_run(sc, e.clone())
        } else if let Some(e) = bench_missing(sc, &net_error, &update_error) {
            not_run(sc, e)
        } else if let Some(e) = &offline {
            not_run(sc, format!("board offline: the health probe failed: {e}"))
        } else {
            reporters.emit(RunEvent::ScenarioStarted {
                id: sc.id.clone(),
                index,
                total,
            });
            let mut earlier: Vec<String> = Vec::new();
            loop {
                // steps are reported as they finish, so the event log is live
                let reps = &mut reporters;
                let fut = engine::run_scenario(&mut bench, sc, &dir, &rel, |s| {
                    reps.emit(RunEvent::StepFinished {
                        scenario: sc.id.clone(),
                        step: s.clone(),
                    })
                });
                let mut r = tokio::select! {
                    r = fut => r,
                    _ = signals.changed() => {
                        interrupted = *signals.borrow();
                        let sig = interrupted.unwrap_or("a signal");
                        let mut r = not_run(sc, format!("interrupted by {sig} while running"));
                        r.excerpt = bench.console.as_ref().map(|c| c.with_transcript(|t| t.tail_text(t.mark().saturating_sub(50), 3000, &bench.redactor))).unwrap_or_default();
                        r
                    }
                };
                r.earlier_attempts = earlier.clone();
                if r.verdict != Verdict::Error || interrupted.is_some() {
                    break r;
                }
                // an ERROR: is the board still healthy? (retries never apply to FAIL)
                if opts.health {
                    if let Err(e) = bench.health().await {
                        reporters.emit(RunEvent::Notice {
                            text: format!("board offline: {e}"),
                        });
                        offline = Some(e);
                        break r;
                    }
                    need_health = false;
                }
                if earlier.len() as u32 >= opts.retries {
                    break r;
                }
                earlier.push(r.reason.clone().unwrap_or_default());
                reporters.emit(RunEvent::Notice {
                    text: format!("{}: ERROR, retry {} of {}", sc.id, earlier.len(), opts.retries),
                });
            }
        };
        for r in controls.add(sc, result) {
            reporters.emit(RunEvent::ScenarioFinished { result: r.clone() });
            results.push(r);
        }
    }
    for r in controls.flush() {
        reporters.emit(RunEvent::ScenarioFinished { result: r.clone() });
        results.push(r);
    }

    // leave the board unpowered and the console closed
    if bench.power.is_some()
        && let Err(e) = bench.power(Action::Off).await
    {
        reporters.emit(RunEvent::Notice {
            text: format!("could not power the board off: {e}"),
        });
    }
    if let Some(net) = &bench.net {
        let _ = std::fs::write(
            out_dir.join("bench-sessions.jsonl"),
            bench.redactor.redact(&net.sessions_json()),
        );
    }
    if let Some(d) = &bench.gateway.dns {
        let _ = std::fs::write(out_dir.join("dns-queries.jsonl"), bench.redactor.redact(&d.jsonl()));
    }
    // the capture is complete before the manifest hashes it, and what the results hold
    // is a copy with every known secret masked (the device's passwords included)
    if let Some(c) = &mut bench.gateway.capture {
        c.stop();
        if let Some(n) = &bench.net {
            for s in n.log.secrets() {
                bench.redactor.add("device.password", &s);
            }
        }
        let r = bench.redactor.clone();
        match crate::gateway::pcapng::copy_masked(&c.path, &out_dir.join("capture.pcapng"), |p| r.mask_bytes(p)) {
            Ok((_, masked)) if masked > 0 => reporters.emit(RunEvent::Notice {
                text: format!("capture.pcapng: {masked} occurrence(s) of known secrets masked with '*'"),
            }),
            Ok(_) => {}
            Err(e) => reporters.emit(RunEvent::Notice {
                text: format!("capture.pcapng could not be written: {e}"),
            }),
        }
        let _ = std::fs::remove_file(&c.path);
    }
    if let Some(c) = &bench.console {
        let text = c.with_transcript(|t| t.render_text(0, &bench.redactor));
        let _ = std::fs::write(out_dir.join("console-full.log"), text);
        c.close();
    }
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
    if reporters.1 {
        eprintln!("certbench: results could not all be written; the run's evidence is incomplete (exit 3)");
        exit::HARNESS_ERROR
    } else if failed > 0 {
        exit::DEVICE_FAILED
    } else if errors > 0 {
        exit::HARNESS_ERROR
    } else {
        exit::OK
    }
}

/// Makes the device's link and starts capturing it: a namespace for an emulated device
/// (`network.namespace`; the device's address, the services' host and the benches' bind
/// address become the namespace's), or the lab's `bench.capture_interface` for a board.
/// What fails is kept in the gateway: only the checks that need the link ERROR with it.
async fn open_link(
    device: &mut Device,
    vars: &mut BTreeMap<String, String>,
    workdir: &Path,
) -> (crate::gateway::Gateway, Vec<String>) {
    use crate::config::device::Link;
    let mut g = crate::gateway::Gateway::default();
    let mut notes = Vec::new();
    // empty unless a namespace exists: the device then starts in this machine's network
    vars.insert("netns.exec".into(), String::new());
    vars.insert("netns.name".into(), String::new());
    vars.insert("netns.bench".into(), String::new());
    let iface = match device.link.clone() {
        None => return (g, notes),
        Some(Link::Interface(i)) => i,
        Some(Link::Namespace) => match crate::gateway::netns::DeviceNet::create() {
            Ok(n) => {
                let ip = std::net::IpAddr::V4(n.device_ip);
                let bench_ip = std::net::IpAddr::V4(n.host_ip);
                device.attribution.device = Some(ip);
                vars.insert("device.address".into(), ip.to_string());
                vars.insert("netns.exec".into(), n.exec_prefix());
                vars.insert("netns.name".into(), n.name.clone());
                vars.insert("netns.bench".into(), bench_ip.to_string());
                for s in &mut device.services {
                    s.host = ip;
                }
                if let Some(m) = &mut device.mqtt {
                    m.bind = bench_ip;
                    m.attribution.device = Some(ip);
                }
                device.update_bind.0 = bench_ip;
                notes.push(format!(
                    "the device runs in network namespace {} at {ip}; the bench is {bench_ip} on {}",
                    n.name, n.host_if
                ));
                // the device's names resolve at the bench: to the bench, recorded
                match crate::gateway::dns::DnsServer::start(n.host_ip, n.host_ip).await {
                    Ok(d) => {
                        notes.push(format!(
                            "the device's name server is the bench ({}): every name resolves to it, every query is recorded (dns-queries.jsonl)",
                            d.addr
                        ));
                        g.dns = Some(d);
                    }
                    Err(e) => notes.push(format!(
                        "no name server for the device ({}:53: {e}): its lookups go unanswered",
                        n.host_ip
                    )),
                }
                let i = n.host_if.clone();
                g.net = Some(n);
                i
            }
            Err(e) => {
                let why = format!("the device has no network namespace, so its link is not captured: {e}");
                notes.push(format!("{why}; it runs in this machine's network"));
                g.error = Some(why);
                return (g, notes);
            }
        },
    };
    // raw, in the work folder; the results get a masked copy at the end of the run
    let path = workdir.join("capture.pcapng");
    match crate::gateway::capture::Capture::start(&iface, &path, device.capture_limit, device.attribution.device) {
        Ok(c) => {
            notes.push(format!(
                "capturing every frame on {iface} (capture.pcapng in the results, at most {} MiB)",
                device.capture_limit >> 20
            ));
            g.capture = Some(c);
        }
        Err(e) => g.error = Some(format!("the device's link cannot be captured: {e}")),
    }
    (g, notes)
}

/// Expands each for_each scenario into one testcase per item the device allows, then its
/// positive control last (a control run first would change what the items are tested against).
pub fn expand(scenarios: Vec<Scenario>, device: &Device) -> Vec<Scenario> {
    use crate::config::scenario::{ForEach, Instance};
    let mut out = Vec::new();
    for sc in scenarios {
        let Some(ForEach::UpdateImage) = sc.for_each else {
            out.push(sc);
            continue;
        };
        let items = device.update.as_ref().map(|u| u.hostile_images()).unwrap_or_default();
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
        for item in items {
            let mut one = sc.clone();
            one.id = format!("{}.{}", sc.id, item.as_str());
            one.title = format!("{}: {}", sc.title, item.describe());
            one.evidences.checks = checks_for(&[item.check().as_str()]);
            one.positive_control = Vec::new();
            one.instance = Some(Instance {
                group: sc.id.clone(),
                item: Some(item.as_str()),
            });
            out.push(one);
        }
        let mut control = sc.clone();
        control.id = format!("{}.positive_control", sc.id);
        control.title = format!("{}: positive control (the valid image installs)", sc.title);
        control.evidences.checks = checks_for(&["UPD-02"]);
        control.steps = std::mem::take(&mut control.positive_control);
        control.instance = Some(Instance {
            group: sc.id.clone(),
            item: None,
        });
        out.push(control);
    }
    out
}

/// Holds the results of a for_each group until its positive control has run: an item's
/// PASS stands only beside a passing control, otherwise it becomes ERROR.
#[derive(Default)]
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
                        "the positive control {} did not pass ({v}: {}), so a refusal proves nothing: the device was not shown to install a valid image in this run",
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

/// What the report says about the lab, the bench and departures from the method.
fn report_context(
    opts: &RunOptions,
    device: &Device,
    vars: &BTreeMap<String, String>,
    net: Option<&crate::bench::NetBench>,
) -> crate::report::cert::Context {
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
    crate::report::cert::Context {
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
            .map(|_| vec![FACTORY_PASSWORD_IS_USER.to_string()])
            .unwrap_or_default(),
    }
}

/// Why a scenario cannot run when a bench it needs did not start.
fn bench_missing(sc: &Scenario, net: &Option<String>, update: &Option<String>) -> Option<String> {
    use crate::config::scenario::Interface as I;
    let needs = |set: &[I]| sc.requires.interfaces.iter().any(|i| set.contains(i));
    match (net, update) {
        (Some(e), _) if needs(&[I::MqttBench, I::MqttTrustedCa, I::MqttTls]) => Some(e.clone()),
        (_, Some(e)) if needs(&[I::Update, I::UpdatePull, I::UpdateHttps]) => Some(e.clone()),
        _ => None,
    }
}

/// Said in the report and on the terminal when the factory password equals the user name.
pub const FACTORY_PASSWORD_IS_USER: &str = "warning: the factory password equals the user name: a guessable pre-installed password (EN 303 645 5.1-2); it is still entered and shown as <secret:factory.password>, but transcripts keep the user name readable";

fn not_run(sc: &Scenario, reason: String) -> ScenarioResult {
    let mut r = ScenarioResult::new(
        &sc.id,
        &sc.title,
        &sc.file.display().to_string(),
        Some(sc.evidences.clone()),
        Verdict::Error,
    );
    r.reason = Some(reason);
    r
}
