//! The process exit codes, documented in README.md and `certbench --help`.

/// Every planned check passed (or was skipped with a reason).
pub const OK: u8 = 0;
/// The device failed at least one check: a finding, with evidence.
pub const DEVICE_FAILED: u8 = 1;
/// Bad input or usage: a YAML file, a CLI argument. Nothing was run.
pub const BAD_INPUT: u8 = 2;
/// The harness or bench could not decide at least one check (ERROR), and no check failed.
pub const HARNESS_ERROR: u8 = 3;

/// The text `--help` shows.
pub const HELP: &str = "Exit codes:
  0  every planned check passed, was NOT APPLICABLE with a reason, or awaits a reviewer (REVIEW)
  1  the device failed at least one check (takes precedence over 3, except unwritable results)
  2  bad input or usage (YAML, CLI); nothing was run
  3  harness or infrastructure error: at least one check could not be decided,
     or results could not all be written";
