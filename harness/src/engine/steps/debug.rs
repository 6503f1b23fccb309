//! Debug-port steps: the port locked (ATK-03), no secrets in memory (ATK-05).

use super::prelude::*;

impl Run<'_> {
    /// The profile's debug port, its driver opened (nothing is contacted until `attach`).
    pub(super) fn debug_port(
        &self,
    ) -> Result<(crate::config::debug::DebugSpec, Box<dyn crate::debug::DebugPort>), Stop> {
        let spec = self
            .rig
            .device
            .debug
            .clone()
            .ok_or_else(|| Stop::Error("the device profile declares no debug port".into()))?;
        let port = spec.open(&self.rig.command_vars).map_err(Stop::Error)?;
        Ok((spec, port))
    }

    /// The debug-port checks, run off the executor (drivers are synchronous).
    pub(super) async fn debug_check(&mut self, secrets: bool) -> StepResult {
        use crate::debug::Finding;
        let (spec, mut port) = self.debug_port()?;
        let check = if secrets { "ATK-05" } else { "ATK-03" };
        let needles: Vec<(String, Vec<u8>)> = self
            .rig
            .redactor
            .secrets()
            .into_iter()
            .map(|(n, v)| (n, v.into_bytes()))
            .collect();
        let finding = tokio::task::spawn_blocking(move || {
            if secrets {
                let mut ranges = spec.ram.clone();
                ranges.extend(spec.flash.iter().copied());
                crate::debug::check_secrets(port.as_mut(), &ranges, &needles).0
            } else {
                crate::debug::check_locked(port.as_mut(), &spec.flash)
            }
        })
        .await
        .map_err(|e| Stop::Error(format!("the debug check stopped: {e}")))?;
        match finding {
            Finding::Pass(m) => Ok(m),
            Finding::Fail(m) => Err(Stop::Fail {
                check: Some(check.into()),
                reason: format!("{check}: {m}"),
            }),
            Finding::Skip(m) => Err(Stop::Skip(m)),
            Finding::Error(m) => Err(Stop::Error(m)),
        }
    }
}
