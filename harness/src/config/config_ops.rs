//! `config_interfaces:` — security-relevant configuration the device accepts over the
//! network (an HTTP request on one of its declared web services), and how to read the
//! setting back at its shell, for CFG-01 (5.5-5).

use schemars::JsonSchema;
use serde::Deserialize;

use super::resolver::Resolver;
use super::services::{RawService, ServiceKind};
use super::yaml::{InputError, Loc};
use crate::model::config_op::ConfigOp;

/// One operation, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfigOp {
    /// The setting it changes, as evidence names it (`update_server`, `admin_ssh`, ...).
    pub name: Loc<String>,
    /// The declared service (`services[].name`, an `http_form` or `http_basic` login) the
    /// request goes to; its login is how the owner authenticates.
    pub service: Loc<String>,
    /// The request that changes the setting.
    pub request: RawConfigRequest,
    /// How the setting is read back at the console's shell.
    pub read: RawReadBack,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfigRequest {
    /// Default POST.
    #[serde(default)]
    pub method: Option<Loc<String>>,
    pub path: Loc<String>,
    /// The body, with `{{value}}` where the new setting goes (certbench generates it).
    pub body: Loc<String>,
    /// Default `application/x-www-form-urlencoded`.
    #[serde(default)]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReadBack {
    /// Typed at the shell, e.g. `config get update_server`.
    pub console: Loc<String>,
    /// A regex with a group named `value` that reads the setting from the answer.
    pub pattern: Loc<String>,
}

/// The operations, each on a declared web login service, with `{{value}}` in its body and a
/// `value` group in its read-back pattern.
pub fn resolve(rx: &Resolver, raw: &[RawConfigOp], services: &[RawService]) -> Vec<ConfigOp> {
    let mut out = Vec::new();
    for (i, op) in raw.iter().enumerate() {
        let f = format!("config_interfaces[{i}]");
        let svc = services.iter().find(|s| s.name.value == op.service.value);
        match svc.map(|s| s.kind) {
            Some(ServiceKind::HttpForm | ServiceKind::HttpBasic) => {}
            Some(k) => rx.error(InputError::new(
                rx.file,
                Some(op.service.pos),
                format!("{f}.service"),
                format!(
                    "{:?} is a {} service: configuration requests go to an http_form or http_basic one",
                    op.service.value,
                    k.name()
                ),
            )),
            None => rx.error(
                InputError::new(
                    rx.file,
                    Some(op.service.pos),
                    format!("{f}.service"),
                    format!("no service named {:?} is declared", op.service.value),
                )
                .with_hint("name one of the profile's `services`"),
            ),
        }
        let method = op
            .request
            .method
            .as_ref()
            .map_or("POST".to_string(), |m| m.value.clone());
        if !method.chars().all(|c| c.is_ascii_uppercase()) || method.is_empty() {
            rx.error(InputError::new(
                rx.file,
                op.request.method.as_ref().map(|m| m.pos),
                format!("{f}.request.method"),
                format!("{method:?} is not an HTTP method"),
            ));
        }
        let path = rx.template(rx.file, &format!("{f}.request.path"), &op.request.path);
        let body = rx.template(rx.file, &format!("{f}.request.body"), &op.request.body);
        if let Some(b) = &body
            && !b.vars().any(|v| v == "value")
        {
            rx.error(InputError::new(
                rx.file,
                Some(op.request.body.pos),
                format!("{f}.request.body"),
                "the body does not name `{{value}}`: certbench sets a value of its own".to_string(),
            ));
        }
        let re = rx.regex(&format!("{f}.read.pattern"), &op.read.pattern);
        if let Some(re) = &re
            && !re.capture_names().any(|n| n == Some("value"))
        {
            rx.error(InputError::new(
                rx.file,
                Some(op.read.pattern.pos),
                format!("{f}.read.pattern"),
                "the pattern has no `(?P<value>...)` group to read the setting with".to_string(),
            ));
        }
        if let (Some(path), Some(body), Some(_)) = (path, body, re) {
            out.push(ConfigOp {
                name: op.name.value.clone(),
                service: op.service.value.clone(),
                method,
                path,
                body,
                content_type: op
                    .request
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
                read_command: op.read.console.value.clone(),
                read_pattern: op.read.pattern.value.clone(),
            });
        }
    }
    out
}
