//! `privacy:` — where the device sends data and why (IXIT), for PRV-01 (6-5).

use schemars::JsonSchema;
use serde::Deserialize;

use super::resolver::Resolver;
use super::yaml::{InputError, Loc};
use crate::model::privacy::{Destination, Purpose};

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    /// Every host the device contacts, with its purpose. A name the device looks up, or an
    /// address it connects to without a name, that matches none is processing the maker
    /// does not describe.
    #[serde(default)]
    pub destinations: Vec<RawDestination>,
    /// The school grade (US, Flesch–Kincaid) the privacy policy must be readable at: the
    /// maker's audience. At most 9, a consumer product's (the default); a children's
    /// product (`children: true`) at most 6.
    pub reading_grade: Option<Loc<u8>>,
    /// The product is meant for children: the policy must read at grade 6 or below.
    #[serde(default)]
    pub children: bool,
    /// How the user erases their data, what the device says then, and where it keeps the
    /// data (DEL-01, DEL-02: 5.11-1, 5.11-4).
    pub deletion: Option<RawDeletion>,
    /// How the user gives and withdraws consent, and its factory state (PRV-02, PRV-03).
    pub consent: Option<RawConsent>,
    /// Where the device itself serves its privacy policy (a page of a declared web
    /// service): fetched and compared with the reviewed document (PRV-05, DOC-03).
    pub policy_page: Option<RawPolicyPage>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyPage {
    /// A declared `services` entry of kind http_form, http_basic, http_digest or no_login.
    pub service: Loc<String>,
    /// The page's path, e.g. `/privacy`.
    pub path: Loc<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsent {
    /// The consent's state at the factory: `off` (the user opts in) or `on`.
    pub default: ConsentDefault,
    /// How the user gives consent.
    pub give: RawConsoleAction,
    /// How the user withdraws it.
    pub withdraw: RawConsoleAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentDefault {
    Off,
    On,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsoleAction {
    /// The command, typed at the device's shell.
    pub console: Loc<String>,
    /// A regular expression of the device's answer when it took it.
    pub accepted: Loc<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDeletion {
    /// The user's factory reset, typed at the device's shell (e.g. `factory-reset`).
    pub console: Loc<String>,
    /// A regular expression of what the device says once the data is erased.
    pub confirmed: Loc<String>,
    /// How long the device may take to say it (default 60s).
    pub within: Option<crate::model::duration::Dur>,
    /// Where the device keeps user data: absolute paths searched before and after the reset.
    pub data_paths: Vec<Loc<String>>,
    /// The shell command that lists the files under `{{paths}}` holding `{{value}}`
    /// (default `grep -rlF -e {{value}} {{paths}}`; both substituted shell-quoted).
    pub search: Option<Loc<String>>,
    /// The reset also deletes the owner's account in the cloud (5.11-2, DEL-03): the
    /// request the device sends its cloud, which the bench plays.
    pub cloud: Option<RawCloudDeletion>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCloudDeletion {
    /// The MQTT topic (a filter: `+` one level, `#` the rest) the device publishes the
    /// deletion request to, on the bench's broker.
    pub mqtt_topic: Loc<String>,
    /// How long after the reset command the request may come (default 60s).
    pub within: Option<crate::model::duration::Dur>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    /// A host name (`telemetry.example.com`), all names of a domain (`*.example.com`), or
    /// an IP address.
    pub host: Loc<String>,
    /// essential | telemetry | marketing | updates | time
    pub purpose: Purpose,
    /// Contacted only with the user's consent (PRV-02, PRV-03: never before it is given,
    /// never after it is withdrawn).
    #[serde(default)]
    pub consent: bool,
    /// The `personal_data` items (by name) this destination is meant to receive (PRV-04,
    /// 6-4): a planted value seen reaching any other destination fails.
    #[serde(default)]
    pub receives: Vec<Loc<String>>,
}

/// A host name certbench can match: letters, digits and `-` in dot-separated labels.
fn is_name(h: &str) -> bool {
    let labels: Vec<&str> = h.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

pub fn resolve(
    rx: &Resolver,
    raw: Option<&RawPrivacy>,
    personal: &[crate::model::personal::PersonalData],
) -> Vec<Destination> {
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
        for (j, r) in d.receives.iter().enumerate() {
            if !personal.iter().any(|p| p.name == r.value) {
                rx.error(
                    InputError::new(
                        rx.file,
                        Some(r.pos),
                        format!("privacy.destinations[{i}].receives[{j}]"),
                        format!("{:?} is not a declared personal_data item", r.value),
                    )
                    .with_hint("name an item of `personal_data` (e.g. owner_email)"),
                );
            }
        }
        out.push(Destination {
            host,
            purpose: d.purpose,
            consent: d.consent,
            receives: d.receives.iter().map(|r| r.value.clone()).collect(),
        });
    }
    out
}

/// The grade the privacy policy must be readable at (DOC-03): the maker may aim lower than
/// its audience's grade, never higher — a consumer product's policy is read by consumers.
pub fn reading_grade(rx: &Resolver, raw: Option<&RawPrivacy>) -> u8 {
    let children = raw.is_some_and(|p| p.children);
    let cap = if children { 6 } else { 9 };
    match raw.and_then(|p| p.reading_grade.as_ref()) {
        None => cap,
        Some(g) if (1..=cap).contains(&g.value) => g.value,
        Some(g) => {
            rx.error(
                InputError::new(
                    rx.file,
                    Some(g.pos),
                    "privacy.reading_grade",
                    format!(
                        "grade {} is above what a {} reads (at most {cap})",
                        g.value,
                        if children { "child" } else { "consumer" }
                    ),
                )
                .with_hint("declare the grade of the product's audience: 9 or lower for a consumer product, 6 or lower for a children's product"),
            );
            cap
        }
    }
}

/// `privacy.deletion`: the reset typed at the shell, its confirmation a valid regex, the
/// data paths absolute, the search naming both placeholders.
pub fn deletion(rx: &Resolver, raw: Option<&RawPrivacy>) -> Option<crate::model::privacy::Deletion> {
    let d = raw?.deletion.as_ref()?;
    let err = |pos, field: &str, msg: String, hint: &str| {
        rx.error(InputError::new(rx.file, Some(pos), format!("privacy.deletion.{field}"), msg).with_hint(hint));
    };
    if d.console.value.trim().is_empty() {
        err(
            d.console.pos,
            "console",
            "empty".into(),
            "the command a user types to reset the device, e.g. factory-reset",
        );
    }
    rx.regex("privacy.deletion.confirmed", &d.confirmed);
    if d.data_paths.is_empty() {
        rx.error(
            InputError::new(
                rx.file,
                None,
                "privacy.deletion.data_paths",
                "no path: nothing could be searched",
            )
            .with_hint("where the device keeps user data, e.g. [/data, /etc/config]"),
        );
    }
    for (i, p) in d.data_paths.iter().enumerate() {
        if !p.value.starts_with('/') || p.value.contains(['\n', '\r', '\0']) {
            err(
                p.pos,
                &format!("data_paths[{i}]"),
                format!("{:?} is not an absolute path on the device", p.value),
                "e.g. /data",
            );
        }
    }
    let search = d
        .search
        .as_ref()
        .map_or(crate::model::privacy::DEFAULT_SEARCH.to_string(), |s| s.value.clone());
    if let Some(s) = &d.search
        && !(s.value.contains("{{value}}") && s.value.contains("{{paths}}"))
    {
        err(
            s.pos,
            "search",
            "names neither or only one of {{value}} and {{paths}}".into(),
            "e.g. grep -rlF -e {{value}} {{paths}}",
        );
    }
    no_variables(rx, "privacy.deletion.console", &d.console);
    let cloud = d.cloud.as_ref().map(|c| {
        if let Err(why) = topic_filter(&c.mqtt_topic.value) {
            err(
                c.mqtt_topic.pos,
                "cloud.mqtt_topic",
                format!("{:?} is not an MQTT topic filter: {why}", c.mqtt_topic.value),
                "e.g. account/+/delete",
            );
        }
        crate::model::privacy::CloudDeletion {
            mqtt_topic: c.mqtt_topic.value.clone(),
            within: c.within.map_or(std::time::Duration::from_secs(60), |w| w.0),
        }
    });
    Some(crate::model::privacy::Deletion {
        cloud,
        console: d.console.value.trim().to_string(),
        confirmed: d.confirmed.value.clone(),
        within: d.within.map_or(std::time::Duration::from_secs(60), |w| w.0),
        data_paths: d.data_paths.iter().map(|p| p.value.clone()).collect(),
        search,
    })
}

/// A command typed as written: a `{{name}}` in it would reach the device verbatim.
fn no_variables(rx: &Resolver, field: &str, cmd: &Loc<String>) {
    if let Some(at) = cmd.value.find("{{") {
        let name = cmd.value[at + 2..].split("}}").next().unwrap_or_default().trim();
        rx.error(
            InputError::new(
                rx.file,
                Some(cmd.pos),
                field,
                format!("{{{{{name}}}}} is not defined here: this command is typed at the device's shell as written"),
            )
            .with_hint("write the command as the user would type it"),
        );
    }
}

/// Whether `t` is an MQTT topic filter: levels split by `/`, `+` a whole level, `#` only as
/// the whole last level, no NUL.
fn topic_filter(t: &str) -> Result<(), &'static str> {
    if t.is_empty() {
        return Err("empty");
    }
    if t.contains('\0') {
        return Err("it holds a NUL character");
    }
    let levels: Vec<&str> = t.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('+') && *l != "+" {
            return Err("`+` must be a whole level");
        }
        if l.contains('#') && (*l != "#" || i + 1 != levels.len()) {
            return Err("`#` must be the whole last level");
        }
    }
    Ok(())
}

/// `privacy.consent`: given and withdrawn at the shell, each with a valid answer pattern;
/// declared exactly when a destination needs consent.
pub fn consent(rx: &Resolver, raw: Option<&RawPrivacy>) -> Option<crate::model::privacy::Consent> {
    let first = raw.and_then(|p| p.destinations.iter().position(|d| d.consent));
    let needs = first.is_some();
    let Some(c) = raw.and_then(|p| p.consent.as_ref()) else {
        if let (Some(i), Some(p)) = (first, raw) {
            rx.error(
                InputError::new(
                    rx.file,
                    Some(p.destinations[i].host.pos),
                    format!("privacy.destinations[{i}].consent"),
                    "destinations need consent, but how a user gives and withdraws it is not declared",
                )
                .with_hint("consent: { default: off, give: { console: CMD, accepted: REGEX }, withdraw: { console: CMD, accepted: REGEX } }"),
            );
        }
        return None;
    };
    if !needs {
        rx.error(
            InputError::new(
                rx.file,
                Some(c.give.console.pos),
                "privacy.consent",
                "declared, but no destination is contacted only with consent",
            )
            .with_hint("mark the destinations that need the user's consent with `consent: true`"),
        );
    }
    let action = |field: &str, a: &RawConsoleAction| {
        if a.console.value.trim().is_empty() {
            rx.error(InputError::new(
                rx.file,
                Some(a.console.pos),
                format!("privacy.consent.{field}.console"),
                "empty",
            ));
        }
        no_variables(rx, &format!("privacy.consent.{field}.console"), &a.console);
        rx.regex(&format!("privacy.consent.{field}.accepted"), &a.accepted);
        crate::model::privacy::ConsoleAction {
            console: a.console.value.trim().to_string(),
            accepted: a.accepted.value.clone(),
        }
    };
    Some(crate::model::privacy::Consent {
        default_on: c.default == ConsentDefault::On,
        give: action("give", &c.give),
        withdraw: action("withdraw", &c.withdraw),
    })
}

/// `privacy.policy_page`: a page of a declared web service.
pub fn policy_page(
    rx: &Resolver,
    raw: Option<&RawPrivacy>,
    services: &[super::services::RawService],
) -> Option<crate::model::privacy::PolicyPage> {
    use super::services::ServiceKind;
    let p = raw?.policy_page.as_ref()?;
    let web = services
        .iter()
        .find(|s| s.name.value == p.service.value)
        .is_some_and(|s| {
            matches!(
                s.kind,
                ServiceKind::HttpBasic | ServiceKind::HttpDigest | ServiceKind::HttpForm | ServiceKind::NoLogin
            )
        });
    if !web {
        rx.error(
            InputError::new(
                rx.file,
                Some(p.service.pos),
                "privacy.policy_page.service",
                format!("{:?} is not a declared web service", p.service.value),
            )
            .with_hint("name a `services` entry of kind http_form, http_basic, http_digest or no_login"),
        );
    }
    if !p.path.value.starts_with('/') || p.path.value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        rx.error(InputError::new(
            rx.file,
            Some(p.path.pos),
            "privacy.policy_page.path",
            format!(
                "{:?} is not a request path (it starts with / and has no spaces)",
                p.path.value
            ),
        ));
    }
    Some(crate::model::privacy::PolicyPage {
        service: p.service.value.clone(),
        path: p.path.value.clone(),
    })
}
