//! Requirement ratings: each of the five seed requirements rated from exactly what was
//! observed. A requirement is PASS only when every EN 303 645 provision mapped to it was
//! tested (and passed) or the maker declared it not applicable with a reason, and every
//! check the catalogue lists for it was decided; otherwise it is INCOMPLETE and says what
//! was not tested. Any FAIL of a check mapped to it makes it FAIL, whichever scenario (or
//! part of one) decided it.

use std::collections::BTreeMap;

use super::events::{Rating, RequirementRating, ScenarioResult, Verdict};
use crate::model::catalogue::Catalogue;

/// How a NOT APPLICABLE reason starts when the *lab* could not look, not the device lacking
/// anything: the bench had no view of the device's network (COM-01, ATK-01). Such a
/// testcase does not decide its check: the rating lists the check as not run.
pub const NO_VIEW_OF_LINK: &str = "the bench has no view of the device's network";

/// What one provision's testcases showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    NotTested,
    Tested,
}

/// The seed requirements a result evidences: those its provisions sit under, and those its
/// scenario names.
pub fn requirements_of(r: &ScenarioResult) -> Vec<u8> {
    let cat = Catalogue::get();
    let mut v: Vec<u8> = Vec::new();
    if let Some(e) = &r.evidences {
        v.extend(
            e.provisions
                .iter()
                .filter_map(|p| cat.provision(&p.value).and_then(|(_, req)| req)),
        );
        v.extend(e.requirements.iter().map(|x| x.value));
    }
    v.sort();
    v.dedup();
    v
}

/// Rates the five requirements from the run's results and the maker's ICS
/// (provision → reason it does not apply).
pub fn rate(results: &[ScenarioResult], ics: &BTreeMap<String, String>) -> Vec<RequirementRating> {
    let cat = Catalogue::get();
    let provisions_of = |r: &ScenarioResult| -> Vec<String> {
        r.evidences
            .as_ref()
            .map(|e| e.provisions.iter().map(|p| p.value.clone()).collect())
            .unwrap_or_default()
    };
    let checks_of = |r: &ScenarioResult| -> Vec<String> {
        r.evidences
            .as_ref()
            .map(|e| e.checks.iter().map(|c| c.value.clone()).collect())
            .unwrap_or_default()
    };
    let decided = |v: Verdict| matches!(v, Verdict::Pass | Verdict::Fail | Verdict::Review);
    cat.requirements
        .iter()
        .map(|req| {
            let mine: Vec<&ScenarioResult> = results
                .iter()
                .filter(|r| requirements_of(r).contains(&req.number))
                .collect();
            let mut not_tested = Vec::new();
            let mut na = Vec::new();
            let mut tested = 0;
            for p in &req.provisions {
                let on_p: Vec<&&ScenarioResult> = mine.iter().filter(|r| provisions_of(r).contains(&p.id)).collect();
                // a FAIL decides the provision; a PASS counts only when nothing on it errored
                let seen = if on_p.iter().any(|r| r.verdict == Verdict::Fail)
                    || (on_p.iter().any(|r| decided(r.verdict)) && !on_p.iter().any(|r| r.verdict == Verdict::Error))
                {
                    Seen::Tested
                } else {
                    Seen::NotTested
                };
                if let Some(why) = ics.get(&p.id) {
                    na.push((p.id.clone(), why.clone()));
                    tested += 1;
                } else if seen == Seen::Tested {
                    tested += 1;
                } else {
                    not_tested.push(p.id.clone());
                }
            }
            // a catalogue check is decided when some testcase naming it reached a verdict
            // (an interface the device lacks or the maker's declaration counts as decided)
            let checks_not_run: Vec<String> = req
                .checks
                .iter()
                .filter(|c| {
                    !results.iter().any(|r| {
                        let declared_na = r.verdict == Verdict::NotApplicable
                            && !r.reason.as_deref().is_some_and(|w| w.starts_with(NO_VIEW_OF_LINK));
                        checks_of(r).contains(c) && (decided(r.verdict) || declared_na)
                    })
                })
                .cloned()
                .collect();
            let with = |v: Verdict| -> Vec<String> {
                mine.iter()
                    .filter(|r| r.verdict == v)
                    .map(|r| match &r.check {
                        Some(c) => format!("{} ({c})", r.id),
                        None => r.id.clone(),
                    })
                    .collect()
            };
            let mut failed = with(Verdict::Fail);
            failed.extend(failed_elsewhere(results, &mine, &req.checks));
            let inconclusive = with(Verdict::Error);
            let review = !with(Verdict::Review).is_empty();
            let total = req.provisions.len();
            let complete = not_tested.is_empty() && checks_not_run.is_empty() && inconclusive.is_empty();
            let rating = if !failed.is_empty() {
                Rating::Fail
            } else if na.len() == total {
                Rating::NotApplicable
            } else if !complete {
                Rating::Incomplete
            } else if review {
                Rating::Review
            } else {
                Rating::Pass
            };
            let detail = detail(tested, total, &not_tested, &na, &checks_not_run, &inconclusive, &failed);
            RequirementRating {
                requirement: req.number,
                title: req.title.clone(),
                rating,
                provisions_tested: tested,
                provisions_total: total,
                provisions_not_tested: not_tested,
                provisions_not_applicable: na,
                checks_not_run,
                inconclusive,
                failed,
                checks: mine.iter().map(|r| format!("{} {}", r.id, r.verdict)).collect(),
                detail,
            }
        })
        .collect()
}

/// Testcases mapped to other requirements that failed one of this requirement's checks (a
/// part of one that decides several checks: canaries' PWD-10 fails requirement 3 too).
fn failed_elsewhere(results: &[ScenarioResult], mine: &[&ScenarioResult], checks: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    // a check of this requirement failed by a scenario mapped elsewhere (a part of
    // one that decides several checks: canaries' PWD-10 fails requirement 3 too)
    for r in results.iter().filter(|r| !mine.iter().any(|m| std::ptr::eq(*m, *r))) {
        if r.verdict == Verdict::Fail
            && r.parts.is_empty()
            && let Some(c) = r.check.as_ref().filter(|c| checks.contains(c))
        {
            out.push(format!("{} ({c})", r.id));
        }
        for part in r.parts.iter().filter(|p| p.verdict == Verdict::Fail) {
            if let Some(c) = part.check.as_ref().filter(|c| checks.contains(c)) {
                out.push(format!("{}.{} ({c})", r.id, part.name));
            }
        }
    }
    out
}

/// The rating's one-line account: what was tested, and what was not, declared, inconclusive
/// or failed.
fn detail(
    tested: usize,
    total: usize,
    not_tested: &[String],
    na: &[(String, String)],
    checks_not_run: &[String],
    inconclusive: &[String],
    failed: &[String],
) -> String {
    let mut parts = vec![format!("{tested} of {total} provisions tested")];
    if !not_tested.is_empty() {
        parts.push(format!("not tested: {}", not_tested.join(", ")));
    }
    if !na.is_empty() {
        parts.push(format!(
            "declared not applicable by the maker: {}",
            na.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    if !checks_not_run.is_empty() {
        parts.push(format!("checks not run: {}", checks_not_run.join(", ")));
    }
    if !inconclusive.is_empty() {
        parts.push(format!("inconclusive: {}", inconclusive.join(", ")));
    }
    if !failed.is_empty() {
        parts.push(format!("failed: {}", failed.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Evidences;
    use crate::model::Loc;

    fn result(id: &str, verdict: Verdict, provisions: &[&str], checks: &[&str]) -> ScenarioResult {
        let loc = |s: &str| Loc::new(s.to_string());
        let evidences = Evidences {
            requirements: Vec::new(),
            provisions: provisions.iter().map(|p| loc(p)).collect(),
            checks: checks.iter().map(|c| loc(c)).collect(),
        };
        ScenarioResult::new(id, "", "", Some(evidences), verdict)
    }

    fn row(rows: &[RequirementRating], n: u8) -> &RequirementRating {
        rows.iter().find(|r| r.requirement == n).expect("row")
    }

    #[test]
    fn a_link_the_bench_could_not_see_leaves_com01_not_run() {
        let mut na = result("network-traffic", Verdict::NotApplicable, &["5.5-1"], &["COM-01"]);
        na.reason = Some(format!("{NO_VIEW_OF_LINK}: no namespace, no capture interface"));
        let rows = rate(&[na], &BTreeMap::new());
        assert!(
            row(&rows, 1).checks_not_run.contains(&"COM-01".to_string()),
            "{:?}",
            row(&rows, 1)
        );
        // the engine's reason for such a testcase is the one the rating recognises
        assert!(crate::engine::NO_LINK.starts_with(NO_VIEW_OF_LINK));
        // a device that lacks what a check needs (no SSH service) decides it
        let mut ssh = result("ssh-algorithms", Verdict::NotApplicable, &["5.5-1"], &["COM-03"]);
        ssh.reason = Some("the device profile declares no SSH service".into());
        let rows = rate(&[ssh], &BTreeMap::new());
        assert!(!row(&rows, 1).checks_not_run.contains(&"COM-03".to_string()));
    }

    #[test]
    fn mqtt_over_tls_alone_leaves_requirement_1_incomplete_with_what_was_not_tested() {
        let rs = [
            result("plaintext-mqtt-rejection", Verdict::Pass, &["5.5-1"], &["COM-02"]),
            result("tls-self-signed", Verdict::Pass, &["5.5-1"], &["TLS-01"]),
        ];
        let rows = rate(&rs, &BTreeMap::new());
        let r = row(&rows, 1);
        assert_eq!(r.rating, Rating::Incomplete, "{r:?}");
        assert_eq!(r.provisions_tested, 1);
        assert!(r.provisions_not_tested.contains(&"5.5-6".to_string()), "{r:?}");
        assert!(r.checks_not_run.contains(&"COM-01".to_string()), "{r:?}");
        assert!(r.detail.starts_with("1 of 6 provisions tested"), "{}", r.detail);
    }

    #[test]
    fn any_failed_check_fails_the_requirement() {
        let rs = [
            result("password-reset-enforcement", Verdict::Fail, &["5.1-1"], &["PWD-01"]),
            result("password-strength", Verdict::Pass, &["5.1-1"], &["PWD-07"]),
        ];
        let r = rate(&rs, &BTreeMap::new());
        assert_eq!(row(&r, 3).rating, Rating::Fail);
        assert_eq!(row(&r, 3).failed, ["password-reset-enforcement"]);
    }

    #[test]
    fn a_part_failing_a_check_of_another_requirement_fails_that_one_too() {
        use crate::report::events::Part;
        let part = |name: &str, v: Verdict, check: &str| Part {
            name: name.into(),
            verdict: v,
            check: Some(check.into()),
            reason: String::new(),
        };
        let mut canaries = result(
            "canaries-on-the-wire",
            Verdict::Fail,
            &["5.5-6", "5.5-7", "5.8-1", "5.8-2"],
            &["COM-04", "PWD-10"],
        );
        canaries.check = Some("PWD-10".into());
        canaries.parts = vec![
            part("passwords", Verdict::Fail, "PWD-10"),
            part("personal-data", Verdict::Pass, "COM-04"),
        ];
        let rows = rate(std::slice::from_ref(&canaries), &BTreeMap::new());
        assert_eq!(row(&rows, 1).rating, Rating::Fail);
        // requirement 3 lists PWD-10: the password found on the wire fails it, named by part
        assert_eq!(row(&rows, 3).rating, Rating::Fail, "{:?}", row(&rows, 3));
        assert_eq!(row(&rows, 3).failed, ["canaries-on-the-wire.passwords (PWD-10)"]);
        // the personal data part failing instead touches only requirement 1 (COM-04)
        canaries.check = Some("COM-04".into());
        canaries.parts = vec![
            part("passwords", Verdict::Pass, "PWD-10"),
            part("personal-data", Verdict::Fail, "COM-04"),
        ];
        let rows = rate(&[canaries], &BTreeMap::new());
        assert_eq!(row(&rows, 1).rating, Rating::Fail);
        assert_ne!(row(&rows, 3).rating, Rating::Fail, "{:?}", row(&rows, 3));
    }

    #[test]
    fn pass_needs_every_provision_and_check_and_ics_counts_as_decided() {
        let cat = Catalogue::get();
        let req4 = cat.requirements.iter().find(|r| r.number == 4).expect("req 4");
        let provs: Vec<&str> = req4.provisions.iter().map(|p| p.id.as_str()).collect();
        let checks: Vec<&str> = req4.checks.iter().map(|c| c.as_str()).collect();
        // one result evidencing all but the last provision, covering all checks
        let rs = [result("docs", Verdict::Pass, &provs[..provs.len() - 1], &checks)];
        let rows = rate(&rs, &BTreeMap::new());
        assert_eq!(row(&rows, 4).rating, Rating::Incomplete);
        let mut ics = BTreeMap::new();
        ics.insert(provs[provs.len() - 1].to_string(), "no such service".to_string());
        let rows = rate(&rs, &ics);
        assert_eq!(row(&rows, 4).rating, Rating::Pass, "{:?}", row(&rows, 4));
        // an ERROR on a provision makes it untested, never passed
        let rs = [
            result("docs", Verdict::Pass, &provs[..provs.len() - 1], &checks),
            result("docs2", Verdict::Error, &provs[..1], &[]),
        ];
        let rows = rate(&rs, &ics);
        assert_eq!(row(&rows, 4).rating, Rating::Incomplete);
        assert_eq!(row(&rows, 4).inconclusive, ["docs2"]);
    }

    #[test]
    fn nothing_run_is_incomplete_not_pass() {
        let rows = rate(&[], &BTreeMap::new());
        assert!(rows.iter().all(|r| r.rating == Rating::Incomplete), "{rows:?}");
    }
}
