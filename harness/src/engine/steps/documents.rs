//! Documentary steps: the maker's documents checked automatically, then a reviewer's sign-off.

use super::prelude::*;

impl Run<'_> {
    /// A maker's document, through the gate every named file passes (inside the profile's
    /// folder, links followed; a regular file; a document is text of a few pages).
    fn read_document(&self, path: &std::path::Path, what: &str) -> Result<Vec<u8>, Stop> {
        let folder = self.rig.command_vars.get("profile_dir").map(std::path::PathBuf::from);
        let roots: Vec<&std::path::Path> = folder.as_deref().into_iter().collect();
        let roots = if roots.is_empty() {
            vec![path.parent().unwrap_or(std::path::Path::new("/"))]
        } else {
            roots
        };
        crate::util::read_user_file(path, &roots, crate::util::limits::TEXT)
            .map_err(|e| Stop::Error(format!("cannot read the {what}: {e}")))
    }

    /// PRV-05 / DOC-03 on the device itself: the privacy policy page it serves
    /// (`privacy.policy_page`) has the clauses and the readability, and is the document the
    /// reviewer read — otherwise it awaits review again.
    pub(super) async fn served_policy(&mut self) -> StepResult {
        let Some(page) = self.rig.device.policy_page.clone() else {
            return Err(Stop::Skip(
                "the maker declares no page where the device serves its privacy policy (privacy.policy_page)".into(),
            ));
        };
        let Some(file) = self.rig.device.documents.privacy_policy.clone() else {
            return Err(Stop::Error(
                "no reviewed privacy policy to compare with (profile documents.privacy_policy)".into(),
            ));
        };
        let reviewed = self.read_document(&file, "privacy policy")?;
        let t = self.service_target(&page.service)?;
        let url = format!("{} on {}", page.path, t.describe());
        // a device just powered on serves its pages once it has booted: the page is asked
        // for until then (its declared boot time and 30 s more, else a minute)
        let boot = self.spec().map_or(Duration::from_secs(30), |s| s.boot_time);
        let deadline = Instant::now() + boot + Duration::from_secs(30);
        let (status, body) = loop {
            match crate::remote::http::fetch(&t, &page.path).await {
                Ok(answer) => break answer,
                Err(e) if Instant::now() < deadline && e.contains("connect") => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(Stop::Error(format!("the policy page {url} was not read: {e}"))),
            }
        };
        let fail = |reason: String| Stop::Fail {
            check: Some("PRV-05".into()),
            reason: format!("PRV-05: {reason}"),
        };
        if status != 200 {
            return Err(fail(format!(
                "the device does not serve its privacy policy where its maker says: {url} answered {status}"
            )));
        }
        let raw = String::from_utf8_lossy(&body);
        // a web page is read as the owner's browser shows it
        let text = if crate::docs::looks_like_html(&raw) {
            crate::docs::html_text(&raw)
        } else {
            raw.into_owned()
        };
        let findings = crate::docs::privacy_policy(&text, self.rig.device.reading_grade);
        if !findings.missing.is_empty() {
            return Err(fail(format!(
                "the privacy policy the device serves ({url}, {} bytes) lacks: {}",
                body.len(),
                findings.missing.join("; ")
            )));
        }
        let (served, read) = (crate::util::sha256_hex(&body), crate::util::sha256_hex(&reviewed));
        if served != read {
            self.reviews.push(format!(
                "DOC-03: the device serves a privacy policy ({url}, SHA-256 {served}) that is not the reviewed document ({}, SHA-256 {read}): a reviewer must read the served one",
                file.display()
            ));
            return Ok(format!(
                "the served policy ({url}) has every clause and is readable, but differs from the reviewed document: awaiting review"
            ));
        }
        Ok(format!(
            "the device serves the reviewed privacy policy at {url} (SHA-256 {served}, the same bytes as {})",
            file.display()
        ))
    }

    /// DOC-01 on the device: `/.well-known/security.txt` from each declared web service,
    /// judged as RFC 9116 says (served over HTTPS; Contact; Expires in the future).
    pub(super) async fn served_security_txt(&mut self) -> StepResult {
        use crate::config::services::ServiceKind;
        let web: Vec<_> = self
            .rig
            .device
            .services
            .iter()
            .filter(|s| {
                matches!(
                    s.kind,
                    ServiceKind::HttpBasic | ServiceKind::HttpDigest | ServiceKind::HttpForm
                )
            })
            .cloned()
            .collect();
        if web.is_empty() {
            return Err(Stop::Skip(
                "the device declares no web service: its security.txt is the maker's document (doc-vulnerability-disclosure)".into(),
            ));
        }
        let fail = |reason: String| Stop::Fail {
            check: Some("DOC-01".into()),
            reason: format!("DOC-01: {reason}"),
        };
        let boot = self.spec().map_or(Duration::from_secs(30), |s| s.boot_time);
        let mut said = Vec::new();
        for s in web {
            let t = self.service_target(&s.name)?;
            let path = "/.well-known/security.txt";
            let url = format!("{path} on {}", t.describe());
            let deadline = Instant::now() + boot + Duration::from_secs(30);
            let (status, body) = loop {
                match crate::remote::http::fetch(&t, path).await {
                    Ok(answer) => break answer,
                    Err(e) if Instant::now() < deadline && e.contains("connect") => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(Stop::Error(format!("{url} was not read: {e}"))),
                }
            };
            if status != 200 {
                return Err(fail(format!(
                    "the device's web service does not tell a researcher whom to contact: {url} answered {status}"
                )));
            }
            if !s.tls {
                return Err(fail(format!(
                    "{url} is served over plain HTTP: RFC 9116 requires HTTPS, so a reader cannot trust its Contact"
                )));
            }
            let text = String::from_utf8_lossy(&body);
            let findings = crate::docs::security_txt(&text, time::OffsetDateTime::now_utc());
            if !findings.missing.is_empty() {
                return Err(fail(format!(
                    "the security.txt the device serves ({url}, {} bytes) is not valid: {}",
                    body.len(),
                    findings.missing.join("; ")
                )));
            }
            said.push(format!(
                "{url} ({} bytes, SHA-256 {})",
                body.len(),
                crate::util::sha256_hex(&body)
            ));
        }
        Ok(format!(
            "the device serves a valid security.txt over HTTPS (Contact, Expires in the future): {}",
            said.join("; ")
        ))
    }

    /// A documentary check: automatic findings decide FAIL; otherwise a reviewer's
    /// sign-off for this check and this exact document decides, or the check awaits REVIEW.
    pub(super) fn document(&mut self, kind: crate::config::scenario::DocKind, check: &str) -> StepResult {
        use crate::config::scenario::DocKind;
        let d = &self.rig.device.documents;
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
        let bytes = self.read_document(&path, what)?;
        let text = String::from_utf8_lossy(&bytes);
        let now = time::OffsetDateTime::now_utc();
        let findings = match kind {
            DocKind::SecurityTxt => crate::docs::security_txt(&text, now),
            DocKind::DisclosurePolicy => crate::docs::disclosure_policy(&text),
            DocKind::SupportPeriod => crate::docs::support_period(&text, now),
            DocKind::PrivacyPolicy => crate::docs::privacy_policy(&text, self.rig.device.reading_grade),
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
        let signoff = self.rig.device.signoffs.iter().find(|s| {
            s.check == check
                && s.document_sha256
                    .as_deref()
                    .is_none_or(|h| h.eq_ignore_ascii_case(&sha))
        });
        match signoff {
            Some(s) if s.decision == crate::config::signoff::Decision::Pass => Ok(format!(
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
