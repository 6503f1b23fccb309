//! What the maker says the firmware ships (`software:` in the profile) and the lab's
//! vulnerability data and policy (`vulnerability_data:`, `policy:` in the lab file),
//! validated, for VUL-01..03.

use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct Software {
    /// The maker's SBOM (CycloneDX or SPDX JSON), absolute.
    pub sbom: Option<PathBuf>,
    /// The maker's OpenVEX document, absolute.
    pub vex: Option<PathBuf>,
    /// Typed at the console's shell: its output is read for version strings and os-release.
    pub components_command: Option<String>,
    /// When the firmware was built (`YYYY-MM-DD`), where the SBOM does not say.
    pub build_date: Option<String>,
    /// Components the maker declares no update replaces (a boot ROM), with the reason.
    pub not_updateable: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct VulnData {
    /// OSV records: JSON files, directories of them, or OSV's zip archives (absolute).
    pub osv: Vec<PathBuf>,
    /// NVD CVE JSON 2.0 feeds.
    pub nvd: Vec<PathBuf>,
    /// The CISA KEV catalogue.
    pub kev: Option<PathBuf>,
    /// Data older than this decides nothing.
    pub max_age_days: u32,
    /// The lab file that named them (the report says who supplied the data).
    pub named_in: PathBuf,
}

#[derive(Debug, Clone)]
pub struct VulnPolicy {
    /// No SBOM is a FAIL (the default) rather than not tested.
    pub sbom_required: bool,
    /// A vulnerability fixed upstream longer ago than this must not ship.
    pub fix_within_days: u32,
}

impl Default for VulnPolicy {
    fn default() -> Self {
        VulnPolicy {
            sbom_required: true,
            fix_within_days: 90,
        }
    }
}
