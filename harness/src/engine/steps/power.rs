//! Power steps: switch the supply, wait, factory-reset the device.

use super::prelude::*;

impl Run<'_> {
    pub(super) async fn power_step(&mut self, a: &PowerAction, fresh: Option<(Instant, String)>) -> StepResult {
        let action = match a {
            PowerAction::On => Action::On,
            PowerAction::Off => Action::Off,
            PowerAction::Cycle => Action::Cycle,
            PowerAction::CycleUnlessFresh => match fresh {
                Some((t, by)) => {
                    return Ok(format!(
                        "power cycle skipped: {by} {:.1?} ago, and nothing was done to it since",
                        t.elapsed()
                    ));
                }
                None => Action::Cycle,
            },
        };
        self.rig
            .power(action)
            .await
            .map_err(|e| Stop::Error(format!("power {action} failed: {e}")))?;
        // requests from here on are the new boot's (none from the previous life can
        // count; a device checking periodically is seen at its next check)
        if let Some(u) = &self.rig.update {
            self.power_mark = u.log.len();
        }
        let boot = match (action, &self.rig.net) {
            (Action::Off, _) | (_, None) => None,
            (_, Some(n)) => Some((n.phase(), self.id.clone())),
        };
        self.rig.state.powered(boot);
        Ok(format!("power {action}"))
    }

    pub(super) async fn sleep(&mut self, d: &Duration) -> StepResult {
        tokio::time::sleep(*d).await;
        Ok(format!("slept {d:?}"))
    }

    pub(super) async fn factory_reset(&mut self) -> StepResult {
        let Some(reset) = self.rig.device.factory_reset.clone() else {
            return Err(Stop::Error("the profile declares no factory_reset method".into()));
        };
        let out = crate::process::run(
            &reset.command,
            &self.rig.command_vars,
            &self.rig.command_cwd,
            reset.timeout,
        )
        .await
        .map_err(|e| Stop::Error(format!("factory reset failed: {e}")))?;
        self.rig.current = self.rig.device.factory.clone();
        self.rig.state.lost();
        Ok(format!("factory reset done {}", out.trim()).trim().to_string())
    }
}
