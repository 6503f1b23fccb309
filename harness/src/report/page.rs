//! The certification report as one self-contained HTML page, rendered from
//! `templates/report.html` by askama. Every value the template prints passes [`Escape`]
//! (askama.toml makes it the escaper of `.html` templates and the template never opts out):
//! a console that prints `<script>` renders as text, by construction.

use askama::Template;

use super::document::{CheckEntry, EvidenceFile, Report};
use super::events::{Part, Verdict};

/// HTML escaping for element content and attribute values; C0 controls (but tab and
/// newline) and the noncharacters U+FFFE/U+FFFF are shown as escapes, so the page stays
/// well-formed whatever a device printed.
#[derive(Debug, Clone, Copy)]
pub struct Escape;

impl askama::filters::Escaper for Escape {
    fn write_escaped_str<W: std::fmt::Write>(&self, mut dest: W, s: &str) -> std::fmt::Result {
        for c in s.chars() {
            match c {
                '<' => dest.write_str("&lt;")?,
                '>' => dest.write_str("&gt;")?,
                '&' => dest.write_str("&amp;")?,
                '"' => dest.write_str("&quot;")?,
                '\'' => dest.write_str("&#39;")?,
                c if (c as u32) < 0x20 && c != '\n' && c != '\t' => write!(dest, "\\x{:02x}", c as u32)?,
                '\u{fffe}' | '\u{ffff}' => dest.write_str("\\u{fffe}")?,
                c => dest.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Escapes text for HTML (as the page does), for callers outside a template.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let _ = askama::filters::Escaper::write_escaped_str(&Escape, &mut o, s);
    o
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "PASS" | "pass" => "pass",
        "FAIL" | "fail" => "fail",
        "ERROR" | "inconclusive" => "error",
        "REVIEW" | "review" => "review",
        "incomplete" => "incomplete",
        _ => "na",
    }
}

fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "INCONCLUSIVE",
        Verdict::NotApplicable => "NOT APPLICABLE",
        Verdict::Review => "REVIEW",
    }
}

/// The page: the report plus what the template shows, already in words.
#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    r: &'a Report,
    summary: Vec<Row>,
    item: Vec<(String, String)>,
    method: Vec<(String, String)>,
    checks: Vec<Check<'a>>,
}

struct Row {
    number: u8,
    title: String,
    class: &'static str,
    status: String,
    detail: String,
    checks: String,
}

struct Check<'a> {
    id: &'a str,
    title: &'a str,
    class: &'static str,
    label: &'static str,
    checks: String,
    file: &'a str,
    /// The unit it ran on (a model's suite over several units).
    unit: Option<&'a str>,
    seconds: String,
    reason: Option<&'a str>,
    /// Parts decided on their own (each TLS destination and identity): label, class, part.
    parts: Vec<(&'static str, &'static str, &'a Part)>,
    provisions: &'a [(String, String)],
    steps: Vec<Step<'a>>,
    excerpt: &'a str,
    /// Plots (the brute-force timeline) are shown; loaded as images, an SVG runs nothing.
    plots: Vec<&'a EvidenceFile>,
    /// Text evidence shown in full (the device's network destinations).
    shown: &'a [(String, String)],
    evidence: &'a [EvidenceFile],
}

struct Step<'a> {
    index: usize,
    name: &'a str,
    status: String,
    detail: &'a str,
    at: &'a str,
    ms: u128,
}

fn check(c: &CheckEntry) -> Check<'_> {
    let res = &c.result;
    let label = verdict_label(res.verdict);
    Check {
        id: &res.id,
        title: &res.title,
        class: verdict_class(label.split(' ').next().unwrap_or(label)),
        label,
        checks: res
            .evidences
            .as_ref()
            .map(|e| e.checks.iter().map(|c| c.value.clone()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        file: &res.file,
        unit: res.unit.as_deref(),
        seconds: format!("{:.1}", res.duration_ms as f64 / 1000.0),
        reason: res.reason.as_deref(),
        parts: res
            .parts
            .iter()
            .map(|p| {
                let label = verdict_label(p.verdict);
                (label, verdict_class(label), p)
            })
            .collect(),
        provisions: &c.provisions,
        steps: res
            .steps
            .iter()
            .map(|s| Step {
                index: s.index,
                name: &s.name,
                status: format!("{:?}", s.status),
                detail: &s.detail,
                at: &s.at,
                ms: s.duration_ms,
            })
            .collect(),
        excerpt: &res.excerpt,
        plots: c.evidence.iter().filter(|e| e.path.ends_with(".svg")).collect(),
        shown: &c.shown,
        evidence: &c.evidence,
    }
}

/// The "Item tested" table.
fn item(r: &Report) -> Vec<(String, String)> {
    let d = &r.device;
    let mut kv = vec![
        ("Vendor".to_string(), d.vendor.clone()),
        ("Model".into(), d.model.clone()),
        ("Hardware revision".into(), d.hardware_revision.clone()),
        (
            "Serial number".into(),
            d.serial.clone().unwrap_or_else(|| "not declared".into()),
        ),
        (
            "Firmware version".into(),
            d.firmware_version.clone().unwrap_or_else(|| "not declared".into()),
        ),
        (
            "Firmware SHA-256".into(),
            r.firmware_sha256
                .clone()
                .unwrap_or_else(|| "not available (no firmware image declared)".into()),
        ),
        (
            "Device profile (ICS/IXIT)".into(),
            format!("{} (SHA-256 {})", r.profile, r.profile_sha256),
        ),
    ];
    if let Some(l) = &r.lab_file_sha256 {
        kv.push(("Lab binding SHA-256".into(), l.clone()));
    }
    kv.extend(r.ixit.iter().map(|(k, v)| (format!("Declared (IXIT): {k}"), v.clone())));
    kv.extend(
        r.not_applicable
            .iter()
            .map(|(p, why)| (format!("Not applicable (ICS): EN 303 645 {p}"), why.clone())),
    );
    kv.extend(r.warnings.iter().map(|w| ("Noted".to_string(), w.clone())));
    kv
}

/// The "Method" table.
fn method(r: &Report) -> Vec<(String, String)> {
    let mut kv = vec![
        ("Laboratory".to_string(), r.lab.clone()),
        ("Operator".into(), r.operator.clone()),
        ("Started".into(), r.started_at.clone()),
        ("Finished".into(), r.finished_at.clone()),
    ];
    kv.extend(r.standards.iter().cloned());
    kv.push(("Decision rule".into(), r.decision_rule.clone()));
    kv.push((
        "Harness".into(),
        format!("certbench {} commit {}", r.harness_version, r.harness_commit),
    ));
    kv.extend(r.bench.iter().map(|(k, v)| (format!("Bench: {k}"), v.clone())));
    kv
}

/// The report as one HTML page.
pub fn html(r: &Report) -> String {
    let page = Page {
        r,
        summary: r
            .summary
            .iter()
            .map(|row| Row {
                number: row.requirement,
                title: row.title.clone(),
                class: verdict_class(&row.status),
                status: row.status.to_uppercase(),
                detail: row.detail.clone(),
                checks: row.checks.join(", "),
            })
            .collect(),
        item: item(r),
        method: method(r),
        checks: r.checks.iter().map(check).collect(),
    };
    // rendering into a String fails only if a Display impl fails, which none here does
    // (askama drops the template file's final newline; the page ends with one)
    page.render()
        .map(|p| p + "\n")
        .unwrap_or_else(|e| format!("<!DOCTYPE html><p>report could not be rendered: {e}</p>\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::events::{ScenarioResult, StepRecord, StepStatus};

    const HOSTILE: &str = "<script>alert(1)</script> \"q\" 'a' & \u{1b}[31m \u{fffe}";

    fn report() -> Report {
        let mut res = ScenarioResult::new(HOSTILE, HOSTILE, HOSTILE, None, Verdict::Fail);
        res.reason = Some(HOSTILE.into());
        res.excerpt = HOSTILE.into();
        res.steps.push(StepRecord {
            index: 1,
            name: HOSTILE.into(),
            at: HOSTILE.into(),
            status: StepStatus::Fail,
            detail: HOSTILE.into(),
            duration_ms: 1,
        });
        Report {
            report_id: HOSTILE.into(),
            lab: HOSTILE.into(),
            operator: HOSTILE.into(),
            started_at: String::new(),
            finished_at: String::new(),
            standards: vec![(HOSTILE.into(), HOSTILE.into())],
            decision_rule: String::new(),
            device: crate::model::DeviceIdentity {
                vendor: HOSTILE.into(),
                ..Default::default()
            },
            profile: HOSTILE.into(),
            profile_sha256: String::new(),
            lab_file_sha256: None,
            firmware_sha256: None,
            harness_version: String::new(),
            harness_commit: String::new(),
            bench: vec![(HOSTILE.into(), HOSTILE.into())],
            ixit: vec![(HOSTILE.into(), HOSTILE.into())],
            not_applicable: Vec::new(),
            warnings: vec![HOSTILE.into()],
            summary: Vec::new(),
            checks: vec![CheckEntry {
                result: res,
                provisions: vec![(HOSTILE.into(), HOSTILE.into())],
                requirements: vec![1],
                evidence: vec![EvidenceFile {
                    path: format!("{HOSTILE}.svg"),
                    sha256: HOSTILE.into(),
                    bytes: 1,
                }],
                shown: vec![(HOSTILE.into(), HOSTILE.into())],
            }],
            deviations: vec![HOSTILE.into()],
            interrupted: false,
            statement: HOSTILE.into(),
        }
    }

    #[test]
    fn device_text_in_every_field_is_escaped_and_the_page_keeps_its_own_markup() {
        let page = html(&report());
        assert!(!page.contains("<script"), "a raw script element");
        assert!(!page.contains('\u{1b}') && !page.contains('\u{fffe}'), "a raw control");
        // every field shows the text, escaped (13 fields above, some shown twice)
        assert!(
            page.matches("&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; &#39;a&#39; &amp; \\x1b[31m \\u{fffe}")
                .count()
                >= 13
        );
        for tag in [
            "<table id=\"summary-matrix\">",
            "<div class=\"check\"",
            "<details><summary>Steps",
            "<figure><img src=",
            "<pre>",
        ] {
            assert!(page.contains(tag), "{tag}");
        }
        assert!(page.ends_with("</body></html>\n"));
    }

    #[test]
    fn the_template_never_opts_out_of_escaping() {
        let t = include_str!("../../templates/report.html");
        let filters = t.split("{{").skip(1).filter_map(|e| e.split("}}").next());
        assert!(filters.clone().count() > 40, "the template prints values");
        assert!(
            filters.clone().all(|e| !e.contains('|')),
            "no filter (`|safe`) in the report template"
        );
        assert!(!t.contains("{% autoescape"), "no autoescape block");
    }

    #[test]
    fn the_escaper_escapes_what_html_needs_and_nothing_else() {
        assert_eq!(esc("a<b>&\"'\u{7}\tz"), "a&lt;b&gt;&amp;&quot;&#39;\\x07\tz");
        assert_eq!(esc("plain text"), "plain text");
    }
}
