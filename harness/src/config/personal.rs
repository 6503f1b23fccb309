//! `personal_data:` — the personal data and security parameters the device holds, and how
//! each is set through its own interfaces (the IXIT). certbench plants a fresh value of
//! each and searches every byte the device sends for it (COM-04).

use schemars::JsonSchema;
use serde::Deserialize;

use super::config_ops::{RawConfigRequest, resolve_request};
use super::resolver::Resolver;
use super::services::RawService;
use super::yaml::{InputError, Loc};
use crate::model::personal::{Class, PersonalData, Shape};

/// One item, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPersonalData {
    /// What it is, as evidence names it (never its value): `owner_email`, `wifi_psk`, ...
    pub name: Loc<String>,
    /// `personal` (5.8-1), `sensitive` (5.8-2) or `security` (a critical security
    /// parameter: 5.5-6, 5.5-7).
    pub kind: Class,
    /// The form of the value certbench generates: `email`, `psk`, `token` or `text` (default).
    #[serde(default)]
    pub shape: Option<Shape>,
    /// How it is set.
    pub set: RawSet,
}

/// How a value is set: a command at the console's shell, or a request on a declared
/// service (the owner's web login or the device's own broker) as the owner's app would.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSet {
    /// Typed at the shell (after logging in with the run's credentials); `{{value}}` is
    /// where the generated value goes, e.g. `config set email {{value}}`.
    #[serde(default)]
    pub console: Option<Loc<String>>,
    /// The declared service (`services[].name`: `http_form`, `http_basic` or `mqtt`) the
    /// `request` goes to, logged in as the owner.
    #[serde(default)]
    pub service: Option<Loc<String>>,
    /// The request that sets it, as in `config_interfaces` (method/path or topic, and a
    /// body naming `{{value}}`).
    #[serde(default)]
    pub request: Option<RawConfigRequest>,
    /// A regex the device answers with when it took the value (default: the shell prompt
    /// returning with no error; a request: HTTP 2xx, or the broker's PUBACK).
    #[serde(default)]
    pub accepted: Option<Loc<String>>,
}

/// The items, each with a way to set it that names `{{value}}`, their names unique.
pub fn resolve(rx: &Resolver, raw: &[RawPersonalData], services: &[RawService]) -> Vec<PersonalData> {
    let mut out: Vec<PersonalData> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let field = format!("personal_data[{i}]");
        let name = &p.name.value;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            rx.error(InputError::new(
                rx.file,
                Some(p.name.pos),
                format!("{field}.name"),
                format!("{name:?}: use letters, digits, `_` and `-`"),
            ));
        }
        if names.contains(&name.as_str()) {
            rx.error(InputError::new(
                rx.file,
                Some(p.name.pos),
                format!("{field}.name"),
                format!("{name:?} is declared twice"),
            ));
        }
        names.push(name);
        let (console, request) = match (&p.set.console, &p.set.service, &p.set.request) {
            (Some(cmd), None, None) => {
                let console_field = format!("{field}.set.console");
                let Some(t) = rx.template(rx.file, &console_field, cmd) else {
                    continue;
                };
                if !t.vars().any(|v| v == "value") {
                    rx.error(
                        InputError::new(
                            rx.file,
                            Some(cmd.pos),
                            console_field,
                            "the command does not name `{{value}}`".to_string(),
                        )
                        .with_hint("certbench generates the value; the command must carry it"),
                    );
                }
                (Some(t), None)
            }
            (None, Some(service), Some(req)) => {
                let Some(r) = resolve_request(
                    rx,
                    &format!("{field}.set"),
                    service,
                    req,
                    services,
                    "requests that set a value",
                ) else {
                    continue;
                };
                (None, Some(r))
            }
            (None, None, None) => {
                rx.error(
                    InputError::new(
                        rx.file,
                        Some(p.name.pos),
                        format!("{field}.set"),
                        format!("{name:?} has no way to be set"),
                    )
                    .with_hint("give `set: { console: \"<command> {{value}}\" }` (the command the owner would type) or `set: { service: NAME, request: {...} }`"),
                );
                continue;
            }
            (Some(_), ..) => {
                rx.error(InputError::new(
                    rx.file,
                    Some(p.name.pos),
                    format!("{field}.set"),
                    format!("{name:?} is set one way: a console command, or a service and its request, not both"),
                ));
                continue;
            }
            (None, ..) => {
                rx.error(InputError::new(
                    rx.file,
                    Some(p.name.pos),
                    format!("{field}.set"),
                    format!("{name:?}: a request needs both `service` and `request`"),
                ));
                continue;
            }
        };
        let accepted = p
            .set
            .accepted
            .as_ref()
            .and_then(|a| rx.regex(&format!("{field}.set.accepted"), a).map(|_| a.value.clone()));
        out.push(PersonalData {
            name: name.clone(),
            class: p.kind,
            shape: p.shape.unwrap_or_default(),
            console,
            request,
            accepted,
        });
    }
    out
}
