//! The `certbench` binary: parse arguments, call the library, map the outcome to a
//! documented exit code.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use certbench::config::{self, resolver::Overrides, yaml::InputErrors};
use certbench::exit;
use certbench::run::{RunOptions, load_scenarios};

#[derive(Parser, Debug)]
#[command(name = "certbench", version, about = "Certify IoT devices against minimum security requirements, on the device itself.", after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[expect(clippy::large_enum_variant, reason = "parsed once per process")]
enum Command {
    /// Run scenarios against a device (default: the simulated board, every scenario).
    Run {
        /// Device profile.
        #[arg(long, short = 'd', default_value = "devices/simboard.yaml")]
        device: PathBuf,
        /// Lab binding: where this device is wired on this bench.
        #[arg(long)]
        lab: Option<PathBuf>,
        /// Serial port, overriding profile and lab (e.g. /dev/ttyUSB0).
        #[arg(long)]
        port: Option<String>,
        /// Baud rate, overriding profile and lab.
        #[arg(long)]
        baud: Option<u32>,
        /// Extra values for `{{name}}` in commands: NAME=VALUE (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Scenario files or folders.
        #[arg(long, short = 's', default_value = "scenarios")]
        scenarios: Vec<PathBuf>,
        /// Run only these scenario ids (repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// Results folder (default results/<run-id>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Scratch folder for the bench ({{workdir}}; default a temporary folder).
        #[arg(long)]
        workdir: Option<PathBuf>,
        /// Do not run the profile's setup commands.
        #[arg(long)]
        skip_setup: bool,
        /// Show every step, not only failing ones.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// Laboratory named in the report.
        #[arg(long)]
        lab_name: Option<String>,
        /// Operator named in the report (default $USER).
        #[arg(long)]
        operator: Option<String>,
        /// Lab key (from `certbench keygen`) that signs the evidence manifest.
        #[arg(long)]
        sign_key: Option<PathBuf>,
        /// With a lab file that lists several units of the model (`units:`): run on this
        /// one only (default: the suite is shared out among all of them).
        #[arg(long)]
        unit: Option<String>,
        /// An earlier run's results folder: its scenario durations plan how a run over
        /// several units shares the suite out (default: estimated from each scenario's boots).
        #[arg(long)]
        history: Option<PathBuf>,
        /// Lab inventory: run on every selected board in parallel.
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// With --inventory: only this board (repeatable).
        #[arg(long)]
        board: Vec<String>,
        /// With --inventory: only boards with this tag (repeatable; all must match).
        #[arg(long)]
        tag: Vec<String>,
        /// Run shard i of n (1-based) of the board x scenario pairs, e.g. 2/4.
        #[arg(long)]
        shard: Option<certbench::lab::Shard>,
        /// Boards run at once (default: all selected).
        #[arg(long)]
        parallel: Option<usize>,
        /// How long to wait for a board another certbench holds.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        lock_wait: std::time::Duration,
        /// Health probe (power cycle + console) before the first scenario and after any ERROR;
        /// a board that fails it is offline for the rest of the run. On by default with --inventory.
        #[arg(long)]
        health: bool,
        /// Re-run a scenario that ended in ERROR up to N times (never a FAIL); a pass on retry is flaky.
        #[arg(long, default_value_t = 0)]
        retries: u32,
    },
    /// Check a run folder against its manifest: names every changed, missing or added file.
    Verify {
        run_dir: PathBuf,
        /// The lab's public key (hex); the signature must be by this key.
        #[arg(long)]
        pubkey: Option<String>,
        /// A file of trusted lab public keys (hex), one per line (`#` comments).
        #[arg(long)]
        known_keys: Option<PathBuf>,
        /// Accept a bundle without a signature (checks file hashes only; anyone could have
        /// re-generated them).
        #[arg(long)]
        allow_unsigned: bool,
    },
    /// The security regression gate: compare two result folders (each verified against its
    /// manifest first) check by check, and the device's observable surface. Exit 1 on a
    /// regression (a verdict worse than before), 3 when a check decided before is undecided now.
    Diff {
        /// The earlier run (e.g. the last release's).
        old: PathBuf,
        /// The run to judge.
        new: PathBuf,
        /// Accept a regression of this scenario or check, with the reason (recorded in every
        /// output): ID=REASON (repeatable).
        #[arg(long = "allow", value_name = "ID=REASON")]
        allow: Vec<String>,
        /// Also write the comparison as Markdown (a pull request comment) to this file.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Also write it as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write it as JUnit (each regression a failing testcase) to this file.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// The lab's public key (hex): both runs must be signed by it.
        #[arg(long)]
        pubkey: Option<String>,
        /// Accept runs without a signature (file hashes only).
        #[arg(long)]
        allow_unsigned: bool,
    },
    /// Make a lab signing key (Ed25519); prints the public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Check device profiles, lab files and scenarios without running anything.
    Validate {
        /// Files or folders (default: devices/ and scenarios/). The kind is taken from
        /// the folder (devices/, labs/, scenarios/) or from the top-level keys.
        paths: Vec<PathBuf>,
        /// Lab binding to check device profiles against (its `vars` resolve `{{name}}`).
        #[arg(long)]
        lab: Option<PathBuf>,
        /// Extra values for `{{name}}` in commands: NAME=VALUE (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// Print, per requirement and EN 303 645 provision, which checks cover it.
    Coverage {
        /// Scenario files or folders.
        #[arg(long, short = 's', default_value = "scenarios")]
        scenarios: Vec<PathBuf>,
    },
    /// List the debug probes (ST-Link, J-Link, CMSIS-DAP, ...) attached to this machine.
    Probes,
    /// Read a capture (pcapng or pcap, e.g. a run's capture.pcapng) and print every flow of
    /// the device with the protocol its bytes show: the COM-01 view of a recording.
    Flows {
        capture: PathBuf,
        /// The device's address (default: every flow, seen from the first sender).
        #[arg(long)]
        device: Option<std::net::IpAddr>,
        /// Print only the summary line.
        #[arg(long)]
        quiet: bool,
    },
    /// Search a capture (pcapng or pcap) for known values in every encoding COM-04 looks
    /// for, both directions of every flow, TCP reassembled: the canary search of a run,
    /// offline. Values come from a file (never the command line, which others can read).
    Canaries {
        capture: PathBuf,
        /// A file of `NAME=VALUE` lines (`NAME:personal=VALUE` to give the class: password,
        /// security, personal or sensitive; default security).
        #[arg(long)]
        values: PathBuf,
        /// The device's address (hits then say who sent them).
        #[arg(long)]
        device: Option<std::net::IpAddr>,
        /// Print only the summary line.
        #[arg(long)]
        quiet: bool,
    },
    /// Print the JSON Schema of a file kind, for editor completion.
    Schema {
        #[arg(value_parser = ["device", "lab", "scenario"])]
        kind: String,
    },
}

/// `certbench canaries`: the COM-04 search of a recorded capture. Exit 0 when nothing was
/// found, 1 when a value was, 2 for an unreadable capture or values file.
fn canaries(
    capture: &std::path::Path,
    values: &std::path::Path,
    device: Option<std::net::IpAddr>,
    quiet: bool,
) -> ExitCode {
    use certbench::gateway::canary::{self, Canary};
    use certbench::model::personal::Class;
    // the one bounded reader of user files: a regular file, size-capped
    let text = match certbench::config::yaml::read_text(values) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("certbench canaries: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let mut list = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let Some((name, value)) = line.split_once('=') else {
            eprintln!("{}:{}: expected NAME=VALUE", values.display(), i + 1);
            return ExitCode::from(exit::BAD_INPUT);
        };
        let (name, class) = match name.split_once(':') {
            Some((n, c)) => match c {
                "password" => (n, Class::Password),
                "security" => (n, Class::Security),
                "personal" => (n, Class::Personal),
                "sensitive" => (n, Class::Sensitive),
                other => {
                    eprintln!(
                        "{}:{}: unknown class {other:?} (password, security, personal, sensitive)",
                        values.display(),
                        i + 1
                    );
                    return ExitCode::from(exit::BAD_INPUT);
                }
            },
            None => (name, Class::Security),
        };
        list.push(Canary {
            name: name.trim().to_string(),
            class,
            value: value.to_string(),
        });
    }
    let started = std::time::Instant::now();
    let s = match canary::search(capture, u64::MAX, &list, device) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", capture.display());
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let mut out = std::io::stdout().lock();
    if !quiet {
        for h in &s.hits {
            if writeln!(out, "{}", h.describe()).is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
    let unsearched = s.unsearched();
    let _ = writeln!(
        out,
        "{} frames, {} TCP directions, {} datagrams; {} bytes in clear searched, {} of ciphertext not; {} hits of {} values{}; {:.2}s",
        s.frames,
        s.tcp_directions,
        s.datagrams,
        s.clear_bytes,
        s.encrypted_bytes,
        s.hits.len(),
        list.len(),
        if unsearched.is_empty() {
            String::new()
        } else {
            format!("; not searched: {}", unsearched.join("; "))
        },
        started.elapsed().as_secs_f64()
    );
    if s.hits.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::DEVICE_FAILED)
    }
}

/// `certbench flows`: the flow table of a recorded capture.
fn flows(capture: &std::path::Path, device: Option<std::net::IpAddr>, quiet: bool) -> ExitCode {
    use certbench::gateway::{flows, pcapng};
    let started = std::time::Instant::now();
    let mut table = flows::FlowTable::new(device);
    // without a device address, flows are keyed from the first packet's sender
    let read = pcapng::read(capture, |n, frame| table.add(n, frame, true));
    let (packets, other) = match read {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: {e}", capture.display());
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut lines = Vec::new();
    for f in &table.flows {
        let p = flows::classify(f);
        *counts.entry(p.name()).or_default() += 1;
        if !quiet {
            lines.push(format!(
                "{:<4} {:>6} {} {}:{:<6} {:<8} {:>8} {:>8}  #{}",
                <&str>::from(f.transport),
                f.device_port,
                if f.opened_by == flows::Side::Device { "->" } else { "<-" },
                f.peer,
                f.peer_port,
                p.name(),
                f.sent.payload,
                f.received.payload,
                f.packets.first().copied().unwrap_or(0)
            ));
        }
    }
    let mut out = std::io::stdout().lock();
    for l in lines {
        if writeln!(out, "{l}").is_err() {
            return ExitCode::SUCCESS;
        }
    }
    let tcp = table
        .flows
        .iter()
        .filter(|f| f.transport == certbench::model::Transport::Tcp)
        .count();
    let _ = writeln!(
        out,
        "{packets} packets, {} flows ({tcp} tcp, {} udp): {}{}; {:.2}s",
        table.flows.len(),
        table.flows.len() - tcp,
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        if other > 0 {
            format!("; {other} frames of non-Ethernet links skipped")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn report_input(e: &InputErrors) -> ExitCode {
    eprintln!("{e}");
    eprintln!("certbench: {} input error(s); nothing was run", e.0.len());
    ExitCode::from(exit::BAD_INPUT)
}

/// Raises the soft limit on open files to the hard one: the benches hold at most a bounded
/// number of peer connections (bench::peers), and what is left stays free for power
/// commands, the console and the evidence.
fn reserve_descriptors() {
    // SAFETY: getrlimit/setrlimit on a local struct
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(65_536).max(r.rlim_cur);
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn main() -> ExitCode {
    reserve_descriptors();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::BAD_INPUT } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Schema { kind } => match config::schema(&kind) {
            Some(s) => {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
                ExitCode::SUCCESS
            }
            None => ExitCode::from(exit::BAD_INPUT),
        },
        Command::Coverage { scenarios } => match load_scenarios(&scenarios) {
            Ok(sc) => {
                let list: Vec<(&str, &certbench::model::Evidences)> =
                    sc.iter().map(|s| (s.id.as_str(), &s.evidences)).collect();
                print!(
                    "{}",
                    certbench::report::coverage::coverage(certbench::model::Catalogue::get(), &list)
                );
                ExitCode::SUCCESS
            }
            Err(e) => report_input(&e),
        },
        Command::Validate { paths, lab, set } => match parse_set(&set) {
            Some(vars) => validate(paths, lab, vars),
            None => ExitCode::from(exit::BAD_INPUT),
        },
        Command::Flows { capture, device, quiet } => flows(&capture, device, quiet),
        Command::Canaries {
            capture,
            values,
            device,
            quiet,
        } => canaries(&capture, &values, device, quiet),
        Command::Probes => {
            let probes = certbench::debug::probe::list();
            if probes.is_empty() {
                println!("no debug probes found: probe-rs sees none attached to this machine");
            }
            for p in probes {
                println!("{}  {}", p.selector, p.name);
            }
            ExitCode::SUCCESS
        }
        cmd @ Command::Verify { .. } => verify_command(cmd),
        Command::Keygen { out } => match certbench::report::manifest::keygen(&out) {
            Ok(pk) => {
                println!("{pk}");
                eprintln!(
                    "lab key written to {} (keep it secret); public key above",
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("certbench keygen: {e}");
                ExitCode::from(exit::BAD_INPUT)
            }
        },
        cmd @ Command::Run { .. } => run_command(cmd),
        cmd @ Command::Diff { .. } => diff_command(cmd),
    }
}

/// `certbench diff OLD NEW`: the regression gate.
fn diff_command(cmd: Command) -> ExitCode {
    use certbench::report::diff;
    let Command::Diff {
        old,
        new,
        allow,
        markdown,
        json,
        junit,
        pubkey,
        allow_unsigned,
    } = cmd
    else {
        unreachable!("called with `diff` only")
    };
    let bad = |msg: String| {
        eprintln!("certbench diff: {msg}");
        ExitCode::from(exit::BAD_INPUT)
    };
    let mut allowed = std::collections::BTreeMap::new();
    for a in &allow {
        match a.split_once('=') {
            Some((id, why)) if !id.trim().is_empty() && !why.trim().is_empty() => {
                allowed.insert(id.trim().to_string(), why.trim().to_string());
            }
            _ => return bad(format!("--allow {a:?}: write ID=REASON (the reason is recorded)")),
        }
    }
    let trusted: Vec<String> = pubkey.into_iter().collect();
    // each folder verified, then read: the two side by side
    let one = |dir: &std::path::PathBuf| -> Result<diff::RunView, String> {
        match certbench::report::manifest::verify(dir, &trusted) {
            Ok(f) if f.intact(allow_unsigned) => {}
            Ok(f) => {
                let what: Vec<String> = f
                    .changed
                    .iter()
                    .map(|p| format!("changed {p}"))
                    .chain(f.missing.iter().map(|p| format!("missing {p}")))
                    .chain(f.unlisted.iter().map(|p| format!("added {p}")))
                    .chain(f.signature.iter().filter_map(|s| s.as_ref().err().cloned()))
                    .chain(
                        f.signature
                            .is_none()
                            .then(|| "no signature (--allow-unsigned to compare hashes only)".to_string()),
                    )
                    .collect();
                return Err(format!(
                    "{}: not the run its manifest describes: {}",
                    dir.display(),
                    what.join("; ")
                ));
            }
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
        diff::read(dir)
    };
    let (o, n) = std::thread::scope(|s| {
        let o = s.spawn(|| one(&old));
        let n = one(&new);
        (o.join(), n)
    });
    let views = match (o, n) {
        (Ok(Ok(o)), Ok(n)) => [o, n],
        (Ok(Err(e)), _) | (_, Err(e)) => return bad(e),
        (Err(_), _) => return bad(format!("{}: reading the run stopped", old.display())),
    };
    let d = diff::compare(&views[0], &views[1], &allowed);
    print!("{}", diff::render(&d, false));
    let writes = [
        (markdown, diff::render(&d, true)),
        (json, serde_json::to_string_pretty(&d).unwrap_or_default()),
        (junit, diff::junit(&d, &views[1])),
    ];
    for (path, text) in writes {
        if let Some(p) = path
            && let Err(e) = std::fs::write(&p, text)
        {
            eprintln!("certbench diff: cannot write {}: {e}", p.display());
            return ExitCode::from(exit::HARNESS_ERROR);
        }
    }
    if d.regressions().next().is_some() {
        ExitCode::from(exit::DEVICE_FAILED)
    } else if d.undecided().next().is_some() {
        ExitCode::from(exit::HARNESS_ERROR)
    } else {
        ExitCode::SUCCESS
    }
}

/// `certbench verify`: the run folder's manifest and signature against trusted keys.
fn verify_command(cmd: Command) -> ExitCode {
    let Command::Verify {
        run_dir,
        pubkey,
        known_keys,
        allow_unsigned,
    } = cmd
    else {
        unreachable!("called with `verify` only")
    };
    let mut trusted: Vec<String> = pubkey.into_iter().collect();
    if let Some(f) = known_keys {
        match certbench::config::yaml::read_text(&f) {
            Ok(t) => trusted.extend(
                t.lines()
                    .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
                    .filter(|l| !l.is_empty()),
            ),
            Err(e) => {
                eprintln!("certbench verify: {e}");
                return ExitCode::from(exit::BAD_INPUT);
            }
        }
    }
    verify(&run_dir, &trusted, allow_unsigned)
}

/// `certbench run`: one device, or the boards of an inventory.
fn run_command(cmd: Command) -> ExitCode {
    let Command::Run {
        device,
        lab,
        port,
        baud,
        set,
        scenarios,
        only,
        out,
        workdir,
        skip_setup,
        verbose,
        lab_name,
        operator,
        sign_key,
        unit,
        history,
        inventory,
        board,
        tag,
        shard,
        parallel,
        lock_wait,
        health,
        retries,
    } = cmd
    else {
        unreachable!("called with `run` only")
    };
    let Some(vars) = parse_set(&set) else {
        return ExitCode::from(exit::BAD_INPUT);
    };
    let opts = RunOptions {
        profile: device,
        lab,
        overrides: Overrides {
            port,
            baud,
            vars,
            skip_secrets: false,
            check_files: false,
            known_chip: Some(certbench::debug::probe::chip_known),
            unit,
        },
        history,
        share_of_model: false,
        scenarios,
        only,
        out,
        workdir,
        skip_setup,
        verbose,
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        lab_name,
        operator,
        sign_key,
        board: None,
        lock_dir: None,
        lock_wait,
        health: health || inventory.is_some(),
        retries,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certbench: cannot start the runtime: {e}");
            return ExitCode::from(exit::HARNESS_ERROR);
        }
    };
    let result = match inventory {
        Some(inv) => rt.block_on(certbench::run::run_lab(
            opts,
            certbench::run::LabOptions {
                inventory: inv,
                boards: board,
                tags: tag,
                shard,
                parallel,
            },
        )),
        None if shard.is_some() || !board.is_empty() || !tag.is_empty() => {
            eprintln!("certbench: --board, --tag and --shard need --inventory");
            return ExitCode::from(exit::BAD_INPUT);
        }
        None => rt.block_on(certbench::run::run(opts)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => report_input(&e),
    }
}

fn verify(dir: &Path, trusted: &[String], allow_unsigned: bool) -> ExitCode {
    match certbench::report::manifest::verify(dir, trusted) {
        Err(e) => {
            eprintln!("certbench verify: {e}");
            ExitCode::from(exit::BAD_INPUT)
        }
        Ok(f) => {
            for p in &f.changed {
                println!("CHANGED  {p}");
            }
            for p in &f.missing {
                println!("MISSING  {p}");
            }
            for p in &f.unlisted {
                println!("ADDED    {p}");
            }
            for p in &f.special {
                println!("SPECIAL  {p} (not followed, not read)");
            }
            match &f.signature {
                None if allow_unsigned => {
                    println!(
                        "signature: none (--allow-unsigned: file hashes only; anyone could have re-generated them)"
                    )
                }
                None => println!(
                    "signature: none; an unsigned bundle is not intact (pass --allow-unsigned to check hashes only)"
                ),
                Some(Ok(pk)) => println!("signature: valid, by the trusted lab key {pk}"),
                Some(Err(e)) => println!("signature: INVALID (not accepted): {e}"),
            }
            if f.intact(allow_unsigned) {
                println!("{}: intact", dir.display());
                ExitCode::SUCCESS
            } else {
                println!("{}: NOT intact", dir.display());
                ExitCode::from(exit::DEVICE_FAILED)
            }
        }
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    certbench::model::duration::parse(s)
}

fn parse_set(set: &[String]) -> Option<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for s in set {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                vars.insert(k.to_string(), v.to_string());
            }
            _ => {
                eprintln!("certbench: --set {s:?}: expected NAME=VALUE");
                return None;
            }
        }
    }
    Some(vars)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Device,
    Lab,
    Scenario,
}

fn kind_of(path: &Path) -> Kind {
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    match parent.as_deref() {
        Some("devices") => return Kind::Device,
        Some("scenarios") => return Kind::Scenario,
        Some("labs") => return Kind::Lab,
        _ => {}
    }
    let text = config::yaml::read_text(path).unwrap_or_default();
    let top = |k: &str| text.lines().any(|l| l.starts_with(k));
    if top("steps:") || top("id:") {
        Kind::Scenario
    } else if top("identity:") {
        Kind::Device
    } else {
        Kind::Lab
    }
}

fn validate(paths: Vec<PathBuf>, lab: Option<PathBuf>, vars: BTreeMap<String, String>) -> ExitCode {
    let ov = Overrides {
        vars,
        skip_secrets: true,
        check_files: true,
        known_chip: Some(certbench::debug::probe::chip_known),
        ..Overrides::default()
    };
    let paths = if paths.is_empty() {
        vec![PathBuf::from("devices"), PathBuf::from("scenarios")]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            v.retain(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"));
            v.sort();
            files.extend(v);
        } else {
            files.push(p);
        }
    }
    let mut errors = InputErrors::default();
    let mut scenario_files = Vec::new();
    for f in &files {
        let r = match kind_of(f) {
            Kind::Device => config::device::load(f, lab.as_deref(), &ov).map(|d| {
                // an older profile format: what now runs differently, and what to declare
                for n in &d.notices {
                    eprintln!("{}: notice: {n}", f.display());
                }
            }),
            Kind::Lab => config::yaml::load::<config::profile::RawLab>(f)
                .map(|_| ())
                .map_err(Into::into),
            Kind::Scenario => {
                scenario_files.push(f.clone());
                Ok(())
            }
        };
        if let Err(e) = r {
            errors.0.extend(e.0);
        }
    }
    if let Err(e) = load_scenarios(&scenario_files) {
        errors.0.extend(e.0);
    }
    if errors.0.is_empty() {
        println!("{} file(s) valid", files.len());
        ExitCode::SUCCESS
    } else {
        eprintln!("{errors}");
        eprintln!("certbench: {} error(s) in {} file(s)", errors.0.len(), files.len());
        ExitCode::from(exit::BAD_INPUT)
    }
}
