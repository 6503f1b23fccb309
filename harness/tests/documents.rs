//! Documentary checks (DOC-01..03): automatic findings give FAIL, complete documents give
//! REVIEW, and a reviewer's sign-off for the exact document turns REVIEW into PASS or FAIL.

mod common;

use std::path::Path;

use common::*;
use sha2::Digest;

fn doc(name: &str) -> String {
    repo().join("fixtures/docs").join(name).display().to_string()
}

/// Writes a profile with the given documents and runs the documentary scenarios.
fn run_docs(dir: &Path, security: &str, privacy: &str, signoff: Option<&str>) -> Vec<Case> {
    let mut profile = format!(
        "identity: {{ vendor: test, model: docs, hardware_revision: \"0\" }}\ndocuments:\n  security_txt: {}\n  disclosure_policy: {}\n  support_period: {}\n  privacy_policy: {}\n",
        doc(security),
        repo().join("devices/simboard-docs/disclosure-policy.md").display(),
        repo().join("devices/simboard-docs/support-period.md").display(),
        doc(privacy)
    );
    if let Some(s) = signoff {
        std::fs::write(dir.join("signoff.yaml"), s).expect("write signoff");
        profile.push_str(&format!("  signoff: {}\n", dir.join("signoff.yaml").display()));
    }
    let p = dir.join("docs.yaml");
    std::fs::write(&p, profile).expect("write profile");
    let res = dir.join("results");
    let o = certbench(&[
        "run",
        "-d",
        p.to_str().expect("utf8"),
        "--only",
        "doc-vulnerability-disclosure",
        "--only",
        "doc-privacy-policy",
        "--out",
        res.to_str().expect("utf8"),
    ]);
    let cases = junit(&res.join("junit.xml"));
    assert_eq!(cases.len(), 2, "{}", text(&o));
    cases
}

fn case<'a>(cases: &'a [Case], id: &str) -> &'a Case {
    cases.iter().find(|c| c.name.starts_with(id)).expect("testcase")
}

#[test]
fn complete_documents_await_review() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = run_docs(dir.path(), "security-valid.txt", "privacy-complete.md", None);
    for id in ["doc-vulnerability-disclosure", "doc-privacy-policy"] {
        let c = case(&cases, id);
        assert_eq!(c.status, "skipped", "{c:?}");
        assert!(c.message.starts_with("REVIEW:"), "{c:?}");
    }
    let report = std::fs::read_to_string(dir.path().join("results/report.json")).expect("report");
    // the summary matrix shows the checks awaiting review; the requirements stay
    // INCOMPLETE because these documents do not cover every provision mapped to them
    assert!(
        report.contains("doc-vulnerability-disclosure REVIEW") && report.contains("doc-privacy-policy REVIEW"),
        "the summary matrix shows review"
    );
    assert!(
        report.contains("\"status\": \"incomplete\""),
        "never PASS on part of a requirement"
    );
}

#[test]
fn expired_security_txt_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = run_docs(dir.path(), "security-expired.txt", "privacy-complete.md", None);
    let c = case(&cases, "doc-vulnerability-disclosure");
    assert_eq!(c.status, "failure", "{c:?}");
    assert!(
        c.message.starts_with("DOC-01:") && c.message.contains("in the past"),
        "{c:?}"
    );
}

#[test]
fn security_txt_without_contact_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = run_docs(dir.path(), "security-no-contact.txt", "privacy-complete.md", None);
    let c = case(&cases, "doc-vulnerability-disclosure");
    assert_eq!(c.status, "failure", "{c:?}");
    assert!(c.message.contains("no Contact field"), "{c:?}");
}

#[test]
fn privacy_policy_without_deletion_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = run_docs(dir.path(), "security-valid.txt", "privacy-no-deletion.md", None);
    let c = case(&cases, "doc-privacy-policy");
    assert_eq!(c.status, "failure", "{c:?}");
    assert!(c.message.contains("how to delete data and the account"), "{c:?}");
}

#[test]
fn sign_off_turns_review_into_pass_or_fail_for_that_document_only() {
    let sha = |name: &str| {
        let bytes = std::fs::read(doc(name)).expect("read");
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let signoff = format!(
        "signoffs:\n  - {{ check: DOC-03, reviewer: Jane Auditor, date: 2026-11-20, decision: pass, comment: clear and short, document_sha256: {} }}\n  - {{ check: DOC-01, reviewer: Jane Auditor, date: 2026-11-20, decision: fail, comment: policy page unreachable }}\n",
        sha("privacy-complete.md")
    );
    let cases = run_docs(dir.path(), "security-valid.txt", "privacy-complete.md", Some(&signoff));
    assert_eq!(case(&cases, "doc-privacy-policy").status, "pass");
    let c = case(&cases, "doc-vulnerability-disclosure");
    assert_eq!(c.status, "failure", "{c:?}");
    assert!(
        c.message.contains("Jane Auditor decided FAIL") && c.message.contains("unreachable"),
        "{c:?}"
    );
    let report = std::fs::read_to_string(dir.path().join("results/report.html")).expect("report");
    assert!(
        report.contains("signed off PASS by Jane Auditor"),
        "the report shows the sign-off"
    );

    // a sign-off for another version of the document does not count
    let dir = tempfile::tempdir().expect("tempdir");
    let stale = "signoffs:\n  - { check: DOC-03, reviewer: J, date: 2026-11-20, decision: pass, document_sha256: 0000000000000000000000000000000000000000000000000000000000000000 }\n";
    let cases = run_docs(dir.path(), "security-valid.txt", "privacy-complete.md", Some(stale));
    assert!(case(&cases, "doc-privacy-policy").message.starts_with("REVIEW:"));
}

/// A PASS sign-off that names no document hash would approve any later edit: refused.
#[test]
fn a_pass_sign_off_without_the_document_hash_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("signoff.yaml"),
        "signoffs:\n  - { check: DOC-03, reviewer: Jane Auditor, date: 2026-11-20, decision: pass }\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("p.yaml"),
        format!(
            "identity: {{ vendor: t, model: m, hardware_revision: \"0\" }}\ndocuments:\n  signoff: {}\n",
            dir.path().join("signoff.yaml").display()
        ),
    )
    .expect("write");
    let o = certbench(&["validate", dir.path().join("p.yaml").to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("names no document SHA-256"), "{}", text(&o));
}
