//! Power for tests: records every switch and runs the device's reaction (a boot printed on
//! its console) in process.

use std::sync::{Arc, Mutex};

use super::{Action, BoxFuture, Power, PowerError};

/// What the device does when powered: called with each action that leaves it on.
pub type OnBoot = Box<dyn Fn() + Send + Sync>;

pub struct FakePower {
    /// Every action, in order.
    pub log: Arc<Mutex<Vec<Action>>>,
    on_boot: OnBoot,
}

impl std::fmt::Debug for FakePower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakePower")
    }
}

impl FakePower {
    pub fn new(on_boot: OnBoot) -> Self {
        Self {
            log: Arc::default(),
            on_boot,
        }
    }
}

impl Power for FakePower {
    fn switch(&self, action: Action) -> BoxFuture<'_, Result<String, PowerError>> {
        Box::pin(async move {
            self.log.lock().unwrap_or_else(|p| p.into_inner()).push(action);
            if action != Action::Off {
                (self.on_boot)();
            }
            Ok(format!("fake power {action}"))
        })
    }
}
