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
        out.contains("5.1-1") && out.contains("password-reset-enforcement (PWD-01, PWD-07, PWD-08)"),
        "{out}"
    );
    assert!(out.contains("tls-self-signed (TLS-01)"), "{out}");
    assert!(out.contains("doc-privacy-policy (DOC-03)"), "{out}");
    assert!(out.contains("not covered yet:"), "{out}");
}

#[test]
fn provisions_the_maker_declares_not_applicable_skip_their_checks_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("results");
    let o = certbench(&[
        "run",
        "-d",
        "fixtures/devices/fake-pty-ics.yaml",
        "--only",
        "password-reset-enforcement",
        "--out",
        res.to_str().expect("utf8"),
        "--workdir",
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cases = junit(&res.join("junit.xml"));
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
    assert_eq!(good[0].classname, "PWD-01+PWD-07+PWD-08");
}
