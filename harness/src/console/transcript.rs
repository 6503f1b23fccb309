//! Everything that crossed the console, with timestamps: bytes received, what the harness
//! sent, connection events and step markers. Kept from the moment the port is opened,
//! across power cycles; each scenario's slice is saved as evidence.

use std::time::Duration;

use crate::redact::Redactor;

#[derive(Debug, Clone)]
pub enum Entry {
    /// Bytes from the device.
    Rx(Vec<u8>),
    /// What the harness sent; secret values are already replaced by their names.
    Tx(String),
    /// Port opened, lost, reconnected.
    Event(String),
    /// A boundary written by the runner: scenario and step starts.
    Marker(String),
}

#[derive(Debug, Default)]
pub struct Transcript {
    entries: Vec<(Duration, Entry)>,
    rx_bytes: usize,
}

/// Memory kept per run (received bytes plus a per-entry overhead) before the oldest entries
/// are dropped (an event says so).
const MAX_RX_BYTES: usize = 64 << 20;
/// What an entry costs beyond its bytes, so a flood of tiny reads is bounded too.
const ENTRY_OVERHEAD: usize = 64;
/// Reads arriving this close together join the previous entry (up to COALESCE_MAX bytes):
/// a flood read a few bytes at a time does not become millions of entries.
const COALESCE_WITHIN: Duration = Duration::from_millis(20);
const COALESCE_MAX: usize = 64 << 10;
/// console.log of one scenario stops here (console.raw keeps every byte).
const MAX_RENDERED: usize = 32 << 20;
/// One rendered line stops here.
const MAX_LINE: usize = 64 << 10;
/// A control character repeated at least this often is shown once with its count.
const RUN: usize = 4;

impl Transcript {
    pub fn push(&mut self, at: Duration, e: Entry) {
        if let Entry::Rx(b) = &e {
            if let Some((t, Entry::Rx(prev))) = self.entries.last_mut()
                && at.saturating_sub(*t) < COALESCE_WITHIN
                && prev.len() + b.len() <= COALESCE_MAX
            {
                prev.extend_from_slice(b);
                self.rx_bytes += b.len();
                self.trim(at);
                return;
            }
            self.rx_bytes += b.len() + ENTRY_OVERHEAD;
        }
        self.entries.push((at, e));
        self.trim(at);
    }

    /// Drops the oldest received bytes once over the cap.
    fn trim(&mut self, at: Duration) {
        if self.rx_bytes <= MAX_RX_BYTES {
            return;
        }
        let mut dropped = 0;
        let mut keep = std::collections::VecDeque::from(std::mem::take(&mut self.entries));
        while self.rx_bytes > MAX_RX_BYTES / 2 {
            match keep.pop_front() {
                Some((_, Entry::Rx(old))) => {
                    self.rx_bytes -= old.len() + ENTRY_OVERHEAD;
                    dropped += old.len();
                }
                Some(_) => {}
                None => break,
            }
        }
        keep.push_front((at, Entry::Event(format!("{dropped} older bytes dropped from memory"))));
        self.entries = keep.into();
    }

    /// Index of the next entry, to slice a scenario's part later.
    pub fn mark(&self) -> usize {
        self.entries.len()
    }

    /// A readable log of entries `from..`: one line per received line, secrets redacted
    /// (on the raw bytes, before anything is escaped), control bytes escaped, runs of one
    /// control byte shown once with their count, bounded in size.
    pub fn render_text(&self, from: usize, redactor: &Redactor) -> String {
        render(self.entries.iter().skip(from), redactor, MAX_RENDERED)
    }
    /// The raw received bytes of entries `from..`, secrets redacted.
    pub fn render_raw(&self, from: usize, redactor: &Redactor) -> Vec<u8> {
        let mut raw = Vec::new();
        for (_, e) in self.entries.iter().skip(from) {
            if let Entry::Rx(b) = e {
                raw.extend_from_slice(b);
            }
        }
        redactor.redact_bytes(&raw)
    }

    /// The last `max` characters of visible text received since `from`, for an excerpt.
    /// Renders only the last entries, whatever the size of the transcript.
    pub fn tail_text(&self, from: usize, max: usize, redactor: &Redactor) -> String {
        // walk back until the entries hold comfortably more than `max` bytes
        let mut start = self.entries.len();
        let mut size = 0;
        while start > from && size < max * 2 {
            start -= 1;
            size += match &self.entries[start].1 {
                Entry::Rx(b) => b.len(),
                Entry::Tx(s) | Entry::Event(s) | Entry::Marker(s) => s.len(),
            };
        }
        let text = render(self.entries[start.max(from)..].iter(), redactor, max * 8);
        let skipped_before = start > from;
        if text.len() <= max && !skipped_before {
            return text;
        }
        let mut cut = text.len().saturating_sub(max);
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        let begin = text[cut..].find('\n').map(|i| cut + i + 1).unwrap_or(cut);
        format!("[... earlier output omitted]\n{}", &text[begin..])
    }
}

/// Renders entries as console.log lines, at most `cap` bytes.
fn render<'a>(entries: impl Iterator<Item = &'a (Duration, Entry)>, redactor: &Redactor, cap: usize) -> String {
    let mut out = String::new();
    let mut line: Vec<u8> = Vec::new();
    let mut line_t = Duration::ZERO;
    let mut cut_off = false;
    let flush = |out: &mut String, line: &mut Vec<u8>, t: Duration| {
        if !line.is_empty() {
            let shown = escape_line(&redactor.redact_bytes(line));
            out.push_str(&format!("[{:>10.6}] <  {shown}\n", t.as_secs_f64()));
            line.clear();
        }
    };
    for (t, e) in entries {
        if out.len() >= cap {
            cut_off = true;
            break;
        }
        match e {
            Entry::Rx(bytes) => {
                for chunk in bytes.split_inclusive(|&b| b == b'\n') {
                    if line.is_empty() {
                        line_t = *t;
                    }
                    // a line longer than MAX_LINE is shown in pieces
                    line.extend_from_slice(chunk);
                    if chunk.ends_with(b"\n") || line.len() >= MAX_LINE {
                        flush(&mut out, &mut line, line_t);
                    }
                }
            }
            Entry::Tx(s) => {
                flush(&mut out, &mut line, line_t);
                out.push_str(&format!("[{:>10.6}]  > {}\n", t.as_secs_f64(), s.escape_debug()));
            }
            Entry::Event(s) => {
                flush(&mut out, &mut line, line_t);
                out.push_str(&format!("[{:>10.6}] == {s}\n", t.as_secs_f64()));
            }
            Entry::Marker(s) => {
                flush(&mut out, &mut line, line_t);
                out.push_str(&format!("[{:>10.6}] ## {s}\n", t.as_secs_f64()));
            }
        }
    }
    flush(&mut out, &mut line, line_t);
    if cut_off {
        out.push_str(&format!(
            "[console.log stops here at {} MiB; console.raw holds every byte]\n",
            cap >> 20
        ));
    }
    out
}

/// One received line as text: control bytes escaped (`\r`, `\n`, `\x1b`), a run of one
/// control byte shown once with its count (`\x00{x50000}`).
fn escape_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let shown = match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => {
                out.push('\t');
                continue;
            }
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            c => {
                out.push(c);
                continue;
            }
        };
        let mut n = 1;
        while chars.peek() == Some(&c) {
            chars.next();
            n += 1;
        }
        if n >= RUN {
            out.push_str(&format!("{shown}{{x{n}}}"));
        } else {
            for _ in 0..n {
                out.push_str(&shown);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NUL flood read a few bytes at a time stays a few entries and a few lines of log;
    /// the transcript is bounded by bytes and entries alike.
    #[test]
    fn a_nul_flood_is_not_amplified() {
        let mut t = Transcript::default();
        let at = Duration::from_millis(5);
        let chunk = [0u8; 64];
        for _ in 0..(8 << 20) / 64 {
            t.push(at, Entry::Rx(chunk.to_vec()));
        }
        assert!(
            t.entries.len() <= (8 << 20) / COALESCE_MAX + 1,
            "{} entries",
            t.entries.len()
        );
        let r = Redactor::default();
        let log = t.render_text(0, &r);
        assert!(log.len() < 4096, "{} bytes of log for 8 MiB of NULs", log.len());
        assert!(log.contains("\\x00{x65536}"), "{}", &log[..log.len().min(200)]);
        assert!(t.tail_text(0, 3000, &r).len() < 4000);
        assert_eq!(t.render_raw(0, &r).len(), 8 << 20, "console.raw keeps every byte");
    }

    #[test]
    fn a_flood_of_tiny_entries_is_bounded_by_its_overhead() {
        let mut t = Transcript::default();
        // one byte per read, spread in time so nothing coalesces
        for i in 0..100_000u64 {
            t.push(Duration::from_millis(i * 30), Entry::Rx(vec![b'\n']));
        }
        assert_eq!(t.rx_bytes, 100_000 * (1 + ENTRY_OVERHEAD));
        let r = Redactor::default();
        let log = t.render_text(0, &r);
        assert!(log.len() < MAX_RENDERED + 200);
    }

    #[test]
    fn the_log_is_capped_and_says_so() {
        let mut t = Transcript::default();
        let line = vec![b'y'; 1000];
        for i in 0..40_000u64 {
            let mut l = line.clone();
            l.push(b'\n');
            t.push(Duration::from_millis(i * 30), Entry::Rx(l));
        }
        let log = t.render_text(0, &Redactor::default());
        assert!(log.len() <= MAX_RENDERED + 2000, "{}", log.len());
        assert!(log.ends_with("console.raw holds every byte]\n"));
    }

    #[test]
    fn a_password_split_by_colour_codes_and_chunks_is_redacted_in_every_view() {
        let r = Redactor::default();
        r.add("new", "Tr0ub4dor&3");
        let mut t = Transcript::default();
        t.push(Duration::from_secs(1), Entry::Rx(b"echo Tr0\x1b[1mub".to_vec()));
        t.push(Duration::from_secs(2), Entry::Rx(b"4\x1b[0mdor&3 ok\r\n".to_vec()));
        let log = t.render_text(0, &r);
        assert!(log.contains("echo <secret:new> ok\\r\\n"), "{log}");
        assert!(!log.contains("dor&3"), "{log}");
        let raw = t.render_raw(0, &r);
        assert_eq!(raw, b"echo <secret:new> ok\r\n".to_vec());
        assert!(t.tail_text(0, 100, &r).contains("<secret:new>"));
    }
}
