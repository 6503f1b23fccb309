//! `privacy:` — where the device sends data and why (IXIT), for PRV-01 (6-5).

use schemars::JsonSchema;
use serde::Deserialize;

use super::resolver::Resolver;
use super::yaml::{InputError, Loc};
pub use crate::model::privacy::{Destination, Purpose};

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    /// Every host the device contacts, with its purpose. A name the device looks up, or an
    /// address it connects to without a name, that matches none is processing the maker
    /// does not describe.
    #[serde(default)]
    pub destinations: Vec<RawDestination>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    /// A host name (`telemetry.example.com`), all names of a domain (`*.example.com`), or
    /// an IP address.
    pub host: Loc<String>,
    /// essential | telemetry | marketing | updates | time
    pub purpose: Purpose,
}

/// A host name certbench can match: letters, digits and `-` in dot-separated labels.
fn is_name(h: &str) -> bool {
    let labels: Vec<&str> = h.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

pub fn resolve(rx: &Resolver, raw: Option<&RawPrivacy>) -> Vec<Destination> {
    let mut out: Vec<Destination> = Vec::new();
    for (i, d) in raw.map(|p| &p.destinations[..]).unwrap_or_default().iter().enumerate() {
        let host = d.host.value.trim().to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        if !(is_name(name) || host.parse::<std::net::IpAddr>().is_ok()) {
            rx.error(
                InputError::new(
                    rx.file,
                    Some(d.host.pos),
                    format!("privacy.destinations[{i}].host"),
                    format!("{:?} is not a host name or an address", d.host.value),
                )
                .with_hint("e.g. telemetry.example.com, *.example.com or 192.0.2.7"),
            );
            continue;
        }
        if out.iter().any(|o| o.host == host) {
            rx.error(InputError::new(
                rx.file,
                Some(d.host.pos),
                format!("privacy.destinations[{i}].host"),
                format!("{host:?} is declared twice"),
            ));
            continue;
        }
        out.push(Destination {
            host,
            purpose: d.purpose,
        });
    }
    out
}
