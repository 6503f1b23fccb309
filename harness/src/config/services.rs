//! The device's network services (profile `services:`): where certbench tries
//! credentials over the network (PWD-02, PWD-03, PWD-09), and the services without a
//! login (`no_login`) the port scan and the TLS checks expect. Always on the device's own
//! declared address: certbench never sends a password guess to any other host.

use std::net::IpAddr;
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

use super::yaml::{self, InputError, Loc};
use crate::model::Transport;
use crate::model::duration::Dur;
use crate::model::template::Template;

/// A remote login service of the device, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// A short name for the report and the evidence (e.g. `telnet`, `web`).
    pub name: Loc<String>,
    /// Which protocol logs in.
    pub kind: ServiceKind,
    /// The TCP port (may use `{{name}}`, e.g. `{{port.telnet}}` for a simulator).
    pub port: Loc<String>,
    /// Only the device's own address is allowed (profile `network.address` or the lab's
    /// `bench.device_address`); the field exists so a wrong address is refused loudly.
    #[serde(default)]
    pub host: Option<Loc<String>>,
    /// TLS around the protocol (https, MQTT over TLS).
    #[serde(default)]
    pub tls: bool,
    /// no_login: the transport, `tcp` (default) or `udp` (CoAP, mDNS, SSDP...); login
    /// services are TCP.
    #[serde(default)]
    pub proto: Option<Transport>,
    /// The account to log in as (default: the factory user).
    #[serde(default)]
    pub user: Option<String>,
    /// http_basic, http_digest: the protected page; http_form: where the form is posted.
    #[serde(default)]
    pub path: Option<String>,
    /// http_form: the page a browser loads that holds the login form (default `path`);
    /// certbench reads where its form posts (a form on an HTTPS page posting to plain HTTP
    /// sends the password in clear).
    #[serde(default)]
    pub login_page: Option<String>,
    /// http_form: the names of the form fields.
    #[serde(default)]
    pub user_field: Option<String>,
    #[serde(default)]
    pub password_field: Option<String>,
    /// http_form: regex on the answer (status line, headers and body) of a login that worked.
    #[serde(default)]
    pub success: Option<Loc<String>>,
    /// http_form: regex on the answer of a refused login.
    #[serde(default)]
    pub failure: Option<Loc<String>>,
    /// telnet: the prompts; default the console's (`console.prompts`).
    #[serde(default)]
    pub prompts: Option<RawRemotePrompts>,
    /// How long one login attempt may take before it counts as unanswered (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// ssh, telnet: the command that changes the password at the shell (e.g. `passwd`):
    /// the maker's remote password-change path, where PWD-07 offers weak passwords.
    #[serde(default)]
    pub password_command: Option<String>,
    /// The maker's declared brute-force protection (IXIT), shown in the report. `after`:
    /// wrong attempts before the protection engages (default 3: the credential sweep
    /// logs in with the right password after every `after - 1` wrong ones so it never
    /// trips a lockout); `unlock`: how long until the right password works again.
    #[serde(default)]
    pub throttle: Option<RawThrottle>,
    /// http_form: the page a logged-in browser keeps using with the session cookie the
    /// login set, and a regex its answer matches while the session is alive (2xx). A
    /// password change must end the session (PWD-08 on sessions).
    #[serde(default)]
    pub session: Option<RawWebSession>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebSession {
    pub path: String,
    pub alive: Loc<String>,
}

/// A web login's session page (http_form `session`).
#[derive(Debug, Clone)]
pub struct WebSession {
    pub path: String,
    pub alive: regex::bytes::Regex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Telnet with a login/password dialog.
    Telnet,
    /// HTTP(S) Basic authentication on a protected page.
    HttpBasic,
    /// HTTP(S) Digest authentication (RFC 7616: SHA-256 or MD5, qop=auth) on a protected page.
    HttpDigest,
    /// An HTML login form posted as application/x-www-form-urlencoded.
    HttpForm,
    /// An MQTT broker on the device (CONNECT with user name and password).
    Mqtt,
    /// SSH: the password method, keyboard-interactive when that is all the server offers.
    Ssh,
    /// FTP: USER and PASS (with `tls`, implicit FTPS).
    Ftp,
    /// A service with no login at all: a status page, an API behind TLS client
    /// certificates, CoAP, mDNS. Declared for the port scan (ATK-01) and, with `tls`, for
    /// the TLS configuration check (COM-03); the password checks leave it out and say so.
    NoLogin,
}

impl ServiceKind {
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Telnet => "telnet",
            ServiceKind::HttpBasic => "http_basic",
            ServiceKind::HttpForm => "http_form",
            ServiceKind::Mqtt => "mqtt",
            ServiceKind::Ssh => "ssh",
            ServiceKind::HttpDigest => "http_digest",
            ServiceKind::Ftp => "ftp",
            ServiceKind::NoLogin => "no_login",
        }
    }

    /// Whether certbench logs in here (the password checks).
    pub fn logs_in(self) -> bool {
        self != ServiceKind::NoLogin
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRemotePrompts {
    pub login: Loc<String>,
    pub password: Loc<String>,
    pub shell: Loc<String>,
    pub login_rejected: Loc<String>,
    #[serde(default)]
    pub password_change: Option<Loc<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    #[serde(default)]
    pub after: Option<u32>,
    #[serde(default)]
    pub unlock: Option<Dur>,
    /// What the service does with a login while it is locked: `refuses` it in its own
    /// words (the default), or `drops` it (closes the connection or answers nothing).
    /// Without `drops`, a service that stops answering after wrong passwords is not taken
    /// as locked: it is an error to declare, or a denial of service when it never answers
    /// again.
    #[serde(default)]
    pub while_locked: Option<WhileLocked>,
}

/// How a locked service treats a login (the maker's declaration, IXIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhileLocked {
    /// It refuses the login in its own words (as it refuses a wrong password).
    #[default]
    Refuses,
    /// It closes the connection or answers nothing until the lockout ends.
    Drops,
}

/// The telnet dialog's patterns.
#[derive(Debug, Clone)]
pub struct RemotePrompts {
    pub login: regex::bytes::Regex,
    pub password: regex::bytes::Regex,
    pub shell: regex::bytes::Regex,
    pub login_rejected: regex::bytes::Regex,
    pub password_change: Option<regex::bytes::Regex>,
}

impl RemotePrompts {
    /// The console's prompts, for a service that runs the same login program.
    pub fn from_console(c: &super::common::Prompts) -> Self {
        Self {
            login: c.login.clone(),
            password: c.password.clone(),
            shell: c.shell.clone(),
            login_rejected: c.login_rejected.clone(),
            password_change: c.password_change.clone(),
        }
    }
}

/// A resolved remote login service.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub kind: ServiceKind,
    /// Always the device's declared address.
    pub host: IpAddr,
    pub port: Template,
    pub tls: bool,
    /// no_login over UDP (login services are TCP).
    pub udp: bool,
    pub user: Option<String>,
    pub path: String,
    /// http_form: the page holding the login form (`login_page`, else `path`).
    pub login_page: Option<String>,
    pub user_field: String,
    pub password_field: String,
    pub success: Option<regex::bytes::Regex>,
    pub failure: Option<regex::bytes::Regex>,
    pub prompts: Option<RemotePrompts>,
    pub timeout: std::time::Duration,
    /// ssh, telnet: the shell command that changes the password.
    pub password_command: Option<String>,
    /// Wrong attempts before the declared protection engages (≥ 1).
    pub after: u32,
    pub unlock: Option<std::time::Duration>,
    /// How the declared lockout treats a login.
    pub while_locked: WhileLocked,
    /// http_form: the page its session cookie opens.
    pub session: Option<WebSession>,
}

impl Service {
    /// A service of `kind` on `host:port` with nothing else declared (no TLS, no prompts, no
    /// protection): one the port scan found, or a test's.
    pub fn bare(name: String, kind: ServiceKind, host: IpAddr, port: u16, timeout: std::time::Duration) -> Self {
        Service {
            name,
            kind,
            host,
            port: crate::model::template::Template::literal(&port.to_string()),
            tls: false,
            udp: false,
            user: None,
            path: "/".into(),
            login_page: None,
            user_field: String::new(),
            password_field: String::new(),
            success: None,
            failure: None,
            prompts: None,
            timeout,
            password_command: None,
            after: 2,
            unlock: None,
            while_locked: Default::default(),
            session: None,
        }
    }
}

/// Where the device's services are.
#[derive(Debug, Clone, Copy)]
pub enum DeviceAddress {
    /// `network.address` or the lab's `bench.device_address`.
    Declared(IpAddr),
    /// Not declared, but the run's network namespace assigns it (`network.namespace`).
    Namespace,
    Unknown,
}

impl Service {
    /// Whether the run knows the device's address (a namespace service's is given when the
    /// namespace is made): no attempt goes anywhere else.
    pub fn host_known(&self) -> bool {
        !self.host.is_unspecified()
    }
}

/// Hard bounds on what a profile may ask certbench to send to a device.
pub const MAX_SERVICES: usize = 16;

/// Resolves `services:`. `device` is the device's declared address, or (`Namespace`) the
/// one the run's namespace will give it; `console` the console prompts (the telnet
/// default); `template` checks `{{name}}` references.
pub fn resolve(
    file: &Path,
    raw: &[RawService],
    device: DeviceAddress,
    console: Option<&super::common::Prompts>,
    template: super::update::TemplateCheck<'_>,
    errs: &mut Vec<InputError>,
) -> Vec<Service> {
    if raw.len() > MAX_SERVICES {
        errs.push(InputError::new(
            file,
            None,
            "services",
            format!("{} services declared; at most {MAX_SERVICES}", raw.len()),
        ));
        return Vec::new();
    }
    let cx = Cx {
        file,
        device,
        console,
        template,
    };
    let mut names = std::collections::BTreeSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let mut one = One {
                cx: &cx,
                i,
                s,
                errs: &mut *errs,
            };
            one.resolve(&mut names)
        })
        .collect()
}

/// What every service's resolution shares.
struct Cx<'a> {
    file: &'a Path,
    device: DeviceAddress,
    console: Option<&'a super::common::Prompts>,
    template: super::update::TemplateCheck<'a>,
}

/// One service being resolved: the `i`th, `s`; each check that refuses it says why in
/// `errs` and makes it None (the order of the checks is the order of the messages).
struct One<'a, 'e> {
    cx: &'a Cx<'a>,
    i: usize,
    s: &'a RawService,
    errs: &'e mut Vec<InputError>,
}

/// What a service's kind adds: the form's patterns, the prompts, the web session.
#[derive(Default)]
struct KindParts {
    success: Option<regex::bytes::Regex>,
    failure: Option<regex::bytes::Regex>,
    prompts: Option<RemotePrompts>,
    session: Option<WebSession>,
}

impl One<'_, '_> {
    fn field(&self, f: &str) -> String {
        format!("services[{}].{f}", self.i)
    }

    fn bad(&mut self, pos: Option<yaml::Pos>, f: &str, msg: String, hint: &str) {
        let mut e = InputError::new(self.cx.file, pos, self.field(f), msg);
        if !hint.is_empty() {
            e = e.with_hint(hint);
        }
        self.errs.push(e);
    }

    fn re(&mut self, f: &str, src: &Loc<String>) -> Option<regex::bytes::Regex> {
        match yaml::regex(self.cx.file, &self.field(f), src) {
            Ok(r) => Some(r),
            Err(e) => {
                self.errs.push(e);
                None
            }
        }
    }

    fn resolve(&mut self, names: &mut std::collections::BTreeSet<String>) -> Option<Service> {
        let s = self.s;
        let host = self.host()?;
        if !names.insert(s.name.value.clone()) || s.name.value.is_empty() {
            let msg = format!("{:?}: names must be non-empty and unique", s.name.value);
            self.bad(Some(s.name.pos), "name", msg, "");
            return None;
        }
        let port = (self.cx.template)(self.cx.file, &self.field("port"), &s.port);
        if s.login_page.is_some() && s.kind != ServiceKind::HttpForm {
            self.bad(
                Some(s.name.pos),
                "login_page",
                format!("a {} service has no login form", s.kind.name()),
                "declare login_page on the http_form service whose form it holds",
            );
            return None;
        }
        if let Some(p) = &s.login_page
            && (!p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            self.bad(
                Some(s.name.pos),
                "login_page",
                format!("{p:?} is not a request path"),
                "a path on the service, starting with / and without spaces, e.g. login_page: /login.html",
            );
            return None;
        }
        if s.session.is_some() && s.kind != ServiceKind::HttpForm {
            self.bad(
                Some(s.name.pos),
                "session",
                format!("a {} service has no session cookie to follow", s.kind.name()),
                "declare session on the http_form service whose login sets the cookie",
            );
            return None;
        }
        let declared = self.declared_prompts()?;
        let parts = self.kind_parts(declared)?;
        let throttle = self.common_checks()?;
        Some(Service {
            name: s.name.value.clone(),
            kind: s.kind,
            host,
            port: port?,
            tls: s.tls,
            udp: s.proto == Some(Transport::Udp),
            user: s.user.clone(),
            path: s.path.clone().unwrap_or_else(|| "/".into()),
            login_page: s.login_page.clone(),
            user_field: s.user_field.clone().unwrap_or_default(),
            password_field: s.password_field.clone().unwrap_or_default(),
            success: parts.success,
            failure: parts.failure,
            prompts: parts.prompts,
            timeout: s.timeout.map(|d| d.0).unwrap_or(std::time::Duration::from_secs(10)),
            password_command: s.password_command.clone().filter(|c| !c.trim().is_empty()),
            after: throttle.after.unwrap_or(3),
            unlock: throttle.unlock.map(|d| d.0),
            while_locked: throttle.while_locked.unwrap_or_default(),
            session: parts.session,
        })
    }

    /// The device's address: certbench sends login attempts only to the device under test.
    fn host(&mut self) -> Option<IpAddr> {
        let s = self.s;
        let host = match self.cx.device {
            DeviceAddress::Declared(ip) => ip,
            // given when the namespace is made; until then no address at all, which
            // `Service::host_known` refuses (a run without its namespace sends nothing)
            DeviceAddress::Namespace => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            DeviceAddress::Unknown => {
                self.bad(
                    Some(s.name.pos),
                    "host",
                    "remote services need the device's address".into(),
                    "declare `network.address` (or the lab's `bench.device_address`), or run the device in `network.namespace`: certbench tries credentials only against the device under test",
                );
                return None;
            }
        };
        if let Some(h) = &s.host
            && h.value.parse::<IpAddr>().ok() != Some(host)
        {
            self.bad(
                Some(h.pos),
                "host",
                format!("{:?} is not the device's address {host}", h.value),
                "certbench sends login attempts only to the device under test; drop `host` or declare the device's address in network.address",
            );
            return None;
        }
        Some(host)
    }

    /// The service's own prompts (telnet needs them, SSH may use them), else the console's;
    /// None when a declared prompt is invalid.
    fn declared_prompts(&mut self) -> Option<Option<RemotePrompts>> {
        let Some(p) = &self.s.prompts else {
            return Some(self.cx.console.map(RemotePrompts::from_console));
        };
        let login = self.re("prompts.login", &p.login);
        let password = self.re("prompts.password", &p.password);
        let shell = self.re("prompts.shell", &p.shell);
        let rejected = self.re("prompts.login_rejected", &p.login_rejected);
        let change = p
            .password_change
            .as_ref()
            .map(|c| self.re("prompts.password_change", c));
        match (login, password, shell, rejected) {
            (Some(login), Some(password), Some(shell), Some(login_rejected)) if !matches!(change, Some(None)) => {
                Some(Some(RemotePrompts {
                    login,
                    password,
                    shell,
                    login_rejected,
                    password_change: change.flatten(),
                }))
            }
            _ => None,
        }
    }

    /// What the kind needs, checked: the form's fields and patterns, telnet's prompts, a
    /// Basic/Digest page, nothing login-only on a service without a login.
    fn kind_parts(&mut self, declared: Option<RemotePrompts>) -> Option<KindParts> {
        let s = self.s;
        let mut parts = KindParts::default();
        match s.kind {
            ServiceKind::HttpForm => return self.form_parts(),
            ServiceKind::Telnet => {
                if declared.is_none() {
                    self.bad(
                        Some(s.name.pos),
                        "prompts",
                        "a telnet service needs its prompts".into(),
                        "declare services[].prompts (login, password, shell, login_rejected) or console.prompts",
                    );
                    return None;
                }
                parts.prompts = declared;
            }
            ServiceKind::HttpBasic | ServiceKind::HttpDigest => {
                if s.path.is_none() {
                    self.bad(
                        Some(s.name.pos),
                        "path",
                        format!("an {} service needs the protected page's path", s.kind.name()),
                        "e.g. path: /admin",
                    );
                    return None;
                }
            }
            ServiceKind::Mqtt | ServiceKind::Ftp => {}
            ServiceKind::NoLogin => self.no_login_checks()?,
            // optional for SSH: the shell prompt ends the look after a login, and a
            // password_change pattern adds to the built-in phrases of a forced change
            ServiceKind::Ssh => parts.prompts = declared,
        }
        Some(parts)
    }

    fn form_parts(&mut self) -> Option<KindParts> {
        let s = self.s;
        let missing: Vec<&str> = [
            ("path", s.path.is_none()),
            ("user_field", s.user_field.is_none()),
            ("password_field", s.password_field.is_none()),
            ("success", s.success.is_none()),
            ("failure", s.failure.is_none()),
        ]
        .into_iter()
        .filter_map(|(f, m)| m.then_some(f))
        .collect();
        if !missing.is_empty() {
            self.errs.push(
                InputError::new(self.cx.file, Some(s.name.pos), self.field("kind"), format!("an http_form service needs {}", missing.join(", ")))
                    .with_hint("declare where the form is posted, its field names, and a pattern each for a login that worked and one that was refused"),
            );
            return None;
        }
        let session = match &s.session {
            Some(ws) => self.re("session.alive", &ws.alive).map(|alive| WebSession {
                path: ws.path.clone(),
                alive,
            }),
            None => None,
        };
        let success = s.success.as_ref().and_then(|p| self.re("success", p));
        let failure = s.failure.as_ref().and_then(|p| self.re("failure", p));
        Some(KindParts {
            success: Some(success?),
            failure: Some(failure?),
            prompts: None,
            session,
        })
    }

    /// What only a login uses would be a declaration certbench silently ignores.
    fn no_login_checks(&mut self) -> Option<()> {
        let s = self.s;
        let login_only: Vec<&str> = [
            ("user", s.user.is_some()),
            ("path", s.path.is_some()),
            ("prompts", s.prompts.is_some()),
            ("throttle", s.throttle.is_some()),
            ("success", s.success.is_some()),
            ("failure", s.failure.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        if !login_only.is_empty() {
            self.bad(
                Some(s.name.pos),
                login_only[0],
                format!("a no_login service has no login to use {}", login_only.join(", ")),
                "drop these fields, or declare the login's kind (telnet, ssh, http_basic, http_digest, http_form, mqtt, ftp)",
            );
            return None;
        }
        if s.tls && s.proto == Some(Transport::Udp) {
            self.bad(
                Some(s.name.pos),
                "tls",
                "certbench judges TLS over TCP; DTLS over UDP is not examined".into(),
                "declare the UDP service without tls: it is still compared with the port scan (ATK-01)",
            );
            return None;
        }
        Some(())
    }

    /// The checks every kind passes: a password command needs a shell, a lockout at least
    /// one attempt, a login TCP.
    fn common_checks(&mut self) -> Option<RawThrottle> {
        let s = self.s;
        if s.password_command.is_some() && !matches!(s.kind, ServiceKind::Ssh | ServiceKind::Telnet) {
            self.bad(
                Some(s.name.pos),
                "password_command",
                format!("a {} service has no shell to run a password command in", s.kind.name()),
                "declare password_command on the SSH or telnet service whose shell changes the password",
            );
            return None;
        }
        let throttle = s.throttle.clone().unwrap_or(RawThrottle {
            after: None,
            unlock: None,
            while_locked: None,
        });
        if throttle.after == Some(0) {
            self.bad(Some(s.name.pos), "throttle.after", "must be at least 1".into(), "");
            return None;
        }
        if s.proto == Some(Transport::Udp) && s.kind.logs_in() {
            self.bad(
                Some(s.name.pos),
                "proto",
                format!("a {} login is TCP", s.kind.name()),
                "proto: udp is for no_login services (CoAP, mDNS, SSDP)",
            );
            return None;
        }
        Some(throttle)
    }
}
