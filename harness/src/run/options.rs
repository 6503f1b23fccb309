//! What a run is told (its options), and the small facts every part of a run shares.

use std::path::{Path, PathBuf};

use crate::config::resolver::Overrides;
use crate::config::scenario::Scenario;
use crate::report::events::{ScenarioResult, Verdict};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub profile: PathBuf,
    pub lab: Option<PathBuf>,
    pub overrides: Overrides,
    /// Scenario files or folders of them.
    pub scenarios: Vec<PathBuf>,
    /// Only these scenario ids (all when empty).
    pub only: Vec<String>,
    pub out: Option<PathBuf>,
    pub workdir: Option<PathBuf>,
    pub skip_setup: bool,
    pub verbose: bool,
    pub color: bool,
    /// Laboratory and operator named in the report.
    pub lab_name: Option<String>,
    pub operator: Option<String>,
    /// Lab key that signs the evidence manifest.
    pub sign_key: Option<PathBuf>,
    /// The board's name in a lab (lock, terminal prefix); None for a single device run.
    pub board: Option<String>,
    /// Where board locks live, and how long to wait for a busy board.
    pub lock_dir: Option<PathBuf>,
    pub lock_wait: std::time::Duration,
    /// Health probe before the first scenario and after any ERROR.
    pub health: bool,
    /// Re-runs of a scenario that ended in ERROR (never of a FAIL).
    pub retries: u32,
    /// An earlier run's results folder whose durations plan a run over several units.
    pub history: Option<PathBuf>,
    /// This run is one unit's share of a model's suite (its terminal does not rate it).
    pub share_of_model: bool,
}

pub fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Said in the report and on the terminal when the factory password equals the user name.
pub const FACTORY_PASSWORD_IS_USER: &str = "warning: the factory password equals the user name: a guessable pre-installed password (EN 303 645 5.1-2); it is still entered and shown as <secret:factory.password>, but transcripts keep the user name readable";

/// A planned scenario that could not run: ERROR with the reason.
pub fn not_run(sc: &Scenario, reason: String) -> ScenarioResult {
    let mut r = ScenarioResult::new(
        &sc.id,
        &sc.title,
        &sc.file.display().to_string(),
        Some(sc.evidences.clone()),
        Verdict::Error,
    );
    r.reason = Some(reason);
    r
}
