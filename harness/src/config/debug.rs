//! The profile's `debug:` section: the debug port's driver and the memory it may read.

use super::yaml::Loc;
use crate::model::template::Template;

/// The profile's `debug:` section: how the bench reaches the debug port, and what to read.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDebug {
    pub driver: RawDriver,
    /// Flash ranges the lock check reads (ATK-03) and the secrets search covers.
    #[serde(default)]
    pub flash: Vec<Range>,
    /// RAM ranges the secrets search covers (ATK-05).
    #[serde(default)]
    pub ram: Vec<Range>,
    /// The board may be destroyed: only then may a locked chip be erased to attach.
    #[serde(default)]
    pub sacrificial: bool,
}

#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawDriver {
    /// A GDB server (OpenOCD, pyOCD, J-Link GDB server, Black Magic Probe, QEMU):
    /// `host:port` or `unix:/path`.
    Gdb { address: Loc<String> },
    /// A USB probe driven by probe-rs; `probe` is `VID:PID[:serial]` (the lab binding's
    /// `debug_probe` overrides it; default: the only probe attached).
    ProbeRs {
        chip: Loc<String>,
        #[serde(default)]
        probe: Option<String>,
    },
}

/// A resolved debug section.
#[derive(Debug, Clone)]
pub struct DebugSpec {
    pub driver: Driver,
    pub flash: Vec<Range>,
    pub ram: Vec<Range>,
    pub sacrificial: bool,
    /// The lab asks for this image to be flashed before the run.
    pub flash_before_run: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub enum Driver {
    Gdb { address: Template },
    ProbeRs { chip: String, probe: Option<String> },
}

/// A memory range the profile declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub start: u64,
    pub length: u64,
}

/// The lab's part of the debug port: which probe, and an image to flash before the run.
#[derive(Debug, Clone, Copy)]
pub struct LabDebug<'a> {
    pub probe: Option<&'a String>,
    pub flash_before_run: Option<&'a std::path::PathBuf>,
}

/// `debug:` with the lab's probe and image to flash first.
pub fn resolve(
    rx: &super::resolver::Resolver,
    d: &RawDebug,
    lab: LabDebug<'_>,
    known_chip: Option<super::resolver::ChipCheck>,
) -> Option<DebugSpec> {
    use super::yaml::InputError;
    let driver = match &d.driver {
        RawDriver::Gdb { address } => Driver::Gdb {
            address: rx.template(rx.file, "debug.driver.gdb.address", address)?,
        },
        RawDriver::ProbeRs { chip, probe } => {
            if let Some(Err(e)) = known_chip.map(|known| known(&chip.value)) {
                rx.error(
                    InputError::new(rx.file, Some(chip.pos), "debug.driver.probe_rs.chip", e)
                        .with_hint("use a chip name from `probe-rs chip list`, e.g. nRF52840_xxAA or STM32F411RETx"),
                );
                return None;
            }
            Driver::ProbeRs {
                chip: chip.value.clone(),
                probe: lab.probe.cloned().or(probe.clone()),
            }
        }
    };
    let lab_base = rx.lab_base();
    let flash_before_run = lab.flash_before_run.map(|p| rx.in_lab(p));
    // (a missing image is the flash's error at run; one that is there passes the gate)
    if let Some(p) = &flash_before_run
        && std::fs::symlink_metadata(p).is_ok()
        && let Err(why) = crate::util::check_user_file(p, &[lab_base], crate::util::limits::IMAGE)
    {
        rx.error(InputError::new(&rx.lab_file, None, "flash_before_run", why));
    }
    Some(DebugSpec {
        driver,
        flash: d.flash.clone(),
        ram: d.ram.clone(),
        sacrificial: d.sacrificial,
        flash_before_run,
    })
}
