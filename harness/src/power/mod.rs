//! The power capability: switch the board on and off.

pub mod external;
pub mod fake;
pub mod manual;

use std::future::Future;
use std::pin::Pin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    On,
    Off,
    Cycle,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::On => "on",
            Action::Off => "off",
            Action::Cycle => "cycle",
        })
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the board could not be switched (a harness error: the bench could not do it).
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error(transparent)]
    Command(#[from] crate::process::ProcessError),
    /// Manual power: no operator terminal, or the prompt failed.
    #[error("{0}")]
    Operator(String),
    #[error("no power control is configured")]
    NotConfigured,
}

/// Switches a board. Errors are harness errors: the bench could not do it.
pub trait Power: Send + Sync + std::fmt::Debug {
    fn switch(&self, action: Action) -> BoxFuture<'_, Result<String, PowerError>>;
}
