//! Vulnerability management by outcome (VUL-01..03, EN 303 645 5.2-2, 5.2-3): what the
//! firmware ships — from the maker's SBOM, the firmware image and the running device —,
//! what the lab's offline vulnerability data knows about it, and the verdicts.
//!
//! Everything here is pure: bytes and text in, findings out. The engine step
//! (`engine::steps::vulns`) gathers the inputs from the device and the bench.

pub mod data;
pub mod image;
pub mod judge;
pub mod sbom;
pub mod strings;
pub mod version;

use std::collections::BTreeMap;

/// One component as one source saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Component {
    /// The name the source gives (dpkg: the binary package; a version string: the table's).
    pub name: String,
    pub version: String,
    /// The OSV ecosystem its version belongs to (`Debian:12`, `Alpine:v3.18`, …); None:
    /// an upstream release number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
    /// The distribution's source package and its version, where they differ (dpkg
    /// `Source:`): vulnerability records of distributions name source packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_package: Option<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// NVD CPE `vendor:product`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpe: Option<String>,
    /// Where it was seen: `sbom`, `image`, `device`.
    pub origin: ComponentSource,
    /// What exactly: a file in the image, a service's banner, a line of the SBOM.
    pub seen_in: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentSource {
    Sbom,
    Image,
    Device,
}

impl std::fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ComponentSource::Sbom => "the SBOM",
            ComponentSource::Image => "the image",
            ComponentSource::Device => "the device",
        })
    }
}

/// A name the sources agree on: lower case, a distribution's library/package prefixes
/// and suffixes left as they are (the SBOM must name what the image names).
pub fn key(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

/// The names one component may go by in other sources: its own, its source package's,
/// and the product of its CPE (`openbsd:openssh` → `openssh`).
pub fn aliases(c: &Component) -> Vec<String> {
    let mut out = vec![key(&c.name)];
    if let Some((s, _)) = &c.source_package {
        out.push(key(s));
    }
    if let Some(cpe) = &c.cpe
        && let Some((_, product)) = cpe.split_once(':')
    {
        out.push(key(product));
    }
    if let Some(p) = c.purl.as_deref().and_then(purl_name) {
        out.push(key(&p));
    }
    out.sort();
    out.dedup();
    out
}

/// `pkg:deb/debian/openssl@3.0.11-1?arch=amd64` → `openssl`.
pub fn purl_name(purl: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:")?;
    let path = rest.split(['@', '?', '#']).next()?;
    Some(path.rsplit('/').next()?.to_string())
}

/// A purl's `upstream` qualifier (syft and Debian tooling write the source package there:
/// `pkg:deb/debian/libssl3@3.0.11-1?upstream=openssl`).
pub fn purl_upstream(purl: &str) -> Option<String> {
    let q = purl.split_once('?')?.1.split('#').next()?;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("upstream="))
        .map(|v| v.replace("%40", "@").replace("%2B", "+"))
        .map(|v| v.split('@').next().unwrap_or(&v).to_string())
}

/// `pkg:deb/debian/openssl@3.0.11-1?distro=debian-12` → the OSV ecosystem, where the purl
/// type has one.
pub fn purl_ecosystem(purl: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:")?;
    let (ty, path) = rest.split_once('/')?;
    let ns = path.split('/').next().unwrap_or("");
    Some(
        match (ty, ns) {
            ("deb", "debian") => "Debian",
            ("deb", "ubuntu") => "Ubuntu",
            ("apk", "alpine") => "Alpine",
            ("cargo", _) => "crates.io",
            ("pypi", _) => "PyPI",
            ("npm", _) => "npm",
            ("golang", _) => "Go",
            ("opkg", _) | ("openwrt", _) => "OpenWrt",
            _ => return None,
        }
        .to_string(),
    )
}

/// Every source's components, merged by name: name → (origin → versions with where seen).
pub type ComponentIndex = BTreeMap<String, Vec<Component>>;

pub fn inventory(all: &[Component]) -> ComponentIndex {
    let mut out: ComponentIndex = BTreeMap::new();
    for c in all {
        out.entry(key(&c.name)).or_default().push(c.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purl_names_its_package_and_ecosystem() {
        let p = "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12";
        assert_eq!(purl_name(p).as_deref(), Some("openssl"));
        assert_eq!(purl_ecosystem(p).as_deref(), Some("Debian"));
        assert_eq!(purl_name("pkg:generic/busybox@1.36.1").as_deref(), Some("busybox"));
        assert_eq!(purl_ecosystem("pkg:generic/busybox@1.36.1"), None);
        assert_eq!(purl_name("not a purl"), None);
        assert_eq!(
            purl_upstream("pkg:deb/debian/libssl3@3.0.11-1?arch=amd64&upstream=openssl&distro=debian-12").as_deref(),
            Some("openssl")
        );
        assert_eq!(purl_upstream(p), None);
    }
}
