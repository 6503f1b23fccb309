//! The security regression gate: two result folders (each verified against its manifest
//! first) compared check by check — a verdict that got worse is a regression, one that got
//! better is fixed, a check decided before and undecided now is named — and the observable
//! surface beside them: open ports, the device's destinations, components, known
//! vulnerabilities, the TLS offers it accepts, its certificates' keys, the requirement
//! ratings. Output for a terminal, Markdown (a pull request comment), JSON and JUnit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// One run as the gate reads it.
#[derive(Debug, Default, Clone)]
pub struct RunView {
    pub dir: PathBuf,
    pub run_id: String,
    /// Scenario id → verdicts (several where a scenario ran on several units).
    pub verdicts: BTreeMap<String, Vec<String>>,
    /// Scenario id → the reason of its worst verdict.
    pub reasons: BTreeMap<String, String>,
    /// Scenario id → the catalogue checks it decides (from the run's plan).
    pub checks: BTreeMap<String, Vec<String>>,
    /// Requirement number → rating.
    pub ratings: BTreeMap<u64, String>,
    /// Surface kind → items.
    pub surface: BTreeMap<&'static str, BTreeSet<String>>,
}

/// What changed for one check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    pub check: String,
    pub old: String,
    pub new: String,
    /// regression, fixed, undecided, decided, changed, new, gone
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The reason it is accepted (`--allow CHECK=REASON`), if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SurfaceChange {
    pub kind: &'static str,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub old: String,
    pub new: String,
    pub changes: Vec<Change>,
    pub ratings: Vec<Change>,
    pub surface: Vec<SurfaceChange>,
}

impl Diff {
    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.kind == "regression" && c.allowed.is_none())
    }

    pub fn undecided(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.kind == "undecided" && c.allowed.is_none())
    }
}

/// How good a verdict is, for "worse" and "better": FAIL < ERROR (undecided) < the rest.
fn rank(v: &str) -> u8 {
    match v {
        "fail" => 0,
        "error" => 1,
        _ => 2,
    }
}

/// The worst of several verdicts of one scenario (a model's units): FAIL over ERROR over
/// REVIEW over NOT APPLICABLE over PASS.
fn worst(vs: &[String]) -> String {
    let order = ["fail", "error", "review", "not_applicable", "pass"];
    order
        .iter()
        .find(|o| vs.iter().any(|v| v == *o))
        .map(|s| s.to_string())
        .unwrap_or_else(|| vs.first().cloned().unwrap_or_default())
}

/// Reads a verified run folder.
pub fn read(dir: &Path) -> Result<RunView, String> {
    let events = crate::util::read_user_text(&dir.join("events.jsonl"), &[dir], crate::util::limits::RUN_FILE)
        .map_err(|e| format!("{}: {e}", dir.join("events.jsonl").display()))?;
    let mut v = RunView {
        dir: dir.to_path_buf(),
        ..RunView::default()
    };
    let mut files: Vec<String> = Vec::new();
    let mut finished = false;
    for (n, line) in events.lines().enumerate() {
        let e: Value = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: not a run event: {e}", dir.join("events.jsonl").display(), n + 1))?;
        match e["event"].as_str() {
            Some("run_started") => {
                v.run_id = e["run_id"].as_str().unwrap_or_default().to_string();
                for p in e["planned"].as_array().into_iter().flatten() {
                    let checks = p["checks"].as_array().into_iter().flatten().filter_map(Value::as_str);
                    v.checks
                        .entry(p["id"].as_str().unwrap_or_default().to_string())
                        .or_default()
                        .extend(checks.map(String::from));
                }
            }
            Some("scenario_finished") => {
                let r = &e["result"];
                let id = r["id"].as_str().unwrap_or_default().to_string();
                let verdict = r["verdict"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .replace(' ', "_");
                let list = v.verdicts.entry(id.clone()).or_default();
                list.push(verdict.clone());
                if worst(list) == verdict
                    && let Some(reason) = r["reason"].as_str()
                {
                    let unit = r["unit"].as_str().map(|u| format!(" (unit {u})")).unwrap_or_default();
                    v.reasons.insert(id, format!("{reason}{unit}"));
                }
                if let Some(fs) = r["evidence_files"].as_array() {
                    files.extend(fs.iter().filter_map(|f| f.as_str().map(String::from)));
                }
            }
            Some("run_finished") => {
                finished = true;
                for r in e["requirements"].as_array().into_iter().flatten() {
                    if let (Some(n), Some(rating)) = (r["requirement"].as_u64(), r["rating"].as_str()) {
                        v.ratings.insert(n, rating.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    if !finished {
        return Err(format!(
            "{}: the run did not finish (no run_finished event): it cannot be compared",
            dir.display()
        ));
    }
    v.surface = surface(dir, &files)?;
    Ok(v)
}

/// The observable surface from the evidence files the results name. An evidence file the
/// gate cannot read is an error: a surface read in part would hide what was added.
fn surface(dir: &Path, files: &[String]) -> Result<BTreeMap<&'static str, BTreeSet<String>>, String> {
    let mut s: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let unread = std::cell::RefCell::new(None::<String>);
    let json = |f: &str| -> Option<Value> {
        let read = crate::util::read_user_text(&dir.join(f), &[dir], crate::util::limits::RUN_FILE)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}")));
        match read {
            Ok(v) => Some(v),
            Err(e) => {
                unread
                    .borrow_mut()
                    .get_or_insert(format!("{}: {e}", dir.join(f).display()));
                None
            }
        }
    };
    let named = |name: &'static str| files.iter().filter(move |f| f.ends_with(&format!("/{name}")));
    for f in named("open-ports.json") {
        for p in json(f).and_then(|v| v.as_array().cloned()).unwrap_or_default() {
            s.entry("open ports").or_default().insert(format!(
                "{}/{} ({})",
                p["proto"].as_str().unwrap_or("?"),
                p["port"],
                p["service"].as_str().unwrap_or("?")
            ));
        }
    }
    for f in named("flows.json") {
        for fl in json(f).and_then(|v| v.as_array().cloned()).unwrap_or_default() {
            if fl["opened_by"] != "device" {
                continue;
            }
            let proto = fl["protocol"]
                .as_object()
                .and_then(|o| o.keys().next().cloned())
                .or_else(|| fl["protocol"].as_str().map(String::from))
                .unwrap_or_else(|| "?".into());
            let peer = fl["peer_names"]
                .as_array()
                .and_then(|n| n.first())
                .and_then(Value::as_str)
                .or(fl["peer"].as_str())
                .unwrap_or("?");
            s.entry("destinations").or_default().insert(format!(
                "{} {proto} to {peer} ({})",
                fl["transport"].as_str().unwrap_or("?"),
                fl["judged"].as_str().unwrap_or("?")
            ));
        }
    }
    for f in named("components.json") {
        for c in json(f)
            .and_then(|v| v["components"].as_array().cloned())
            .unwrap_or_default()
        {
            s.entry("components").or_default().insert(format!(
                "{} {}",
                c["name"].as_str().unwrap_or("?"),
                c["version"].as_str().unwrap_or("?")
            ));
        }
    }
    for f in named("vulnerabilities.json") {
        for x in json(f)
            .and_then(|v| v["findings"].as_array().cloned())
            .unwrap_or_default()
        {
            let ids: Vec<&str> = x["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            s.entry("known vulnerabilities").or_default().insert(format!(
                "{} in {} {}",
                ids.join(" / "),
                x["component"].as_str().unwrap_or("?"),
                x["version"].as_str().unwrap_or("?")
            ));
        }
    }
    for f in named("tls-config.json") {
        for o in json(f).and_then(|v| v.as_array().cloned()).unwrap_or_default() {
            if o["accepted"] == true {
                s.entry("TLS offers accepted")
                    .or_default()
                    .insert(o["offered"].as_str().unwrap_or("?").to_string());
            }
        }
    }
    for f in named("tls-certificates.json") {
        for c in json(f).and_then(|v| v.as_array().cloned()).unwrap_or_default() {
            let j = &c["judged"];
            s.entry("certificate keys").or_default().insert(format!(
                "{}, signed {}",
                j["key"].as_str().unwrap_or("?"),
                j["signature"].as_str().unwrap_or("?")
            ));
        }
    }
    match unread.into_inner() {
        Some(e) => Err(format!("an evidence file the gate compares cannot be read: {e}")),
        None => Ok(s),
    }
}

/// Compares two runs; `allow`: scenario id or check id (e.g. `PWD-05`) → the reason its
/// regression is accepted.
pub fn compare(old: &RunView, new: &RunView, allow: &BTreeMap<String, String>) -> Diff {
    let allowed = |id: &str| {
        allow.get(id).cloned().or_else(|| {
            new.checks
                .get(id)
                .or_else(|| old.checks.get(id))
                .into_iter()
                .flatten()
                .find_map(|c| allow.get(c).cloned())
        })
    };
    let mut changes = Vec::new();
    let ids: BTreeSet<&String> = old.verdicts.keys().chain(new.verdicts.keys()).collect();
    for id in ids {
        let o = old.verdicts.get(id).map(|v| worst(v));
        let n = new.verdicts.get(id).map(|v| worst(v));
        let (kind, o, n) = match (o, n) {
            (Some(o), Some(n)) if o == n => continue,
            (Some(o), Some(n)) => {
                let kind = match (rank(&o), rank(&n)) {
                    (a, 0) if a > 0 => "regression",
                    (0, b) if b > 0 && n != "error" => "fixed",
                    (2, 1) => "undecided",
                    (1, 2) => "decided",
                    (0, 1) => "undecided",
                    _ => "changed",
                };
                (kind, o, n)
            }
            (Some(o), None) => ("gone", o, "not run".into()),
            (None, Some(n)) if n == "fail" => ("regression", "not run".into(), n),
            (None, Some(n)) => ("new", "not run".into(), n),
            (None, None) => continue,
        };
        let reason = new.reasons.get(id).or_else(|| old.reasons.get(id)).cloned();
        changes.push(Change {
            check: id.clone(),
            old: o,
            new: n,
            kind,
            reason,
            allowed: allowed(id),
        });
    }
    let mut ratings = Vec::new();
    for (req, n) in &new.ratings {
        let o = old.ratings.get(req).cloned().unwrap_or_else(|| "not rated".into());
        if &o != n {
            ratings.push(Change {
                check: format!("requirement {req}"),
                kind: if n == "FAIL" { "regression" } else { "changed" },
                old: o,
                new: n.clone(),
                reason: None,
                allowed: None,
            });
        }
    }
    let mut surface = Vec::new();
    let kinds: BTreeSet<&&str> = old.surface.keys().chain(new.surface.keys()).collect();
    let empty = BTreeSet::new();
    for k in kinds {
        let (o, n) = (
            old.surface.get(*k).unwrap_or(&empty),
            new.surface.get(*k).unwrap_or(&empty),
        );
        let added: Vec<String> = n.difference(o).cloned().collect();
        let removed: Vec<String> = o.difference(n).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            surface.push(SurfaceChange {
                kind: k,
                added,
                removed,
            });
        }
    }
    Diff {
        old: old.run_id.clone(),
        new: new.run_id.clone(),
        changes,
        ratings,
        surface,
    }
}

fn verdict_word(v: &str) -> String {
    v.replace('_', " ").to_uppercase()
}

/// The diff as text for a terminal (device text made safe) or as Markdown.
pub fn render(d: &Diff, markdown: bool) -> String {
    let mut out = String::new();
    let safe = |s: &str| {
        if markdown {
            s.replace('|', "\\|").replace('<', "&lt;").replace('\n', " ")
        } else {
            super::term_safe(s)
        }
    };
    let regressions = d.regressions().count();
    if markdown {
        out.push_str(&format!("### certbench: {} → {}\n\n", safe(&d.old), safe(&d.new)));
    } else {
        out.push_str(&format!("certbench diff {} → {}\n", safe(&d.old), safe(&d.new)));
    }
    out.push_str(&format!(
        "{regressions} regression(s), {} fixed, {} undecided now, {} other change(s)\n\n",
        d.changes.iter().filter(|c| c.kind == "fixed").count(),
        d.undecided().count(),
        d.changes
            .iter()
            .filter(|c| !matches!(c.kind, "regression" | "fixed" | "undecided"))
            .count()
    ));
    let rows: Vec<&Change> = d.changes.iter().chain(&d.ratings).collect();
    if !rows.is_empty() {
        if markdown {
            out.push_str("| check | was | now | | why |\n|---|---|---|---|---|\n");
        }
        for c in rows {
            let why = match (&c.allowed, &c.reason) {
                (Some(a), _) => format!("allowed: {a}"),
                (None, Some(r)) => r.clone(),
                (None, None) => String::new(),
            };
            if markdown {
                out.push_str(&format!(
                    "| `{}` | {} | {} | **{}** | {} |\n",
                    safe(&c.check),
                    verdict_word(&c.old),
                    verdict_word(&c.new),
                    c.kind,
                    safe(&why)
                ));
            } else {
                out.push_str(&format!(
                    "  {:<11} {:<40} {} → {}{}\n",
                    c.kind.to_uppercase(),
                    safe(&c.check),
                    verdict_word(&c.old),
                    verdict_word(&c.new),
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!("\n              {}", safe(&why))
                    }
                ));
            }
        }
        out.push('\n');
    }
    for s in &d.surface {
        out.push_str(&if markdown {
            format!("**{}**\n\n", s.kind)
        } else {
            format!("{}:\n", s.kind)
        });
        for a in &s.added {
            out.push_str(&format!("{} + {}\n", if markdown { "-" } else { " " }, safe(a)));
        }
        for r in &s.removed {
            out.push_str(&format!("{} − {}\n", if markdown { "-" } else { " " }, safe(r)));
        }
        out.push('\n');
    }
    out
}

/// The diff as JUnit: each regression a failing testcase, each newly undecided check an
/// error, every other compared check a passing one.
pub fn junit(d: &Diff, new: &RunView) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("certbench diff {} → {}", d.old, d.new));
    for id in new.verdicts.keys() {
        let status = match d.changes.iter().find(|c| &c.check == id && c.allowed.is_none()) {
            Some(c) if c.kind == "regression" => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(super::xml_safe(&format!(
                    "regression: {} → {}{}",
                    verdict_word(&c.old),
                    verdict_word(&c.new),
                    c.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                )));
                s
            }
            Some(c) if c.kind == "undecided" => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(super::xml_safe(&format!(
                    "decided before ({}), undecided now",
                    verdict_word(&c.old)
                )));
                s
            }
            _ => TestCaseStatus::success(),
        };
        let mut tc = TestCase::new(super::xml_safe(&format!("diff.{id}")), status);
        // classname = the check ids, as in the run's own JUnit
        tc.set_classname(super::xml_safe(&match new.checks.get(id) {
            Some(c) if !c.is_empty() => c.join("+"),
            _ => id.clone(),
        }));
        suite.add_test_case(tc);
    }
    let mut r = Report::new("certbench diff");
    r.add_test_suite(suite);
    r.to_string().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(verdicts: &[(&str, &str)], ratings: &[(u64, &str)], ports: &[&str]) -> RunView {
        RunView {
            run_id: "r".into(),
            verdicts: verdicts
                .iter()
                .map(|(i, v)| (i.to_string(), vec![v.to_string()]))
                .collect(),
            ratings: ratings.iter().map(|(n, r)| (*n, r.to_string())).collect(),
            surface: BTreeMap::from([("open ports", ports.iter().map(|p| p.to_string()).collect())]),
            ..RunView::default()
        }
    }

    /// A run folder: `n` testcases, each naming `evidence` (relative path, content).
    fn folder(n: usize, evidence: (&str, &str)) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        let mut events = String::from("{\"event\":\"run_started\",\"run_id\":\"r\",\"planned\":[]}\n");
        let pad = "x".repeat(2000);
        for i in 0..n {
            events.push_str(&format!(
                "{{\"event\":\"scenario_finished\",\"result\":{{\"id\":\"s{i}\",\"verdict\":\"PASS\",\"reason\":null,\"excerpt\":\"{pad}\",\"evidence_files\":[\"{}\"]}}}}\n",
                evidence.0
            ));
        }
        events.push_str("{\"event\":\"run_finished\",\"requirements\":[]}\n");
        std::fs::write(d.path().join("events.jsonl"), events).expect("events");
        let f = d.path().join(evidence.0);
        std::fs::create_dir_all(f.parent().expect("parent")).expect("dirs");
        std::fs::write(f, evidence.1).expect("evidence");
        d
    }

    #[test]
    fn a_large_run_is_read_whole_and_an_unreadable_evidence_file_is_an_error() {
        // 1 000 testcases: events of over 1 MB (2 MB here) are read, not refused
        let d = folder(
            1000,
            (
                "u/scenarios/open-ports/open-ports.json",
                r#"[{"proto":"tcp","port":22,"service":"ssh"}]"#,
            ),
        );
        assert!(std::fs::metadata(d.path().join("events.jsonl")).expect("meta").len() > 1 << 20);
        let v = read(d.path()).expect("read");
        assert_eq!(v.verdicts.len(), 1000);
        assert_eq!(
            v.surface["open ports"].iter().next().map(String::as_str),
            Some("tcp/22 (ssh)")
        );
        // an evidence file the gate compares that is not what it should be: an error naming it,
        // never a surface read in part
        let d = folder(2, ("u/scenarios/open-ports/open-ports.json", "[{\"proto\": "));
        let e = read(d.path()).expect_err("unreadable evidence");
        assert!(e.contains("open-ports.json") && e.contains("cannot be read"), "{e}");
    }

    #[test]
    fn verdicts_that_got_worse_are_regressions_and_the_rest_is_named() {
        let old = view(
            &[
                ("a", "pass"),
                ("b", "fail"),
                ("c", "pass"),
                ("d", "not_applicable"),
                ("e", "pass"),
            ],
            &[(1, "PASS"), (3, "PASS")],
            &["tcp/443 (https)"],
        );
        let new = view(
            &[
                ("a", "fail"),
                ("b", "pass"),
                ("c", "error"),
                ("d", "pass"),
                ("f", "fail"),
            ],
            &[(1, "PASS"), (3, "FAIL")],
            &["tcp/443 (https)", "tcp/23 (telnet)"],
        );
        let d = compare(&old, &new, &BTreeMap::new());
        let kinds: Vec<(&str, &str)> = d.changes.iter().map(|c| (c.check.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("a", "regression"),
                ("b", "fixed"),
                ("c", "undecided"),
                ("d", "changed"),
                ("e", "gone"),
                ("f", "regression")
            ]
        );
        assert_eq!(d.regressions().count(), 2);
        assert_eq!(d.ratings.len(), 1);
        assert_eq!(d.ratings[0].kind, "regression");
        assert_eq!(d.surface[0].added, ["tcp/23 (telnet)"]);
        // an accepted regression is named with its reason and no longer counts
        let allow = BTreeMap::from([("a".to_string(), "known, fixed in 4.2".to_string())]);
        let d = compare(&old, &new, &allow);
        assert_eq!(d.regressions().count(), 1);
        // by the check it decides, too
        let mut by_check = new.clone();
        by_check.checks.insert("f".into(), vec!["PWD-05".into()]);
        let allow_check = BTreeMap::from([("PWD-05".to_string(), "accepted by the lab".to_string())]);
        assert_eq!(compare(&old, &by_check, &allow_check).regressions().count(), 1);
        assert!(render(&d, true).contains("allowed: known, fixed in 4.2"));
        let j = junit(&d, &new);
        assert!(j.contains("diff.f") && j.contains("regression: NOT RUN → FAIL"), "{j}");
    }

    #[test]
    fn a_model_run_is_judged_by_its_worst_unit() {
        let mut old = view(&[("p", "pass")], &[], &[]);
        let mut new = view(&[], &[], &[]);
        old.verdicts.insert("q".into(), vec!["pass".into(), "pass".into()]);
        new.verdicts.insert("p".into(), vec!["pass".into()]);
        new.verdicts
            .insert("q".into(), vec!["pass".into(), "fail".into(), "pass".into()]);
        let d = compare(&old, &new, &BTreeMap::new());
        assert_eq!(d.changes.len(), 1);
        assert_eq!((d.changes[0].check.as_str(), d.changes[0].kind), ("q", "regression"));
    }

    #[test]
    fn device_text_cannot_drive_the_terminal_or_break_the_markdown() {
        let old = view(&[("a", "pass")], &[], &[]);
        let mut new = view(&[("a", "fail")], &[], &["tcp/1 (\u{1b}]52;c;x\u{7} | <b>)"]);
        new.reasons
            .insert("a".into(), "device said \u{1b}[2J | <script>".into());
        let d = compare(&old, &new, &BTreeMap::new());
        let t = render(&d, false);
        assert!(!t.contains('\u{1b}'), "{t}");
        let m = render(&d, true);
        assert!(!m.contains("<script>") && m.contains("\\|"), "{m}");
    }
}
