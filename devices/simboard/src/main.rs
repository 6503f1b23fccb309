//! simboard: a simulated IoT board that certbench can certify with no hardware.
//!
//! It talks to the outside world only the way a real board does: through a serial line
//! (a PTY pair it creates, whose slave end it links at the path it is given) and, later,
//! the network. It shares no code with the harness.
//!
//! Subcommands model the physical world:
//! - `power-on`  starts the board process detached (power applied) and waits until its
//!   serial line exists;
//! - `power-off` kills it abruptly (power removed: no clean shutdown);
//! - `factory-reset` erases the persistent state, like holding the reset button;
//! - `run` is the board itself (normally started by `power-on`).

use simboard::{BoardOptions, board, mqtt, net, pty, remote, update};

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  simboard power-on  --link PATH --state FILE --pidfile FILE [--flaw NAME]... [--boot-ms N] [--noise-kib N]\n                    [--source-address IP] [--telnet-port P] [--web-port P] [--ssh-port P] [--broker-port P] [--status-port P] [--redirect-port P] [--lockout-ms N] [--mqtt-host NAME --mqtt-connect IP --mqtt-tls-port P --mqtt-plain-port P --ca FILE --mqtt-interval-ms N]\n                    [--tls-dir DIR] [--telemetry-url URL] [--update-url URL --update-pubkey HEX [--update-ca FILE --update-host NAME] --update-interval-ms N --install-ms N --update-messages normal|installing-first|silent-refusal]\n  \
         simboard power-off --pidfile FILE\n  simboard factory-reset --state FILE\n  simboard flash --state FILE --version X.Y.Z\n  simboard sign-image --key FILE --version X.Y.Z [--model M] [--payload-bytes N] --out FILE\n  simboard pubkey --key FILE\n  simboard run --link PATH --state FILE [--flaw NAME]...\n\
         flaws: {}",
        board::Flaw::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    );
    ExitCode::from(2)
}

struct Args {
    cmd: String,
    link: Option<PathBuf>,
    state: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    flaws: Vec<board::Flaw>,
    update_messages: update::Messages,
    boot_ms: u64,
    noise_kib: usize,
    factory_user: String,
    factory_password: String,
    /// `--factory-password` given: it wins over the label's.
    factory_password_given: bool,
    /// The unit's serial number (empty: an unprovisioned board, `simboard-factory`).
    serial: String,
    mqtt_host: Option<String>,
    mqtt_connect: String,
    mqtt_tls_port: u16,
    mqtt_plain_port: u16,
    ca: Option<PathBuf>,
    mqtt_interval_ms: u64,
    mqtt_token: String,
    update_url: Option<String>,
    update_pubkey: Option<String>,
    update_ca: Option<PathBuf>,
    update_host: Option<String>,
    tls_dir: Option<PathBuf>,
    telemetry_url: Option<String>,
    update_interval_ms: u64,
    install_ms: u64,
    telnet_port: Option<u16>,
    ssh_port: Option<u16>,
    web_port: Option<u16>,
    broker_port: Option<u16>,
    status_port: Option<u16>,
    redirect_port: Option<u16>,
    lockout_ms: u64,
    source: Option<std::net::IpAddr>,
    key: Option<PathBuf>,
    version: Option<String>,
    model: String,
    payload_bytes: usize,
    out: Option<PathBuf>,
    raw: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut it = raw.iter();
    let cmd = it.next().ok_or("missing subcommand")?.clone();
    let mut a = Args {
        cmd,
        link: None,
        state: None,
        pidfile: None,
        flaws: Vec::new(),
        update_messages: update::Messages::Normal,
        boot_ms: 300,
        noise_kib: 8,
        factory_user: "admin".into(),
        factory_password: "simboard-factory".into(),
        factory_password_given: false,
        serial: String::new(),
        mqtt_host: None,
        mqtt_connect: "127.0.0.1".into(),
        mqtt_tls_port: 8883,
        mqtt_plain_port: 1883,
        ca: None,
        mqtt_interval_ms: 1000,
        mqtt_token: "simboard-device-token-7f3a".into(),
        update_url: None,
        update_pubkey: None,
        update_ca: None,
        update_host: None,
        tls_dir: None,
        telemetry_url: None,
        update_interval_ms: 1000,
        install_ms: 600,
        telnet_port: None,
        ssh_port: None,
        web_port: None,
        broker_port: None,
        status_port: None,
        redirect_port: None,
        lockout_ms: 15_000,
        source: None,
        key: None,
        version: None,
        model: update::MODEL.into(),
        payload_bytes: 64 << 10,
        out: None,
        raw: raw.clone(),
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--link" => a.link = Some(value()?.into()),
            "--update-messages" => {
                let v = value()?;
                a.update_messages = update::Messages::parse(&v).ok_or(format!(
                    "unknown --update-messages {v:?} (normal, installing-first, silent-refusal)"
                ))?;
            }
            "--state" => a.state = Some(value()?.into()),
            "--pidfile" => a.pidfile = Some(value()?.into()),
            "--flaw" => {
                let v = value()?;
                if v != "none" {
                    a.flaws
                        .push(board::Flaw::parse(&v).ok_or(format!("unknown flaw {v:?}"))?);
                }
            }
            "--boot-ms" => a.boot_ms = value()?.parse().map_err(|e| format!("--boot-ms: {e}"))?,
            "--noise-kib" => a.noise_kib = value()?.parse().map_err(|e| format!("--noise-kib: {e}"))?,
            "--factory-user" => a.factory_user = value()?,
            "--factory-password" => {
                a.factory_password = value()?;
                a.factory_password_given = true;
            }
            "--serial" => a.serial = value()?,
            "--mqtt-host" => a.mqtt_host = Some(value()?),
            "--mqtt-connect" => a.mqtt_connect = value()?,
            "--source-address" => {
                let v = value()?;
                let ip = v.parse().map_err(|e| format!("--source-address {v:?}: {e}"))?;
                a.source = Some(ip);
                net::set_source(ip)
            }
            "--telnet-port" => a.telnet_port = Some(value()?.parse().map_err(|e| format!("--telnet-port: {e}"))?),
            "--ssh-port" => a.ssh_port = Some(value()?.parse().map_err(|e| format!("--ssh-port: {e}"))?),
            "--web-port" => a.web_port = Some(value()?.parse().map_err(|e| format!("--web-port: {e}"))?),
            "--broker-port" => a.broker_port = Some(value()?.parse().map_err(|e| format!("--broker-port: {e}"))?),
            "--status-port" => a.status_port = Some(value()?.parse().map_err(|e| format!("--status-port: {e}"))?),
            "--redirect-port" => a.redirect_port = Some(value()?.parse().map_err(|e| format!("--redirect-port: {e}"))?),
            "--lockout-ms" => a.lockout_ms = value()?.parse().map_err(|e| format!("--lockout-ms: {e}"))?,
            "--mqtt-tls-port" => a.mqtt_tls_port = value()?.parse().map_err(|e| format!("--mqtt-tls-port: {e}"))?,
            "--mqtt-plain-port" => {
                a.mqtt_plain_port = value()?.parse().map_err(|e| format!("--mqtt-plain-port: {e}"))?
            }
            "--ca" => a.ca = Some(value()?.into()).filter(|p: &PathBuf| !p.as_os_str().is_empty()),
            "--mqtt-interval-ms" => {
                a.mqtt_interval_ms = value()?.parse().map_err(|e| format!("--mqtt-interval-ms: {e}"))?
            }
            "--mqtt-token" => a.mqtt_token = value()?,
            "--update-url" => a.update_url = Some(value()?),
            "--update-ca" => a.update_ca = Some(value()?.into()).filter(|p: &PathBuf| !p.as_os_str().is_empty()),
            "--update-host" => a.update_host = Some(value()?),
            "--tls-dir" => a.tls_dir = Some(value()?.into()),
            "--telemetry-url" => a.telemetry_url = Some(value()?),
            "--update-pubkey" => a.update_pubkey = Some(value()?),
            "--update-interval-ms" => {
                a.update_interval_ms = value()?.parse().map_err(|e| format!("--update-interval-ms: {e}"))?
            }
            "--install-ms" => a.install_ms = value()?.parse().map_err(|e| format!("--install-ms: {e}"))?,
            "--key" => a.key = Some(value()?.into()),
            "--version" => a.version = Some(value()?),
            "--model" => a.model = value()?,
            "--payload-bytes" => a.payload_bytes = value()?.parse().map_err(|e| format!("--payload-bytes: {e}"))?,
            "--out" => a.out = Some(value()?.into()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("simboard: {e}");
            return usage();
        }
    };
    let result = match args.cmd.as_str() {
        "run" => run(&args),
        "power-on" => power_on(&args),
        "power-off" => power_off(&args),
        "sign-image" => sign_image(&args),
        // the label printer: the factory password of the unit with this serial
        "label" if !args.serial.is_empty() => {
            println!("{}", simboard::label::password(&args.serial));
            Ok(())
        }
        "pubkey" => match &args.key {
            Some(k) => update::read_key(k).map(|k| {
                println!(
                    "{}",
                    k.verifying_key()
                        .as_bytes()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                )
            }),
            None => Err("--key is required".into()),
        },
        "flash" => match (&args.state, &args.version) {
            (Some(s), Some(v)) if update::parse_version(v).is_some() => board::State::flash(s, v),
            _ => Err("--state FILE and --version X.Y.Z are required".into()),
        },
        "factory-reset" => match &args.state {
            // the reset-keeps-password flaw: the reset forgets everything but the password
            Some(s) if args.flaws.contains(&board::Flaw::ResetKeepsPassword) => {
                let kept = board::State::load(s).password;
                board::State::erase(s).map(|()| {
                    if kept.is_some() {
                        let mut fresh = board::State::load(s);
                        fresh.password = kept;
                        fresh.save(s);
                    }
                })
            }
            Some(s) => board::State::erase(s),
            None => Err("--state is required".into()),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simboard {}: {e}", args.cmd);
            ExitCode::FAILURE
        }
    }
}

/// The unit's factory password: the one given, else its label's (made from its serial), or
/// with the flaws one for all units or the MAC's last six hex digits.
fn factory_password(args: &Args) -> String {
    if args.flaws.contains(&board::Flaw::PasswordFromMac) {
        return simboard::label::own_mac()
            .map(|m| simboard::label::from_mac(&m))
            .unwrap_or_else(|| "000000".into());
    }
    if args.factory_password_given || args.serial.is_empty() || args.flaws.contains(&board::Flaw::SamePasswordAllUnits)
    {
        return args.factory_password.clone();
    }
    simboard::label::password(&args.serial)
}

/// The maker's signing tool: `sign-image --key K --version 2.0.0 [--model SB-1] [--payload-bytes N] --out F`.
fn sign_image(args: &Args) -> Result<(), String> {
    let key = update::read_key(args.key.as_ref().ok_or("--key is required")?)?;
    let v = args
        .version
        .as_deref()
        .and_then(update::parse_version)
        .ok_or("--version x.y.z is required")?;
    let out = args.out.as_ref().ok_or("--out is required")?;
    let img = update::build(&key, v, &args.model, args.payload_bytes);
    std::fs::write(out, img).map_err(|e| format!("{}: {e}", out.display()))
}

fn board_options(args: &Args) -> Result<BoardOptions, String> {
    let remote_tls = match &args.tls_dir {
        Some(d) => Some(remote::server_tls(d, &args.flaws)?),
        None => None,
    };
    Ok(BoardOptions {
        link: args.link.clone().ok_or("--link is required")?,
        state: args.state.clone().ok_or("--state is required")?,
        flaws: args.flaws.clone(),
        boot_ms: args.boot_ms,
        noise_kib: args.noise_kib,
        factory_user: args.factory_user.clone(),
        factory_password: factory_password(args),
        mqtt: args.mqtt_host.clone().map(|host| mqtt::MqttOptions {
            host,
            connect: args.mqtt_connect.clone(),
            tls_port: args.mqtt_tls_port,
            plain_port: args.mqtt_plain_port,
            ca: args.ca.clone(),
            interval: Duration::from_millis(args.mqtt_interval_ms),
            client_id: "simboard-sb1".into(),
            token: args.mqtt_token.clone(),
            state: args.state.clone(),
            overshares: args.flaws.contains(&board::Flaw::TelemetryOvershares),
        }),
        update: match (&args.update_url, &args.update_pubkey) {
            (Some(url), Some(pk)) => Some(update::AgentOptions {
                url: url.clone(),
                pubkey: update::parse_pubkey(pk)?,
                interval: Duration::from_millis(args.update_interval_ms),
                install: Duration::from_millis(args.install_ms),
                messages: args.update_messages,
                tls: match &args.update_ca {
                    Some(ca) => {
                        let host = args
                            .update_host
                            .clone()
                            .or_else(|| {
                                url.split('/')
                                    .nth(2)
                                    .and_then(|hp| hp.split(':').next())
                                    .map(String::from)
                            })
                            .unwrap_or_default();
                        Some(update::UpdateTls::new(ca, &host)?)
                    }
                    None => None,
                },
            }),
            (None, None) => None,
            _ => return Err("--update-url and --update-pubkey go together".into()),
        },
        remote: [
            args.telnet_port,
            args.web_port,
            args.ssh_port,
            args.broker_port,
            args.status_port,
            args.redirect_port,
        ]
        .iter()
        .any(Option::is_some)
        .then(|| remote::RemoteOptions {
            address: args.source.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
            telnet_port: args.telnet_port,
            web_port: args.web_port,
            ssh_port: args.ssh_port,
            broker_port: args.broker_port,
            status_port: args.status_port,
            redirect_port: args.redirect_port,
            lockout: Duration::from_millis(args.lockout_ms),
            state: args.state.clone().unwrap_or_default(),
            factory_user: args.factory_user.clone(),
            factory_password: factory_password(args),
            flaws: args.flaws.clone(),
            tls: remote_tls.clone(),
        }),
        telemetry_url: args.telemetry_url.clone(),
    })
}

fn run(args: &Args) -> Result<(), String> {
    let opts = board_options(args)?;
    let line = pty::SerialLine::create(&opts.link)?;
    board::Board::new(opts, line).run()
}

/// Applies power: starts `simboard run` detached and waits for its serial line.
fn power_on(args: &Args) -> Result<(), String> {
    let opts = board_options(args)?;
    let pidfile = args.pidfile.clone().ok_or("--pidfile is required")?;
    if read_pid(&pidfile).is_some_and(process_alive) {
        return Ok(()); // already powered
    }
    let _ = std::fs::remove_file(&opts.link);
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut run_args: Vec<String> = args.raw.clone();
    run_args[0] = "run".into();
    // drop --pidfile VALUE from the board's own arguments
    if let Some(i) = run_args.iter().position(|a| a == "--pidfile") {
        run_args.drain(i..i + 2);
    }
    // The board's own diagnostics go to a log beside its state (its "debug UART").
    let log = std::fs::File::create(opts.state.with_extension("log")).map_err(|e| format!("board log: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(&run_args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let child = cmd.spawn().map_err(|e| format!("spawn board: {e}"))?;
    std::fs::write(&pidfile, format!("{}\n", child.id())).map_err(|e| format!("write {}: {e}", pidfile.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if opts.link.exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!("serial line {} did not appear", opts.link.display()))
}

/// Removes power: SIGKILL, no chance for a clean shutdown, like pulling the plug.
fn power_off(args: &Args) -> Result<(), String> {
    let pidfile = args.pidfile.clone().ok_or("--pidfile is required")?;
    let Some(pid) = read_pid(&pidfile) else {
        return Ok(()); // already off
    };
    // the link goes first: once the PTY is freed its number may be reused by another
    // program, and a reader following a dangling link would end up there
    if let Some(link) = &args.link {
        let _ = std::fs::remove_file(link);
    }
    // SAFETY: plain syscall on a pid we started; a stale pid fails with ESRCH.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn process_alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped by its parent) counts as dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
