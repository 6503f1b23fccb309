//! `console:` (with the lab's `port`/`baud` and `--port`/`--baud`): the serial console, its
//! prompts and how a person would stop the boot.

use super::common::Prompts;
use super::profile::{RawBootInterrupt, RawConsole, RawLab, RawPrompts};
use super::resolver::Overrides;
use super::resolver::Resolver;
use super::yaml::{InputError, Loc};
use crate::model::duration::Dur;
use crate::model::template::Template;

#[derive(Debug, Clone)]
pub struct ConsoleSpec {
    pub port: Template,
    pub baud: u32,
    pub newline: String,
    pub prompts: Prompts,
    pub logout: String,
    pub password_command: Option<String>,
    pub password_store_command: String,
    pub cli_prompt: Option<regex::bytes::Regex>,
    pub probe_command: Option<String>,
    pub boot_interrupt: Option<BootInterrupt>,
    pub boot_time: std::time::Duration,
    pub wake_after: std::time::Duration,
    pub lost_grace: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct BootInterrupt {
    pub send: String,
    pub prompt: regex::bytes::Regex,
    pub password_prompt: Option<regex::bytes::Regex>,
    pub command: Option<String>,
    pub window: Option<std::time::Duration>,
}

pub fn resolve(rx: &Resolver, c: &RawConsole, lab: &RawLab, ov: &Overrides) -> Option<ConsoleSpec> {
    let port = match (&ov.port, &lab.port, &c.port) {
        (Some(p), _, _) => Some(Template::literal(p)),
        (None, Some(p), _) => rx.template(&rx.lab_file, "port", p),
        (None, None, Some(p)) => rx.template(rx.file, "console.port", p),
        // a labgrid place's serial port, known once the place is acquired
        (None, None, None) if lab.labgrid.is_some() => Some(Template::literal("(the labgrid place's serial port)")),
        (None, None, None) => {
            rx.error(
                InputError::new(rx.file, None, "console.port", "no serial port given")
                    .with_hint("set console.port in the profile, `port` in a lab file, or pass --port /dev/ttyUSB0"),
            );
            None
        }
    };
    // a network console's address is checked where it is written (templates at run time)
    let written = match (&ov.port, &lab.port, &c.port) {
        (Some(_), _, _) => None,
        (None, Some(p), _) => Some((rx.lab_file.as_path(), "port", p)),
        (None, None, Some(p)) => Some((rx.file, "console.port", p)),
        (None, None, None) => None,
    };
    if let Some((file, field, p)) = written
        && !p.value.contains("{{")
        && let Some(Err(why)) = crate::model::console_port::parse(&p.value)
    {
        rx.error(InputError::new(file, Some(p.pos), field, why).with_hint(
            "a serial device path, tcp://HOST:PORT (raw, e.g. ser2net) or rfc2217://HOST:PORT (telnet with RFC 2217)",
        ));
    }
    let prompts = prompts(rx, &c.prompts);
    let cli_prompt = match c.cli_prompt.as_ref().map(|src| rx.regex("console.cli_prompt", src)) {
        Some(None) => return None,
        Some(r) => r,
        None => None,
    };
    let boot_interrupt = match &c.boot_interrupt {
        None => None,
        Some(b) => Some(boot_interrupt(rx, b)?),
    };
    Some(ConsoleSpec {
        port: port?,
        baud: ov.baud.or(lab.baud).unwrap_or(c.baud),
        newline: c.newline.clone().unwrap_or_else(|| "\r".into()),
        prompts: prompts?,
        logout: c.logout.clone().unwrap_or_else(|| "exit".into()),
        password_command: c.password_command.clone(),
        password_store_command: c
            .password_store_command
            .clone()
            .unwrap_or_else(|| "cat /etc/shadow".into()),
        cli_prompt,
        probe_command: c.probe_command.clone(),
        boot_interrupt,
        boot_time: c.boot_time.unwrap_or(Dur::secs(60)).0,
        wake_after: c.wake_after.unwrap_or(Dur::secs(3)).0,
        lost_grace: c.lost_grace.unwrap_or(Dur(std::time::Duration::from_millis(500))).0,
    })
}

/// Every prompt is checked (all errors reported), then the set is complete or None.
fn prompts(rx: &Resolver, p: &RawPrompts) -> Option<Prompts> {
    let re = |field: &str, src: &Loc<String>| rx.regex(&format!("console.prompts.{field}"), src);
    let opt = |field: &str, src: &Option<Loc<String>>| src.as_ref().map(|s| re(field, s));
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
}

fn boot_interrupt(rx: &Resolver, b: &RawBootInterrupt) -> Option<BootInterrupt> {
    let field = |f: &str| format!("console.boot_interrupt.{f}");
    let prompt = super::yaml::regex(rx.file, &field("prompt"), &b.prompt);
    let password_prompt = b
        .password_prompt
        .as_ref()
        .map(|p| super::yaml::regex(rx.file, &field("password_prompt"), p))
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
            rx.errors(p.err().into_iter().chain(pp.err()));
            None
        }
    }
}
