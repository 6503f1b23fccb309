//! The lab's offline vulnerability data, read as labs get it: OSV records (a directory of
//! JSON files, or the per-ecosystem `all.zip` the OSV project publishes), NVD CVE JSON 2.0
//! feeds (CPE configurations) and the CISA KEV catalogue. Each file's date is kept: a run
//! says how current its data was, and stale data decides nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

/// One vulnerability as a record states it.
#[derive(Debug, Clone, Default)]
pub struct Vuln {
    pub id: String,
    pub aliases: Vec<String>,
    /// `YYYY-MM-DD`.
    pub published: Option<String>,
    pub severity: Option<String>,
    pub affected: Vec<Affected>,
    /// The file it came from.
    pub file: String,
}

#[derive(Debug, Clone, Default)]
pub struct Affected {
    /// OSV: the ecosystem (`Debian:12`); NVD: None (a CPE product).
    pub ecosystem: Option<String>,
    /// OSV: the package; NVD: `vendor:product`.
    pub name: String,
    pub ranges: Vec<Range>,
    /// Versions listed one by one (OSV `versions`, an NVD CPE naming one version).
    pub versions: Vec<String>,
}

/// OSV's events, in order; NVD's start/end bounds are written as the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Range {
    pub introduced: Option<String>,
    pub introduced_excluding: bool,
    pub fixed: Option<String>,
    pub last_affected: Option<String>,
}

/// Everything the lab supplied, loaded.
#[derive(Debug, Default)]
pub struct Data {
    pub vulns: Vec<Vuln>,
    /// CVE ids in the KEV catalogue, with the date each was added.
    pub kev: BTreeMap<String, String>,
    /// Each file and how current it is (`YYYY-MM-DD`).
    pub files: Vec<(String, String)>,
    /// Records skipped, and why (withdrawn, GIT-only ranges), counted.
    pub skipped: BTreeMap<String, usize>,
}

/// The OSV ecosystems whose versions certbench compares (dpkg's order for Debian, Ubuntu
/// and OpenWrt, the upstream order for the others). Records of other ecosystems are skipped
/// and counted, never compared in an order that is not theirs.
pub const ECOSYSTEMS: &[&str] = &[
    "Debian",
    "Ubuntu",
    "OpenWrt",
    "Alpine",
    "crates.io",
    "PyPI",
    "npm",
    "Go",
    "Maven",
    "NuGet",
    "RubyGems",
    "Packagist",
    "Hex",
    "Pub",
    "Wolfi",
    "Chainguard",
];

fn date(s: &str) -> Option<String> {
    let d = s.get(..10)?;
    let ok = d.len() == 10
        && d.as_bytes()[4] == b'-'
        && d.as_bytes()[7] == b'-'
        && d.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    ok.then(|| d.to_string())
}

#[derive(Deserialize)]
struct OsvRecord {
    id: String,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    severity: Vec<OsvSeverity>,
    #[serde(default)]
    affected: Vec<OsvAffected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct OsvAffected {
    #[serde(default)]
    package: Option<OsvPackage>,
    #[serde(default)]
    ranges: Vec<OsvRange>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    events: Vec<BTreeMap<String, String>>,
}

/// A file of the lab's data that cannot be read: which, where, why.
pub fn err(file: &str, e: &serde_json::Error, what: &str) -> String {
    format!("{file}: line {}, column {}: not {what}: {e}", e.line(), e.column())
}

impl Data {
    /// One OSV record (JSON text).
    pub fn osv_record(&mut self, file: &str, text: &str) -> Result<Option<String>, String> {
        let r: OsvRecord = serde_json::from_str(text).map_err(|e| err(file, &e, "an OSV record"))?;
        let modified = r.modified.as_deref().and_then(date);
        if r.withdrawn.is_some() {
            *self.skipped.entry("withdrawn".into()).or_default() += 1;
            return Ok(modified);
        }
        let mut affected = Vec::new();
        for a in r.affected {
            let Some(p) = a.package else { continue };
            let base = p.ecosystem.split(':').next().unwrap_or("");
            if !ECOSYSTEMS.contains(&base) {
                *self
                    .skipped
                    .entry(format!("ecosystem {base:?} (its versions are not compared)"))
                    .or_default() += 1;
                continue;
            }
            let mut ranges = Vec::new();
            for rg in a.ranges {
                if rg.kind == "GIT" {
                    *self
                        .skipped
                        .entry("GIT ranges (commits, not versions)".into())
                        .or_default() += 1;
                    continue;
                }
                ranges.extend(events_to_ranges(&rg.events));
            }
            affected.push(Affected {
                ecosystem: Some(p.ecosystem),
                name: p.name,
                ranges,
                versions: a.versions,
            });
        }
        let severity = r
            .severity
            .iter()
            .find(|s| s.kind.starts_with("CVSS"))
            .map(|s| s.score.clone())
            .or_else(|| {
                r.database_specific
                    .as_ref()
                    .and_then(|d| d.get("severity"))
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
            });
        self.vulns.push(Vuln {
            id: r.id,
            aliases: r.aliases,
            published: r.published.as_deref().and_then(date),
            severity,
            affected,
            file: file.to_string(),
        });
        Ok(modified)
    }

    /// OSV records: a `.json` file, a directory of them, or a `.zip` of them. Every file is
    /// read through the confined, bounded reader, inside `roots` (the lab file's folder):
    /// a link in the folder that leads out of it is refused, not followed.
    pub fn load_osv(&mut self, path: &Path, label: &str, roots: &[&Path]) -> Result<(), String> {
        let read = |p: &Path| crate::util::read_user_file(p, roots, crate::util::limits::IMAGE);
        let text = |p: &Path, name: &str| {
            crate::util::read_user_text(p, roots, crate::util::limits::IMAGE).map_err(|e| format!("{name}: {e}"))
        };
        let mut newest: Option<String> = None;
        let mut keep = |d: Option<String>| {
            if d > newest {
                newest = d;
            }
        };
        if path.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| format!("{label}: {e}"))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            names.sort();
            for p in names {
                let name = format!(
                    "{label}/{}",
                    p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
                );
                keep(self.osv_record(&name, &text(&p, &name)?)?);
            }
        } else if path.extension().is_some_and(|x| x == "zip") {
            let bytes = read(path).map_err(|e| format!("{label}: {e}"))?;
            let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
                .map_err(|e| format!("{label}: not a zip archive OSV publishes: {e}"))?;
            for i in 0..z.len() {
                let mut entry = z.by_index(i).map_err(|e| format!("{label}: entry {i}: {e}"))?;
                if !entry.name().ends_with(".json") {
                    continue;
                }
                let name = format!("{label}:{}", entry.name());
                let mut text = String::new();
                entry
                    .by_ref()
                    .take(16 << 20)
                    .read_to_string(&mut text)
                    .map_err(|e| format!("{name}: {e} (a truncated or damaged archive)"))?;
                keep(self.osv_record(&name, &text)?);
            }
        } else {
            keep(self.osv_record(label, &text(path, label)?)?);
        }
        let when = newest
            .ok_or_else(|| format!("{label}: no OSV record with a `modified` date: how current it is is unknown"))?;
        self.files.push((label.to_string(), when));
        Ok(())
    }

    /// The CISA KEV catalogue (`known_exploited_vulnerabilities.json`).
    pub fn load_kev(&mut self, label: &str, text: &str) -> Result<(), String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Kev {
            date_released: String,
            vulnerabilities: Vec<KevEntry>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct KevEntry {
            #[serde(rename = "cveID")]
            cve_id: String,
            date_added: String,
        }
        let k: Kev = serde_json::from_str(text).map_err(|e| err(label, &e, "the CISA KEV catalogue"))?;
        let when = date(&k.date_released)
            .ok_or_else(|| format!("{label}: dateReleased {:?} is not a date", k.date_released))?;
        for v in k.vulnerabilities {
            self.kev.insert(v.cve_id, v.date_added);
        }
        self.files.push((label.to_string(), when));
        Ok(())
    }

    /// An NVD CVE JSON 2.0 feed.
    pub fn load_nvd(&mut self, label: &str, text: &str) -> Result<(), String> {
        let f: nvd::Feed = serde_json::from_str(text).map_err(|e| err(label, &e, "an NVD CVE JSON 2.0 feed"))?;
        if f.format != "NVD_CVE" {
            return Err(format!("{label}: format {:?} is not NVD_CVE", f.format));
        }
        let when = date(&f.timestamp).ok_or_else(|| format!("{label}: timestamp {:?} is not a date", f.timestamp))?;
        for item in f.vulnerabilities {
            let c = item.cve;
            if c.vuln_status.as_deref() == Some("Rejected") {
                *self.skipped.entry("rejected".into()).or_default() += 1;
                continue;
            }
            let affected: Vec<Affected> = c
                .configurations
                .iter()
                .flat_map(|x| &x.nodes)
                .filter(|n| !n.negate)
                .flat_map(|n| &n.cpe_match)
                .filter_map(nvd_affected)
                .collect();
            let severity = c.metrics.as_ref().and_then(nvd_severity);
            self.vulns.push(Vuln {
                id: c.id,
                aliases: Vec::new(),
                published: c.published.as_deref().and_then(date),
                severity,
                affected,
                file: label.to_string(),
            });
        }
        self.files.push((label.to_string(), when));
        Ok(())
    }

    /// The oldest file's date: the data is as current as that.
    pub fn as_of(&self) -> Option<&str> {
        self.files.iter().map(|(_, d)| d.as_str()).min()
    }

    /// Groups of ids naming one vulnerability (a CVE and the DSA/GHSA that alias it).
    pub fn alias_groups(&self) -> Vec<BTreeSet<String>> {
        let ix = self.index();
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut out = Vec::new();
        for v in &self.vulns {
            if done.contains(&v.id) {
                continue;
            }
            let g = ix.group(&v.id);
            done.extend(g.iter().cloned());
            out.push(g);
        }
        out
    }

    /// The lookups matching needs, built once: records by package (`ecosystem|name`, the
    /// ecosystem without its release) and by CPE product (`cpe|vendor:product`), and every
    /// id and alias to the records that carry it.
    pub fn index(&self) -> Index<'_> {
        let mut by_package: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, v) in self.vulns.iter().enumerate() {
            for a in &v.affected {
                let k = match &a.ecosystem {
                    Some(e) => package_key(e, &a.name),
                    None => format!("cpe|{}", a.name),
                };
                let list = by_package.entry(k).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
            by_id.entry(v.id.as_str()).or_default().push(i);
            for al in &v.aliases {
                by_id.entry(al.as_str()).or_default().push(i);
            }
        }
        Index {
            data: self,
            by_package,
            by_id,
        }
    }
}

/// What one vulnerable CPE match of an NVD record affects: a version, or a range (no bound
/// named: every version).
fn nvd_affected(m: &nvd::CpeMatch) -> Option<Affected> {
    if !m.vulnerable {
        return None;
    }
    let parts: Vec<&str> = m.criteria.split(':').collect();
    let (Some(vendor), Some(product), Some(version)) = (parts.get(3), parts.get(4), parts.get(5)) else {
        return None;
    };
    let name = format!("{vendor}:{product}");
    let mut a = Affected {
        ecosystem: None,
        name,
        ..Affected::default()
    };
    if *version != "*" && *version != "-" {
        let update = parts.get(6).filter(|u| **u != "*" && **u != "-").copied().unwrap_or("");
        a.versions.push(format!("{version}{update}"));
    } else {
        let start = m.version_start_including.clone().or(m.version_start_excluding.clone());
        let (fixed, last) = (m.version_end_excluding.clone(), m.version_end_including.clone());
        if start.is_none() && fixed.is_none() && last.is_none() {
            // every version: an NVD record that names no bound
            a.ranges.push(Range {
                introduced: Some("0".into()),
                ..Range::default()
            });
        } else {
            a.ranges.push(Range {
                introduced_excluding: m.version_start_excluding.is_some(),
                introduced: start.or(Some("0".into())),
                fixed,
                last_affected: last,
            });
        }
    }
    Some(a)
}

/// An NVD record's CVSS base score and vector, the newest CVSS version first.
fn nvd_severity(m: &serde_json::Value) -> Option<String> {
    ["cvssMetricV31", "cvssMetricV30", "cvssMetricV2"].iter().find_map(|k| {
        let d = m.get(*k)?.get(0)?.get("cvssData")?;
        Some(format!(
            "{} {}",
            d.get("baseScore")?,
            d.get("vectorString").and_then(|v| v.as_str()).unwrap_or("")
        ))
    })
}

/// The parts of an NVD CVE JSON 2.0 feed certbench reads.
mod nvd {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct Feed {
        pub(super) format: String,
        pub(super) timestamp: String,
        pub(super) vulnerabilities: Vec<Item>,
    }
    #[derive(Deserialize)]
    pub(super) struct Item {
        pub(super) cve: Cve,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Cve {
        pub(super) id: String,
        #[serde(default)]
        pub(super) published: Option<String>,
        #[serde(default)]
        pub(super) vuln_status: Option<String>,
        #[serde(default)]
        pub(super) metrics: Option<serde_json::Value>,
        #[serde(default)]
        pub(super) configurations: Vec<Config>,
    }
    #[derive(Deserialize)]
    pub(super) struct Config {
        pub(super) nodes: Vec<Node>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Node {
        #[serde(default)]
        pub(super) negate: bool,
        #[serde(default)]
        pub(super) cpe_match: Vec<CpeMatch>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct CpeMatch {
        pub(super) vulnerable: bool,
        pub(super) criteria: String,
        pub(super) version_start_including: Option<String>,
        pub(super) version_start_excluding: Option<String>,
        pub(super) version_end_including: Option<String>,
        pub(super) version_end_excluding: Option<String>,
    }
}

/// `Debian:12`, `openssl` → `Debian|openssl`.
pub fn package_key(ecosystem: &str, name: &str) -> String {
    format!("{}|{name}", ecosystem.split(':').next().unwrap_or(ecosystem))
}

/// See [`Data::index`].
#[derive(Debug)]
pub struct Index<'d> {
    data: &'d Data,
    by_package: HashMap<String, Vec<usize>>,
    by_id: HashMap<&'d str, Vec<usize>>,
}

impl<'d> Index<'d> {
    /// The records that name this package or CPE product.
    pub fn records(&self, key: &str) -> impl Iterator<Item = &'d Vuln> + '_ {
        self.by_package
            .get(key)
            .into_iter()
            .flatten()
            .map(|&i| &self.data.vulns[i])
    }

    /// Every id that names the same vulnerability as `id` (aliases followed both ways).
    pub fn group(&self, id: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        let mut todo = vec![id.to_string()];
        while let Some(x) = todo.pop() {
            if !out.insert(x.clone()) {
                continue;
            }
            for &i in self.by_id.get(x.as_str()).into_iter().flatten() {
                let v = &self.data.vulns[i];
                for y in std::iter::once(&v.id).chain(&v.aliases) {
                    if !out.contains(y) {
                        todo.push(y.clone());
                    }
                }
            }
        }
        out
    }
}

/// OSV events (`introduced`, `fixed`, `last_affected`, `limit`) in order → ranges.
fn events_to_ranges(events: &[BTreeMap<String, String>]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for e in events {
        if let Some(i) = e.get("introduced") {
            if let Some(o) = open.take() {
                out.push(Range {
                    introduced: Some(o),
                    ..Range::default()
                });
            }
            open = Some(i.clone());
        } else if let Some(f) = e.get("fixed") {
            out.push(Range {
                introduced: open.take().or(Some("0".into())),
                fixed: Some(f.clone()),
                ..Range::default()
            });
        } else if let Some(l) = e.get("last_affected") {
            out.push(Range {
                introduced: open.take().or(Some("0".into())),
                last_affected: Some(l.clone()),
                ..Range::default()
            });
        }
    }
    if let Some(o) = open {
        out.push(Range {
            introduced: Some(o),
            ..Range::default()
        });
    }
    out
}

impl Range {
    pub fn contains(&self, v: &str, scheme: super::version::VersionScheme) -> bool {
        use std::cmp::Ordering::*;
        let after_start = match self.introduced.as_deref() {
            None | Some("0") => true,
            Some(i) => match scheme.compare(v, i) {
                Greater => true,
                Equal => !self.introduced_excluding,
                Less => false,
            },
        };
        let before_end = match (&self.fixed, &self.last_affected) {
            (Some(f), _) => scheme.compare(v, f) == Less,
            (None, Some(l)) => scheme.compare(v, l) != Greater,
            (None, None) => true,
        };
        after_start && before_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vuln::version::VersionScheme;

    #[test]
    fn osv_events_become_ranges_and_withdrawn_records_are_skipped() {
        let mut d = Data::default();
        d.osv_record(
            "a.json",
            r#"{"id":"X-1","modified":"2026-11-30T00:00:00Z","published":"2014-04-07T00:00:00Z","aliases":["CVE-2014-0160"],
               "affected":[{"package":{"ecosystem":"Debian:7","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0.1e-2+deb7u5"}]},{"type":"GIT","events":[{"introduced":"abc"}]}]}]}"#,
        )
        .expect("reads");
        d.osv_record(
            "b.json",
            r#"{"id":"X-2","modified":"2026-01-01T00:00:00Z","withdrawn":"2026-01-02T00:00:00Z"}"#,
        )
        .expect("reads");
        assert_eq!(d.vulns.len(), 1);
        let r = &d.vulns[0].affected[0].ranges[0];
        assert!(r.contains("1.0.1e-2+deb7u4", VersionScheme::Dpkg));
        assert!(!r.contains("1.0.1e-2+deb7u5", VersionScheme::Dpkg));
        assert_eq!(d.skipped.get("withdrawn"), Some(&1));
        d.osv_record(
            "e.json",
            r#"{"id":"X-3","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Mystery:1","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}"#,
        )
        .expect("reads");
        assert_eq!(
            d.skipped.get("ecosystem \"Mystery\" (its versions are not compared)"),
            Some(&1),
            "{:?}",
            d.skipped
        );
        assert!(
            d.osv_record("c.json", "{\"id\": 1}")
                .expect_err("bad")
                .contains("line 1")
        );
    }

    /// A lab's OSV folder is read through the confined reader: a record linked in from
    /// outside the lab's folder is refused, naming it.
    #[test]
    fn an_osv_folder_cannot_lead_out_of_the_labs_folder() {
        let outside = tempfile::tempdir().expect("tempdir");
        let lab = tempfile::tempdir().expect("tempdir");
        let rec = r#"{"id":"X-1","modified":"2026-12-01T00:00:00Z"}"#;
        std::fs::write(outside.path().join("x.json"), rec).expect("write");
        let osv = lab.path().join("osv");
        std::fs::create_dir(&osv).expect("mkdir");
        std::fs::write(osv.join("a.json"), rec).expect("write");
        let mut d = Data::default();
        d.load_osv(&osv, "osv", &[lab.path()]).expect("inside: read");
        std::os::unix::fs::symlink(outside.path().join("x.json"), osv.join("b.json")).expect("link");
        let e = Data::default()
            .load_osv(&osv, "osv", &[lab.path()])
            .expect_err("a link out is refused");
        assert!(e.starts_with("osv/b.json: "), "{e}");
    }

    #[test]
    fn ranges_follow_their_bounds() {
        let last = Range {
            introduced: Some("1.0".into()),
            last_affected: Some("1.2".into()),
            ..Range::default()
        };
        assert!(last.contains("1.2", VersionScheme::Generic) && !last.contains("1.2.1", VersionScheme::Generic));
        assert!(!last.contains("0.9", VersionScheme::Generic));
        let excl = Range {
            introduced: Some("1.0".into()),
            introduced_excluding: true,
            fixed: Some("2.0".into()),
            ..Range::default()
        };
        assert!(!excl.contains("1.0", VersionScheme::Generic) && excl.contains("1.5", VersionScheme::Generic));
    }

    #[test]
    fn aliases_merge_into_one_vulnerability() {
        let mut d = Data::default();
        for (id, al) in [
            ("DSA-1", r#"["CVE-1"]"#),
            ("CVE-1", "[]"),
            ("GHSA-x", r#"["CVE-1"]"#),
            ("CVE-2", "[]"),
        ] {
            d.osv_record(
                "f",
                &format!(r#"{{"id":"{id}","modified":"2026-01-01T00:00:00Z","aliases":{al}}}"#),
            )
            .expect("reads");
        }
        let g = d.alias_groups();
        assert_eq!(g.len(), 2, "{g:?}");
    }
}
