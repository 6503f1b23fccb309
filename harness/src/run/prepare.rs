//! Preparing a device and its benches: the command variables, the device's link, the MQTT and
//! update benches, setup commands, flashing, power and console.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::options::{FACTORY_PASSWORD_IS_USER, RunOptions, abs};
use crate::bench::NetBench;
use crate::config::device::Device;
use crate::config::power::PowerSpec;
use crate::console::{self, Console, Feed};
use crate::engine::Rig;
use crate::gateway::Gateway;
use crate::lab::lock::BoardLock;
use crate::power::{Power, external::ExternalPower, manual::ManualPower};
use crate::redact::Redactor;
use crate::report::Reporters;
use crate::report::events::RunEvent;
use crate::update::bench::UpdateBench;

/// What preparing gave: the command variables, the board's lock (or why it is not held), the
/// device's link, the benches (or why each did not start).
#[derive(Debug)]
pub(super) struct Prepared {
    pub vars: BTreeMap<String, String>,
    pub profile_dir: PathBuf,
    pub port: Option<String>,
    pub lock: Option<BoardLock>,
    pub lock_error: Option<String>,
    pub gateway: Gateway,
    /// Said on the terminal and in the report once the reporters exist.
    pub notes: Vec<String>,
    pub net: Option<NetBench>,
    pub net_error: Option<String>,
    pub update: Option<UpdateBench>,
    pub update_error: Option<String>,
}

/// Variables, the board's lock, the link and the benches — before anything is powered.
pub(super) async fn prepare(
    opts: &RunOptions,
    device: &mut Device,
    run_id: &str,
    out_dir: &Path,
    workdir: &Path,
    signals: &mut tokio::sync::watch::Receiver<Option<&'static str>>,
) -> Prepared {
    let profile_dir = abs(crate::util::folder_of(&device.profile_file));
    let (mut vars, port) = command_vars(device, run_id, out_dir, workdir, &profile_dir);
    let (mut lock, mut lock_error) = lock_board(opts, device, port.as_deref(), signals).await;
    let mut notes = Vec::new();
    let mut port = port;
    if let Some(r) = lock.as_ref().and_then(|l| l.labgrid.as_ref()) {
        notes.extend(r.notes.iter().cloned());
        match use_place(r, device).await {
            Ok((console, said)) => {
                vars.insert("console".into(), console.clone());
                port = Some(console);
                notes.push(said);
            }
            Err(e) => {
                // a place certbench cannot drive is not held: released (off the runtime)
                lock_error = Some(e);
                if let Some(l) = lock.take() {
                    let _ = tokio::task::spawn_blocking(move || drop(l)).await;
                }
            }
        }
    }
    let held = lock.is_some();
    // the device's link (its own namespace, or the lab's interface), captured from here on:
    // before the benches and power, so nothing the device sends is missed
    let (gateway, link_notes) = if held {
        open_link(device, &mut vars, workdir).await
    } else {
        (Gateway::default(), Vec::new())
    };
    notes.extend(link_notes);
    // the benches come up before anything is powered, so their addresses can be given to
    // power-on commands; a bench that cannot start makes only the checks that need it
    // ERROR (with the cause)
    let (mut net, mut net_error) = (None, None);
    if let Some(spec) = device.mqtt.as_ref().filter(|_| held) {
        match NetBench::start(spec, workdir).await {
            Ok(n) => {
                vars.extend(n.vars());
                net = Some(n);
            }
            Err(e) => {
                eprintln!("certbench: network bench: {e}");
                net_error = Some(format!("the network bench could not start: {e}"));
            }
        }
    }
    let (mut update, mut update_error) = (None, None);
    if let Some(spec) = device.update.as_ref().filter(|_| held) {
        let (ip, http, https) = device.update_bind;
        match UpdateBench::start(spec, ip, (http, https), device.attribution, workdir).await {
            Ok(u) => {
                vars.extend(u.vars());
                update = Some(u);
            }
            Err(e) => {
                eprintln!("certbench: update bench: {e}");
                update_error = Some(format!("the update bench could not start: {e}"));
            }
        }
    }
    let mut gateway = gateway;
    answer_other_connections(
        device,
        &mut gateway,
        (net.as_ref(), update.as_ref()),
        &mut vars,
        workdir,
        &mut notes,
    )
    .await;
    Prepared {
        vars,
        profile_dir,
        port,
        lock,
        lock_error,
        gateway,
        notes,
        net,
        net_error,
        update,
        update_error,
    }
}

/// Every other connection the device opens is answered by the bench (issue 25): after the
/// benches, whose ports keep their own servers. On the device's namespace link, or on a lab
/// interface (a real board whose router is the bench: its DHCP lease says so, or the lab
/// configured it).
async fn answer_other_connections(
    device: &Device,
    gateway: &mut Gateway,
    (net, update): (Option<&NetBench>, Option<&UpdateBench>),
    vars: &mut BTreeMap<String, String>,
    workdir: &Path,
    notes: &mut Vec<String>,
) {
    let link = match (&gateway.net, &device.link, device.attribution.device) {
        (Some(n), _, _) => Some((n.name.clone(), n.host_if.clone(), n.device_ip, Ok(n.host_ip))),
        (None, Some(crate::config::network::Link::Interface(i)), Some(std::net::IpAddr::V4(board)))
            if gateway.error.is_none() =>
        {
            Some((
                format!("certbench-{}-lab", std::process::id()),
                i.clone(),
                board,
                crate::gateway::dhcp::interface_address(i).map(|(a, _)| a),
            ))
        }
        _ => None,
    };
    if let Some((table, iface, board, bench_ip)) = link {
        let mut kept: Vec<u16> = Vec::new();
        if let Some(b) = net {
            kept.extend([b.plain.addr.port(), b.tls.addr.port()]);
        }
        if let Some(u) = update {
            kept.push(u.http.addr.port());
            kept.extend(u.https.as_ref().map(|h| h.addr.port()));
        }
        // a man in the middle of the device's other TLS clients, with the bench's trusted CA
        // (the MQTT bench's, which the device is provisioned with; without one, a CA of its
        // own, `{{netns.ca_cert}}`)
        let pki = match net {
            Some(b) => Some(b.shared_pki()),
            None => {
                let dir = workdir.join("intercept");
                let _ = std::fs::create_dir_all(&dir);
                crate::bench::pki::Pki::new("bench.invalid", &crate::model::TrustSource::BenchCa, &dir)
                    .ok()
                    .map(|p| std::sync::Arc::new(std::sync::Mutex::new(p)))
            }
        };
        if let Some(ca) = pki
            .as_ref()
            .and_then(|p| p.lock().unwrap_or_else(|e| e.into_inner()).ca_file.clone())
        {
            vars.insert("netns.ca_cert".into(), ca.display().to_string());
        }
        let mitm = pki.map(crate::gateway::intercept::Mitm::new);
        let started = match bench_ip {
            Ok(bench_ip) => {
                crate::gateway::intercept::Interceptor::start(
                    &table,
                    &iface,
                    board,
                    bench_ip,
                    &kept,
                    mitm,
                    device.http_answers.clone(),
                )
                .await
            }
            Err(e) => Err(format!("the bench has no IPv4 address on {iface}: {e}")),
        };
        match started {
            Ok(i) => {
                notes.push(format!(
                    "the bench answers every other TCP connection the device opens, to any port and any address (redirected on {iface} to {}; intercepted.jsonl): nothing leaves the bench",
                    i.addr
                ));
                notes.push(match &i.ntp {
                    Some(n) => format!(
                        "the device's time requests (NTP, to any address) are answered with this machine's clock ({}; ntp-queries.jsonl)",
                        n.addr
                    ),
                    None => "the bench cannot answer the device's time requests (NTP): its clock may be wrong, and TLS-03 (an expired certificate) is judged on it".into(),
                });
                gateway.intercept = Some(i);
            }
            Err(e) => notes.push(format!(
                "the bench cannot answer the device's other connections ({e}): they are refused, and COM-01 cannot pass while the device opens any"
            )),
        }
    }
}

/// The variables commands and scenarios may use (`{{workdir}}`, `{{port.NAME}}`,
/// `{{console}}`, ...) and the console's port.
fn command_vars(
    device: &Device,
    run_id: &str,
    out_dir: &Path,
    workdir: &Path,
    profile_dir: &Path,
) -> (BTreeMap<String, String>, Option<String>) {
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
    let port = match device
        .console
        .as_ref()
        .map(|c| c.port.render(&vars, crate::model::template::Quote::Raw))
    {
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
    (vars, port)
}

/// Lock first: nothing touches the board, its console, its power or the work folder's shared
/// files (bench CA, images) before this run holds the board. The wait ends early on
/// SIGINT/SIGTERM; the lock dies with this process.
async fn lock_board(
    opts: &RunOptions,
    device: &Device,
    port: Option<&str>,
    signals: &mut tokio::sync::watch::Receiver<Option<&'static str>>,
) -> (Option<BoardLock>, Option<String>) {
    // a labgrid place is locked by its coordinator; the local lock keeps two runs of this
    // host apart (and so tells a killed run's reservation from a live one)
    let lock_name = match &device.labgrid {
        Some(p) => format!("labgrid-{}-{}", p.coordinator, p.place),
        None => opts
            .board
            .clone()
            .or_else(|| port.map(str::to_string))
            .unwrap_or_else(|| device.profile_file.display().to_string()),
    };
    let lock_dir = opts.lock_dir.clone().unwrap_or_else(crate::lab::lock::default_dir);
    let wait = opts.lock_wait;
    let give_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = give_up.clone();
    let place = device.labgrid.clone();
    let mut waiting = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut lock = crate::lab::lock::acquire(&lock_dir, &lock_name, wait, &stop).map_err(|e| e.to_string())?;
        if let Some(p) = &place {
            let left = wait.saturating_sub(started.elapsed());
            let marker = lock.path.with_extension("labgrid");
            lock.labgrid = Some(crate::lab::labgrid::acquire(p, left, &stop, &marker)?);
        }
        Ok::<_, String>(lock)
    });
    tokio::select! {
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
    }
}

/// The acquired labgrid place's console and power, put in place of the profile's: the
/// console address, and what was taken (for the report).
async fn use_place(r: &crate::lab::labgrid::Reservation, device: &mut Device) -> Result<(String, String), String> {
    let client = r.client.clone();
    let place = client.place.clone();
    // (the client blocks)
    let res = tokio::task::spawn_blocking(move || client.resources())
        .await
        .map_err(|e| format!("labgrid: {e}"))??;
    let Some(console) = res.console else {
        return Err(format!(
            "labgrid place {} has no acquired serial port (NetworkSerialPort): certbench cannot reach the board's console",
            place.place
        ));
    };
    let mut said = format!(
        "labgrid place {} on {}: console {console}",
        place.place, place.coordinator
    );
    if res.power {
        let off_time = match &device.power {
            Some(crate::config::power::PowerSpec::External { off_time, .. }) => *off_time,
            _ => std::time::Duration::from_secs(1),
        };
        device.power = Some(crate::config::power::PowerSpec::Labgrid {
            place: place.place.clone(),
            off_time,
        });
        said.push_str(", power through the place's power resource");
    } else {
        said.push_str(", no power resource (the profile's power is used)");
    }
    said.push_str(&format!("; driven by {}", r.client.mode));
    Ok((console, said))
}

/// Power through a labgrid place's power resource, with the run's client of the place.
#[derive(Debug)]
struct PlacePower {
    client: std::sync::Arc<crate::lab::labgrid::Client>,
    off_time: std::time::Duration,
}

impl PlacePower {
    async fn switch_to(&self, on: bool) -> Result<String, crate::power::PowerError> {
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || client.power(on))
            .await
            .map_err(|e| crate::power::PowerError::Operator(format!("labgrid power: {e}")))?
            .map_err(|e| {
                crate::power::PowerError::Operator(format!(
                    "labgrid place {}: power {}: {e}",
                    self.client.place.place,
                    if on { "on" } else { "off" }
                ))
            })
    }
}

impl Power for PlacePower {
    fn switch(
        &self,
        action: crate::power::Action,
    ) -> crate::power::BoxFuture<'_, Result<String, crate::power::PowerError>> {
        use crate::power::Action;
        Box::pin(async move {
            match action {
                Action::On => self.switch_to(true).await,
                Action::Off => self.switch_to(false).await,
                Action::Cycle => {
                    let mut out = self.switch_to(false).await?;
                    tokio::time::sleep(self.off_time).await;
                    out.push_str(&self.switch_to(true).await?);
                    Ok(out)
                }
            }
        })
    }
}

impl Prepared {
    /// With the reporters up: the redactor, the setup commands, the image flashed before the
    /// run, power and console — the bench the engine runs on, why nothing can run (a lock not
    /// held, a setup command that failed) if so, and the board's lock.
    pub(super) async fn into_bench(
        self,
        opts: &RunOptions,
        device: Device,
        out_dir: &Path,
        reporters: &mut Reporters,
    ) -> (Rig, Option<String>, Option<BoardLock>) {
        let held = self.lock.is_some();
        let redactor = Redactor::default();
        // the users certbench logs in as are public, and name the whole HTTP Basic tokens
        // (user:password, base64) the redactor masks in the capture
        for u in device.services.iter().filter_map(|s| s.user.as_ref()) {
            redactor.add_public(u);
        }
        if let Some(f) = &device.factory {
            redactor.add_public(&f.user);
            redactor.add("factory.password", &f.password);
            if f.password.eq_ignore_ascii_case(&f.user) {
                reporters.emit(RunEvent::Notice {
                    text: FACTORY_PASSWORD_IS_USER.into(),
                });
            }
        }
        for n in &device.notices {
            reporters.emit(RunEvent::Notice {
                text: format!("profile format: {n}"),
            });
        }
        let mut setup_error = self.lock_error.clone();
        if !opts.skip_setup && held {
            setup_error = setup(&device, &self.vars, &self.profile_dir, &redactor, out_dir, reporters).await;
        }
        if setup_error.is_none() {
            setup_error = flash_before_run(&device, reporters).await;
        }
        // without the board's lock this run must never switch its power or read its console
        let power = device
            .power
            .as_ref()
            .filter(|_| held)
            .and_then(|p| power(p, &self.vars, &self.profile_dir, self.lock.as_ref()));
        // open the console before anything is powered, so no byte is lost
        let console: Option<Console> = match (&device.console, &self.port) {
            (Some(c), Some(p)) if held => {
                let feed = Feed::new(Instant::now());
                let console = match crate::model::console_port::parse(p) {
                    Some(Ok((mode, addr))) => console::network::connect(mode, &addr, c.baud, feed),
                    Some(Err(why)) => {
                        setup_error.get_or_insert(format!("console: {why}"));
                        console::serial::connect(Path::new(p), c.baud, feed)
                    }
                    None => console::serial::connect(Path::new(p), c.baud, feed),
                };
                Some(console.with_lost_grace(c.lost_grace))
            }
            _ => None,
        };
        let bench = Rig {
            state: crate::engine::BoardState::default(),
            current: device.factory.clone(),
            device,
            console,
            power,
            redactor,
            command_vars: self.vars,
            command_cwd: self.profile_dir,
            net: self.net,
            update: self.update,
            gateway: self.gateway,
            planted: Vec::new(),
            planted_at: None,
        };
        (bench, setup_error, self.lock)
    }
}

/// The profile's setup commands (build, flash); a failure makes every check an ERROR with
/// the cause.
async fn setup(
    device: &Device,
    vars: &BTreeMap<String, String>,
    cwd: &Path,
    redactor: &Redactor,
    out_dir: &Path,
    reporters: &mut Reporters,
) -> Option<String> {
    let mut log = String::new();
    let mut error = None;
    for t in &device.setup {
        reporters.emit(RunEvent::Notice {
            text: format!("setup: {}", t.source()),
        });
        match crate::process::run(t, vars, cwd, std::time::Duration::from_secs(1800)).await {
            Ok(o) => log.push_str(&o),
            Err(e) => {
                error = Some(format!("setup command failed: {}", redactor.redact(&e.to_string())));
                break;
            }
        }
    }
    let _ = std::fs::write(out_dir.join("setup.log"), redactor.redact(&log));
    error
}

/// The lab asks for an image on the part before the run (probe-rs only).
async fn flash_before_run(device: &Device, reporters: &mut Reporters) -> Option<String> {
    let d = device.debug.as_ref()?;
    let image = d.flash_before_run.clone()?;
    reporters.emit(RunEvent::Notice {
        text: format!("flashing {} through the debug probe", image.display()),
    });
    match &d.driver {
        crate::config::debug::Driver::ProbeRs { chip, probe } => {
            let mut p = crate::debug::probe::ProbeRs::new(probe.as_deref(), chip, d.sacrificial);
            match tokio::task::spawn_blocking(move || crate::debug::DebugPort::flash(&mut p, &image)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("flash_before_run failed: {e}")),
                Err(e) => Some(format!("flash_before_run stopped: {e}")),
            }
        }
        crate::config::debug::Driver::Gdb { .. } => {
            Some("flash_before_run needs the probe_rs debug driver; with a GDB server, flash in a setup command".into())
        }
    }
}

fn power(
    p: &PowerSpec,
    vars: &BTreeMap<String, String>,
    cwd: &Path,
    lock: Option<&BoardLock>,
) -> Option<Box<dyn Power>> {
    Some(match p {
        PowerSpec::Manual => Box::new(ManualPower),
        PowerSpec::Labgrid { off_time, .. } => Box::new(PlacePower {
            client: lock?.labgrid.as_ref()?.client.clone(),
            off_time: *off_time,
        }),
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
            cwd: cwd.to_path_buf(),
        }),
    })
}

/// Makes the device's link and starts capturing it: a namespace for an emulated device
/// (`network.namespace`; the device's address, the services' host and the benches' bind
/// address become the namespace's), or the lab's `bench.capture_interface` for a board.
/// What fails is kept in the gateway: only the checks that need the link ERROR with it.
pub(super) async fn open_link(
    device: &mut Device,
    vars: &mut BTreeMap<String, String>,
    workdir: &Path,
) -> (crate::gateway::Gateway, Vec<String>) {
    use crate::config::network::Link;
    let mut g = crate::gateway::Gateway::default();
    let mut notes = Vec::new();
    // empty unless a namespace exists: the device then starts in this machine's network
    vars.insert("netns.exec".into(), String::new());
    vars.insert("netns.name".into(), String::new());
    vars.insert("netns.bench".into(), String::new());
    vars.insert("netns.ca_cert".into(), String::new());
    let iface = match device.link.clone() {
        None => return (g, notes),
        Some(Link::Interface(i)) => {
            if let (Some(mac), Some(std::net::IpAddr::V4(address))) = (device.dhcp, device.attribution.device) {
                match serve_board(&i, mac, address, device).await {
                    Ok((dns, dhcp, words)) => {
                        g.dns = dns;
                        g.dhcp = Some(dhcp);
                        notes.extend(words);
                    }
                    Err(e) => {
                        let why = format!("the board's DHCP server did not start on {i}: {e}");
                        notes.push(why.clone());
                        g.error = Some(why);
                    }
                }
            }
            i
        }
        Some(Link::Namespace) => {
            // made on a blocking thread: the kernel's part (RTNL, RCU) is tens of milliseconds
            // of waiting, which on a runtime worker would hold up every other board's task
            let mac = device.unit.as_ref().and_then(|u| u.mac);
            let made = tokio::task::spawn_blocking(move || crate::gateway::netns::DeviceNet::create(mac))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::gateway::netns::NetnsError::Netlink(std::io::Error::other(
                        e.to_string(),
                    )))
                });
            match made {
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
                    match crate::gateway::dns::DnsServer::start(n.host_ip, n.host_ip, resolve_policy(device)).await {
                        Ok(d) => {
                            notes.push(format!(
                            "the device's name server is the bench ({}): {}, every query is recorded (dns-queries.jsonl)",
                            d.addr,
                            resolve_words(device)
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
            }
        }
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

/// A real board's address and name server (lab `bench.dhcp`): DHCP on `iface` for `mac`
/// only, leasing `address`; the bench's address on `iface` is its router and name server.
async fn serve_board(
    iface: &str,
    mac: [u8; 6],
    address: std::net::Ipv4Addr,
    device: &crate::config::device::Device,
) -> Result<
    (
        Option<crate::gateway::dns::DnsServer>,
        crate::gateway::dhcp::DhcpServer,
        Vec<String>,
    ),
    String,
> {
    use crate::gateway::dhcp;
    let (server, prefix) = dhcp::interface_address(iface)?;
    if !dhcp::same_subnet(server, address, prefix) {
        return Err(format!(
            "the device's address {address} is not in {iface}'s subnet {server}/{prefix}"
        ));
    }
    let lease = dhcp::Lease {
        mac,
        address,
        server,
        prefix,
        seconds: 3600,
    };
    let d = dhcp::DhcpServer::start(iface, lease).map_err(|e| format!("UDP port 67 on {iface}: {e}"))?;
    let mut words = vec![format!(
        "DHCP on {iface}: {} gets {address}/{prefix}, router and name server {server} (dhcp.jsonl)",
        dhcp::mac_text(&mac)
    )];
    let dns = match crate::gateway::dns::DnsServer::start(server, server, resolve_policy(device)).await {
        Ok(s) => {
            words.push(format!(
                "the board's name server is the bench ({}): {}, every query is recorded (dns-queries.jsonl)",
                s.addr,
                resolve_words(device)
            ));
            Some(s)
        }
        Err(e) => {
            words.push(format!(
                "no name server for the board ({server}:53: {e}): its lookups go unanswered"
            ));
            None
        }
    };
    Ok((dns, d, words))
}

/// The names the bench plays (they resolve to it whatever the upstream says), and the lab's
/// resolver for the rest.
fn resolve_policy(device: &crate::config::device::Device) -> crate::gateway::dns::Resolve {
    let mut bench_names: Vec<String> = Vec::new();
    if let Some(m) = &device.mqtt {
        bench_names.push(m.host.to_ascii_lowercase());
    }
    if let Some(u) = &device.update {
        bench_names.push(u.host.to_ascii_lowercase());
    }
    crate::gateway::dns::Resolve {
        bench_names,
        upstream: device.dns_upstream,
    }
}

fn resolve_words(device: &crate::config::device::Device) -> String {
    match device.dns_upstream {
        None => "every name resolves to it".into(),
        Some(u) => format!("the hosts the bench plays resolve to it, every other name is asked at {u}"),
    }
}
