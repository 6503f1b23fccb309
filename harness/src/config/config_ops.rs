//! `config_interfaces:` — security-relevant configuration the device accepts over the
//! network (an HTTP request on one of its declared web services, or a publish on its own
//! MQTT broker), and how to read the
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
    /// The declared service (`services[].name`: an `http_form` or `http_basic` login, or
    /// the device's own `mqtt` broker) the request goes to; its login is how the owner
    /// authenticates.
    pub service: Loc<String>,
    /// The request that changes the setting.
    pub request: RawConfigRequest,
    /// How the setting is read back at the console's shell.
    pub read: RawReadBack,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfigRequest {
    /// HTTP: default POST.
    #[serde(default)]
    pub method: Option<Loc<String>>,
    /// HTTP: the request path.
    #[serde(default)]
    pub path: Option<Loc<String>>,
    /// MQTT: the topic the setting is published on (QoS 1).
    #[serde(default)]
    pub topic: Option<Loc<String>>,
    /// The body (HTTP) or payload (MQTT), with `{{value}}` where the new setting goes
    /// (certbench generates it).
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
        let mqtt = svc.is_some_and(|s| s.kind == ServiceKind::Mqtt);
        match svc.map(|s| s.kind) {
            Some(ServiceKind::HttpForm | ServiceKind::HttpBasic | ServiceKind::Mqtt) => {}
            Some(k) => rx.error(InputError::new(
                rx.file,
                Some(op.service.pos),
                format!("{f}.service"),
                format!(
                    "{:?} is a {} service: configuration requests go to an http_form or http_basic login, or an mqtt broker",
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
        // what each kind of service needs, and nothing the other kind uses
        let (needs, foreign): (&str, &[(&str, bool)]) = if mqtt {
            (
                "topic",
                &[
                    ("path", op.request.path.is_some()),
                    ("method", op.request.method.is_some()),
                    ("content_type", op.request.content_type.is_some()),
                ],
            )
        } else {
            ("path", &[("topic", op.request.topic.is_some())])
        };
        let given = if mqtt { &op.request.topic } else { &op.request.path };
        if given.is_none() {
            rx.error(InputError::new(
                rx.file,
                Some(op.service.pos),
                format!("{f}.request.{needs}"),
                format!("a request to {:?} needs its {needs}", op.service.value),
            ));
        }
        if let Some((name, _)) = foreign.iter().find(|(_, set)| *set) {
            rx.error(InputError::new(
                rx.file,
                Some(op.service.pos),
                format!("{f}.request.{name}"),
                format!(
                    "`{name}` does not apply to a request to {:?} (an {} service)",
                    op.service.value,
                    if mqtt { "MQTT" } else { "HTTP" }
                ),
            ));
        }
        let path = match &op.request.path {
            Some(p) => rx.template(rx.file, &format!("{f}.request.path"), p),
            None => Some(crate::model::template::Template::literal("")),
        };
        let topic = op.request.topic.as_ref().map(|t| t.value.clone());
        if let Some(t) = &op.request.topic
            && (t.value.is_empty() || t.value.contains(['+', '#', '\0']))
        {
            rx.error(InputError::new(
                rx.file,
                Some(t.pos),
                format!("{f}.request.topic"),
                format!("{:?} is not a topic to publish on (empty, or a wildcard)", t.value),
            ));
        }
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
                topic,
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
