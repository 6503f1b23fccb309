//! The requirement catalogue (`harness/data/catalogue.yaml`): five seed requirements, the
//! EN 303 645 provisions under each with their TS 103 701 test groups, NIST IR 8425
//! outcomes and UK PSTI paragraphs. Embedded in the binary; scenarios are checked against it.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const SOURCE: &str = include_str!("../../data/catalogue.yaml");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Standard {
    pub id: String,
    pub edition: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Provision {
    pub id: String,
    pub title: String,
    pub ts103701: String,
    #[serde(default)]
    pub nist: Option<String>,
    #[serde(default)]
    pub psti: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Requirement {
    pub number: u8,
    pub title: String,
    /// The catalogue checks that decide this requirement.
    #[serde(default)]
    pub checks: Vec<String>,
    pub provisions: Vec<Provision>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Catalogue {
    pub standards: Vec<Standard>,
    pub requirements: Vec<Requirement>,
    pub other: Vec<Provision>,
    /// Every check id of the security test catalogue (the only ids a [`CheckId`] holds).
    pub checks: Vec<String>,
}

/// A check id of the security test catalogue (`PWD-01`, `COM-03`, ...): only ids the
/// catalogue lists can be made, so a typo cannot reach a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(&'static str);

impl CheckId {
    /// The catalogue's id equal to `s`, if it lists one.
    pub fn parse(s: &str) -> Option<CheckId> {
        Catalogue::get()
            .checks
            .iter()
            .find(|c| c.as_str() == s)
            .map(|c| CheckId(c.as_str()))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Catalogue {
    /// The embedded catalogue (a broken data file is a build defect, caught by a test).
    pub fn get() -> &'static Catalogue {
        static C: OnceLock<Catalogue> = OnceLock::new();
        C.get_or_init(|| serde_saphyr::from_str(SOURCE).unwrap_or_else(|e| panic!("harness/data/catalogue.yaml: {e}")))
    }

    /// A provision and the seed requirement it sits under (None for `other`).
    pub fn provision(&self, id: &str) -> Option<(&Provision, Option<u8>)> {
        for r in &self.requirements {
            if let Some(p) = r.provisions.iter().find(|p| p.id == id) {
                return Some((p, Some(r.number)));
            }
        }
        self.other.iter().find(|p| p.id == id).map(|p| (p, None))
    }

    pub fn edition(&self, standard: &str) -> &str {
        self.standards
            .iter()
            .find(|s| s.id.contains(standard))
            .map(|s| s.edition.as_str())
            .unwrap_or("?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_loads_with_five_requirements_and_unique_provisions() {
        let c = Catalogue::get();
        assert_eq!(
            c.requirements.iter().map(|r| r.number).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let mut ids: Vec<&str> = c
            .requirements
            .iter()
            .flat_map(|r| r.provisions.iter().map(|p| p.id.as_str()))
            .collect();
        ids.extend(c.other.iter().map(|p| p.id.as_str()));
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "provision ids are unique");
        assert_eq!(c.provision("5.1-1").map(|(_, r)| r), Some(Some(3)));
        assert!(c.provision("9.9-9").is_none());
    }

    #[test]
    fn check_ids_are_the_catalogues_and_each_requirement_names_only_those() {
        let c = Catalogue::get();
        let mut ids = c.checks.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), c.checks.len(), "check ids are unique");
        for r in &c.requirements {
            for id in &r.checks {
                assert!(
                    CheckId::parse(id).is_some(),
                    "requirement {} names {id}, not a check",
                    r.number
                );
            }
        }
        assert_eq!(
            CheckId::parse("PWD-01").map(|c| c.to_string()).as_deref(),
            Some("PWD-01")
        );
        // (built, so the source scan in tests/traceability.rs does not take them for ids)
        assert!(CheckId::parse(&format!("PWD-{}", 1)).is_none() && CheckId::parse("pwd-01").is_none());
    }
}
