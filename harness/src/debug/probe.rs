//! The probe-rs driver: a USB debug probe (ST-Link, J-Link, CMSIS-DAP, ...) selected by
//! `VID:PID[:serial]`, attached to the chip the profile names (probe-rs's built-in target
//! database). A chip that refuses the attach because it is locked is a result; erasing it
//! to get in is never done unless the profile marks the board sacrificial.

use super::port::{Abilities, DebugError, DebugPort};

/// A probe the machine sees.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeInfo {
    pub name: String,
    pub selector: String,
}

/// The probes attached to this machine.
pub fn list() -> Vec<ProbeInfo> {
    probe_rs::probe::list::Lister::new()
        .list_all()
        .into_iter()
        .map(|p| ProbeInfo {
            name: p.identifier.clone(),
            selector: match &p.serial_number {
                Some(s) => format!("{:04x}:{:04x}:{s}", p.vendor_id, p.product_id),
                None => format!("{:04x}:{:04x}", p.vendor_id, p.product_id),
            },
        })
        .collect()
}

/// Whether probe-rs knows a chip by this name (an unknown name is an input error).
pub fn chip_known(name: &str) -> Result<(), String> {
    probe_rs::config::Registry::from_builtin_families()
        .get_target_by_name(name)
        .map(|_| ())
        .map_err(|e| format!("probe-rs does not know the chip {name:?}: {e}"))
}

pub struct ProbeRs {
    selector: Option<String>,
    chip: String,
    /// The profile marks the board sacrificial: erasing a locked chip is allowed.
    sacrificial: bool,
    session: Option<probe_rs::Session>,
}

impl std::fmt::Debug for ProbeRs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProbeRs({:?}, {})", self.selector, self.chip)
    }
}

/// Words in probe-rs errors that mean the part said no, rather than the bench failing.
fn is_refusal(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["permission", "locked", "protect", "access port", "not accessible"]
        .iter()
        .any(|w| t.contains(w))
}

impl ProbeRs {
    pub fn new(selector: Option<&str>, chip: &str, sacrificial: bool) -> Self {
        Self {
            selector: selector.map(str::to_string),
            chip: chip.to_string(),
            sacrificial,
            session: None,
        }
    }

    fn core(&mut self) -> Result<probe_rs::Core<'_>, DebugError> {
        let s = self
            .session
            .as_mut()
            .ok_or_else(|| DebugError::Unavailable("not attached".into()))?;
        s.core(0).map_err(|e| DebugError::Lost(format!("core 0: {e}")))
    }

    /// The session, attaching first if there is none yet.
    fn attached(&mut self) -> Result<&mut probe_rs::Session, DebugError> {
        if self.session.is_none() {
            self.attach()?;
        }
        self.session
            .as_mut()
            .ok_or_else(|| DebugError::Unavailable("not attached".into()))
    }

    /// Writes an ELF/bin/hex image to the chip (the lab's flash-before-run).
    fn write_image(&mut self, path: &std::path::Path) -> Result<(), DebugError> {
        let s = self.attached()?;
        use probe_rs::flashing as f;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let r = match ext.as_str() {
            "hex" | "ihex" => f::download_file(s, path, f::HexLoader),
            "bin" => f::download_file(s, path, f::BinLoader(f::BinOptions::default())),
            _ => f::download_file(s, path, f::ElfLoader(f::ElfOptions::default())),
        };
        r.map_err(|e| DebugError::Unavailable(format!("flashing {} failed: {e}", path.display())))
    }
}

impl DebugPort for ProbeRs {
    fn describe(&self) -> String {
        format!(
            "probe-rs probe {} ({})",
            self.selector.as_deref().unwrap_or("(first found)"),
            self.chip
        )
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            halt: true,
            resume: true,
            reset: true,
            read: true,
            write: true,
            lock_state: false,
        }
    }

    fn attach(&mut self) -> Result<String, DebugError> {
        chip_known(&self.chip).map_err(DebugError::Unavailable)?;
        let lister = probe_rs::probe::list::Lister::new();
        let probe = match &self.selector {
            Some(sel) => {
                let s: probe_rs::probe::DebugProbeSelector = sel
                    .parse()
                    .map_err(|e| DebugError::Unavailable(format!("probe selector {sel:?}: {e}")))?;
                lister
                    .open(s)
                    .map_err(|e| DebugError::Unavailable(format!("probe {sel} could not be opened: {e}")))?
            }
            None => {
                let all = lister.list_all();
                let first = all.first().ok_or_else(|| {
                    DebugError::Unavailable("no debug probe is attached to this machine (probe-rs lists none)".into())
                })?;
                first
                    .open()
                    .map_err(|e| DebugError::Unavailable(format!("probe could not be opened: {e}")))?
            }
        };
        let mut perms = probe_rs::Permissions::default();
        if self.sacrificial {
            perms = perms.allow_erase_all();
        }
        match probe.attach(self.chip.as_str(), perms) {
            Ok(s) => {
                self.session = Some(s);
                Ok(format!("{} via probe-rs", self.chip))
            }
            Err(e) => {
                let text = format!("{e} ({e:?})");
                if is_refusal(&text) {
                    Err(DebugError::Refused(text))
                } else {
                    Err(DebugError::Unavailable(format!(
                        "attach to {} failed: {text}",
                        self.chip
                    )))
                }
            }
        }
    }

    fn halt(&mut self) -> Result<(), DebugError> {
        let mut c = self.core()?;
        c.halt(std::time::Duration::from_millis(500)).map(|_| ()).map_err(|e| {
            let t = format!("{e}");
            if is_refusal(&t) {
                DebugError::Refused(t)
            } else {
                DebugError::Lost(t)
            }
        })
    }

    fn resume(&mut self) -> Result<(), DebugError> {
        let mut c = self.core()?;
        c.run().map_err(|e| DebugError::Lost(format!("{e}")))
    }

    fn reset(&mut self) -> Result<(), DebugError> {
        let mut c = self.core()?;
        c.reset().map_err(|e| DebugError::Lost(format!("{e}")))
    }

    fn flash(&mut self, image: &std::path::Path) -> Result<(), DebugError> {
        self.write_image(image)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DebugError> {
        let s = self.attached()?;
        // through the target's flash algorithm, keeping the rest of each erased sector
        let mut loader = s.target().flash_loader();
        let refused = |e: probe_rs::flashing::FlashError| DebugError::Refused(format!("flash write at {addr:#x}: {e}"));
        loader.add_data(addr, data).map_err(refused)?;
        let mut options = probe_rs::flashing::DownloadOptions::default();
        options.keep_unwritten_bytes = true;
        loader.commit(s, options).map_err(refused)
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DebugError> {
        use probe_rs::MemoryInterface;
        let mut c = self.core()?;
        c.read_8(addr, buf).map_err(|e| {
            let t = format!("{e} ({e:?})");
            if is_refusal(&t) {
                DebugError::Refused(t)
            } else {
                DebugError::Lost(t)
            }
        })
    }
}
