//! Power through external commands (relay boards, PDUs, `uhubctl`, a process-based
//! simulator), in the style of labgrid's ExternalPowerDriver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::PowerError;
use super::{Action, BoxFuture, Power};
use crate::model::template::Template;

#[derive(Debug)]
pub struct ExternalPower {
    pub on: Template,
    pub off: Template,
    pub cycle: Option<Template>,
    pub timeout: Duration,
    pub off_time: Duration,
    pub vars: BTreeMap<String, String>,
    pub cwd: PathBuf,
}

impl ExternalPower {
    async fn run(&self, t: &Template) -> Result<String, PowerError> {
        Ok(crate::process::run(t, &self.vars, &self.cwd, self.timeout).await?)
    }
}

impl Power for ExternalPower {
    fn switch(&self, action: Action) -> BoxFuture<'_, Result<String, PowerError>> {
        Box::pin(async move {
            match action {
                Action::On => self.run(&self.on).await,
                Action::Off => self.run(&self.off).await,
                Action::Cycle => match &self.cycle {
                    Some(c) => self.run(c).await,
                    None => {
                        let mut out = self.run(&self.off).await?;
                        tokio::time::sleep(self.off_time).await;
                        out.push_str(&self.run(&self.on).await?);
                        Ok(out)
                    }
                },
            }
        })
    }
}
