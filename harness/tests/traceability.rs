//! Requirement traceability: coverage lists the five requirements with their provisions and
//! checks; the maker's ICS makes checks NOT APPLICABLE with the maker's reason; JUnit names
//! stay unique across boards and validate against the JUnit XSD.

mod common;

use common::*;

#[test]
fn coverage_lists_all_five_requirements_with_provisions_and_checks() {
    let o = certbench(&["coverage"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    for r in 1..=5 {
        assert!(
            out.contains(&format!("Requirement {r}:")),
            "requirement {r} missing:\n{out}"
        );
    }
    assert!(
        out.contains("5.1-1") && out.contains("password-reset-enforcement (PWD-01)"),
        "{out}"
    );
    assert!(out.contains("tls-certificates (TLS-01"), "{out}");
    assert!(out.contains("doc-privacy-policy (DOC-03, PRV-05)"), "{out}");
    assert!(out.contains("not covered yet:"), "{out}");
}

#[test]
fn provisions_the_maker_declares_not_applicable_skip_their_checks_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().to_path_buf();
    let r = Certbench::profile("fixtures/devices/fake-pty-ics.yaml")
        .only("password-reset-enforcement")
        .workdir(&work)
        .in_dir(dir)
        .run();
    assert_eq!(r.code, Some(0), "{}", r.log);
    let (res, cases) = (r.results(), r.cases);
    assert_eq!(cases[0].status, "skipped");
    assert!(
        cases[0].message.contains("not applicable per the maker's ICS") && cases[0].message.contains("paired app"),
        "{cases:?}"
    );
    let html = std::fs::read_to_string(res.join("report.html")).expect("report");
    assert!(
        html.contains("Not applicable (ICS): EN 303 645 5.1-1"),
        "report lists the ICS"
    );
    assert!(html.contains("Declared (IXIT): update method"), "report lists the IXIT");
    assert!(html.contains("NOT APPLICABLE"), "the check shows as not applicable");
}

#[test]
fn junit_names_are_unique_across_boards_and_classnames_are_check_ids() {
    let (_, good, _d1, _) = run_profile("devices/simboard.yaml", &[]);
    let (_, weak, _d2, _) = run_profile("devices/simboard-weak-passwords.yaml", &[]);
    assert_ne!(good[0].name, weak[0].name, "merged by GitLab if equal");
    // a testcase's classname names only the check it decides
    for (id, check) in PASSWORD_SCENARIOS {
        let c = good
            .iter()
            .find(|c| c.name.starts_with(&format!("{id} ")))
            .expect("testcase");
        assert_eq!(c.classname, check, "{c:?}");
    }
}

/// Minimum requirement 2 needs an update mechanism: a device that declares none FAILs the
/// update checks (not SKIPPED) and requirement 2 is FAIL in the report, JSON and JUnit;
/// requirements nothing was run for are INCOMPLETE, never PASS.
#[test]
fn a_device_without_an_update_mechanism_fails_requirement_2() {
    let (cases, code, dir, log) = run_only_with(
        "fixtures/devices/power-only.yaml",
        &["update-auto-default", "update-corrupt-image", "update-mitm"],
        &["--set", "flaky=no"],
    );
    let res = dir.path().join("results");
    assert_eq!(code, Some(1), "{log}");
    for id in ["update-auto-default", "update-corrupt-image"] {
        assert_eq!(cases[id].status, "failure", "{:?}", cases[id]);
        assert!(cases[id].message.contains("no update mechanism"), "{:?}", cases[id]);
        // what to declare if the maker states the provisions do not apply: this check's own
        assert!(cases[id].message.contains("in `ics.not_applicable`"), "{:?}", cases[id]);
    }
    assert_eq!(cases["update-mitm"].status, "skipped", "no update channel to attack");
    assert!(
        cases["update-corrupt-image"].message.contains("declare 5.3-2")
            && cases["update-auto-default"]
                .message
                .contains("declare 5.3-4, 5.3-5, 5.3-6"),
        "{:?}",
        cases
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("report.json")).expect("report")).expect("json");
    let status = |n: u64| {
        report["summary"]
            .as_array()
            .expect("summary")
            .iter()
            .find(|r| r["requirement"] == n)
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
            .expect("row")
    };
    assert_eq!(status(2), "fail");
    for n in [1, 3, 4, 5] {
        assert_eq!(status(n), "incomplete", "nothing was tested for requirement {n}");
    }
    let xml = std::fs::read_to_string(res.join("junit.xml")).expect("junit");
    assert!(xml.contains("name=\"requirement.2\" value=\"FAIL: "), "{xml}");
    assert!(log.contains("2. FAIL"), "{log}");
}

/// A device whose only tested channel is MQTT over TLS: requirement 1 is INCOMPLETE with
/// what was not tested, never PASS.
#[test]
fn mqtt_over_tls_alone_does_not_pass_requirement_1() {
    let (cases, code, dir, out) = run_only(
        "devices/simboard.yaml",
        &["plaintext-mqtt-rejection", "tls-certificates"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(cases.values().all(|c| c.status == "pass"), "{cases:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/report.json")).expect("report"))
            .expect("json");
    let row = report["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .find(|r| r["requirement"] == 1)
        .expect("row 1")
        .clone();
    assert_eq!(row["status"], "incomplete", "{row}");
    let detail = row["detail"].as_str().expect("detail");
    assert!(detail.starts_with("1 of 6 provisions tested"), "{detail}");
    assert!(detail.contains("checks not run: COM-01"), "{detail}");
    let html = std::fs::read_to_string(dir.path().join("results/report.html")).expect("html");
    assert!(
        html.contains("INCOMPLETE") && html.contains("not tested: 5.5-5"),
        "html shows coverage"
    );
}

/// Every check id the code or a scenario names is one the catalogue lists (a mistyped id in
/// a verdict would rate nothing): the ids are looked for with the catalogue's own prefixes.
#[test]
fn every_check_id_in_the_source_and_the_scenarios_is_the_catalogues() {
    let cat = certbench::model::Catalogue::get();
    let mut prefixes: Vec<&str> = cat.checks.iter().filter_map(|c| c.split('-').next()).collect();
    prefixes.sort();
    prefixes.dedup();
    let re = regex::Regex::new(&format!(r"\b(?:{})-\d+\b", prefixes.join("|"))).expect("regex");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    let mut dirs = vec![root.join("harness/src"), root.join("scenarios")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "yaml") {
                files.push(p);
            }
        }
    }
    let mut unknown = Vec::new();
    let mut seen = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for m in re.find_iter(&text) {
            seen += 1;
            if certbench::model::CheckId::parse(m.as_str()).is_none() {
                unknown.push(format!("{}: {}", f.display(), m.as_str()));
            }
        }
    }
    assert!(
        seen > 100,
        "the search found only {seen} ids: it looks in the wrong place"
    );
    assert!(
        unknown.is_empty(),
        "ids the catalogue does not list:\n{}",
        unknown.join("\n")
    );
}
