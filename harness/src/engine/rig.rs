//! The rig: the device under test wired to its console, power, benches and link, as the
//! engine sees it. `run/` builds it; the engine's steps use it through `Run`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::state::{self, BoardState};
use crate::config::credentials::Credentials;
use crate::config::device::Device;
use crate::console::Console;
use crate::power::{Action, Power};
use crate::redact::Redactor;

/// The rig: the device under test wired to its interfaces and benches, as the engine sees it,
/// and what the run knows of it.
#[derive(Debug)]
pub struct Rig {
    /// Where the board is (off, booting, at a prompt), its last boot and whether it is fresh:
    /// told and asked through its methods only.
    pub state: BoardState,
    pub device: Device,
    pub console: Option<Console>,
    pub power: Option<Box<dyn Power>>,
    pub redactor: Redactor,
    /// Values for `{{name}}` in commands (console, workdir, ...).
    pub command_vars: BTreeMap<String, String>,
    pub command_cwd: PathBuf,
    /// The credentials that should work now, as far as the run knows.
    pub current: Option<Credentials>,
    /// The network bench, when the device has a cloud the bench plays.
    pub net: Option<crate::bench::NetBench>,
    /// The update bench, when the profile declares how the device is updated.
    pub update: Option<crate::update::bench::UpdateBench>,
    /// The device's link: its namespace, the capture, the last port scan.
    pub gateway: crate::gateway::Gateway,
    /// Values planted on the device (`plant`), searched for on the wire, and when (the
    /// moment, and the number of the last frame the capture had seen then).
    pub planted: Vec<crate::gateway::canary::Canary>,
    pub planted_at: Option<(Instant, u64)>,
}

impl Rig {
    /// The health probe: a power cycle, then the console must show its login or shell
    /// prompt within the profile's boot time. Boards without power control or console are
    /// taken as healthy (there is nothing to probe).
    pub async fn health(&mut self) -> Result<(), String> {
        let (Some(c), Some(spec)) = (self.console.clone(), self.device.console.clone()) else {
            return Ok(());
        };
        if self.power.is_none() {
            return Ok(());
        }
        self.power(Action::Cycle)
            .await
            .map_err(|e| format!("power cycle failed: {e}"))?;
        match state::boot_prompt(&c, &spec)
            .await
            .map_err(|why| format!("the console was lost during the health probe: {why}"))?
        {
            Some(_) => Ok(()),
            None => Err(format!(
                "no login or shell prompt within the boot time of {:?} after a power cycle",
                spec.boot_time
            )),
        }
    }

    pub async fn power(&mut self, action: Action) -> Result<String, crate::power::PowerError> {
        self.state.switched(action);
        let Some(p) = &self.power else {
            return Err(crate::power::PowerError::NotConfigured);
        };
        if let Some(c) = &self.console
            && action != Action::On
        {
            c.marker(format!("power {action}"));
        }
        let out = p.switch(action).await;
        if let Some(c) = &self.console {
            // Whatever the board printed before this point belongs to its previous life.
            c.drain();
            if action != Action::Off {
                c.marker(format!("power {action} done"));
            }
        }
        out
    }
}
