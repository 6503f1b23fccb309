//! Reporters: independent consumers of the run-event stream.

pub mod cert;
pub mod coverage;
pub mod diff;
pub mod document;
pub mod events;
pub mod jsonl;
pub mod junit;
pub mod manifest;
pub mod page;
pub mod plot;
pub mod rating;
pub mod terminal;

/// The reporters, and whether any of them failed to write (then the run exits 3: its
/// results are incomplete, whatever the verdicts).
pub struct Reporters(pub Vec<Box<dyn events::Reporter>>, pub bool);

impl std::fmt::Debug for Reporters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reporters({} reporters, failed: {})", self.0.len(), self.1)
    }
}

impl Reporters {
    pub fn emit(&mut self, ev: events::RunEvent) {
        for r in &mut self.0 {
            if let Err(e) = r.event(&ev) {
                eprintln!("certbench: a reporter failed to write: {e}");
                self.1 = true;
            }
        }
    }
}

impl Reporters {
    /// The reporters of a device run: the terminal (lines prefixed with the board's name in
    /// a lab; a unit's share of a model's run not rated there), `junit.xml`, the certification report and `events.jsonl` in `out_dir`. A file
    /// that cannot be created marks the run's results incomplete.
    pub fn standard(
        out_dir: &std::path::Path,
        color: bool,
        verbose: bool,
        board: Option<String>,
        share_of_model: bool,
        ctx: document::Context,
    ) -> Self {
        let mut r = Reporters(
            vec![
                Box::new(
                    terminal::TerminalReporter::new(std::io::stdout(), color, verbose)
                        .with_prefix(board)
                        .share_of_model(share_of_model),
                ),
                Box::new(junit::JunitReporter::new(out_dir.join("junit.xml"))),
                Box::new(cert::CertReporter::new(out_dir.to_path_buf(), ctx)),
            ],
            false,
        );
        match jsonl::JsonlReporter::create(&out_dir.join("events.jsonl")) {
            Ok(j) => r.0.push(Box::new(j)),
            Err(e) => {
                eprintln!("certbench: cannot write events.jsonl: {e}");
                r.1 = true;
            }
        }
        r
    }
}

/// Makes text safe for a terminal: every C0 control but tab and newline, DEL, every C1
/// control (ESC, CSI, OSC starters) and the bidirectional overrides are shown as escapes, so
/// nothing a device or a bench peer sends (a topic name, a client id, console text) can set
/// a window title, write the clipboard (OSC 52), clear the screen or reorder the line.
pub fn term_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Makes any text safe for XML 1.0: control characters other than tab and newline, and
/// the noncharacters U+FFFE/U+FFFF, are written as visible escapes.
pub fn xml_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c if ('\u{fdd0}'..='\u{fdef}').contains(&c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
