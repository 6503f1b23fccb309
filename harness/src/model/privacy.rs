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
    /// Contacted only with the user's consent.
    pub consent: bool,
    /// The personal_data items it is meant to receive (PRV-04).
    pub receives: Vec<String>,
}

/// Where the device serves its privacy policy (`privacy.policy_page`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPage {
    /// The declared service's name.
    pub service: String,
    pub path: String,
}

/// How the user gives and withdraws consent (`privacy.consent`, PRV-02, PRV-03).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Consent is on at the factory (not given by the user).
    pub default_on: bool,
    pub give: ConsoleAction,
    pub withdraw: ConsoleAction,
}

/// A command typed at the device's shell and the answer (a regular expression) that says
/// the device took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleAction {
    pub console: String,
    pub accepted: String,
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

/// How the user erases their data and where the device keeps it (`privacy.deletion`,
/// DEL-01 and DEL-02: 5.11-1, 5.11-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The user's factory reset, typed at the device's shell as the owner would.
    pub console: String,
    /// What the device says once the data is erased (a regular expression).
    pub confirmed: String,
    /// How long the device may take to say it.
    pub within: std::time::Duration,
    /// Where the device keeps user data (absolute paths on the device).
    pub data_paths: Vec<String>,
    /// The shell command that lists the files under `{{paths}}` holding `{{value}}` (each
    /// substituted shell-quoted).
    pub search: String,
    /// The reset also deletes the owner's cloud account (DEL-03, 5.11-2).
    pub cloud: Option<CloudDeletion>,
}

/// The request a reset sends the cloud to delete the owner's account (`privacy.deletion.cloud`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudDeletion {
    /// An MQTT topic filter on the bench's broker.
    pub mqtt_topic: String,
    /// How long after the reset command it may come.
    pub within: std::time::Duration,
}

/// The default search: file names under the data paths that hold the value as it was set.
pub const DEFAULT_SEARCH: &str = "grep -rlF -e {{value}} {{paths}}";

impl Deletion {
    /// The search command for one value.
    pub fn search_for(&self, value: &str) -> String {
        let paths: Vec<String> = self
            .data_paths
            .iter()
            .map(|p| super::template::shell_quote(p))
            .collect();
        self.search
            .replace("{{paths}}", &paths.join(" "))
            .replace("{{value}}", &super::template::shell_quote(value))
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
            consent: false,
            receives: Vec::new(),
        };
        assert!(d("telemetry.example.com").covers("Telemetry.Example.com."));
        assert!(!d("telemetry.example.com").covers("x.telemetry.example.com"));
        assert!(d("*.example.com").covers("a.b.example.com"));
        assert!(!d("*.example.com").covers("example.com"));
        assert!(!d("*.example.com").covers("badexample.com"));
        assert!(d("192.0.2.7").covers("192.0.2.7"));
    }

    #[test]
    fn search_commands_quote_values_and_paths() {
        let d = Deletion {
            console: "factory-reset".into(),
            confirmed: "done".into(),
            within: std::time::Duration::from_secs(5),
            data_paths: vec!["/data".into(), "/var/lib/my app".into()],
            search: DEFAULT_SEARCH.into(),
            cloud: None,
        };
        assert_eq!(
            d.search_for("it's $HOME"),
            "grep -rlF -e 'it'\\''s $HOME' '/data' '/var/lib/my app'"
        );
    }
}
