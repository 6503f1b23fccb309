//! The debug port (SWD/JTAG through a probe, or a GDB server in front of one): a capability
//! the engine uses through [`DebugPort`], two drivers (probe-rs, GDB remote serial
//! protocol), and the logic of the two checks — debug-port-locked (ATK-03) and
//! secrets-in-memory (ATK-05) — written against the trait so a fake part can test every
//! branch. A refusal by the part is a *result*; only an unreachable probe is an error.

pub mod fake;
pub mod gdb;
pub mod port;
pub mod probe;

use sha2::Digest;

pub use port::{Abilities, DebugError, DebugPort, LockState};

use crate::config::debug::{Driver, Range};

impl crate::config::debug::DebugSpec {
    /// Opens the driver (nothing is contacted until `attach`).
    pub fn open(&self, vars: &std::collections::BTreeMap<String, String>) -> Result<Box<dyn DebugPort>, String> {
        Ok(match &self.driver {
            Driver::Gdb { address } => Box::new(gdb::GdbRemote::new(
                &address.render(vars, crate::model::template::Quote::Raw)?,
                std::time::Duration::from_secs(10),
            )),
            Driver::ProbeRs { chip, probe: sel } => {
                Box::new(probe::ProbeRs::new(sel.as_deref(), chip, self.sacrificial))
            }
        })
    }
}

/// A check's outcome, before the engine turns it into a verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    Pass(String),
    Fail(String),
    /// The check does not apply (e.g. memory not readable for the secrets search).
    Skip(String),
    Error(String),
}

const CHUNK: usize = 512;

/// What reading a list of ranges gave.
struct Dump {
    /// (start address, bytes read from there)
    parts: Vec<(u64, Vec<u8>)>,
    /// How it ended early, if it did.
    stopped: Option<DebugError>,
}

impl Dump {
    fn bytes(&self) -> usize {
        self.parts.iter().map(|(_, b)| b.len()).sum()
    }
}

fn dump(port: &mut dyn DebugPort, ranges: &[Range]) -> Dump {
    let mut parts = Vec::new();
    for r in ranges {
        let mut data = Vec::with_capacity(r.length as usize);
        let mut addr = r.start;
        let end = r.start + r.length;
        while addr < end {
            let n = ((end - addr) as usize).min(CHUNK);
            let mut buf = vec![0u8; n];
            if let Err(e) = port.read(addr, &mut buf) {
                parts.push((r.start, data));
                return Dump {
                    parts,
                    stopped: Some(e),
                };
            }
            data.extend_from_slice(&buf);
            addr += n as u64;
        }
        parts.push((r.start, data));
    }
    Dump { parts, stopped: None }
}

fn sha256_hex(parts: &[(u64, Vec<u8>)]) -> String {
    let mut h = sha2::Sha256::new();
    for (_, b) in parts {
        h.update(b);
    }
    crate::util::hex(&h.finalize())
}

fn ranges_words(ranges: &[Range]) -> String {
    ranges
        .iter()
        .map(|r| format!("{:#x}..{:#x}", r.start, r.start + r.length))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Attaches; a refusal is the answer, anything else unreachable is an ERROR.
fn attach(port: &mut dyn DebugPort) -> Result<String, Finding> {
    match port.attach() {
        Ok(what) => Ok(what),
        Err(DebugError::Refused(m)) => Err(Finding::Pass(format!(
            "the part refused the debugger's attach on {}: {m}",
            port.describe()
        ))),
        Err(e) => Err(Finding::Error(format!(
            "cannot reach the debug port ({}): {e}",
            port.describe()
        ))),
    }
}

/// ATK-03: attach, halt, read the declared flash ranges. PASS when the part refuses; FAIL
/// with how many bytes were read and their SHA-256 (never the bytes).
pub fn check_locked(port: &mut dyn DebugPort, flash: &[Range]) -> Finding {
    let what = match attach(port) {
        Ok(w) => w,
        Err(f) => return f,
    };
    let halted = match port.halt() {
        Ok(()) => "halted the core".to_string(),
        Err(DebugError::Unsupported(_)) => "the driver cannot halt".to_string(),
        Err(DebugError::Refused(m)) => format!("halt refused ({m})"),
        Err(e @ (DebugError::Lost(_) | DebugError::Unavailable(_))) => {
            return Finding::Error(format!("attached to {what}, then: {e}"));
        }
    };
    let d = dump(port, flash);
    let _ = port.resume();
    let n = d.bytes();
    let total: u64 = flash.iter().map(|r| r.length).sum();
    let head = format!("attached to {what} via {}; {halted}", port.describe());
    match (&d.stopped, n) {
        (Some(DebugError::Refused(m)), 0) => Finding::Pass(format!("{head}; reading flash was refused: {m}")),
        (Some(e), 0) => Finding::Error(format!("{head}; reading flash failed before any byte: {e}")),
        _ => {
            let all_same = d
                .parts
                .iter()
                .flat_map(|(_, b)| b.iter())
                .all(|&b| b == d.parts.iter().find_map(|(_, b)| b.first().copied()).unwrap_or(0));
            let partial = match &d.stopped {
                Some(e) => format!(" (then: {e})"),
                None => String::new(),
            };
            if all_same && d.stopped.is_none() {
                let v = d.parts.iter().find_map(|(_, b)| b.first().copied()).unwrap_or(0);
                return Finding::Error(format!(
                    "{head}; all {n} bytes read from {} are {v:#04x}: a locked part answering with filler, or erased flash — the harness cannot tell which",
                    ranges_words(flash)
                ));
            }
            Finding::Fail(format!(
                "{head}; read {n} of {total} bytes of flash ({}){partial}, SHA-256 {}",
                ranges_words(flash),
                sha256_hex(&d.parts)
            ))
        }
    }
}

/// A plaintext secret found in memory: where and what kind (never the value).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub address: u64,
    pub kind: String,
}

/// Searches `data` (read from `base`) for the named needles and for private keys.
pub fn search(base: u64, data: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let find_all = |pat: &[u8]| -> Vec<usize> {
        if pat.is_empty() || pat.len() > data.len() {
            return Vec::new();
        }
        data.windows(pat.len())
            .enumerate()
            .filter(|(_, w)| *w == pat)
            .map(|(i, _)| i)
            .collect()
    };
    for (name, value) in needles {
        for at in find_all(value) {
            hits.push(Hit {
                address: base + at as u64,
                kind: format!("plaintext {name}"),
            });
        }
        // the same text stored as UTF-16LE (common on some stacks)
        let wide: Vec<u8> = value.iter().flat_map(|&b| [b, 0]).collect();
        for at in find_all(&wide) {
            hits.push(Hit {
                address: base + at as u64,
                kind: format!("plaintext {name} (UTF-16)"),
            });
        }
    }
    for at in find_all(b"-----BEGIN ") {
        let line = &data[at..(at + 64).min(data.len())];
        if line.windows(11).any(|w| w == b"PRIVATE KEY") {
            hits.push(Hit {
                address: base + at as u64,
                kind: "PEM private key".into(),
            });
        }
    }
    // DER: PKCS#8 (SEQUENCE, INTEGER 0, SEQUENCE algorithm) and SEC1 EC keys
    for (pat, kind) in [
        (&[0x02u8, 0x01, 0x00, 0x30][..], "DER PKCS#8 private key"),
        (&[0x30u8, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20][..], "DER EC private key"),
    ] {
        for at in find_all(pat) {
            let pkcs8 = pat.len() == 4 && at >= 4 && data[at - 4] == 0x30 && data[at - 3] == 0x82;
            if pat.len() > 4 || pkcs8 {
                hits.push(Hit {
                    address: base + (if pkcs8 { at - 4 } else { at }) as u64,
                    kind: kind.into(),
                });
            }
        }
    }
    hits.sort_by_key(|h| h.address);
    hits
}

/// ATK-05: read the declared ranges and search them for the run's secrets and for keys.
/// Reports addresses and kinds only.
pub fn check_secrets(port: &mut dyn DebugPort, ranges: &[Range], needles: &[(String, Vec<u8>)]) -> (Finding, Vec<Hit>) {
    let what = match attach(port) {
        Ok(w) => w,
        Err(Finding::Pass(m)) => {
            return (
                Finding::Skip(format!(
                    "memory is not readable, so there is nothing to search (see ATK-03): {m}"
                )),
                Vec::new(),
            );
        }
        Err(f) => return (f, Vec::new()),
    };
    let _ = port.halt();
    let d = dump(port, ranges);
    let _ = port.resume();
    let mut hits = Vec::new();
    for (base, data) in &d.parts {
        hits.extend(search(*base, data, needles));
    }
    let n = d.bytes();
    let names: Vec<&str> = needles.iter().map(|(n, _)| n.as_str()).collect();
    let searched = format!(
        "searched {n} bytes of {} read via {} from {what} for {} ({}) and private keys",
        ranges_words(ranges),
        port.describe(),
        if names.len() == 1 {
            "1 secret".to_string()
        } else {
            format!("{} secrets", names.len())
        },
        names.join(", ")
    );
    let listed = hits
        .iter()
        .map(|h| format!("{} at {:#010x}", h.kind, h.address))
        .collect::<Vec<_>>()
        .join("; ");
    let finding = match (&d.stopped, hits.is_empty(), n) {
        (_, false, _) => Finding::Fail(format!("{searched}: found {listed}")),
        (Some(DebugError::Refused(m)), true, 0) => Finding::Skip(format!(
            "memory is not readable, so there is nothing to search (see ATK-03): {m}"
        )),
        (Some(e), true, _) => Finding::Error(format!(
            "{searched}, then the read stopped ({e}): the search is incomplete"
        )),
        (None, true, _) if needles.is_empty() => Finding::Error(format!(
            "{searched}: no secret of the run is known to search for (log in or set a password first)"
        )),
        (None, true, _) => Finding::Pass(format!("{searched}: none found")),
    };
    (finding, hits)
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeMode, FakePart};
    use super::*;

    const FLASH: Range = Range { start: 0, length: 4096 };
    const RAM: Range = Range {
        start: 0x2000_0000,
        length: 8192,
    };

    fn unlocked() -> FakePart {
        let mut mem = vec![0u8; 0x2000_2000];
        for (i, b) in mem.iter_mut().take(4096).enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        mem[0x2000_0100..0x2000_0100 + 12].copy_from_slice(b"Sup3r-Secret");
        FakePart::new(FakeMode::Unlocked(mem))
    }

    #[test]
    fn a_locked_part_passes_the_lock_check_and_skips_the_secrets_search() {
        let mut p = FakePart::new(FakeMode::Locked);
        assert!(matches!(check_locked(&mut p, &[FLASH]), Finding::Pass(m) if m.contains("refused")));
        let mut p = FakePart::new(FakeMode::Locked);
        assert!(matches!(check_secrets(&mut p, &[RAM], &[]).0, Finding::Skip(_)));
    }

    #[test]
    fn a_part_that_refuses_only_reads_passes() {
        let mut p = FakePart::new(FakeMode::ReadProtected);
        assert!(matches!(check_locked(&mut p, &[FLASH]), Finding::Pass(m) if m.contains("reading flash was refused")));
    }

    #[test]
    fn an_unlocked_part_fails_with_count_and_digest_but_never_the_bytes() {
        let mut p = unlocked();
        let Finding::Fail(m) = check_locked(&mut p, &[FLASH]) else {
            panic!("must fail")
        };
        assert!(m.contains("read 4096 of 4096 bytes") && m.contains("SHA-256"), "{m}");
        assert!(!m.contains("0x07 0x0e"), "{m}");
    }

    #[test]
    fn secrets_are_found_by_address_and_kind_only() {
        let mut p = unlocked();
        let needles = vec![("device_password".to_string(), b"Sup3r-Secret".to_vec())];
        let (f, hits) = check_secrets(&mut p, &[RAM], &needles);
        let Finding::Fail(m) = f else {
            panic!("must fail: {f:?}")
        };
        assert_eq!(
            hits,
            vec![Hit {
                address: 0x2000_0100,
                kind: "plaintext device_password".into()
            }]
        );
        assert!(m.contains("0x20000100") && !m.contains("Sup3r"), "{m}");
        let clean = vec![("other".to_string(), b"not-there-at-all".to_vec())];
        assert!(matches!(
            check_secrets(&mut unlocked(), &[RAM], &clean).0,
            Finding::Pass(_)
        ));
    }

    #[test]
    fn a_part_that_disconnects_mid_read() {
        // some flash already read: that is a finding
        let mut p = unlocked();
        p.mode_disconnect_after(2048);
        let Finding::Fail(m) = check_locked(&mut p, &[FLASH]) else {
            panic!("partial read is a FAIL")
        };
        assert!(m.contains("read 2048 of 4096") && m.contains("connection lost"), "{m}");
        // nothing read: the harness cannot tell
        let mut p = unlocked();
        p.mode_disconnect_after(0);
        assert!(matches!(check_locked(&mut p, &[FLASH]), Finding::Error(_)));
        // the secrets search is incomplete: ERROR, not PASS
        let mut p = unlocked();
        p.mode_disconnect_after(1024);
        let n = vec![("x".to_string(), b"absent-secret".to_vec())];
        assert!(matches!(check_secrets(&mut p, &[RAM], &n).0, Finding::Error(m) if m.contains("incomplete")));
    }

    #[test]
    fn no_probe_is_an_error_not_a_pass() {
        let mut p = FakePart::new(FakeMode::Absent);
        assert!(matches!(check_locked(&mut p, &[FLASH]), Finding::Error(m) if m.contains("cannot reach")));
    }

    #[test]
    fn filler_bytes_are_inconclusive() {
        let mut p = FakePart::new(FakeMode::Unlocked(vec![0xff; 8192]));
        assert!(matches!(check_locked(&mut p, &[FLASH]), Finding::Error(m) if m.contains("cannot tell")));
    }

    #[test]
    fn private_keys_are_recognised() {
        let mut mem = b"xx-----BEGIN EC PRIVATE KEY-----\nMHcC".to_vec();
        mem.extend_from_slice(&[0x30, 0x82, 0x04, 0xbe, 0x02, 0x01, 0x00, 0x30, 0x0d]);
        let hits = search(0x100, &mem, &[]);
        let kinds: Vec<&str> = hits.iter().map(|h| h.kind.as_str()).collect();
        assert_eq!(kinds, ["PEM private key", "DER PKCS#8 private key"], "{hits:?}");
        assert_eq!(hits[0].address, 0x102);
    }
}
