//! Everything that crossed the console, with timestamps: bytes received, what the harness
//! sent, connection events and step markers. Kept from the moment the port is opened,
//! across power cycles; each scenario's slice is saved as evidence.

use std::time::Duration;

use crate::engine::secrets::Redactor;

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

/// Received bytes kept per run before the oldest are dropped (a marker says so).
const MAX_RX_BYTES: usize = 256 << 20;

impl Transcript {
    pub fn push(&mut self, at: Duration, e: Entry) {
        if let Entry::Rx(b) = &e {
            self.rx_bytes += b.len();
            if self.rx_bytes > MAX_RX_BYTES {
                let mut dropped = 0;
                while self.rx_bytes > MAX_RX_BYTES / 2 && !self.entries.is_empty() {
                    if let (_, Entry::Rx(old)) = self.entries.remove(0) {
                        self.rx_bytes -= old.len();
                        dropped += old.len();
                    }
                }
                self.entries.insert(
                    0,
                    (at, Entry::Event(format!("{dropped} older bytes dropped from memory"))),
                );
            }
        }
        self.entries.push((at, e));
    }

    /// Index of the next entry, to slice a scenario's part later.
    pub fn mark(&self) -> usize {
        self.entries.len()
    }

    /// A readable log of entries `from..`: one line per received line, control bytes
    /// escaped, secrets redacted.
    pub fn render_text(&self, from: usize, redactor: &Redactor) -> String {
        let mut out = String::new();
        let mut line = String::new();
        let mut line_t = Duration::ZERO;
        let flush = |out: &mut String, line: &mut String, t: Duration| {
            if !line.is_empty() {
                out.push_str(&format!("[{:>10.6}] <  {}\n", t.as_secs_f64(), redactor.redact(line)));
                line.clear();
            }
        };
        for (t, e) in self.entries.iter().skip(from) {
            match e {
                Entry::Rx(bytes) => {
                    for chunk in String::from_utf8_lossy(bytes).split_inclusive('\n') {
                        if line.is_empty() {
                            line_t = *t;
                        }
                        for ch in chunk.chars() {
                            match ch {
                                '\n' => {}
                                '\r' => line.push_str("\\r"),
                                '\t' => line.push('\t'),
                                c if c.is_control() => line.push_str(&format!("\\x{:02x}", c as u32)),
                                c => line.push(c),
                            }
                        }
                        if chunk.ends_with('\n') {
                            line.push_str("\\n");
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
        out
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
    pub fn tail_text(&self, from: usize, max: usize, redactor: &Redactor) -> String {
        let text = self.render_text(from, redactor);
        if text.len() <= max {
            return text;
        }
        let mut cut = text.len() - max;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        let start = text[cut..].find('\n').map(|i| cut + i + 1).unwrap_or(cut);
        format!("[... {} bytes before]\n{}", start, &text[start..])
    }
}
