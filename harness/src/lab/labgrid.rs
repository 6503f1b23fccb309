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

pub use crate::model::labgrid::Place;

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

/// The place, acquired; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    pub place: Place,
    marker: PathBuf,
    /// Said once the reporters exist (e.g. a killed run's reservation released).
    pub notes: Vec<String>,
}

/// Whether the client's refusal says the place is held by someone.
fn held_elsewhere(why: &str) -> bool {
    let w = why.to_ascii_lowercase();
    w.contains("already acquired") || w.contains("acquired by")
}

/// Acquires `place`, waiting up to `wait` while another holds it. `marker` (beside the
/// board's lock, which this run holds) names the process holding the place from this host.
pub fn acquire(
    place: &Place,
    wait: Duration,
    give_up: &std::sync::atomic::AtomicBool,
    marker: &Path,
) -> Result<Reservation, String> {
    let marker = marker.to_path_buf();
    let mut notes = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        match place.client(&["acquire"]) {
            Ok(_) => {
                let _ = std::fs::write(&marker, format!("pid={}\n", std::process::id()));
                return Ok(Reservation {
                    place: place.clone(),
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
                    place.client(&["release", "--kick"]).map_err(|e| {
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

impl Reservation {
    /// What `labgrid-client show` says of a place (its acquired resources).
    pub fn shown(place: &Place) -> Result<String, String> {
        place.client(&["show"])
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Err(e) = self.place.client(&["release"]) {
            eprintln!(
                "certbench: labgrid place {} could not be released: {e}",
                self.place.place
            );
        }
        let _ = std::fs::remove_file(&self.marker);
    }
}

/// The resources in `labgrid-client show`'s output: each "Acquired resource 'NAME'
/// (EXPORTER/GROUP/CLASS/NAME):" is followed by the resource as a Python literal.
pub fn parse_show(shown: &str) -> Resources {
    let mut r = Resources {
        console: None,
        speed: None,
        power: false,
    };
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
        let class = path.split('/').nth(2).unwrap_or("");
        let Some(value) = python_literal(&literal) else {
            continue;
        };
        let params = &value["params"];
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

    #[test]
    fn refusals_that_mean_held() {
        assert!(held_elsewhere(
            "Server error: Error: Place sb-1 is already acquired by host/user"
        ));
        assert!(!held_elsewhere("Server error: Place sb-1 not found"));
    }
}
