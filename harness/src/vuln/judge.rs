//! Components against the lab's data: which shipped component has which known
//! vulnerability, and the three verdicts — VUL-01 (5.2-3: nothing in the KEV catalogue,
//! nothing fixed upstream long before the firmware was built), VUL-02 (5.2-2: nothing
//! fixed upstream long before today still shipped), VUL-03 (the SBOM describes the device).

use std::collections::BTreeSet;

use super::data::{Data, Vuln};
use super::sbom::Vex;
use super::version::VersionScheme;
use super::{Component, ComponentSource, aliases, key};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub component: String,
    pub version: String,
    /// Where the vulnerable version was seen (origin: place).
    pub seen: Vec<String>,
    /// Every id of the vulnerability (aliases merged: it counts once).
    pub ids: Vec<String>,
    pub severity: Option<String>,
    pub kev: bool,
    pub fixed: Option<String>,
    pub published: Option<String>,
    /// The maker's VEX statement about it, if any.
    pub vex: Option<Vex>,
    /// The data files that name it.
    pub files: Vec<String>,
}

impl Finding {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {} ({}): {}",
            self.component,
            self.version,
            self.seen.join("; "),
            self.ids.join(" / ")
        );
        if self.kev {
            s.push_str(", in the KEV catalogue (known exploited)");
        }
        if let Some(p) = &self.published {
            s.push_str(&format!(", published {p}"));
        }
        match &self.fixed {
            Some(f) => s.push_str(&format!(", fixed in {f}")),
            None => s.push_str(", no fixed version known"),
        }
        if let Some(sev) = &self.severity {
            s.push_str(&format!(", severity {sev}"));
        }
        s
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn days(d: &str) -> Option<i64> {
    let y: i64 = d.get(0..4)?.parse().ok()?;
    let m: i64 = d.get(5..7)?.parse().ok()?;
    let day: i64 = d.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Howard Hinnant's days_from_civil
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn ecosystem_base(e: &str) -> &str {
    e.split(':').next().unwrap_or(e)
}

/// Does this record's entry name this component, and at which version of it?
fn version_for<'c>(c: &'c Component, a: &super::data::Affected) -> Option<(&'c str, VersionScheme)> {
    match (&a.ecosystem, &c.ecosystem) {
        (Some(rec), Some(comp)) => {
            let same = ecosystem_base(rec) == ecosystem_base(comp) && (!rec.contains(':') || rec == comp);
            if !same {
                return None;
            }
            let scheme = VersionScheme::for_ecosystem(rec);
            match &c.source_package {
                Some((s, v)) if s == &a.name => Some((v.as_str(), scheme)),
                _ if c.name == a.name => Some((c.version.as_str(), scheme)),
                _ => None,
            }
        }
        // NVD by CPE: upstream release numbers only (a distribution's package carries its
        // backported fixes under the old upstream number: its own records judge it)
        (None, None) => {
            (c.cpe.as_deref() == Some(a.name.as_str())).then_some((c.version.as_str(), VersionScheme::Generic))
        }
        _ => None,
    }
}

/// Every (component, vulnerability) the data knows, one finding per component version and
/// vulnerability however many sources and aliases name them.
pub fn findings(components: &[Component], data: &Data, vex: &[Vex]) -> Vec<Finding> {
    let ix = data.index();
    let mut out: Vec<Finding> = Vec::new();
    for c in components {
        if covered_by_package(c, components) {
            continue;
        }
        let mut candidates: Vec<&Vuln> = candidate_keys(c).iter().flat_map(|k| ix.records(k)).collect();
        candidates.sort_by(|a, b| a.id.cmp(&b.id).then(a.file.cmp(&b.file)));
        candidates.dedup_by(|a, b| std::ptr::eq(*a, *b));
        for v in candidates {
            let Some(fixed) = affects(c, v) else { continue };
            let ids = ix.group(&v.id);
            let seen = format!("{}: {}", c.origin, c.seen_in);
            if let Some(f) = out
                .iter_mut()
                .find(|f| key(&f.component) == key(&c.name) && f.version == c.version && ids.contains(&f.ids[0]))
            {
                if !f.seen.contains(&seen) {
                    f.seen.push(seen);
                }
                if !f.files.contains(&v.file) {
                    f.files.push(v.file.clone());
                }
                if f.published.is_none() || v.published.is_some() && v.published < f.published {
                    f.published = v.published.clone();
                }
                f.fixed = f.fixed.take().or(fixed);
                f.severity = f.severity.take().or(v.severity.clone());
                continue;
            }
            let kev = ids.iter().any(|i| data.kev.contains_key(i));
            let names = aliases(c);
            let vex_of = vex
                .iter()
                .find(|x| {
                    ids.contains(&x.id) && (x.affects.is_empty() || x.affects.iter().any(|a| names.contains(&key(a))))
                })
                .cloned();
            let mut ids: Vec<String> = ids.into_iter().collect();
            // the CVE first: the id everyone searches for
            ids.sort_by_key(|i| (!i.starts_with("CVE-"), i.clone()));
            out.push(Finding {
                component: c.name.clone(),
                version: c.version.clone(),
                seen: vec![seen],
                ids,
                severity: v.severity.clone(),
                kev,
                fixed,
                published: v.published.clone(),
                vex: vex_of,
                files: vec![v.file.clone()],
            });
        }
    }
    out
}

/// An upstream version string (a binary's banner, a service's greeting) where a
/// distribution's package of the same software ships: the distribution backports fixes
/// under the old upstream number, so its own records judge it (Debian's OpenSSH 9.2p1 in
/// 1:9.2p1-2+deb12u3 is not vulnerable to what 9.2p1 upstream is).
fn covered_by_package(c: &Component, all: &[Component]) -> bool {
    c.ecosystem.is_none()
        && all
            .iter()
            .any(|d| d.ecosystem.is_some() && aliases(d).contains(&key(&c.name)))
}

/// The index keys under which records about this component are filed.
fn candidate_keys(c: &Component) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &c.ecosystem {
        out.push(super::data::package_key(e, &c.name));
        if let Some((s, _)) = &c.source_package {
            out.push(super::data::package_key(e, s));
        }
    }
    if let Some(cpe) = &c.cpe {
        out.push(format!("cpe|{cpe}"));
    }
    out
}

/// Some(fixed version or None) when the record affects this component's version.
fn affects(c: &Component, v: &Vuln) -> Option<Option<String>> {
    for a in &v.affected {
        let Some((ver, scheme)) = version_for(c, a) else {
            continue;
        };
        if a.versions.iter().any(|x| scheme.compare(x, ver).is_eq()) {
            let fixed = a.ranges.iter().find_map(|r| r.fixed.clone());
            return Some(fixed);
        }
        if let Some(r) = a.ranges.iter().find(|r| r.contains(ver, scheme)) {
            return Some(r.fixed.clone());
        }
    }
    None
}

/// Does the data name any of these components at all (whatever the version)? The search's
/// control: data that knows nothing of what the device ships cannot clear it.
pub fn known_products(components: &[Component], data: &Data) -> BTreeSet<String> {
    let ix = data.index();
    let mut out = BTreeSet::new();
    for c in components {
        let keys = candidate_keys(c);
        if keys
            .iter()
            .flat_map(|k| ix.records(k))
            .flat_map(|v| &v.affected)
            .any(|a| version_for(c, a).is_some())
        {
            out.insert(c.name.clone());
        }
    }
    out
}

/// Does `observed` agree with a version the SBOM lists? Exact, or the same upstream
/// release where one side is a distribution's package version (`1:1.35.0-4` is 1.35.0).
pub fn versions_agree(observed: &str, listed: &str) -> bool {
    fn upstream(v: &str) -> &str {
        let v = v
            .split_once(':')
            .filter(|(e, _)| e.chars().all(|c| c.is_ascii_digit()))
            .map_or(v, |(_, r)| r);
        match v.rsplit_once('-') {
            Some((u, rev)) if rev.chars().next().is_some_and(|c| c.is_ascii_digit()) => u,
            _ => v,
        }
    }
    let clean = |v: &str| upstream(v).trim_start_matches(['v', 'V']).to_string();
    observed == listed
        || clean(observed) == clean(listed)
        || clean(listed).starts_with(&format!("{}.dfsg", clean(observed)))
}

/// VUL-03: each component seen in the image or on the device, against the SBOM. The
/// differences, each with where the component was seen.
pub fn sbom_differences(components: &[Component]) -> Vec<String> {
    let listed: Vec<&Component> = components
        .iter()
        .filter(|c| c.origin == ComponentSource::Sbom)
        .collect();
    let mut out = Vec::new();
    let mut said: BTreeSet<(String, String)> = BTreeSet::new();
    for c in components.iter().filter(|c| c.origin != ComponentSource::Sbom) {
        if !said.insert((key(&c.name), c.version.clone())) {
            continue;
        }
        let names = aliases(c);
        let same_name: Vec<&&Component> = listed
            .iter()
            .filter(|l| aliases(l).iter().any(|n| names.contains(n)))
            .collect();
        if same_name.is_empty() {
            out.push(format!(
                "{} {} ({}: {}) is not in the SBOM",
                c.name, c.version, c.origin, c.seen_in
            ));
        } else if !same_name.iter().any(|l| versions_agree(&c.version, &l.version)) {
            let theirs: Vec<String> = same_name.iter().map(|l| l.version.clone()).collect();
            out.push(format!(
                "{} {} ({}: {}) is listed in the SBOM as version {}",
                c.name,
                c.version,
                c.origin,
                c.seen_in,
                theirs.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(name: &str, version: &str, origin: ComponentSource, cpe: Option<&str>) -> Component {
        Component {
            name: name.into(),
            version: version.into(),
            ecosystem: None,
            source_package: None,
            purl: None,
            cpe: cpe.map(str::to_string),
            origin,
            seen_in: "here".into(),
        }
    }

    #[test]
    fn days_count_from_the_epoch() {
        assert_eq!(days("1970-01-01"), Some(0));
        assert_eq!(days("2014-04-07"), Some(16167));
        assert_eq!(days("2026-12-07").zip(days("2026-09-08")).map(|(a, b)| a - b), Some(90));
        assert_eq!(days("2026-13-01"), None);
    }

    #[test]
    fn a_cpe_range_matches_the_upstream_version_and_aliases_count_once() {
        let mut d = Data::default();
        d.load_nvd(
            "nvd.json",
            r#"{"format":"NVD_CVE","version":"2.0","timestamp":"2026-12-01T00:00:00.000","vulnerabilities":[
              {"cve":{"id":"CVE-2014-0160","published":"2014-04-07T22:55:03.893","configurations":[{"nodes":[{"operator":"OR","negate":false,"cpeMatch":[
                {"vulnerable":true,"criteria":"cpe:2.3:a:openssl:openssl:*:*:*:*:*:*:*:*","versionStartIncluding":"1.0.1","versionEndExcluding":"1.0.1g"}]}]}]}}]}"#,
        )
        .expect("nvd");
        d.osv_record(
            "osv.json",
            r#"{"id":"DSA-2896-1","modified":"2026-11-01T00:00:00Z","aliases":["CVE-2014-0160"],"affected":[{"package":{"ecosystem":"Debian:7","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0.1e-2+deb7u5"}]}]}]}"#,
        )
        .expect("osv");
        d.load_kev("kev.json", r#"{"dateReleased":"2026-12-01T00:00:00.000Z","vulnerabilities":[{"cveID":"CVE-2014-0160","dateAdded":"2022-05-04"}]}"#)
            .expect("kev");
        let comps = [
            comp("openssl", "1.0.1f", ComponentSource::Device, Some("openssl:openssl")),
            comp("openssl", "1.0.1f", ComponentSource::Image, Some("openssl:openssl")),
            comp("openssl", "1.0.1g", ComponentSource::Image, Some("openssl:openssl")),
        ];
        let f = findings(&comps, &d, &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].ids, ["CVE-2014-0160", "DSA-2896-1"]);
        assert!(f[0].kev);
        assert_eq!(f[0].seen.len(), 2);
        assert_eq!(f[0].fixed.as_deref(), Some("1.0.1g"));
        let mut deb = comp("libssl1.0.0", "1.0.1e-2+deb7u4", ComponentSource::Image, None);
        deb.ecosystem = Some("Debian:7".into());
        deb.source_package = Some(("openssl".into(), "1.0.1e-2+deb7u4".into()));
        assert_eq!(findings(&[deb.clone()], &d, &[]).len(), 1);
        deb.source_package = Some(("openssl".into(), "1.0.1e-2+deb7u5".into()));
        assert!(findings(&[deb.clone()], &d, &[]).is_empty());
        assert_eq!(
            known_products(&[deb], &d).len(),
            1,
            "named, not affected: the control still sees it"
        );
    }

    #[test]
    fn the_sbom_must_name_every_observed_version() {
        let comps = [
            comp("busybox", "1:1.36.1-3", ComponentSource::Sbom, None),
            comp("openssl", "3.0.15", ComponentSource::Sbom, Some("openssl:openssl")),
            comp("busybox", "1.36.1", ComponentSource::Device, None),
            comp("openssl", "3.0.13", ComponentSource::Image, Some("openssl:openssl")),
            comp("dropbear", "2022.83", ComponentSource::Device, None),
        ];
        let d = sbom_differences(&comps);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("openssl 3.0.13") && d[0].contains("3.0.15"), "{d:?}");
        assert!(
            d[1].contains("dropbear 2022.83") && d[1].contains("not in the SBOM"),
            "{d:?}"
        );
    }
}

/// Software nobody here wrote: a root file system assembled from real Debian packages (the
/// tree and dpkg database .ci/run extracts), packed as a maker would (tar.gz) and scanned.
#[cfg(test)]
mod debian_tree {
    use super::*;
    use crate::vuln::image;

    fn repo() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// (scan of the tree packed as tar.gz, the tree's folder) with `status` as its database.
    fn packed(status: &str) -> Option<(image::Scan, tempfile::TempDir)> {
        let vs = std::path::Path::new("/var/cache/certbench-deps/vstrings");
        if !vs.join("status").is_file() {
            assert!(std::env::var_os("CI").is_none(), "under CI .ci/run extracts the tree");
            eprintln!("no extracted Debian tree here (.ci/run makes it)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("rootfs");
        let ok = std::process::Command::new("cp")
            .args(["-a", &vs.join("root").to_string_lossy(), &root.to_string_lossy()])
            .status()
            .expect("cp")
            .success();
        assert!(ok);
        std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).expect("mkdir");
        std::fs::write(root.join("var/lib/dpkg/status"), status).expect("status");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::copy("/etc/os-release", root.join("etc/os-release")).expect("os-release");
        let tgz = dir.path().join("rootfs.tar.gz");
        let ok = std::process::Command::new("tar")
            .args(["-czf", &tgz.to_string_lossy(), "-C", &root.to_string_lossy(), "."])
            .status()
            .expect("tar")
            .success();
        assert!(ok);
        let bytes = std::fs::read(&tgz).expect("read");
        Some((image::scan_bytes("rootfs.tar.gz", &bytes), dir))
    }

    fn data() -> Data {
        let mut d = Data::default();
        d.load_osv(
            &repo().join("fixtures/vulndata/osv"),
            "osv",
            &[&repo().join("fixtures/vulndata")],
        )
        .expect("osv");
        let nvd = std::fs::read_to_string(repo().join("fixtures/vulndata/nvdcve-2.0-terrapin.json")).expect("nvd");
        d.load_nvd("nvd", &nvd).expect("nvd");
        d
    }

    #[test]
    fn a_debian_tree_is_read_as_dpkg_reads_it_and_judged_by_debians_records() {
        let status = match std::fs::read_to_string("/var/cache/certbench-deps/vstrings/status") {
            Ok(s) => s,
            Err(_) => {
                assert!(std::env::var_os("CI").is_none(), "under CI .ci/run extracts the tree");
                return;
            }
        };
        let Some((scan, dir)) = packed(&status) else { return };
        // 1. the packages, exactly as dpkg-query lists them from the same database
        let out = std::process::Command::new("dpkg-query")
            .args([
                &format!("--admindir={}", dir.path().join("rootfs/var/lib/dpkg").display()),
                "-W",
                "-f=${Package} ${Version}\n",
            ])
            .output()
            .expect("dpkg-query");
        let want: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let got: BTreeSet<String> = scan
            .components
            .iter()
            .filter(|c| c.ecosystem.is_some())
            .map(|c| format!("{} {}", c.name, c.version))
            .collect();
        assert_eq!(got, want);
        assert!(
            scan.components
                .iter()
                .filter(|c| c.ecosystem.is_some())
                .all(|c| c.ecosystem.as_deref() == Some("Debian:12"))
        );
        // 2. the version strings in the binaries, the packages' upstream versions
        let strings: BTreeSet<String> = scan
            .components
            .iter()
            .filter(|c| c.ecosystem.is_none())
            .map(|c| format!("{} {}", c.name, c.version))
            .collect();
        for (name, package) in [
            ("dropbear", "dropbear-bin"),
            ("wpa_supplicant", "wpasupplicant"),
            ("hostapd", "hostapd"),
            ("miniupnpd", "miniupnpd-nftables"),
            ("avahi", "avahi-daemon"),
            ("u-boot", "u-boot-qemu"),
            ("openssh", "openssh-server"),
        ] {
            let v = want
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{package} ")))
                .expect("package");
            let v = v.split_once(':').map_or(v, |(_, r)| r);
            let upstream = v.rsplit_once('-').map_or(v, |(u, _)| u).split('+').next().unwrap_or(v);
            assert!(
                strings.contains(&format!("{name} {upstream}")),
                "{name} {upstream} not in {strings:?}"
            );
        }
        // 3. Debian's records judge Debian's packages: this tree has the fixes (none); the
        //    upstream numbers in the binaries are Debian's packages', not judged by NVD
        let d = data();
        let f = findings(&scan.components, &d, &[]);
        assert!(f.is_empty(), "{f:?}");
        // the same tree as it stood with bookworm's 1:9.2p1-2+deb12u1: both advisories, once each
        let old = status.replace("Version: 1:9.2p1-2+deb12u10", "Version: 1:9.2p1-2+deb12u1");
        assert_ne!(old, status);
        let Some((scan, _d)) = packed(&old) else { return };
        let f = findings(&scan.components, &d, &[]);
        let got: Vec<String> = f
            .iter()
            .map(|x| format!("{} {}: {}", x.component, x.version, x.ids.join(" ")))
            .collect();
        assert_eq!(
            got,
            [
                "openssh-server 1:9.2p1-2+deb12u1: CVE-2023-48795 DSA-5586-1",
                "openssh-server 1:9.2p1-2+deb12u1: CVE-2024-6387 DSA-5724-1"
            ]
        );
        assert_eq!(f[0].fixed.as_deref(), Some("1:9.2p1-2+deb12u2"));
        // without the package database the binaries' upstream numbers are all there is:
        // NVD's ranges match them (Terrapin in OpenSSH 9.2p1 and Dropbear 2022.83)
        let bare: Vec<Component> = scan
            .components
            .iter()
            .filter(|c| c.ecosystem.is_none())
            .cloned()
            .collect();
        let f = findings(&bare, &d, &[]);
        let mut got: Vec<String> = f
            .iter()
            .map(|x| format!("{} {}: {}", x.component, x.version, x.ids.join(" ")))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "dropbear 2022.83: CVE-2023-48795 DSA-5586-1",
                "openssh 9.2p1: CVE-2023-48795 DSA-5586-1"
            ]
        );
    }
}
