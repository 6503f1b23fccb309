//! CFG-01 (5.5-5, issue 28): security-relevant configuration over the network only after
//! authentication. Each operation the maker declares (`config_interfaces`: an HTTP request
//! on a web login service, or a publish on the device's own MQTT broker) is performed
//! three times with a fresh value each: without credentials, with wrong ones, and with the
//! owner's (the positive control); the setting is read back at the shell after each. A
//! change that happened without the owner's credentials fails, with the values before and
//! after (by name: the values are certbench's own); a control that did not change it, or a
//! read-back that did not match, leaves the check undecided (ERROR).

use regex::bytes::Regex;
use serde::Serialize;

use super::prelude::*;
use crate::config::services::ServiceKind;
use crate::model::config_op::{ConfigOp, Request};
use crate::model::personal::Shape;
use crate::remote::http;
use crate::remote::target::Target;

/// Who the request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum As {
    Nobody,
    WrongCredentials,
    Owner,
}

/// One attempt, for `config-auth.json`.
#[derive(Debug, Serialize)]
struct Attempt {
    setting: String,
    by: As,
    /// The HTTP status and first line, or why there was none.
    answer: String,
    /// Whether the setting read back afterwards was the value this attempt sent.
    changed: bool,
}

impl Run<'_> {
    /// Reads a value at the shell: `cmd`, then the `value` group of `re` in its answer.
    async fn read_setting(&mut self, cmd: &str, re: &Regex) -> Result<String, Stop> {
        self.ensure_shell().await?;
        let c = self.console()?;
        let shell = self.spec()?.prompts.shell.clone();
        self.rig.state.lost();
        self.send_line(&c, cmd)?;
        let v = match c
            .expect(&[re], Instant::now() + Duration::from_secs(15), None)
            .await
            .map_err(console_lost)?
        {
            Wait::Found(f) => f
                .captures
                .iter()
                .find(|(k, _)| k == "value")
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default(),
            Wait::Timeout => {
                return Err(Stop::Error(format!(
                    "`{cmd}` printed nothing matching /{}/ within 15s: the setting cannot be read back",
                    re.as_str()
                )));
            }
        };
        if let Ok(Wait::Found(_)) = c.expect(&[&shell], Instant::now() + Duration::from_secs(5), None).await {
            self.rig.state.saw_shell();
        }
        Ok(v)
    }

    /// `config_auth`: every declared operation, judged.
    pub(in crate::engine) async fn config_auth(&mut self) -> StepResult {
        let ops = self.rig.device.config_ops.clone();
        if ops.is_empty() {
            return Err(Stop::Skip(
                "the profile declares no security-relevant configuration over the network (`config_interfaces`): 5.5-5 is not tested"
                    .into(),
            ));
        }
        // the owner's credentials: the run's, once it has set them
        self.ensure_shell().await?;
        let mut attempts = Vec::new();
        let mut findings = Vec::new();
        let mut done = Vec::new();
        for op in &ops {
            let r = self.config_op(op, &mut attempts).await;
            match r {
                Ok(Some(f)) => findings.push(f),
                Ok(None) => done.push(op.name.clone()),
                Err(e) => {
                    self.keep_evidence(
                        "config-auth.json",
                        serde_json::to_string_pretty(&attempts).unwrap_or_default(),
                    );
                    return Err(e);
                }
            }
        }
        self.keep_evidence(
            "config-auth.json",
            serde_json::to_string_pretty(&attempts).unwrap_or_default(),
        );
        if !findings.is_empty() {
            return Err(Stop::Fail {
                check: Some("CFG-01".into()),
                reason: format!(
                    "CFG-01: configuration changed without the owner's credentials — {}",
                    findings.join("; ")
                ),
            });
        }
        Ok(format!(
            "{}: refused without credentials and with wrong ones (each in the device's words, the setting read back unchanged), changed with the owner's",
            done.join(", ")
        ))
    }

    /// One operation: Some(finding) when it changed without the owner's credentials.
    async fn config_op(&mut self, op: &ConfigOp, attempts: &mut Vec<Attempt>) -> Result<Option<String>, Stop> {
        let t = self.request_target(&op.request)?;
        let re = Regex::new(&op.read_pattern).map_err(|e| Stop::Error(e.to_string()))?;
        let req = &op.request;
        let path = self.render(&req.path, Quote::Raw)?;
        let owner = self
            .rig
            .current
            .clone()
            .ok_or_else(|| Stop::Error("the run knows no credentials for the owner".into()))?;
        // the owner's authentication, made first so a wrong one can look like it
        let (good, wrong) = self.config_credentials(&t, &owner).await?;
        let before = self.read_setting(&op.read_command, &re).await?;
        // what the setting should be now, as far as certbench's own requests go
        let mut last = before.clone();
        let mut changed_by = Vec::new();
        for (by, cred) in [
            (As::Nobody, Cred::None),
            (As::WrongCredentials, wrong),
            (As::Owner, good),
        ] {
            let value = Shape::Text.generate();
            let answer = self.send_request(&t, req, &path, &cred, &value).await?;
            let now = self.read_setting(&op.read_command, &re).await?;
            let changed = now == value;
            attempts.push(Attempt {
                setting: op.name.clone(),
                by,
                answer: shown(&self.rig.redactor, &answer),
                changed,
            });
            if !changed && now != last {
                return Err(Stop::Error(format!(
                    "{} went from {last:?} to {now:?}, which no request of certbench's set: the read-back cannot decide",
                    op.name
                )));
            }
            match by {
                As::Owner if !changed => {
                    return Err(Stop::Error(format!(
                        "positive control failed: {} with the owner's credentials did not change {} (answered {answer}; read back {now:?}): the refusals prove nothing",
                        t.describe(),
                        op.name
                    )));
                }
                As::Nobody | As::WrongCredentials if changed => changed_by.push(format!(
                    "{} {} {} set {} (read back with `{}`: it was {last:?}, it became certbench's value; answered {answer})",
                    t.describe(),
                    req.topic.as_ref().map_or(format!("{} {path}", req.method), |topic| format!("PUBLISH {topic}")),
                    if by == As::Nobody { "without credentials" } else { "with wrong credentials" },
                    op.name,
                    op.read_command
                )),
                _ => {}
            }
            last = now;
        }
        // the owner's value stays: put the setting back as it was, with a fresh session
        if let Ok((owner_again, _)) = self.config_credentials(&t, &owner).await {
            let _ = self.send_request(&t, req, &path, &owner_again, &before).await;
        }
        Ok((!changed_by.is_empty()).then(|| changed_by.join("; ")))
    }
}

/// How a configuration request authenticates.
pub(super) enum Cred {
    None,
    /// HTTP: header lines (Basic, or the session cookies).
    Headers(String),
    /// MQTT: CONNECT with a user name and password.
    Login(String, String),
}

impl Run<'_> {
    /// The owner's credentials for the service and wrong ones made to look like them: a
    /// wrong Basic password, cookies with the session's names and values no login issued,
    /// a wrong MQTT password.
    pub(super) async fn config_credentials(
        &self,
        t: &Target,
        owner: &crate::config::credentials::Credentials,
    ) -> Result<(Cred, Cred), Stop> {
        let wrong_password = crate::redact::generate_password(20);
        Ok(match t.service.kind {
            ServiceKind::HttpBasic => (
                Cred::Headers(http::basic_header(&owner.user, &owner.password)),
                Cred::Headers(http::basic_header(&owner.user, &wrong_password)),
            ),
            ServiceKind::Mqtt => (
                Cred::Login(owner.user.clone(), owner.password.clone()),
                Cred::Login(owner.user.clone(), wrong_password),
            ),
            _ => {
                let cookies = http::form_session(t, &owner.user, &owner.password)
                    .await
                    .map_err(|e| Stop::Error(format!("{}: the owner's login failed: {e}", t.describe())))?;
                let forged: Vec<String> = cookies
                    .iter()
                    .map(|c| {
                        let name = c.split('=').next().unwrap_or("sid");
                        format!("{name}={}", Shape::Token.generate())
                    })
                    .collect();
                (
                    Cred::Headers(format!("Cookie: {}\r\n", cookies.join("; "))),
                    Cred::Headers(format!("Cookie: {}\r\n", forged.join("; "))),
                )
            }
        })
    }

    /// The declared service a request goes to, ready to drive.
    pub(super) fn request_target(&self, req: &Request) -> Result<Target, Stop> {
        self.service_target(&req.service)
    }

    /// The declared service `name` as a target on its port this run.
    pub(super) fn service_target(&self, name: &str) -> Result<Target, Stop> {
        let service = self
            .rig
            .device
            .services
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| Stop::Error(format!("service {name} is not declared")))?;
        Ok(Target::new(service.clone(), self.service_port(&service)?))
    }

    /// Sends the request with `value` (`path`: its rendered path): the device's answer in
    /// words (`200: HTTP/1.1 200 OK`, `CONNACK Success, PUBACK`, `no answer: ...`).
    pub(super) async fn send_request(
        &self,
        t: &Target,
        req: &Request,
        path: &str,
        cred: &Cred,
        value: &str,
    ) -> Result<String, Stop> {
        let mut vars = self.vars.clone();
        vars.insert("value".into(), value.to_string());
        let body = req.body.render(&vars, Quote::Raw).map_err(Stop::Error)?;
        let answer = match (&req.topic, cred) {
            (Some(topic), Cred::Login(u, p)) => {
                crate::remote::mqtt::publish_once(t, Some((u, p)), topic, body.as_bytes()).await
            }
            (Some(topic), _) => crate::remote::mqtt::publish_once(t, None, topic, body.as_bytes()).await,
            (None, cred) => {
                let headers = match cred {
                    Cred::Headers(h) => h.as_str(),
                    _ => "",
                };
                http::request(t, &req.method, path, headers, &req.content_type, &body)
                    .await
                    .map(|(status, line)| format!("{status}: {line}"))
            }
        };
        Ok(answer.unwrap_or_else(|e| format!("no answer: {e}")))
    }
}
