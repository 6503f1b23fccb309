//! A testcase's evidence folder: the files its steps made, what the benches recorded during
//! it, its console transcript. Everything written passes the redactor.

use std::path::Path;

use serde::Serialize;

use super::rig::Rig;
use crate::config::scenario::Scenario;
use crate::report::events::ScenarioResult;

/// Where the benches' logs and the console transcript stood when the testcase began.
#[derive(Debug)]
pub(super) struct Marks {
    console: Option<usize>,
    first_phase: Option<u64>,
    /// Device requests to the update bench so far (the power mark starts here).
    pub(super) update: Option<usize>,
    update_all: Option<usize>,
    handshakes: Option<usize>,
    /// Packets the capture had seen and saved so far.
    capture: Option<(u64, u64)>,
}

impl Marks {
    pub(super) fn take(rig: &Rig, sc: &Scenario) -> Self {
        let console = rig.console.as_ref().map(|c| {
            c.drain();
            c.marker(format!("scenario {} begins", sc.id));
            c.with_transcript(|t| t.mark())
        });
        Self {
            console,
            first_phase: rig.net.as_ref().map(|n| n.phase() + 1),
            update: rig.update.as_ref().map(|u| u.log.len()),
            update_all: rig.update.as_ref().map(|u| u.log.all().len()),
            handshakes: rig.update.as_ref().map(|u| u.log.handshakes().len()),
            capture: capture_counts(rig),
        }
    }
}

fn capture_counts(rig: &Rig) -> Option<(u64, u64)> {
    let c = rig.gateway.capture.as_ref()?;
    let st = c.stats.lock().unwrap_or_else(|p| p.into_inner());
    Some((st.packets, st.saved_packets))
}

/// Where this testcase's packets are in the run's capture.pcapng (one file for the whole
/// run: every boot is in it), so a reader goes straight to them.
#[derive(Debug, Serialize)]
struct CaptureRange {
    file: &'static str,
    interface: String,
    /// Frame numbers in the file (Wireshark's `frame.number`), first and last.
    first_frame: u64,
    last_frame: u64,
    wireshark_filter: String,
    packets_seen: u64,
    /// Seen during this testcase but not written (the file reached its size limit).
    packets_not_saved: u64,
}

pub(super) use crate::util::jsonl;

/// The line a bounded log ends with when it had to stop recording: how many more it saw.
fn not_recorded((device, others): (u64, u64)) -> String {
    if device == 0 && others == 0 {
        return String::new();
    }
    format!(
        "{}\n",
        serde_json::json!({ "not_recorded": { "device": device, "other_peers": others,
            "why": format!("the log holds at most {} records, {} of them other peers'; later ones were only counted",
                crate::bench::peers::RECORDS_MAX, crate::bench::peers::OTHER_RECORDS_MAX) } })
    )
}

/// Writes the testcase's evidence under `dir` and lists each file in the result.
/// A text file a person opens with `cat` or `less` (`.txt`, `.log`) gets what the device
/// put in it with the terminal's sanitiser: a device's escape sequences (a title change, a
/// screen clear, a clipboard write through OSC 52) are shown, never obeyed. Structured files
/// (JSON, SVG, PEM) are written as they are: their readers do not interpret escapes.
pub(crate) fn for_reading(name: &str, text: &str) -> String {
    if name.ends_with(".txt") || name.ends_with(".log") {
        crate::report::term_safe(text)
    } else {
        text.to_string()
    }
}

pub(super) fn save(
    rig: &Rig,
    sc: &Scenario,
    marks: &Marks,
    extra: &[(String, String)],
    dir: &Path,
    rel_dir: &str,
    result: &mut ScenarioResult,
) {
    let mut write = |name: &str, bytes: &[u8]| {
        if std::fs::create_dir_all(dir).is_ok() && std::fs::write(dir.join(name), bytes).is_ok() {
            result.evidence_files.push(format!("{rel_dir}/{name}"));
        }
    };
    let redacted = |text: &str| rig.redactor.redact(text);
    for (name, text) in extra {
        write(name, for_reading(name, &redacted(text)).as_bytes());
    }
    if let (Some(u), Some(mark)) = (&rig.update, marks.update_all) {
        // every peer's requests: each record says whose it was (`origin`)
        let reqs: Vec<_> = u.log.all().into_iter().skip(mark).collect();
        if !reqs.is_empty() {
            write(
                "update-requests.jsonl",
                redacted(&(jsonl(&reqs) + &not_recorded(u.log.dropped()))).as_bytes(),
            );
        }
        let hs = u.log.handshakes();
        let hs = hs.get(marks.handshakes.unwrap_or(0)..).unwrap_or_default();
        if !hs.is_empty() {
            write("update-handshakes.jsonl", redacted(&jsonl(hs)).as_bytes());
        }
    }
    if let (Some((seen0, saved0)), Some((seen1, saved1)), Some(c)) =
        (marks.capture, capture_counts(rig), rig.gateway.capture.as_ref())
        && seen1 > seen0
    {
        let interface = c.stats.lock().unwrap_or_else(|p| p.into_inner()).interface.clone();
        let r = CaptureRange {
            file: "capture.pcapng",
            interface,
            first_frame: saved0 + 1,
            last_frame: saved1,
            wireshark_filter: format!("frame.number >= {} && frame.number <= {saved1}", saved0 + 1),
            packets_seen: seen1 - seen0,
            packets_not_saved: (seen1 - seen0).saturating_sub(saved1 - saved0),
        };
        write(
            "capture-range.json",
            serde_json::to_string_pretty(&r).unwrap_or_default().as_bytes(),
        );
    }
    if let (Some(net), Some(first)) = (&rig.net, marks.first_phase)
        && net.phase() >= first
    {
        // every peer's sessions: each record says whose it was (`origin`)
        let all = net.log.all();
        let lines = jsonl(all.iter().filter(|s| s.phase >= first)) + &not_recorded(net.log.dropped());
        write("bench-sessions.jsonl", redacted(&lines).as_bytes());
    }
    if let (Some(c), Some(mark)) = (&rig.console, marks.console) {
        c.marker(format!("scenario {} ends: {}", sc.id, result.verdict));
        let (text, raw, tail) = c.with_transcript(|t| {
            (
                t.render_text(mark, &rig.redactor),
                t.render_raw(mark, &rig.redactor),
                t.tail_text(mark, 3000, &rig.redactor),
            )
        });
        // (the transcript renders through the redactor itself)
        write("console.log", for_reading("console.log", &text).as_bytes());
        write("console.raw", &raw);
        result.excerpt = tail;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_evidence_shows_a_devices_escape_sequences_and_never_obeys_them() {
        // a DNS name with a title change, a screen clear and a clipboard write (OSC 52)
        let name = "cloud.example\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZWNobyBoaQ==\x07.test";
        let shown = super::for_reading("destinations.txt", &format!("udp device → {name}\n"));
        assert!(!shown.contains('\x1b') && !shown.contains('\x07'), "{shown:?}");
        assert!(shown.contains("\\x1b]0;pwned\\x07"), "{shown:?}");
        // structured evidence is left to its reader
        assert!(super::for_reading("flows.json", "\x1b").contains('\x1b'));
    }
}
