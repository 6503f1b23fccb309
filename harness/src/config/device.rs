//! Device profiles (`devices/NAME.yaml`) and lab bindings: what a board is, and where it
//! is wired on this bench.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::common::{CommandSpec, Declaration, Prompts, RawTrust};
use super::duration::Dur;
use super::profile::{RawLab, RawPower, RawProfile, SecretSource};
use super::template::Template;
use super::yaml::{self, InputError, InputErrors, Loc};
pub use crate::model::Identity;

/// The maker's documents, resolved to absolute paths.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    pub security_txt: Option<PathBuf>,
    pub disclosure_policy: Option<PathBuf>,
    pub support_period: Option<PathBuf>,
    pub privacy_policy: Option<PathBuf>,
    pub signoff: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct BootInterrupt {
    pub send: String,
    pub prompt: regex::bytes::Regex,
    pub password_prompt: Option<regex::bytes::Regex>,
    pub command: Option<String>,
    pub window: Option<std::time::Duration>,
}

/// A resolved device, ready to drive.
#[derive(Debug, Clone)]
pub struct Device {
    pub profile_file: PathBuf,
    /// What runs differently now for a profile of an older format (config::version).
    pub notices: Vec<String>,
    pub identity: Identity,
    pub console: Option<ConsoleSpec>,
    pub factory: Option<Login>,
    pub power: Option<PowerSpec>,
    pub factory_reset: Option<CommandSpec>,
    pub setup: Vec<Template>,
    pub declarations: BTreeMap<String, Declaration>,
    pub vars: BTreeMap<String, String>,
    /// The MQTT cloud the bench plays, if the device has one.
    pub mqtt: Option<super::bench::BenchSpec>,
    /// The maker's declaration whether that channel uses TLS (`network.mqtt.tls`).
    pub mqtt_tls: Option<Declaration>,
    /// The device's own MQTT broker, if it hosts one. Values may use `{{name}}`.
    pub broker: Option<DeviceBroker>,
    /// The maker's documents (absolute paths) and reviewers' sign-offs.
    pub documents: Documents,
    pub signoffs: Vec<super::signoff::SignOff>,
    /// Provisions the maker declares not applicable, with the reason.
    pub not_applicable: BTreeMap<String, String>,
    pub ixit: BTreeMap<String, String>,
    /// The update section, and where the update bench binds (address, HTTP and HTTPS port).
    pub update: Option<super::update::UpdateSpec>,
    pub update_bind: (std::net::IpAddr, u16, u16),
    /// Whose connections to the benches count as the device's.
    pub attribution: crate::model::Attribution,
    pub debug: Option<super::debug::DebugSpec>,
    /// Remote login services, on the device's address.
    pub services: Vec<super::services::Service>,
    /// The lab's vendor default credentials, added to the built-in sweep list.
    pub default_credentials: Vec<(String, String)>,
    /// Other units' TLS certificates (file name, DER), from the lab file.
    pub other_unit_certificates: Vec<(String, Vec<u8>)>,
    /// `{{port.NAME}}` names the profile uses: a free port is picked for each at run start
    /// (for simulators and emulated devices that are told where to listen).
    pub port_vars: std::collections::BTreeSet<String>,
    /// Where the bench sees the device's link, if anywhere.
    pub link: Option<Link>,
    /// Plaintext protocols declared exempt from COM-01, with the maker's reason.
    pub plaintext_exempt: BTreeMap<String, String>,
    /// Capture file limit in bytes.
    pub capture_limit: u64,
    /// The maker's declared dropping firewall (its reason), if any.
    pub firewall_drops: Option<String>,
    /// HTTP answers the bench gives the device's requests for declared paths.
    pub http_answers: Vec<crate::model::DeclaredAnswer>,
    /// Serve DHCP on the lab interface to this MAC (lab `bench.dhcp`).
    pub dhcp: Option<[u8; 6]>,
    /// The lab's resolver for names the bench does not play (lab `bench.dns_upstream`).
    pub dns_upstream: Option<std::net::SocketAddr>,
}

/// How the bench sees the device's network.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// An emulated device in a namespace certbench makes for it.
    Namespace,
    /// A real board wired to this lab interface.
    Interface(String),
}

#[derive(Debug, Clone)]
pub struct DeviceBroker {
    pub host: Template,
    pub plain_port: Template,
    pub tls_port: Template,
    pub ca_cert: Template,
}

#[derive(Debug, Clone)]
pub struct ConsoleSpec {
    pub port: Template,
    pub baud: u32,
    pub newline: String,
    pub prompts: Prompts,
    pub logout: String,
    pub password_command: Option<String>,
    pub cli_prompt: Option<regex::bytes::Regex>,
    pub probe_command: Option<String>,
    pub boot_interrupt: Option<BootInterrupt>,
    pub boot_time: std::time::Duration,
    pub wake_after: std::time::Duration,
    pub lost_grace: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub enum PowerSpec {
    Manual,
    External {
        on: Template,
        off: Template,
        cycle: Option<Template>,
        timeout: std::time::Duration,
        off_time: std::time::Duration,
    },
}

/// Names a command template may use besides the lab's `vars`.
pub const COMMAND_VARS: &[&str] = &[
    "console",
    "workdir",
    "exe_dir",
    "profile_dir",
    "run_id",
    "results",
    // the device's namespace (`network.namespace`): a prefix that starts a command in it
    // (empty when the run has no namespace) and its name
    "netns.exec",
    "netns.name",
    // the bench's end of the namespace's link (the device's gateway)
    "netns.bench",
    // the CA whose certificates the bench's man in the middle presents as valid to the
    // device's other TLS clients (the MQTT bench's when there is one), for provisioning
    // the device; empty without a namespace
    "netns.ca_cert",
];

/// CLI overrides of the lab binding.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Check where secrets come from but do not read them (`certbench validate`: secrets
    /// are supplied where the run happens).
    pub skip_secrets: bool,
    /// Check that every file the profile references exists and is readable
    /// (`certbench validate`). At `run` a missing file only makes the checks that use it
    /// ERROR, with the cause.
    pub check_files: bool,
    pub port: Option<String>,
    pub baud: Option<u32>,
    pub vars: BTreeMap<String, String>,
    /// Checks a `debug.driver.probe_rs.chip` name (the debug layer passes probe-rs's target
    /// list in; config does not call probe-rs). None: any name is taken.
    pub known_chip: Option<ChipCheck>,
}

/// Whether a chip name is known: Err says why not.
pub type ChipCheck = fn(&str) -> Result<(), String>;

/// Whether `p` (relative to the profile's folder `base`) stays inside that folder, also
/// once symbolic links are followed. A file that does not exist yet is left to
/// [`named_files`] (validate) and to the read at run, which pass the same gate
/// ([`crate::util::check_user_file`]).
fn confined(base: &Path, p: &Path) -> Result<(), String> {
    use std::path::Component;
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("outside the profile's folder (absolute or `..`)".into());
    }
    let full = base.join(p);
    if full.exists() {
        crate::util::check_user_file(&full, &[base], crate::util::limits::TEXT)?;
    }
    Ok(())
}

/// Files the profile names that do not pass the gate every named file passes
/// ([`crate::util::check_user_file`]: inside the profile's folder with links followed, a
/// regular file, bounded). With `missing_too` (`certbench validate`) a missing file is an
/// error too; at `run` a missing file only makes the checks that use it ERROR, but an
/// existing one that escapes the folder, or is a FIFO or a device, stops the run. Paths
/// made at run time (with `{{...}}`, e.g. images a setup command signs into the work
/// folder) pass the same gate when they are read.
fn named_files(file: &Path, raw: &RawProfile, missing_too: bool) -> Vec<InputError> {
    let base = crate::util::folder_of(file);
    let mut refs: Vec<(String, Option<yaml::Pos>, String)> = Vec::new();
    let mut path = |field: &str, pos, p: &str| refs.push((field.to_string(), pos, p.to_string()));
    if let Some(f) = &raw.identity.firmware_file {
        path("identity.firmware_file", None, &f.to_string_lossy());
    }
    if let Some(d) = &raw.documents {
        for (field, p) in d.declared() {
            path(&format!("documents.{field}"), Some(p.pos), &p.value.to_string_lossy());
        }
    }
    let mut trust = |field: &str, t: &Option<RawTrust>| {
        if let Some(RawTrust::MakerCa { cert, key }) = t {
            path(&format!("{field}.maker_ca.cert"), None, &cert.to_string_lossy());
            path(&format!("{field}.maker_ca.key"), None, &key.to_string_lossy());
        }
    };
    if let Some(n) = &raw.network {
        trust("network.mqtt.trust", &n.mqtt.as_ref().map(|m| m.trust.clone()));
    }
    if let Some(u) = &raw.update {
        trust("update.trust", &u.trust);
    }
    if let Some(b) = raw.network.as_ref().and_then(|n| n.broker.as_ref()) {
        refs.push((
            "network.broker.ca_cert".into(),
            Some(b.ca_cert.pos),
            b.ca_cert.value.clone(),
        ));
    }
    if let Some(u) = &raw.update {
        let imgs = &u.images;
        for (name, img) in [
            ("valid", Some(&imgs.valid)),
            ("older", imgs.older.as_ref()),
            ("other_model", imgs.other_model.as_ref()),
        ] {
            if let Some(i) = img {
                refs.push((
                    format!("update.images.{name}.file"),
                    Some(i.file.pos),
                    i.file.value.clone(),
                ));
            }
        }
        for (n, h) in imgs.hostile.iter().enumerate() {
            refs.push((
                format!("update.images.hostile[{n}].file"),
                Some(h.file.pos),
                h.file.value.clone(),
            ));
        }
    }
    refs.into_iter()
        .filter(|(_, _, p)| !p.contains("{{"))
        .filter_map(|(field, pos, p)| {
            let abs = if Path::new(&p).is_absolute() { PathBuf::from(&p) } else { base.join(&p) };
            // (symlink_metadata: a dangling link is there, and is checked)
            if !missing_too && std::fs::symlink_metadata(&abs).is_err() {
                return None;
            }
            let max = if field.starts_with("update.images") || field == "identity.firmware_file" {
                crate::util::limits::IMAGE
            } else {
                crate::util::limits::TEXT
            };
            let why = match crate::util::check_user_file(&abs, &[base], max) {
                Ok(_) => return None,
                Err(e) => e,
            };
            Some(
                InputError::new(file, pos, &field, format!("{p:?} ({}): {why}", abs.display()))
                    .with_hint("paths are relative to the profile's folder; at `run` only the checks that use this file will ERROR"),
            )
        })
        .collect()
}

pub fn load(profile: &Path, lab: Option<&Path>, ov: &Overrides) -> Result<Device, InputErrors> {
    let raw: RawProfile = yaml::load(profile)?;
    let missing = named_files(profile, &raw, ov.check_files);
    let lab_raw: RawLab = match lab {
        Some(l) => yaml::load(l)?,
        None => RawLab::default(),
    };
    match resolve(profile, raw, lab.map(|l| (l, lab_raw)), ov) {
        Ok(d) if missing.is_empty() => Ok(d),
        Ok(_) => Err(InputErrors(missing)),
        Err(mut e) => {
            e.0.extend(missing);
            Err(e)
        }
    }
}

fn resolve(file: &Path, raw: RawProfile, lab: Option<(&Path, RawLab)>, ov: &Overrides) -> Result<Device, InputErrors> {
    let errs = std::cell::RefCell::new(Vec::new());
    let (lab_file, lab) = match lab {
        Some((f, l)) => (Some(f.to_path_buf()), l),
        None => (None, RawLab::default()),
    };
    let lab_file = lab_file.unwrap_or_else(|| file.to_path_buf());
    let mut vars = lab.vars.clone();
    vars.extend(ov.vars.clone());
    let attribution = {
        let declared = match (
            lab.bench.as_ref().and_then(|b| b.device_address.as_ref()),
            raw.network.as_ref().and_then(|n| n.address.as_ref()),
        ) {
            (Some(a), _) => Some((lab_file.as_path(), a, "bench.device_address")),
            (None, Some(a)) => Some((file, a, "network.address")),
            (None, None) => None,
        };
        let device = declared.and_then(|(f, a, field)| match a.value.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                errs.borrow_mut().push(
                    InputError::new(f, Some(a.pos), field, format!("{:?} is not an IP address", a.value))
                        .with_hint("give the address the board's connections come from, e.g. 192.168.7.20"),
                );
                None
            }
        });
        crate::model::Attribution { device }
    };
    // `{{device.address}}`: so a simulated device can be told where to connect from
    if let Some(ip) = attribution.device {
        vars.insert("device.address".into(), ip.to_string());
    }
    let has_bench = raw.network.as_ref().is_some_and(|n| n.mqtt.is_some());
    let has_update = raw.update.is_some();
    let port_vars = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let known = |name: &str| {
        if let Some(p) = name.strip_prefix("port.")
            && !p.is_empty()
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            port_vars.borrow_mut().insert(name.to_string());
            return true;
        }
        COMMAND_VARS.contains(&name)
            || vars.contains_key(name)
            // the namespace gives the device its address when it is made
            || (name == "device.address" && raw.network.as_ref().is_some_and(|n| n.namespace))
            || (has_bench && super::bench::VARS.contains(&name))
            || (has_update && super::update::VARS.contains(&name))
    };

    let template = |f: &Path, field: &str, src: &Loc<String>| -> Option<Template> {
        match Template::parse(&src.value) {
            Ok(t) => {
                for v in t.vars() {
                    let image_var = field.starts_with("update.") && super::update::IMAGE_VARS.contains(&v);
                    if !known(v) && !image_var {
                        errs.borrow_mut().push(
                            InputError::new(f, Some(src.pos), field, format!("unknown variable `{{{{{v}}}}}`"))
                                .with_hint(format!(
                                    "commands may use {}, or names given in the lab's `vars` / `--set NAME=VALUE`{}",
                                    COMMAND_VARS
                                        .iter()
                                        .map(|v| format!("{{{{{v}}}}}"))
                                        .collect::<Vec<_>>()
                                        .join(", "),
                                    if field.starts_with("update.") {
                                        format!(
                                            "; update fields also {}",
                                            super::update::IMAGE_VARS
                                                .iter()
                                                .map(|v| format!("{{{{{v}}}}}"))
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        )
                                    } else {
                                        String::new()
                                    }
                                )),
                        );
                    }
                }
                Some(t)
            }
            Err(e) => {
                errs.borrow_mut().push(InputError::new(f, Some(src.pos), field, e));
                None
            }
        }
    };

    let power_src = lab
        .power
        .clone()
        .map(|p| (lab_file.as_path(), p))
        .or(raw.power.clone().map(|p| (file, p)));
    let power = power_src.and_then(|(f, p)| match p {
        RawPower::Manual => Some(PowerSpec::Manual),
        RawPower::External(e) => {
            let on = template(f, "power.external.on", &e.on);
            let off = template(f, "power.external.off", &e.off);
            let cycle = e.cycle.as_ref().map(|c| template(f, "power.external.cycle", c));
            Some(PowerSpec::External {
                on: on?,
                off: off?,
                cycle: cycle.flatten(),
                timeout: e.timeout.unwrap_or(Dur::secs(30)).0,
                off_time: e.off_time.unwrap_or(Dur(std::time::Duration::from_secs(1))).0,
            })
        }
    });
    let reset_src = lab
        .factory_reset
        .clone()
        .map(|p| (lab_file.as_path(), p))
        .or(raw.factory_reset.clone().map(|p| (file, p)));
    let factory_reset = reset_src.and_then(|(f, r)| {
        Some(CommandSpec {
            command: template(f, "factory_reset.command", &r.command)?,
            timeout: r.timeout.unwrap_or(Dur::secs(60)).0,
        })
    });
    let setup: Vec<Template> = raw
        .setup
        .iter()
        .enumerate()
        .filter_map(|(i, s)| template(file, &format!("setup[{i}]"), s))
        .collect();

    let console = raw.console.as_ref().and_then(|c| {
        let port = match (&ov.port, &lab.port, &c.port) {
            (Some(p), _, _) => Some(Template::literal(p)),
            (None, Some(p), _) => template(&lab_file, "port", p),
            (None, None, Some(p)) => template(file, "console.port", p),
            (None, None, None) => {
                errs.borrow_mut().push(
                    InputError::new(file, None, "console.port", "no serial port given").with_hint(
                        "set console.port in the profile, `port` in a lab file, or pass --port /dev/ttyUSB0",
                    ),
                );
                None
            }
        };
        let p = &c.prompts;
        let re = |field: &str, src: &Loc<String>| match yaml::regex(file, &format!("console.prompts.{field}"), src) {
            Ok(r) => Some(r),
            Err(e) => {
                errs.borrow_mut().push(e);
                None
            }
        };
        let opt = |field: &str, src: &Option<Loc<String>>| src.as_ref().map(|s| re(field, s));
        let prompts = (|| {
            let password_change = opt("password_change", &p.password_change);
            let current_password = opt("current_password", &p.current_password);
            let new_password = opt("new_password", &p.new_password);
            let confirm_password = opt("confirm_password", &p.confirm_password);
            let password_rejected = opt("password_rejected", &p.password_rejected);
            let login = re("login", &p.login);
            let password = re("password", &p.password);
            let shell = re("shell", &p.shell);
            let login_rejected = re("login_rejected", &p.login_rejected);
            Some(Prompts {
                login: login?,
                password: password?,
                shell: shell?,
                password_change: password_change.flatten(),
                current_password: current_password.flatten(),
                new_password: new_password.flatten(),
                confirm_password: confirm_password.flatten(),
                login_rejected: login_rejected?,
                password_rejected: password_rejected.flatten(),
            })
        })();
        let cli_prompt = c
            .cli_prompt
            .as_ref()
            .map(|src| match yaml::regex(file, "console.cli_prompt", src) {
                Ok(r) => Some(r),
                Err(e) => {
                    errs.borrow_mut().push(e);
                    None
                }
            });
        let cli_prompt = match cli_prompt {
            Some(None) => return None,
            Some(r) => r,
            None => None,
        };
        let boot_interrupt = match &c.boot_interrupt {
            None => None,
            Some(b) => {
                let field = |f: &str| format!("console.boot_interrupt.{f}");
                let prompt = yaml::regex(file, &field("prompt"), &b.prompt);
                let password_prompt = b
                    .password_prompt
                    .as_ref()
                    .map(|p| yaml::regex(file, &field("password_prompt"), p))
                    .transpose();
                match (prompt, password_prompt) {
                    (Ok(prompt), Ok(password_prompt)) => Some(BootInterrupt {
                        send: b.send.clone(),
                        prompt,
                        password_prompt,
                        command: b.command.clone(),
                        window: b.window.map(|w| w.0),
                    }),
                    (p, pp) => {
                        errs.borrow_mut().extend(p.err().into_iter().chain(pp.err()));
                        return None;
                    }
                }
            }
        };
        Some(ConsoleSpec {
            port: port?,
            baud: ov.baud.or(lab.baud).unwrap_or(c.baud),
            newline: c.newline.clone().unwrap_or_else(|| "\r".into()),
            prompts: prompts?,
            logout: c.logout.clone().unwrap_or_else(|| "exit".into()),
            password_command: c.password_command.clone(),
            cli_prompt,
            probe_command: c.probe_command.clone(),
            boot_interrupt,
            boot_time: c.boot_time.unwrap_or(Dur::secs(60)).0,
            wake_after: c.wake_after.unwrap_or(Dur::secs(3)).0,
            lost_grace: c.lost_grace.unwrap_or(Dur(std::time::Duration::from_millis(500))).0,
        })
    });

    let base = crate::util::folder_of(file);
    let factory =
        raw.credentials
            .as_ref()
            .and_then(|c| match resolve_secret(base, &c.factory.password, ov.skip_secrets) {
                Ok(password) => Some(Login {
                    user: c.factory.user.clone(),
                    password,
                }),
                Err(msg) => {
                    errs.borrow_mut()
                        .push(InputError::new(file, None, "credentials.factory.password", msg));
                    None
                }
            });

    let broker = raw.network.as_ref().and_then(|n| n.broker.as_ref()).and_then(|b| {
        let host = template(file, "network.broker.host", &b.host);
        let plain = match &b.plain_port {
            Some(p) => template(file, "network.broker.plain_port", p),
            None => Some(Template::literal("1883")),
        };
        let tls = template(file, "network.broker.tls_port", &b.tls_port);
        let ca = template(file, "network.broker.ca_cert", &b.ca_cert);
        Some(DeviceBroker {
            host: host?,
            plain_port: plain?,
            tls_port: tls?,
            ca_cert: ca?,
        })
    });
    let mqtt = raw.network.as_ref().and_then(|n| n.mqtt.as_ref()).and_then(|m| {
        let bind = lab.bench.clone().unwrap_or_default();
        let ip = match &bind.bind {
            None => std::net::IpAddr::from([127, 0, 0, 1]),
            Some(b) => match b.value.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    errs.borrow_mut().push(
                        InputError::new(
                            &lab_file,
                            Some(b.pos),
                            "bench.bind",
                            format!("{:?} is not an IP address", b.value),
                        )
                        .with_hint("give the address of the bench interface facing the board, e.g. 192.168.7.1"),
                    );
                    return None;
                }
            },
        };
        let trust = match &m.trust {
            RawTrust::BenchCa => crate::model::TrustSource::BenchCa,
            RawTrust::None => crate::model::TrustSource::None,
            RawTrust::MakerCa { cert, key } => {
                let abs = |p: &PathBuf| if p.is_absolute() { p.clone() } else { base.join(p) };
                crate::model::TrustSource::Maker {
                    cert: abs(cert),
                    key: abs(key),
                }
            }
        };
        Some(super::bench::BenchSpec {
            host: m.host.clone(),
            trust,
            bind: ip,
            plain_port: bind.mqtt_plain_port.unwrap_or(0),
            tls_port: bind.mqtt_tls_port.unwrap_or(0),
            handshake_timeout: super::bench::HANDSHAKE_TIMEOUT,
            attribution,
        })
    });
    let abs = |p: &PathBuf| if p.is_absolute() { p.clone() } else { base.join(p) };
    // the maker's documents are quoted in reports: they must live in the profile's folder,
    // so a profile cannot make a lab's private files (a signing key) appear in the evidence
    if let Some(d) = &raw.documents {
        for (field, p) in d.declared() {
            if let Err(why) = confined(base, &p.value) {
                errs.borrow_mut().push(
                    InputError::new(
                        file,
                        Some(p.pos),
                        format!("documents.{field}"),
                        format!("{}: {why}", p.value.display()),
                    )
                    .with_hint(
                        "put the maker's documents in the profile's folder (or below it) and name them relative to it",
                    ),
                );
            }
        }
    }
    let documents = raw.documents.as_ref().map(|d| {
        let abs = |p: &Option<Loc<PathBuf>>| p.as_ref().map(|p| abs(&p.value));
        Documents {
            security_txt: abs(&d.security_txt),
            disclosure_policy: abs(&d.disclosure_policy),
            support_period: abs(&d.support_period),
            privacy_policy: abs(&d.privacy_policy),
            signoff: abs(&d.signoff),
        }
    });
    let signoffs = match documents.as_ref().and_then(|d| d.signoff.clone()) {
        Some(f) => match yaml::load::<super::signoff::SignOffFile>(&f) {
            Ok(s) => {
                // a PASS must name the exact document it approves, or any later edit passes
                for (i, so) in s.signoffs.iter().enumerate() {
                    let hex = so
                        .document_sha256
                        .as_deref()
                        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
                    if so.decision == super::signoff::Decision::Pass && !hex {
                        errs.borrow_mut().push(
                            InputError::new(
                                &f,
                                None,
                                format!("signoffs[{i}].document_sha256"),
                                format!("the PASS sign-off of {} names no document SHA-256", so.check),
                            )
                            .with_hint("a PASS counts only for the exact document reviewed: add document_sha256 (sha256sum of the file)"),
                        );
                    }
                }
                s.signoffs
            }
            Err(e) => {
                errs.borrow_mut().push(e);
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let mut not_applicable = BTreeMap::new();
    for (p, reason) in raw.ics.as_ref().map(|i| i.not_applicable.clone()).unwrap_or_default() {
        if crate::model::catalogue::Catalogue::get().provision(&p.value).is_none() {
            errs.borrow_mut().push(
                InputError::new(
                    file,
                    Some(p.pos),
                    "ics.not_applicable",
                    format!("provision {:?} is not in the requirement catalogue", p.value),
                )
                .with_hint("see `certbench coverage`"),
            );
        }
        not_applicable.insert(p.value, reason);
    }
    let bind = lab.bench.clone().unwrap_or_default();
    let update_ip = match bind.bind.as_ref().map(|b| b.value.parse::<std::net::IpAddr>()) {
        Some(Ok(ip)) => ip,
        _ => std::net::IpAddr::from([127, 0, 0, 1]),
    };
    let update_bind = (
        update_ip,
        bind.update_http_port.unwrap_or(0),
        bind.update_https_port.unwrap_or(0),
    );
    let update = raw.update.as_ref().and_then(|u| {
        let mut e = Vec::new();
        let r = super::update::resolve(file, u, base, &template, &mut e);
        errs.borrow_mut().extend(e);
        r
    });
    let debug = raw.debug.as_ref().and_then(|d| {
        let driver = match &d.driver {
            super::debug::RawDriver::Gdb { address } => super::debug::Driver::Gdb {
                address: template(file, "debug.driver.gdb.address", address)?,
            },
            super::debug::RawDriver::ProbeRs { chip, probe } => {
                if let Some(Err(e)) = ov.known_chip.map(|known| known(&chip.value)) {
                    errs.borrow_mut().push(
                        InputError::new(file, Some(chip.pos), "debug.driver.probe_rs.chip", e).with_hint(
                            "use a chip name from `probe-rs chip list`, e.g. nRF52840_xxAA or STM32F411RETx",
                        ),
                    );
                    return None;
                }
                super::debug::Driver::ProbeRs {
                    chip: chip.value.clone(),
                    probe: lab.debug_probe.clone().or(probe.clone()),
                }
            }
        };
        let lab_base = crate::util::folder_of(&lab_file);
        let flash_before_run = lab
            .flash_before_run
            .as_ref()
            .map(|p| if p.is_absolute() { p.clone() } else { lab_base.join(p) });
        // (a missing image is the flash's error at run; one that is there passes the gate)
        if let Some(p) = &flash_before_run
            && std::fs::symlink_metadata(p).is_ok()
            && let Err(why) = crate::util::check_user_file(p, &[lab_base], crate::util::limits::IMAGE)
        {
            errs.borrow_mut()
                .push(InputError::new(&lab_file, None, "flash_before_run", why));
        }
        Some(super::debug::DebugSpec {
            driver,
            flash: d.flash.clone(),
            ram: d.ram.clone(),
            sacrificial: d.sacrificial,
            flash_before_run,
        })
    });
    let services = {
        let mut e = Vec::new();
        let prompts = console.as_ref().map(|c| &c.prompts);
        use super::services::DeviceAddress;
        let address = match attribution.device {
            Some(ip) => DeviceAddress::Declared(ip),
            None if raw.network.as_ref().is_some_and(|n| n.namespace) => DeviceAddress::Namespace,
            None => DeviceAddress::Unknown,
        };
        let s = super::services::resolve(file, &raw.services, address, prompts, &template, &mut e);
        errs.borrow_mut().extend(e);
        s
    };
    let default_credentials = match &lab.default_credentials {
        None => Vec::new(),
        Some(p) => {
            let lab_base = crate::util::folder_of(&lab_file);
            let path = if p.value.is_absolute() {
                p.value.clone()
            } else {
                lab_base.join(&p.value)
            };
            let read = crate::util::read_user_file(&path, &[lab_base], crate::util::limits::TEXT)
                .and_then(|b| String::from_utf8(b).map_err(|_| format!("{}: not UTF-8 text", path.display())));
            match read {
                Ok(text) => match super::credentials::parse(&text) {
                    Ok(list) => list,
                    Err((line, why)) => {
                        errs.borrow_mut().push(InputError::new(
                            &path,
                            Some(yaml::Pos {
                                line: u32::try_from(line).unwrap_or(u32::MAX),
                                column: 1,
                            }),
                            "default_credentials",
                            why,
                        ));
                        Vec::new()
                    }
                },
                Err(e) => {
                    errs.borrow_mut()
                        .push(InputError::new(&lab_file, Some(p.pos), "default_credentials", e));
                    Vec::new()
                }
            }
        }
    };
    let mut other_unit_certificates = Vec::new();
    for p in &lab.other_unit_certificates {
        let lab_base = crate::util::folder_of(&lab_file);
        let path = if p.value.is_absolute() {
            p.value.clone()
        } else {
            lab_base.join(&p.value)
        };
        let read = crate::util::read_user_file(&path, &[lab_base], crate::util::limits::TEXT)
            .and_then(|b| crate::tlscert::pem_certificates(&b).map_err(|e| format!("{}: {e}", path.display())));
        match read {
            Ok(ders) => {
                let name = p.value.display().to_string();
                other_unit_certificates.extend(ders.into_iter().map(|d| (name.clone(), d)));
            }
            Err(why) => errs
                .borrow_mut()
                .push(InputError::new(&lab_file, Some(p.pos), "other_unit_certificates", why)),
        }
    }
    let http_answers = super::answers::resolve(
        file,
        raw.network.as_ref().map_or(&[][..], |n| &n.http_answers),
        &mut errs.borrow_mut(),
    );
    let mut plaintext_exempt = BTreeMap::new();
    for (name, reason) in raw.network.as_ref().map(|n| &n.plaintext_exempt).into_iter().flatten() {
        if crate::model::PLAINTEXT_NAMES.contains(&name.as_str()) {
            plaintext_exempt.insert(name.clone(), reason.value.clone());
        } else {
            errs.borrow_mut().push(
                InputError::new(
                    file,
                    Some(reason.pos),
                    format!("network.plaintext_exempt.{name}"),
                    format!("{name:?} is not a plaintext protocol certbench identifies"),
                )
                .with_hint(format!("one of: {}", crate::model::PLAINTEXT_NAMES.join(", "))),
            );
        }
    }
    let link = match (
        raw.network.as_ref().is_some_and(|n| n.namespace),
        lab.bench.as_ref().and_then(|b| b.capture_interface.as_ref()),
    ) {
        (_, Some(i)) => Some(Link::Interface(i.value.clone())),
        (true, None) => Some(Link::Namespace),
        (false, None) => None,
    };
    let dhcp = match lab.bench.as_ref() {
        Some(b) if b.dhcp => {
            let mut missing = Vec::new();
            if b.capture_interface.is_none() {
                missing.push("bench.capture_interface (the lab interface the board is wired to)");
            }
            if !matches!(attribution.device, Some(std::net::IpAddr::V4(_))) {
                missing.push("an IPv4 bench.device_address (the address the board is given)");
            }
            let mac = b.device_mac.as_ref().map(|m| (m, crate::util::parse_mac(&m.value)));
            match &mac {
                None => missing.push("bench.device_mac (the only client answered)"),
                Some((m, None)) => errs.borrow_mut().push(
                    InputError::new(
                        &lab_file,
                        Some(m.pos),
                        "bench.device_mac",
                        format!("{:?} is not a MAC address", m.value),
                    )
                    .with_hint("six hex pairs: aa:bb:cc:dd:ee:ff"),
                ),
                Some((_, Some(_))) => {}
            }
            if !missing.is_empty() {
                errs.borrow_mut().push(
                    InputError::new(&lab_file, None, "bench.dhcp", format!("needs {}", missing.join(", "))).with_hint(
                        "certbench leases the board's declared address to the board's MAC only, on its interface",
                    ),
                );
            }
            mac.and_then(|(_, m)| m)
        }
        _ => None,
    };
    let dns_upstream = lab.bench.as_ref().and_then(|b| b.dns_upstream.as_ref()).and_then(|u| {
        let v = u.value.trim();
        let parsed = v.parse::<std::net::SocketAddr>().ok().or_else(|| {
            v.parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| std::net::SocketAddr::new(ip, 53))
        });
        if parsed.is_none() {
            errs.borrow_mut().push(
                InputError::new(
                    &lab_file,
                    Some(u.pos),
                    "bench.dns_upstream",
                    format!("{v:?} is not an address"),
                )
                .with_hint("an IP address, optionally with a port: 192.168.1.1 or 127.0.0.1:5353"),
            );
        }
        parsed
    });
    let capture_limit = raw.network.as_ref().and_then(|n| n.capture_mib).unwrap_or(256).max(1) << 20;
    let mut identity = raw.identity.clone();
    identity.firmware_file = identity.firmware_file.as_ref().map(abs);
    if let Some(v) = &raw.certbench
        && !(1..=super::version::CURRENT).contains(&v.value)
    {
        errs.borrow_mut().push(
            InputError::new(
                file,
                Some(v.pos),
                "certbench",
                format!("profile format {} is not one this certbench reads", v.value),
            )
            .with_hint(format!(
                "formats 1 to {} (README, \"Profile format versions\"); a newer format needs a newer certbench",
                super::version::CURRENT
            )),
        );
    }
    let notices = super::version::notices(&raw);
    let errs = errs.into_inner();
    if !errs.is_empty() {
        return Err(InputErrors(errs));
    }
    Ok(Device {
        profile_file: file.to_path_buf(),
        notices,
        identity,
        console,
        factory,
        power,
        factory_reset,
        setup,
        declarations: raw.declarations,
        vars,
        mqtt,
        mqtt_tls: raw
            .network
            .as_ref()
            .and_then(|n| n.mqtt.as_ref())
            .and_then(|m| m.tls.clone()),
        broker,
        documents: documents.unwrap_or_default(),
        signoffs,
        not_applicable,
        ixit: raw.ixit.clone(),
        update,
        update_bind,
        attribution,
        debug,
        services,
        default_credentials,
        other_unit_certificates,
        port_vars: port_vars.into_inner(),
        link,
        plaintext_exempt,
        http_answers,
        capture_limit,
        firewall_drops: raw
            .network
            .as_ref()
            .and_then(|n| n.firewall_drops.as_ref())
            .map(|r| r.value.clone()),
        dhcp,
        dns_upstream,
    })
}

fn resolve_secret(base: &Path, src: &SecretSource, skip: bool) -> Result<String, String> {
    if skip {
        return Ok(String::new());
    }
    match src {
        SecretSource::Value(v) => Ok(v.clone()),
        SecretSource::Env(name) => std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (it holds the factory password)")),
        SecretSource::File(p) => {
            let path = if p.is_absolute() { p.clone() } else { base.join(p) };
            crate::util::read_user_file(&path, &[base], crate::util::limits::TEXT)
                .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| {
                    format!(
                        "cannot read secret file {}: {e} (keep secrets beside the file that names them, or use env:)",
                        path.display()
                    )
                })
        }
    }
}
