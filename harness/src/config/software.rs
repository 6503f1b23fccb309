//! `software:` (profile: the maker's SBOM, the command that lists components, the build
//! date) and `vulnerability_data:` / `policy:` (lab: the offline data and the lab's rules)
//! for VUL-01..03.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::resolver::Resolver;
use super::yaml::{InputError, Loc};
use crate::model::software::{Software, VulnData, VulnPolicy};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSoftware {
    /// The maker's SBOM: CycloneDX 1.4–1.6 or SPDX 2.3, JSON (relative to the profile).
    #[serde(default)]
    pub sbom: Option<Loc<PathBuf>>,
    /// The maker's VEX, OpenVEX JSON (relative to the profile): `not_affected` statements
    /// turn matching findings into REVIEW with their justification. (A CycloneDX SBOM's own
    /// `vulnerabilities` are read too.)
    #[serde(default)]
    pub vex: Option<Loc<PathBuf>>,
    /// A command typed at the console's shell whose output shows component versions
    /// (e.g. `cat /etc/os-release; busybox | head -1`).
    #[serde(default)]
    pub components_command: Option<Loc<String>>,
    /// When the firmware was built, `YYYY-MM-DD` (default: the SBOM's creation date).
    #[serde(default)]
    pub build_date: Option<Loc<String>>,
    /// Components no update replaces, each with the maker's reason (UPD-12, 5.3-1):
    /// `- { component: u-boot-spl, reason: "mask ROM" }`.
    #[serde(default)]
    pub not_updateable: Vec<RawNotUpdateable>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotUpdateable {
    pub component: Loc<String>,
    pub reason: Loc<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVulnData {
    /// OSV records: JSON files, directories of them, or the zip archives OSV publishes.
    #[serde(default)]
    pub osv: Vec<Loc<PathBuf>>,
    /// NVD CVE JSON 2.0 feed files.
    #[serde(default)]
    pub nvd: Vec<Loc<PathBuf>>,
    /// The CISA KEV catalogue (known_exploited_vulnerabilities.json).
    #[serde(default)]
    pub kev: Option<Loc<PathBuf>>,
    /// Data older than this many days decides nothing (default 7).
    #[serde(default)]
    pub max_age_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// `required` (default): a device without an SBOM fails VUL-03; `optional`: not tested.
    #[serde(default)]
    pub sbom: Option<SbomPolicy>,
    /// A vulnerability fixed upstream more than this many days before the firmware was built
    /// (VUL-01) or before the run (VUL-02) must not ship (default 90).
    #[serde(default)]
    pub fix_within_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SbomPolicy {
    Required,
    Optional,
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u32>().unwrap_or(0))
}

pub fn software(rx: &Resolver, raw: Option<&RawSoftware>, has_console: bool) -> Software {
    let Some(raw) = raw else { return Software::default() };
    let mut out = Software {
        sbom: raw.sbom.as_ref().map(|p| rx.in_profile(&p.value)),
        vex: raw.vex.as_ref().map(|p| rx.in_profile(&p.value)),
        ..Software::default()
    };
    for (i, n) in raw.not_updateable.iter().enumerate() {
        if n.reason.value.trim().is_empty() || n.component.value.trim().is_empty() {
            rx.error(InputError::new(
                rx.file,
                Some(n.component.pos),
                format!("software.not_updateable[{i}]"),
                "a component no update replaces needs its name and the maker's reason".to_string(),
            ));
            continue;
        }
        out.not_updateable
            .push((n.component.value.clone(), n.reason.value.clone()));
    }
    if let Some(c) = &raw.components_command {
        if has_console {
            out.components_command = Some(c.value.clone());
        } else {
            rx.error(InputError::new(
                rx.file,
                Some(c.pos),
                "software.components_command",
                "a command typed at the console's shell, but the profile declares no console".to_string(),
            ));
        }
    }
    if let Some(d) = &raw.build_date {
        if is_date(&d.value) {
            out.build_date = Some(d.value.clone());
        } else {
            rx.error(InputError::new(
                rx.file,
                Some(d.pos),
                "software.build_date",
                format!("{:?} is not a date written YYYY-MM-DD", d.value),
            ));
        }
    }
    // the SBOM is small and the maker's input: a malformed one is refused at load, with its
    // place (a missing one only makes the checks that use it ERROR, as every named file)
    let docs = [
        (out.sbom.as_ref(), raw.sbom.as_ref(), "software.sbom", false),
        (out.vex.as_ref(), raw.vex.as_ref(), "software.vex", true),
    ];
    for (p, named, field_name, is_vex) in docs {
        let (Some(p), Some(named)) = (p, named) else { continue };
        if !p.is_file() {
            continue;
        }
        let text = crate::util::read_user_text(p, &[rx.base], crate::util::limits::IMAGE);
        match text {
            Ok(t) => {
                let parsed = if is_vex {
                    crate::vuln::sbom::openvex(&t).map(|_| ())
                } else {
                    crate::vuln::sbom::parse(&t).map(|_| ())
                };
                if let Err(e) = parsed {
                    let pos = crate::model::position::Pos {
                        line: u32::try_from(e.line).unwrap_or(u32::MAX),
                        column: u32::try_from(e.column).unwrap_or(u32::MAX),
                    };
                    let field = if e.field.is_empty() {
                        "(the document)".to_string()
                    } else {
                        e.field.clone()
                    };
                    let (what, hint) = if is_vex {
                        ("an OpenVEX document", "the VEX named by software.vex: OpenVEX JSON")
                    } else {
                        (
                            "a CycloneDX or SPDX SBOM",
                            "the SBOM named by software.sbom: CycloneDX 1.4–1.6 or SPDX 2.3, JSON",
                        )
                    };
                    rx.error(
                        InputError::new(p, Some(pos), &field, format!("not {what}: {}", e.message)).with_hint(hint),
                    );
                }
            }
            Err(e) => rx.error(InputError::new(rx.file, Some(named.pos), field_name, e)),
        }
    }
    out
}

pub fn vuln_data(rx: &Resolver, raw: Option<&RawVulnData>) -> Option<VulnData> {
    let raw = raw?;
    let mut out = VulnData {
        max_age_days: raw.max_age_days.unwrap_or(7),
        named_in: rx.lab_file.clone(),
        ..VulnData::default()
    };
    let check = |field: &str, p: &Loc<PathBuf>| {
        let abs = rx.in_lab(&p.value);
        // a directory of OSV records is checked file by file when read
        let ok = if abs.is_dir() && field == "vulnerability_data.osv" {
            abs.starts_with(rx.lab_base())
                .then_some(())
                .ok_or_else(|| "outside the lab file's folder".to_string())
        } else {
            crate::util::check_user_file(&abs, &[rx.lab_base()], crate::util::limits::IMAGE).map(|_| ())
        };
        match ok {
            Ok(()) => Some(abs),
            Err(why) => {
                rx.error(
                    InputError::new(&rx.lab_file, Some(p.pos), field, format!("{:?}: {why}", p.value))
                        .with_hint("the lab's data lies in the lab file's folder"),
                );
                None
            }
        }
    };
    out.osv = raw
        .osv
        .iter()
        .filter_map(|p| check("vulnerability_data.osv", p))
        .collect();
    out.nvd = raw
        .nvd
        .iter()
        .filter_map(|p| check("vulnerability_data.nvd", p))
        .collect();
    out.kev = raw.kev.as_ref().and_then(|p| check("vulnerability_data.kev", p));
    // the KEV catalogue is one small file: one that is not the catalogue is refused at load
    // (OSV and NVD data can be large: read at run, where a bad file is an ERROR)
    if let (Some(path), Some(p)) = (&out.kev, &raw.kev) {
        let read = crate::util::read_user_text(path, &[rx.lab_base()], crate::util::limits::IMAGE)
            .and_then(|t| crate::vuln::data::Data::default().load_kev(&p.value.display().to_string(), &t));
        if let Err(why) = read {
            rx.error(InputError::new(
                &rx.lab_file,
                Some(p.pos),
                "vulnerability_data.kev",
                why,
            ));
        }
    }
    Some(out)
}

pub fn policy(raw: Option<&RawPolicy>) -> VulnPolicy {
    let d = VulnPolicy::default();
    let Some(p) = raw else { return d };
    VulnPolicy {
        sbom_required: p.sbom.is_none_or(|s| s == SbomPolicy::Required),
        fix_within_days: p.fix_within_days.unwrap_or(d.fix_within_days),
    }
}
