//! A labgrid place a lab file binds a board to (`labgrid:`); driven by `lab::labgrid`.

/// A labgrid place, as the lab file binds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// HOST:PORT of the coordinator.
    pub coordinator: String,
    pub place: String,
    /// The `labgrid-client` program.
    pub client: std::path::PathBuf,
}
