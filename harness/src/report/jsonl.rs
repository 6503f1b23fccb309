//! The JSON-lines event log: one run event per line, flushed as it happens.

use std::io::Write;

use super::events::{Reporter, RunEvent};

#[derive(Debug)]
pub struct JsonlReporter {
    file: std::fs::File,
}

impl JsonlReporter {
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self {
            file: std::fs::File::create(path)?,
        })
    }
}

impl Reporter for JsonlReporter {
    fn event(&mut self, ev: &RunEvent) -> std::io::Result<()> {
        let line = serde_json::to_string(ev).map_err(std::io::Error::other)?;
        writeln!(self.file, "{line}")?;
        self.file.flush()
    }
}
