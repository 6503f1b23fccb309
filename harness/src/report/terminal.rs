//! The terminal display: progress per scenario and step, and a summary.

use std::io::Write;

use super::events::{Reporter, RunEvent, StepStatus, Verdict};

#[derive(Debug)]
pub struct TerminalReporter<W: Write + Send> {
    out: W,
    color: bool,
    verbose: bool,
    out_dir: String,
    /// The board's name, in front of every line when several boards share the terminal.
    prefix: String,
    /// A unit of a model's run: its share alone is not rated (the model's summary is).
    share: bool,
    scratch: Vec<u8>,
}

impl<W: Write + Send> TerminalReporter<W> {
    pub fn new(out: W, color: bool, verbose: bool) -> Self {
        Self {
            out,
            color,
            verbose,
            out_dir: String::new(),
            prefix: String::new(),
            share: false,
            scratch: Vec::new(),
        }
    }

    pub fn with_prefix(mut self, board: Option<String>) -> Self {
        self.prefix = board.map(|b| format!("[{b}] ")).unwrap_or_default();
        self
    }

    /// The run is one unit's share of a model's suite: its requirements are not rated on
    /// the terminal (a share rates INCOMPLETE whatever the device does; the model's run rates).
    pub fn share_of_model(mut self, share: bool) -> Self {
        self.share = share;
        self
    }

    fn paint(&self, v: Verdict) -> String {
        let code = match v {
            Verdict::Pass => "32",
            Verdict::Fail => "31",
            Verdict::Error => "35",
            Verdict::NotApplicable => "33",
            Verdict::Review => "36",
        };
        if self.color {
            format!("\x1b[1;{code}m{v:>14}\x1b[0m")
        } else {
            format!("{v:>14}")
        }
    }
}

impl<W: Write + Send> Reporter for TerminalReporter<W> {
    fn event(&mut self, ev: &RunEvent) -> std::io::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        std::mem::swap(&mut buf, &mut self.scratch);
        let r = self.render(ev, &mut buf);
        let text = String::from_utf8_lossy(&buf).into_owned();
        buf.clear();
        self.scratch = buf;
        r?;
        for line in text.split_inclusive('\n') {
            write!(self.out, "{}{line}", self.prefix)?;
        }
        self.out.flush()
    }
}

impl<W: Write + Send> TerminalReporter<W> {
    fn render(&mut self, ev: &RunEvent, out: &mut Vec<u8>) -> std::io::Result<()> {
        match ev {
            RunEvent::RunStarted {
                run_id,
                device,
                profile,
                out_dir,
                planned,
                ..
            } => {
                self.out_dir = out_dir.clone();
                writeln!(
                    out,
                    "certbench run {run_id}\n  device: {} {} (hw {}) — profile {profile}\n  {} scenario(s) planned",
                    device.vendor,
                    device.model,
                    device.hardware_revision,
                    planned.len()
                )?;
            }
            RunEvent::ScenarioStarted { id, index, total } => {
                writeln!(out, "[{}/{}] {id} ...", index + 1, total)?;
            }
            RunEvent::StepFinished { step, .. } => {
                if self.verbose || step.status != StepStatus::Ok {
                    writeln!(
                        out,
                        "        step {:>2} {:<16} {:?}: {}",
                        step.index,
                        step.name,
                        step.status,
                        super::term_safe(&step.detail)
                    )?;
                }
            }
            RunEvent::ScenarioFinished { result } => {
                let v = self.paint(result.verdict);
                write!(
                    out,
                    "{v} {} ({:.1}s)",
                    super::term_safe(&result.id),
                    result.duration_ms as f64 / 1000.0
                )?;
                if let Some(r) = &result.reason {
                    write!(out, "\n        {}", super::term_safe(r))?;
                }
                writeln!(out)?;
                for p in &result.parts {
                    writeln!(
                        out,
                        "        {} {}{}",
                        self.paint(p.verdict),
                        super::term_safe(&p.name),
                        p.check.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
                    )?;
                }
            }
            RunEvent::Notice { text } => writeln!(out, "note: {}", super::term_safe(text))?,
            RunEvent::RunFinished {
                passed,
                failed,
                errors,
                not_applicable,
                review,
                duration_ms,
                interrupted,
                requirements,
                ..
            } => {
                if !requirements.is_empty() && !self.share {
                    writeln!(out, "\nrequirements (rated only on what was observed):")?;
                    for r in requirements {
                        writeln!(
                            out,
                            "  {}. {:<14} {}",
                            r.requirement,
                            r.rating.to_string(),
                            super::term_safe(&r.detail)
                        )?;
                    }
                }
                writeln!(
                    out,
                    "\n{}{passed} passed, {failed} failed, {errors} errors, {not_applicable} not applicable, {review} awaiting review in {:.1}s",
                    if *interrupted { "INTERRUPTED: " } else { "" },
                    *duration_ms as f64 / 1000.0
                )?;
                writeln!(out, "results: {}", self.out_dir)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::events::ScenarioResult;

    #[test]
    fn device_or_peer_text_cannot_drive_the_operators_terminal() {
        let mut buf: Vec<u8> = Vec::new();
        let hostile = "topic \u{1b}]0;owned\u{7}\u{1b}]52;c;SGVsbG8=\u{7}\u{1b}[2J\u{9b}31m\u{0}\u{202e}evil";
        {
            let mut t = TerminalReporter::new(&mut buf, false, true);
            let mut r = ScenarioResult::new("s", "t", "f", None, Verdict::Fail);
            r.reason = Some(format!("COM-02: spoke in clear on {hostile}"));
            t.event(&RunEvent::ScenarioFinished { result: r }).expect("write");
            t.event(&RunEvent::Notice { text: hostile.into() }).expect("write");
        }
        let out = String::from_utf8(buf).expect("utf8");
        for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{0}', '\u{202e}'] {
            assert!(!out.contains(bad), "{bad:?} reached the terminal: {out:?}");
        }
        assert!(out.contains("\\x1b]52;c;SGVsbG8="), "shown, escaped: {out}");
    }
}
