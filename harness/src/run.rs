//! One run: selected scenarios against one device, results in a per-run folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::device::{self, Device, Overrides, PowerSpec};
use crate::config::scenario::{self, Scenario};
use crate::config::yaml::{InputError, InputErrors};
use crate::console::{self, Console, Feed};
use crate::engine::{self, Bench, secrets::Redactor};
use crate::exit;
use crate::power::{Action, Power, external::ExternalPower, manual::ManualPower};
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

struct Reporters(Vec<Box<dyn Reporter>>);

impl Reporters {
    fn emit(&mut self, ev: RunEvent) {
        for r in &mut self.0 {
            if let Err(e) = r.event(&ev) {
                eprintln!("certbench: a reporter failed to write: {e}");
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
    let sign_key = match &opts.sign_key {
        Some(k) => Some(crate::report::manifest::read_key(k).map_err(|e| {
            InputError::new(k, None, "--sign-key", e).with_hint("make one with `certbench keygen --out FILE`")
        })?),
        None => None,
    };
    let mut scenarios = load_scenarios(&opts.scenarios)?;
    if !opts.only.is_empty() {
        let mut errs = Vec::new();
        for id in &opts.only {
            if !scenarios.iter().any(|s| &s.id == id) {
                errs.push(InputError::new(
                    Path::new("--only"),
                    None,
                    "",
                    format!("no scenario has id {id:?}"),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(InputErrors(errs));
        }
        scenarios.retain(|s| opts.only.contains(&s.id));
    }
    let run_id = new_run_id();
    let out_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&run_id));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| InputError::new(&out_dir, None, "--out", format!("cannot create results folder: {e}")))?;
    let (workdir, temp_workdir) = match &opts.workdir {
        Some(w) => (w.clone(), false),
        None => (std::env::temp_dir().join(format!("certbench-{run_id}")), true),
    };
    std::fs::create_dir_all(&workdir)
        .map_err(|e| InputError::new(&workdir, None, "--workdir", format!("cannot create work folder: {e}")))?;
    let code = execute(&opts, device, scenarios, &run_id, &out_dir, &workdir).await;
    if let Err(e) = crate::report::manifest::write(&out_dir, &run_id, sign_key.as_ref()) {
        eprintln!("certbench: cannot write the evidence manifest: {e}");
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
    device: Device,
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
    // the network bench comes up before anything is powered, so its addresses can be
    // given to power-on commands; a bind failure is reported at once
    let mut bench_error: Option<String> = None;
    let net = match &device.mqtt {
        Some(spec) => match crate::bench::NetBench::start(spec, workdir).await {
            Ok(n) => {
                vars.extend(n.vars());
                Some(n)
            }
            Err(e) => {
                eprintln!("certbench: network bench: {e}");
                bench_error = Some(format!("the network bench could not start: {e}"));
                None
            }
        },
        None => None,
    };

    let mut reporters = Reporters(vec![
        Box::new(crate::report::terminal::TerminalReporter::new(
            std::io::stdout(),
            opts.color,
            opts.verbose,
        )),
        Box::new(crate::report::junit::JunitReporter::new(out_dir.join("junit.xml"))),
    ]);
    let ctx = report_context(opts, &device, &vars, net.as_ref());
    reporters.0.push(Box::new(crate::report::cert::CertReporter::new(
        out_dir.to_path_buf(),
        ctx,
    )));
    match crate::report::jsonl::JsonlReporter::create(&out_dir.join("events.jsonl")) {
        Ok(j) => reporters.0.push(Box::new(j)),
        Err(e) => eprintln!("certbench: cannot write events.jsonl: {e}"),
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

    let mut signals = signal_watch();
    let redactor = Redactor::default();
    if let Some(f) = &device.factory {
        redactor.add("factory.password", &f.password);
    }

    // setup commands (build, flash); a failure makes every check an ERROR with the cause
    let mut setup_error: Option<String> = bench_error;
    if !opts.skip_setup {
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

    let power: Option<Box<dyn Power>> = device.power.as_ref().map(|p| -> Box<dyn Power> {
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
        (Some(c), Some(p)) => Some(console::serial::connect(
            Path::new(p),
            c.baud,
            Feed::new(Instant::now()),
        )),
        _ => None,
    };
    let mut bench = Bench {
        current: device.factory.clone(),
        device,
        console,
        power,
        redactor,
        command_vars: vars,
        command_cwd: profile_dir,
        net,
    };

    let mut results: Vec<ScenarioResult> = Vec::new();
    let mut interrupted: Option<&'static str> = None;
    for (index, sc) in scenarios.iter().enumerate() {
        if interrupted.is_none() {
            interrupted = *signals.borrow();
        }
        let rel = format!("scenarios/{}", sc.id);
        let dir = out_dir.join(&rel);
        let result = if let Some(sig) = interrupted {
            not_run(sc, format!("not run: the run was interrupted by {sig}"))
        } else if let Some(e) = &setup_error {
            not_run(sc, e.clone())
        } else {
            reporters.emit(RunEvent::ScenarioStarted {
                id: sc.id.clone(),
                index,
                total,
            });
            let mut steps = Vec::new();
            let fut = engine::run_scenario(&mut bench, sc, &dir, &rel, |s| steps.push(s.clone()));
            tokio::select! {
                r = fut => r,
                _ = signals.changed() => {
                    interrupted = *signals.borrow();
                    let sig = interrupted.unwrap_or("a signal");
                    let mut r = not_run(sc, format!("interrupted by {sig} while running"));
                    r.excerpt = bench.console.as_ref().map(|c| c.with_transcript(|t| t.tail_text(t.mark().saturating_sub(50), 3000, &bench.redactor))).unwrap_or_default();
                    r
                }
            }
        };
        for s in &result.steps {
            reporters.emit(RunEvent::StepFinished {
                scenario: sc.id.clone(),
                step: s.clone(),
            });
        }
        reporters.emit(RunEvent::ScenarioFinished { result: result.clone() });
        results.push(result);
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
    if let Some(c) = &bench.console {
        let text = c.with_transcript(|t| t.render_text(0, &bench.redactor));
        let _ = std::fs::write(out_dir.join("console-full.log"), text);
        c.close();
    }
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let (passed, failed, errors, skipped) = (
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Error),
        count(Verdict::Skipped),
    );
    reporters.emit(RunEvent::RunFinished {
        passed,
        failed,
        errors,
        skipped,
        review: count(Verdict::Review),
        duration_ms: started.elapsed().as_millis(),
        interrupted: interrupted.is_some(),
        finished_at: now_rfc3339(),
    });
    if failed > 0 {
        exit::DEVICE_FAILED
    } else if errors > 0 {
        exit::HARNESS_ERROR
    } else {
        exit::OK
    }
}

/// What the report says about the lab, the bench and departures from the method.
fn report_context(
    opts: &RunOptions,
    device: &Device,
    vars: &BTreeMap<String, String>,
    net: Option<&crate::bench::NetBench>,
) -> crate::report::cert::Context {
    use crate::report::cert::sha256_file;
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
    }
}

fn not_run(sc: &Scenario, reason: String) -> ScenarioResult {
    ScenarioResult {
        id: sc.id.clone(),
        title: sc.title.clone(),
        file: sc.file.display().to_string(),
        evidences: Some(sc.evidences.clone()),
        verdict: Verdict::Error,
        reason: Some(reason),
        check: None,
        deciding_step: None,
        excerpt: String::new(),
        steps: Vec::new(),
        duration_ms: 0,
        evidence_files: Vec::new(),
    }
}
