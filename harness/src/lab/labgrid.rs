//! Boards on other hosts through labgrid: a lab file's `labgrid: { coordinator, place }`
//! names a place the coordinator manages; certbench acquires it for the run with the
//! `labgrid-client` command (the interface labgrid keeps stable across its releases, where
//! its gRPC API is internal), takes the console from the place's `NetworkSerialPort` (the
//! exporter's ser2net, RFC 2217 or raw TCP) and switches power with `labgrid-client power`,
//! and releases the place when the run ends by any path: normally, on ERROR, on SIGINT or
//! SIGTERM, on a panic (the reservation's `Drop`). A run killed outright (SIGKILL) cannot;
//! it leaves a marker beside the board's lock, and the next run on this host that finds
//! the place held with the marker's process gone releases it, saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::model::labgrid::Place;

/// How long one client command may take (the coordinator unreachable: it retries).
const COMMAND_TIME: Duration = Duration::from_secs(30);

impl Place {
    /// Runs `labgrid-client -x COORDINATOR -p PLACE ARGS`: its output, or why it failed.
    pub fn client(&self, args: &[&str]) -> Result<String, String> {
        let mut child = Command::new(&self.client)
            .arg("-x")
            .arg(&self.coordinator)
            .arg("-p")
            .arg(&self.place)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{} could not be started: {e}", self.client.display()))?;
        let deadline = Instant::now() + COMMAND_TIME;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "`labgrid-client {}` did not finish within {COMMAND_TIME:?} (coordinator {})",
                        args.join(" "),
                        self.coordinator
                    ));
                }
            }
        }
        let out = child.wait_with_output().map_err(|e| format!("labgrid-client: {e}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(text.trim().to_string())
        }
    }

    /// The shell command that runs `labgrid-client ... ARGS` (for power commands).
    pub fn command_line(&self, args: &str) -> String {
        format!(
            "{} -x {} -p {} {args}",
            crate::model::template::shell_quote(&self.client.to_string_lossy()),
            crate::model::template::shell_quote(&self.coordinator),
            crate::model::template::shell_quote(&self.place)
        )
    }
}

/// How long the coordinator may take to answer the session's start or one request; the
/// client's answer to any request is awaited [`COMMAND_TIME`].
pub const ANSWER_TIME: Duration = Duration::from_secs(10);

/// The longest answer the session may give (a place's resources as the coordinator has them).
const ANSWER_MAX: u64 = 1 << 20;

/// The session program (`labgrid_session.py`), run with `labgrid-client`'s own interpreter.
const SESSION: &str = include_str!("labgrid_session.py");

/// certbench's client of one place for one run: a labgrid session kept open for the run
/// (labgrid's Python client library, in the interpreter `labgrid-client` runs with: Python
/// and gRPC start once), or, when that interpreter cannot run it, one `labgrid-client`
/// command per action. Both speak to the coordinator the same way.
#[derive(Debug)]
pub struct Client {
    pub place: Place,
    session: Option<std::sync::Mutex<Session>>,
    /// How the place is driven, for the report.
    pub mode: String,
}

#[derive(Debug)]
struct Session {
    child: std::process::Child,
    requests: Option<std::process::ChildStdin>,
    answers: std::sync::mpsc::Receiver<String>,
    /// The end of what the session wrote on stderr (why it ended).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// The Python interpreter a `labgrid-client` script names on its `#!` line.
fn interpreter(client: &Path) -> Option<PathBuf> {
    let path = if client.components().count() > 1 {
        client.to_path_buf()
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(client))
            .find(|p| p.is_file())?
    };
    // (through the bounded reader: a compiled client over the limit is no script)
    let script = crate::util::read_regular(&path, crate::util::limits::TEXT).ok()?;
    let head = String::from_utf8_lossy(&script[..script.len().min(256)]);
    let line = head.lines().next()?.strip_prefix("#!")?;
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let program = if first.ends_with("/env") { words.next()? } else { first };
    let name = Path::new(program).file_name()?.to_str()?;
    name.starts_with("python").then(|| PathBuf::from(program))
}

impl Client {
    /// Opens the place's client: the session when `labgrid-client`'s interpreter can run it
    /// (Err if the coordinator does not answer it), else the per-command client.
    pub fn open(place: &Place) -> Result<Client, String> {
        let Some(python) = interpreter(&place.client) else {
            return Ok(Client::commands(place, "its `#!` names no Python interpreter"));
        };
        let spawned = Command::new(&python)
            .arg("-c")
            .arg(SESSION)
            .arg(&place.coordinator)
            .arg(&place.place)
            .arg(ANSWER_TIME.as_secs().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                return Ok(Client::commands(
                    place,
                    &format!("{} could not be started: {e}", python.display()),
                ));
            }
        };
        let (tx, answers) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                use std::io::{BufRead, Read};
                let mut r = std::io::BufReader::new(out);
                loop {
                    // an answer carries what the coordinator says of the place: bounded
                    let mut line = Vec::new();
                    match (&mut r).take(ANSWER_MAX).read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line.last() != Some(&b'\n') && line.len() as u64 >= ANSWER_MAX => {
                            let _ = tx.send(
                                serde_json::json!({
                                    "ok": false,
                                    "error": format!("the labgrid session's answer is over {ANSWER_MAX} bytes; the session is ended"),
                                })
                                .to_string(),
                            );
                            break;
                        }
                        Ok(_) => {
                            if tx.send(String::from_utf8_lossy(&line).trim_end().to_string()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let keep = stderr.clone();
            std::thread::spawn(move || {
                for line in std::io::BufRead::lines(std::io::BufReader::new(err)).map_while(Result::ok) {
                    let mut k = keep.lock().unwrap_or_else(|p| p.into_inner());
                    k.push_str(&line);
                    k.push('\n');
                    if k.len() > 4096 {
                        let cut = k.len() - 2048;
                        let cut = (cut..k.len()).find(|&i| k.is_char_boundary(i)).unwrap_or(k.len());
                        k.drain(..cut);
                    }
                }
            });
        }
        let mut session = Session {
            requests: child.stdin.take(),
            child,
            answers,
            stderr,
        };
        // Python's start and labgrid's import, then the coordinator's answer
        let first = session.answer(ANSWER_TIME + COMMAND_TIME);
        let first = match first {
            Ok(a) => a,
            Err(e) => {
                session.end();
                return Ok(Client::commands(
                    place,
                    &format!("the labgrid session did not start: {e}"),
                ));
            }
        };
        if first["ready"] == true {
            let version = first["version"].as_str().unwrap_or("?").to_string();
            return Ok(Client {
                place: place.clone(),
                session: Some(std::sync::Mutex::new(session)),
                mode: format!("one labgrid {version} session for the run ({})", python.display()),
            });
        }
        session.end();
        if let Some(e) = first["error"].as_str() {
            return Err(e.to_string());
        }
        let why = first["why"].as_str().unwrap_or("it said nothing");
        Ok(Client::commands(
            place,
            &format!("{} cannot run labgrid's client library: {why}", python.display()),
        ))
    }

    /// The client that runs `labgrid-client` once per action.
    pub fn commands(place: &Place, why: &str) -> Client {
        Client {
            place: place.clone(),
            session: None,
            mode: format!(
                "`{} -x … -p {}` per action ({why})",
                place.client.display(),
                place.place
            ),
        }
    }

    /// One request to the session: its answer, or why there is none.
    fn request(&self, session: &std::sync::Mutex<Session>, op: &str, kick: bool) -> Result<serde_json::Value, String> {
        let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
        let line = serde_json::json!({ "op": op, "kick": kick }).to_string();
        let sent = s
            .requests
            .as_mut()
            .ok_or_else(|| "the labgrid session has ended".to_string())
            .and_then(|w| {
                std::io::Write::write_all(w, format!("{line}\n").as_bytes())
                    .map_err(|e| format!("the labgrid session has ended ({e})"))
            });
        let answer = sent.and_then(|()| s.answer(COMMAND_TIME));
        match answer {
            Ok(a) if a["ok"] == true => Ok(a),
            Ok(a) => Err(a["error"].as_str().unwrap_or("refused, without a reason").to_string()),
            Err(e) => {
                s.end();
                Err(e)
            }
        }
    }

    /// Runs `op` through the session, or as `labgrid-client ARGS`.
    fn act(&self, op: &str, args: &[&str], kick: bool) -> Result<serde_json::Value, String> {
        match &self.session {
            Some(s) => self.request(s, op, kick),
            None => self.place.client(args).map(serde_json::Value::String),
        }
    }

    pub fn acquire(&self) -> Result<(), String> {
        self.act("acquire", &["acquire"], false).map(drop)
    }

    /// Releases the place (`kick`: whoever holds it). A session that has ended is replaced by
    /// the per-command client, so a place is released even then.
    pub fn release(&self, kick: bool) -> Result<(), String> {
        let args: &[&str] = if kick { &["release", "--kick"] } else { &["release"] };
        match self.act("release", args, kick) {
            Err(e) if e.contains("the labgrid session") => self.place.client(args).map(drop),
            r => r.map(drop),
        }
    }

    /// What the acquired place offers certbench.
    pub fn resources(&self) -> Result<Resources, String> {
        match &self.session {
            Some(s) => {
                let a = self.request(s, "resources", false)?;
                let list = a["resources"].as_array().cloned().unwrap_or_default();
                Ok(resources(
                    list.iter().map(|r| (r["cls"].as_str().unwrap_or(""), &r["params"])),
                ))
            }
            None => self.place.client(&["show"]).map(|s| parse_show(&s)),
        }
    }

    /// Switches the place's power resource.
    pub fn power(&self, on: bool) -> Result<String, String> {
        let op = if on { "on" } else { "off" };
        self.act(op, &["power", op], false).map(|a| match a {
            serde_json::Value::String(s) => s,
            a => a["said"].as_str().unwrap_or("").to_string(),
        })
    }
}

impl Session {
    /// The next line the session says, as JSON, within `time`.
    fn answer(&mut self, time: Duration) -> Result<serde_json::Value, String> {
        match self.answers.recv_timeout(time) {
            Ok(line) => serde_json::from_str(&line)
                .map_err(|e| format!("the labgrid session said something certbench cannot read ({e}): {line}")),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("the labgrid session did not answer within {time:?}"))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(50));
                let said = self.stderr.lock().map(|s| s.trim().to_string()).unwrap_or_default();
                Err(format!(
                    "the labgrid session has ended{}",
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                ))
            }
        }
    }

    /// Ends the session: its input closed (it stops and closes its channel), killed if it
    /// has not ended within a second.
    fn end(&mut self) {
        self.requests = None;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(1) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Client {
    /// The session is told to end (its input closed) and left to it off the caller's path:
    /// it closes its channel and exits in about 60 ms, or is killed after a second.
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let mut s = s.into_inner().unwrap_or_else(|p| p.into_inner());
            s.requests = None;
            std::thread::spawn(move || s.end());
        }
    }
}

/// The place, acquired; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    pub client: std::sync::Arc<Client>,
    marker: PathBuf,
    /// Said once the reporters exist (e.g. a killed run's reservation released).
    pub notes: Vec<String>,
}

/// Whether the client's refusal says the place is held by someone.
fn held_elsewhere(why: &str) -> bool {
    let w = why.to_ascii_lowercase();
    w.contains("already acquired") || w.contains("acquired by")
}

/// Acquires `place` through [`Client::open`], waiting up to `wait` while another holds it.
/// `marker` (beside the board's lock, which this run holds) names the process holding the
/// place from this host.
pub fn acquire(
    place: &Place,
    wait: Duration,
    give_up: &std::sync::atomic::AtomicBool,
    marker: &Path,
) -> Result<Reservation, String> {
    let client = Client::open(place).map_err(|e| {
        format!(
            "labgrid place {} on {} could not be acquired: {e}",
            place.place, place.coordinator
        )
    })?;
    acquire_with(client, wait, give_up, marker)
}

/// [`acquire`] with a client already open.
pub fn acquire_with(
    client: Client,
    wait: Duration,
    give_up: &std::sync::atomic::AtomicBool,
    marker: &Path,
) -> Result<Reservation, String> {
    let place = client.place.clone();
    let marker = marker.to_path_buf();
    let mut notes = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        match client.acquire() {
            Ok(()) => {
                let _ = std::fs::write(&marker, format!("pid={}\n", std::process::id()));
                return Ok(Reservation {
                    client: std::sync::Arc::new(client),
                    marker,
                    notes,
                });
            }
            Err(why) if held_elsewhere(&why) => {
                // held by a certbench of this host that was killed: its marker's process is gone
                if let Some(pid) = std::fs::read_to_string(&marker)
                    .ok()
                    .and_then(|m| m.trim().strip_prefix("pid=").and_then(|p| p.parse::<u32>().ok()))
                    && !crate::util::alive_certbench(pid)
                {
                    client.release(true).map_err(|e| {
                        format!("place {} was left acquired by a killed certbench run (pid {pid}) and could not be released: {e}", place.place)
                    })?;
                    let _ = std::fs::remove_file(&marker);
                    notes.push(format!(
                        "labgrid place {} was left acquired by a certbench run that was killed (pid {pid}); released before this run",
                        place.place
                    ));
                    continue;
                }
                if give_up.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(format!("gave up waiting for labgrid place {}", place.place));
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "labgrid place {} on {} is held by another user (waited {wait:?}, --lock-wait): {why}",
                        place.place, place.coordinator
                    ));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(why) => {
                return Err(format!(
                    "labgrid place {} on {} could not be acquired: {why}",
                    place.place, place.coordinator
                ));
            }
        }
    }
}

/// What the place offers certbench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// The console: `rfc2217://HOST:PORT` or `tcp://HOST:PORT`.
    pub console: Option<String>,
    /// The line's speed the exporter declares.
    pub speed: Option<u32>,
    /// The place has a power resource `labgrid-client power` drives.
    pub power: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Err(e) = self.client.release(false) {
            eprintln!(
                "certbench: labgrid place {} could not be released: {e}",
                self.client.place.place
            );
        }
        let _ = std::fs::remove_file(&self.marker);
    }
}

/// What certbench uses of a place's acquired resources (class, parameters).
fn resources<'a>(acquired: impl Iterator<Item = (&'a str, &'a serde_json::Value)>) -> Resources {
    let mut r = Resources {
        console: None,
        speed: None,
        power: false,
    };
    for (class, params) in acquired {
        match class {
            "NetworkSerialPort" if r.console.is_none() => {
                let host = params["host"].as_str();
                let port = params["port"].as_u64();
                let scheme = match params["protocol"].as_str() {
                    Some("raw") => "tcp",
                    _ => "rfc2217", // labgrid's default
                };
                if let (Some(h), Some(p)) = (host, port) {
                    let h = if h.contains(':') {
                        format!("[{h}]")
                    } else {
                        h.to_string()
                    };
                    r.console = Some(format!("{scheme}://{h}:{p}"));
                }
                r.speed = params["speed"].as_u64().and_then(|s| u32::try_from(s).ok());
            }
            c if c.contains("PowerPort") || c == "PDUDaemonPort" || c == "YKUSHPowerPort" => r.power = true,
            _ => {}
        }
    }
    r
}

/// The resources in `labgrid-client show`'s output: each "Acquired resource 'NAME'
/// (EXPORTER/GROUP/CLASS/NAME):" is followed by the resource as a Python literal.
pub fn parse_show(shown: &str) -> Resources {
    let mut acquired: Vec<(String, serde_json::Value)> = Vec::new();
    let lines: Vec<&str> = shown.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let Some(path) = line
            .strip_prefix("Acquired resource ")
            .and_then(|l| l.split_once(" ("))
            .and_then(|(_, p)| p.strip_suffix("):"))
        else {
            continue;
        };
        let mut literal = String::new();
        while i < lines.len() && lines[i].starts_with(' ') {
            literal.push_str(lines[i]);
            literal.push('\n');
            i += 1;
        }
        let class = path.split('/').nth(2).unwrap_or("").to_string();
        if let Some(value) = python_literal(&literal) {
            acquired.push((class, value["params"].clone()));
        }
    }
    resources(acquired.iter().map(|(c, p)| (c.as_str(), p)))
}

/// A Python literal as pprint prints it (dicts, strings, numbers, None/True/False) as JSON.
fn python_literal(s: &str) -> Option<serde_json::Value> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push('"');
                let quote = c;
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                if e == '\'' {
                                    out.push('\'');
                                } else {
                                    out.push('\\');
                                    out.push(e);
                                }
                            }
                        }
                        d if d == quote => break,
                        '"' => out.push_str("\\\""),
                        d => out.push(d),
                    }
                }
                out.push('"');
            }
            c if c.is_ascii_alphabetic() => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(match word.as_str() {
                    "None" => "null",
                    "True" => "true",
                    "False" => "false",
                    _ => return None,
                });
            }
            '(' => out.push('['),
            ')' => out.push(']'),
            c => out.push(c),
        }
    }
    serde_json::from_str(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What labgrid 26's `labgrid-client show` prints for a place with an exported serial
    /// port and a power port (recorded from a real coordinator and exporter).
    const SHOWN: &str = "Place 'sb-1':
  matches:
    exp1/board1/*
  acquired: host/root
  acquired resources:
    exp1/board1/NetworkPowerPort/NetworkPowerPort
    exp1/board1/NetworkSerialPort/RawSerialPort
  created: 2026-12-07 16:08:38.648453
  changed: 2026-12-07 16:08:39.237758
Acquired resource 'NetworkPowerPort' (exp1/board1/NetworkPowerPort/NetworkPowerPort):
  {'acquired': 'sb-1',
   'avail': True,
   'cls': 'NetworkPowerPort',
   'params': {'extra': {'proxy': 'localhost', 'proxy_required': False},
              'host': 'http://127.0.0.1:18999/outlet/{index}/{value}',
              'index': 0,
              'model': 'simplerest'}}
Acquired resource 'RawSerialPort' (exp1/board1/NetworkSerialPort/RawSerialPort):
  {'acquired': 'sb-1',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'path': '/dev/certbench-sb1',
                        'proxy': 'localhost',
                        'proxy_required': False},
              'host': '10.99.0.2',
              'port': 40231,
              'speed': 115200}}
";

    #[test]
    fn the_console_and_power_of_a_place_are_read_from_show() {
        let r = parse_show(SHOWN);
        assert_eq!(r.console.as_deref(), Some("rfc2217://10.99.0.2:40231"));
        assert_eq!(r.speed, Some(115_200));
        assert!(r.power);
        let raw = SHOWN.replace("'speed': 115200}}", "'speed': 115200, 'protocol': 'raw'}}");
        assert_eq!(parse_show(&raw).console.as_deref(), Some("tcp://10.99.0.2:40231"));
        // no acquired serial port, no power
        let bare = parse_show("Place 'x':\n  acquired: None\n");
        assert_eq!(
            bare,
            Resources {
                console: None,
                speed: None,
                power: false
            }
        );
    }

    /// A session (here a stand-in for labgrid's interpreter) that answers with more than
    /// ANSWER_MAX bytes: the answer is refused, the session ended, nothing read unbounded.
    #[test]
    fn an_answer_over_the_bound_ends_the_session() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        let python = d.path().join("python3");
        std::fs::write(
            &python,
            "#!/bin/sh\necho '{\"ready\": true, \"version\": \"test\"}'\nread request\nhead -c 3000000 /dev/zero | tr '\\0' a\necho\n",
        )
        .expect("python");
        let client = d.path().join("labgrid-client");
        std::fs::write(&client, format!("#!{}\n", python.display())).expect("client");
        for f in [&python, &client] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let place = Place {
            coordinator: "127.0.0.1:1".into(),
            place: "p".into(),
            client,
        };
        let c = Client::open(&place).expect("the stand-in session starts");
        assert!(c.mode.contains("one labgrid test session"), "{}", c.mode);
        let e = c.acquire().expect_err("an answer over the bound");
        assert!(e.contains("over 1048576 bytes"), "{e}");
        let e = c.acquire().expect_err("the session has ended");
        assert!(e.contains("the labgrid session has ended"), "{e}");
    }

    #[test]
    fn refusals_that_mean_held() {
        assert!(held_elsewhere(
            "Server error: Error: Place sb-1 is already acquired by host/user"
        ));
        assert!(!held_elsewhere("Server error: Place sb-1 not found"));
    }
}
