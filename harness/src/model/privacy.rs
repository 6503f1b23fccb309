//! What the maker declares about where the device sends data (`privacy:`, IXIT): the
//! destinations it contacts and why, for PRV-01 (6-5: the processing is described).

/// Why a destination is contacted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Purpose {
    Essential,
    Telemetry,
    Marketing,
    Updates,
    Time,
}

/// One declared destination: a host name (`*.example.com` for a domain's names) or an
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: String,
    pub purpose: Purpose,
}

impl Destination {
    /// Whether `name` (a host name in lower case, or an address) is this destination.
    pub fn covers(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match self.host.strip_prefix("*.") {
            Some(domain) => name.len() > domain.len() && name.ends_with(&format!(".{domain}")),
            None => name == self.host,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_domains_are_covered_exactly() {
        let d = |h: &str| Destination {
            host: h.into(),
            purpose: Purpose::Telemetry,
        };
        assert!(d("telemetry.example.com").covers("Telemetry.Example.com."));
        assert!(!d("telemetry.example.com").covers("x.telemetry.example.com"));
        assert!(d("*.example.com").covers("a.b.example.com"));
        assert!(!d("*.example.com").covers("example.com"));
        assert!(!d("*.example.com").covers("badexample.com"));
        assert!(d("192.0.2.7").covers("192.0.2.7"));
    }
}
