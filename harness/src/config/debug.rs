//! The profile's `debug:` section: the debug port's driver and the memory it may read.

use super::template::Template;
use super::yaml::Loc;

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
