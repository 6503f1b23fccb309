//! Documentary steps: the maker's documents checked automatically, then a reviewer's sign-off.

use super::prelude::*;

impl Run<'_> {
    /// A documentary check: automatic findings decide FAIL; otherwise a reviewer's
    /// sign-off for this check and this exact document decides, or the check awaits REVIEW.
    pub(super) fn document(&mut self, kind: crate::config::scenario::DocKind, check: &str) -> StepResult {
        use crate::config::scenario::DocKind;
        let d = &self.bench.device.documents;
        let (path, what) = match kind {
            DocKind::SecurityTxt => (&d.security_txt, "security.txt"),
            DocKind::DisclosurePolicy => (&d.disclosure_policy, "vulnerability disclosure policy"),
            DocKind::SupportPeriod => (&d.support_period, "support period statement"),
            DocKind::PrivacyPolicy => (&d.privacy_policy, "privacy policy"),
        };
        let fail = |reason: String| Stop::Fail {
            check: Some(check.to_string()),
            reason: format!("{check}: {reason}"),
        };
        let Some(path) = path.clone() else {
            return Err(fail(
                format!("the maker supplied no {what} (profile documents.{kind:?})")
                    .replace("SecurityTxt", "security_txt")
                    .replace("DisclosurePolicy", "disclosure_policy")
                    .replace("SupportPeriod", "support_period")
                    .replace("PrivacyPolicy", "privacy_policy"),
            ));
        };
        // the gate every named file passes (inside the profile's folder, links followed; a
        // regular file; a document is text of a few pages)
        let folder = self.bench.command_vars.get("profile_dir").map(std::path::PathBuf::from);
        let roots: Vec<&std::path::Path> = folder.as_deref().into_iter().collect();
        let roots = if roots.is_empty() {
            vec![path.parent().unwrap_or(std::path::Path::new("/"))]
        } else {
            roots
        };
        let bytes = crate::util::read_user_file(&path, &roots, crate::util::limits::TEXT)
            .map_err(|e| Stop::Error(format!("cannot read the {what}: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        let now = time::OffsetDateTime::now_utc();
        let findings = match kind {
            DocKind::SecurityTxt => crate::docs::security_txt(&text, now),
            DocKind::DisclosurePolicy => crate::docs::disclosure_policy(&text),
            DocKind::SupportPeriod => crate::docs::support_period(&text, now),
            DocKind::PrivacyPolicy => crate::docs::privacy_policy(&text, self.bench.device.reading_grade),
        };
        let sha = crate::util::sha256_hex(&bytes);
        if !findings.missing.is_empty() {
            // the privacy policy's automatic part is a check of its own (PRV-05); DOC-03 is
            // the reviewer's
            let auto = if kind == DocKind::PrivacyPolicy {
                "PRV-05"
            } else {
                check
            };
            return Err(Stop::Fail {
                check: Some(auto.to_string()),
                reason: format!(
                    "{auto}: the {what} ({}) lacks: {}",
                    path.display(),
                    findings.missing.join("; ")
                ),
            });
        }
        let notes = if findings.notes.is_empty() {
            String::new()
        } else {
            format!(" (notes: {})", findings.notes.join("; "))
        };
        let signoff = self.bench.device.signoffs.iter().find(|s| {
            s.check == check
                && s.document_sha256
                    .as_deref()
                    .is_none_or(|h| h.eq_ignore_ascii_case(&sha))
        });
        match signoff {
            Some(s) if s.decision == crate::docs::Decision::Pass => Ok(format!(
                "{what}: automatic checks passed; signed off PASS by {} on {}: {}{notes}",
                s.reviewer, s.date, s.comment
            )),
            Some(s) => Err(fail(format!(
                "reviewer {} decided FAIL on {}: {}",
                s.reviewer, s.date, s.comment
            ))),
            None => {
                self.reviews.push(format!(
                    "{check}: the {what} passed the automatic checks; a reviewer must judge it (sign-off for document SHA-256 {sha}){notes}"
                ));
                Ok(format!("{what}: automatic checks passed; awaiting review{notes}"))
            }
        }
    }
}
