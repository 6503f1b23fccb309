//! `config_interfaces:` — security-relevant configuration the device accepts over the
//! network (an HTTP request on one of its declared web services, or a publish on its own
//! MQTT broker), and how to read the
//! setting back at its shell, for CFG-01 (5.5-5).

use schemars::JsonSchema;
use serde::Deserialize;

use super::resolver::Resolver;
use super::services::{RawService, ServiceKind};
use super::yaml::{InputError, Loc};
use crate::model::config_op::{ConfigOp, Request};

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

/// The operations, each on a declared web login service or broker, with `{{value}}` in
/// its body and a `value` group in its read-back pattern.
pub fn resolve(rx: &Resolver, raw: &[RawConfigOp], services: &[RawService]) -> Vec<ConfigOp> {
    let mut out = Vec::new();
    for (i, op) in raw.iter().enumerate() {
        let f = format!("config_interfaces[{i}]");
        let request = resolve_request(rx, &f, &op.service, &op.request, services, "configuration requests");
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
        if let (Some(request), Some(_)) = (request, re) {
            out.push(ConfigOp {
                name: op.name.value.clone(),
                request,
                read_command: op.read.console.value.clone(),
                read_pattern: op.read.pattern.value.clone(),
            });
        }
    }
    out
}

/// A request that sets a value on a declared service (`f`: the field it sits under; `what`:
/// what such requests are, for the message): an HTTP request on an `http_form` or
/// `http_basic` login (method, path) or a publish on an `mqtt` broker (topic), its body
/// naming `{{value}}`.
pub fn resolve_request(
    rx: &Resolver,
    f: &str,
    service: &Loc<String>,
    req: &RawConfigRequest,
    services: &[RawService],
    what: &str,
) -> Option<Request> {
    let svc = services.iter().find(|s| s.name.value == service.value);
    let mqtt = svc.is_some_and(|s| s.kind == ServiceKind::Mqtt);
    let mut ok = service_takes_requests(rx, f, service, svc, what);
    let method = req.method.as_ref().map_or("POST".to_string(), |m| m.value.clone());
    if !method.chars().all(|c| c.is_ascii_uppercase()) || method.is_empty() {
        ok = false;
        rx.error(InputError::new(
            rx.file,
            req.method.as_ref().map(|m| m.pos),
            format!("{f}.request.method"),
            format!("{method:?} is not an HTTP method"),
        ));
    }
    // what each kind of service needs, and nothing the other kind uses
    let (needs, foreign): (&str, &[(&str, bool)]) = if mqtt {
        (
            "topic",
            &[
                ("path", req.path.is_some()),
                ("method", req.method.is_some()),
                ("content_type", req.content_type.is_some()),
            ],
        )
    } else {
        ("path", &[("topic", req.topic.is_some())])
    };
    let given = if mqtt { &req.topic } else { &req.path };
    if given.is_none() {
        ok = false;
        rx.error(InputError::new(
            rx.file,
            Some(service.pos),
            format!("{f}.request.{needs}"),
            format!("a request to {:?} needs its {needs}", service.value),
        ));
    }
    if let Some((name, _)) = foreign.iter().find(|(_, set)| *set) {
        ok = false;
        rx.error(InputError::new(
            rx.file,
            Some(service.pos),
            format!("{f}.request.{name}"),
            format!(
                "`{name}` does not apply to a request to {:?} (an {} service)",
                service.value,
                if mqtt { "MQTT" } else { "HTTP" }
            ),
        ));
    }
    let path = match &req.path {
        Some(p) => rx.template(rx.file, &format!("{f}.request.path"), p),
        None => Some(crate::model::template::Template::literal("")),
    };
    if let Some(t) = &req.topic
        && (t.value.is_empty() || t.value.contains(['+', '#', '\0']))
    {
        ok = false;
        rx.error(InputError::new(
            rx.file,
            Some(t.pos),
            format!("{f}.request.topic"),
            format!("{:?} is not a topic to publish on (empty, or a wildcard)", t.value),
        ));
    }
    let body = rx.template(rx.file, &format!("{f}.request.body"), &req.body);
    if let Some(b) = &body
        && !b.vars().any(|v| v == "value")
    {
        ok = false;
        rx.error(InputError::new(
            rx.file,
            Some(req.body.pos),
            format!("{f}.request.body"),
            "the body does not name `{{value}}`: certbench sets a value of its own".to_string(),
        ));
    }
    let (path, body) = (path?, body?);
    ok.then(|| Request {
        service: service.value.clone(),
        method,
        path,
        topic: req.topic.as_ref().map(|t| t.value.clone()),
        body,
        content_type: req
            .content_type
            .clone()
            .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
    })
}

/// Whether the named service is declared and takes such requests (an http_form or
/// http_basic login, an mqtt broker); says why not.
fn service_takes_requests(rx: &Resolver, f: &str, service: &Loc<String>, svc: Option<&RawService>, what: &str) -> bool {
    let mut ok = true;
    match svc.map(|s| s.kind) {
        Some(ServiceKind::HttpForm | ServiceKind::HttpBasic | ServiceKind::Mqtt) => {}
        Some(k) => {
            ok = false;
            rx.error(InputError::new(
                rx.file,
                Some(service.pos),
                format!("{f}.service"),
                format!(
                    "{:?} is a {} service: {what} go to an http_form or http_basic login, or an mqtt broker",
                    service.value,
                    k.name()
                ),
            ))
        }
        None => {
            ok = false;
            rx.error(
                InputError::new(
                    rx.file,
                    Some(service.pos),
                    format!("{f}.service"),
                    format!("no service named {:?} is declared", service.value),
                )
                .with_hint("name one of the profile's `services`"),
            )
        }
    }
    ok
}
