//! One run: selected scenarios against one device, results in a per-run folder.

mod board;
mod dispatch;
mod lab;
mod options;
mod prepare;
mod units;

use std::path::PathBuf;

use crate::config::device;
use crate::config::yaml::InputErrors;

use board::new_run_id;
pub use board::{load_scenarios, run_board, select_scenarios, sign_key};
pub use dispatch::expand;
pub use lab::{LabOptions, run_lab};
pub use options::{FACTORY_PASSWORD_IS_USER, RunOptions};

/// Runs and returns the exit code. Input errors are returned before anything runs.
pub async fn run(opts: RunOptions) -> Result<u8, InputErrors> {
    let device = device::load(&opts.profile, opts.lab.as_deref(), &opts.overrides)?;
    let sign_key = sign_key(&opts)?;
    let scenarios = select_scenarios(load_scenarios(&opts.scenarios)?, &opts.only)?;
    let run_id = new_run_id();
    let out_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&run_id));
    if opts.overrides.unit.is_none() && !device.units.is_empty() {
        return units::run_units(&opts, device, scenarios, &run_id, &out_dir, sign_key.as_ref()).await;
    }
    run_board(&opts, device, scenarios, &run_id, &out_dir, sign_key.as_ref())
        .await
        .map(|(code, _)| code)
}
