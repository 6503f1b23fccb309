//! The device profile and the lab binding as written (YAML → these structs, checked for
//! unknown fields and positions kept); `config::device` resolves them into a `Device`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::yaml::Loc;
use crate::model::duration::Dur;

use super::common::{Declaration, RawCommand, RawTrust};
use super::secret::SecretSource;
use crate::model::DeviceIdentity;

/// A device profile, as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// The profile format it is written for (default 1; this certbench writes 2). A profile
    /// of an older format still loads, and `validate` says what now runs differently.
    #[serde(default)]
    pub certbench: Option<Loc<u32>>,
    /// Who made the device and which one it is.
    pub identity: DeviceIdentity,
    /// The serial console; absent when the device has none.
    #[serde(default)]
    pub console: Option<RawConsole>,
    /// Credentials the device ships with.
    #[serde(default)]
    pub credentials: Option<RawCredentials>,
    /// How the bench switches the device on and off.
    #[serde(default)]
    pub power: Option<RawPower>,
    /// How the device is returned to factory state (an external command, e.g. a relay
    /// holding the reset button, or a tool that erases the state).
    #[serde(default)]
    pub factory_reset: Option<RawCommand>,
    /// Commands run once before the run (build firmware, flash, start a wrapper).
    #[serde(default)]
    pub setup: Vec<Loc<String>>,
    /// The maker's declarations that decide which checks apply (`true`/`false`, or
    /// `{ applies: false, reason: "..." }`). Read by certbench: `console_login` (the console
    /// asks for a login; `false`: the password is set over the service with
    /// `password_command`, PWD-01 is not applicable) and `password_change` (`false`: the
    /// password cannot be changed, AUT-02 fails, 5.1-4). A scenario's
    /// `requires.declarations` may name others.
    #[serde(default)]
    pub declarations: BTreeMap<String, Declaration>,
    /// What the device talks to on the network; the bench plays it.
    #[serde(default)]
    pub network: Option<RawNetwork>,
    /// The maker's documents for the documentary checks (paths relative to this file).
    #[serde(default)]
    pub documents: Option<RawDocuments>,
    /// The maker's implementation conformance statement: EN 303 645 provisions that do not
    /// apply to this device, each with the maker's reason. Checks evidencing only these
    /// are NOT APPLICABLE.
    #[serde(default)]
    pub ics: Option<RawIcs>,
    /// Declared mechanisms the checks rely on (IXIT-like: interfaces and ports, update
    /// method, authentication, support period), recorded in the report as declared.
    #[serde(default)]
    pub ixit: BTreeMap<String, String>,
    /// How the device is updated and the maker's images for the update checks.
    #[serde(default)]
    pub update: Option<super::update::RawUpdate>,
    /// The debug port (SWD/JTAG via a probe or a GDB server) and the memory to read.
    #[serde(default)]
    pub debug: Option<super::debug::RawDebug>,
    /// Remote login services of the device (telnet, web login, its MQTT broker): where
    /// the remote password checks try credentials. Always on the device's own address.
    #[serde(default)]
    pub services: Vec<super::services::RawService>,
    /// Personal data and security parameters the device holds (IXIT), each with how the
    /// owner sets it: certbench plants a fresh value of each (`plant` step) and searches
    /// every byte on the device's link for it (COM-04). Values are secrets in all evidence.
    #[serde(default)]
    pub personal_data: Vec<super::personal::RawPersonalData>,
    /// Security-relevant configuration the device takes over the network (IXIT): each an
    /// HTTP request on a declared web login service and how to read the setting back at
    /// the shell. CFG-01 (5.5-5) performs each without credentials, with wrong ones and
    /// with the owner's.
    #[serde(default)]
    pub config_interfaces: Vec<super::config_ops::RawConfigOp>,
    /// How an image is written where the device boots from without its update agent, and
    /// what secure boot does with a bad one (IXIT), for UPD-10 (5.7-1).
    #[serde(default)]
    pub secure_boot: Option<super::secure_boot::RawSecureBoot>,
    /// What the firmware ships, as the maker states it (VUL-01..03): the SBOM, a command
    /// listing component versions at the shell, the build date.
    #[serde(default)]
    pub software: Option<super::software::RawSoftware>,
    /// Where the device sends data and why (IXIT), for PRV-01 (6-5).
    #[serde(default)]
    pub privacy: Option<super::privacy::RawPrivacy>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIcs {
    /// Provision id -> the maker's reason it does not apply.
    #[serde(default)]
    pub not_applicable: BTreeMap<Loc<String>, String>,
}

/// The maker's documents as written: paths relative to the profile's folder.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDocuments {
    /// RFC 9116 security.txt.
    #[serde(default)]
    pub security_txt: Option<Loc<PathBuf>>,
    /// Vulnerability disclosure policy (contact, timelines).
    #[serde(default)]
    pub disclosure_policy: Option<Loc<PathBuf>>,
    /// Statement of the support period with its end date.
    #[serde(default)]
    pub support_period: Option<Loc<PathBuf>>,
    #[serde(default)]
    pub privacy_policy: Option<Loc<PathBuf>>,
    /// Reviewers' decisions (a YAML file with `signoffs:`).
    #[serde(default)]
    pub signoff: Option<Loc<PathBuf>>,
}

impl RawDocuments {
    /// Each declared document with its field name.
    pub(super) fn declared(&self) -> impl Iterator<Item = (&'static str, &Loc<PathBuf>)> {
        [
            ("security_txt", &self.security_txt),
            ("disclosure_policy", &self.disclosure_policy),
            ("support_period", &self.support_period),
            ("privacy_policy", &self.privacy_policy),
            ("signoff", &self.signoff),
        ]
        .into_iter()
        .filter_map(|(f, p)| p.as_ref().map(|p| (f, p)))
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// The address the device's connections come from (a lab binding's
    /// `bench.device_address` overrides it). Only connections from it count as the device's:
    /// other peers on the bench network are recorded but cannot change a verdict.
    #[serde(default)]
    pub address: Option<Loc<String>>,
    /// The device is an MQTT client of a cloud broker, which the bench impersonates.
    #[serde(default)]
    pub mqtt: Option<RawMqttCloud>,
    /// The device hosts an MQTT broker itself (a gateway); the bench connects to it.
    #[serde(default)]
    pub broker: Option<RawDeviceBroker>,
    /// An emulated device: certbench (as root) runs it in a network namespace of its own
    /// (power commands start it with `{{netns.exec}}`), gives it an address, and captures
    /// every frame on its link. A real board's link is the lab's `bench.capture_interface`.
    #[serde(default)]
    pub namespace: bool,
    /// Plaintext protocols the maker declares exempt from COM-01 (the ICS), each with the
    /// reason shown in the report: `{ dns: "name resolution; answers are not trusted", ntp: ... }`.
    /// Names: mqtt, http, telnet, ftp, smtp, coap, dns, mdns, ntp, dhcp, ssdp.
    #[serde(default)]
    pub plaintext_exempt: BTreeMap<String, Loc<String>>,
    /// Capture file size limit in MiB for the whole run (default 256); past it the file
    /// stops growing and the report says how many packets it lacks.
    #[serde(default)]
    pub capture_mib: Option<u64>,
    /// The maker declares a firewall that silently drops connections to closed ports (the
    /// reason, shown in the report). Ports that then give no answer to the port scan are
    /// reported as not observed and ATK-01 goes to a reviewer; without this declaration
    /// unanswered ports make ATK-01 an ERROR (a slow or lossy link must not hide a port).
    #[serde(default)]
    pub firewall_drops: Option<Loc<String>>,
    /// HTTP answers for paths the device asks its cloud (its update manifest, a provisioning
    /// API): the bench, which answers every flow, gives them instead of an empty 200 so the
    /// device goes on as with its real cloud.
    #[serde(default)]
    pub http_answers: Vec<super::answers::RawAnswer>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDeviceBroker {
    /// The device's host name or address; the TLS certificate must carry it.
    pub host: Loc<String>,
    /// Where plaintext MQTT would listen (default 1883); it must refuse.
    #[serde(default)]
    pub plain_port: Option<Loc<String>>,
    /// The TLS port (e.g. 8883).
    pub tls_port: Loc<String>,
    /// The CA certificate (PEM) the device's broker certificate chains to.
    pub ca_cert: Loc<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMqttCloud {
    /// The broker host name the device connects to (the lab's DNS points it at the bench);
    /// bench certificates are issued for it.
    pub host: String,
    /// Which CA the device trusts, so the bench can present a valid certificate.
    pub trust: RawTrust,
    /// Whether the channel uses TLS (default: it is expected to). A maker declaring
    /// `{ applies: false, reason: ... }` makes the TLS-validation checks NOT APPLICABLE
    /// with that reason; COM-02 still runs (and fails a device that speaks in clear).
    #[serde(default)]
    pub tls: Option<Declaration>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    /// Serial device: /dev/ttyUSB0, /dev/serial/by-id/..., a PTY link. May use
    /// `{{workdir}}`; a lab binding or `--port` overrides it.
    #[serde(default)]
    pub port: Option<Loc<String>>,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// What the Enter key sends (default "\r", as a terminal does).
    #[serde(default)]
    pub newline: Option<String>,
    /// Regular expressions for what the device prints; `$` is the end of the output so
    /// far, which is where a prompt waits for input.
    pub prompts: RawPrompts,
    /// The command that ends a shell session (default `exit`).
    #[serde(default)]
    pub logout: Option<String>,
    /// The shell command that starts a password change (e.g. `passwd`), answered with the
    /// `current_password` / `new_password` / `confirm_password` prompts. Lets the
    /// password-strength (PWD-07) and password-change (PWD-08) checks run on a device
    /// that does not force a change at the first login.
    #[serde(default)]
    pub password_command: Option<String>,
    /// The shell command that prints how the device stores passwords, in `/etc/shadow`
    /// form (`user:hash:...`), for AUT-01 (5.1-3). Default `cat /etc/shadow`.
    #[serde(default)]
    pub password_store_command: Option<String>,
    /// A command line the console offers without any login (a maintenance CLI), as a
    /// regex; with the shell prompt it is what console-access (ATK-02) looks for.
    #[serde(default)]
    pub cli_prompt: Option<Loc<String>>,
    /// A harmless command (e.g. `help` or `version`) typed at a prompt reached without
    /// credentials, to show it takes commands (ATK-02 evidence). Default: none is typed.
    #[serde(default)]
    pub probe_command: Option<String>,
    /// How a person would break into the bootloader during boot (ATK-04): what to type,
    /// and the bootloader's prompt. Without it, boot-break-in is NOT APPLICABLE.
    #[serde(default)]
    pub boot_interrupt: Option<RawBootInterrupt>,
    /// How long the device takes from power-on to its login prompt.
    #[serde(default)]
    pub boot_time: Option<Dur>,
    /// Send Enter when no prompt appeared for this long while waiting for one (default 3s).
    #[serde(default)]
    pub wake_after: Option<Dur>,
    /// How long the tty may vanish during a wait before the board counts as dead
    /// (default 500ms; raise it for boards whose USB-UART re-enumerates on reboot).
    #[serde(default)]
    pub lost_grace: Option<Dur>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBootInterrupt {
    /// What to type, again and again, from power-on (U-Boot: " " for "Hit any key", or
    /// "\u0003" for Ctrl-C).
    pub send: String,
    /// The bootloader's prompt (regex), e.g. '(?m)^=> $' for U-Boot.
    pub prompt: Loc<String>,
    /// A password prompt the bootloader shows before its command line (regex): the
    /// break-in is then authenticated.
    #[serde(default)]
    pub password_prompt: Option<Loc<String>>,
    /// A harmless bootloader command (e.g. `version`) typed at an unauthenticated prompt as
    /// evidence that it takes commands.
    #[serde(default)]
    pub command: Option<String>,
    /// How long to keep typing after power-on (default: the boot time).
    #[serde(default)]
    pub window: Option<Dur>,
}

fn default_baud() -> u32 {
    115_200
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrompts {
    pub login: Loc<String>,
    pub password: Loc<String>,
    pub shell: Loc<String>,
    /// Printed when the device demands a new password (a message or the prompt itself).
    #[serde(default)]
    pub password_change: Option<Loc<String>>,
    /// Asks for the current password inside the change dialog (Linux PAM does).
    #[serde(default)]
    pub current_password: Option<Loc<String>>,
    #[serde(default)]
    pub new_password: Option<Loc<String>>,
    #[serde(default)]
    pub confirm_password: Option<Loc<String>>,
    /// The device refused the credentials.
    pub login_rejected: Loc<String>,
    /// The device refused a new password.
    #[serde(default)]
    pub password_rejected: Option<Loc<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    pub factory: RawLogin,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLogin {
    pub user: String,
    pub password: SecretSource,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawPower {
    /// The operator switches the board; certbench asks on the terminal.
    Manual,
    /// Shell commands, in the style of labgrid's ExternalPowerDriver.
    External(RawExternalPower),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExternalPower {
    pub on: Loc<String>,
    pub off: Loc<String>,
    /// Optional; default is off, wait `off_time`, on.
    #[serde(default)]
    pub cycle: Option<Loc<String>>,
    /// Each command must finish within this (default 30s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// How long the board stays unpowered in a cycle (default 1s).
    #[serde(default)]
    pub off_time: Option<Dur>,
}

/// A lab binding: where a device of a profile is attached on this bench.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLab {
    /// Serial device path; overrides the profile's `console.port`.
    #[serde(default)]
    pub port: Option<Loc<String>>,
    #[serde(default)]
    pub baud: Option<u32>,
    /// Power wiring; overrides the profile's `power`.
    #[serde(default)]
    pub power: Option<RawPower>,
    #[serde(default)]
    pub factory_reset: Option<RawCommand>,
    /// Extra values for `{{name}}` references in commands.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Where the bench services listen (default: loopback, ephemeral ports).
    #[serde(default)]
    pub bench: Option<RawBenchBind>,
    /// The debug probe on this bench, `VID:PID[:serial]` (overrides the profile's).
    #[serde(default)]
    pub debug_probe: Option<String>,
    /// An image (ELF, hex or bin) to flash through the probe before the run.
    #[serde(default)]
    pub flash_before_run: Option<PathBuf>,
    /// Vendor default credentials the lab adds to the built-in list of the PWD-03 sweep:
    /// a file with one `user:password` per line (relative to this file).
    #[serde(default)]
    pub default_credentials: Option<Loc<PathBuf>>,
    /// Certificates (PEM) other units of the same model present on their TLS services,
    /// relative to this file: COM-03 fails a device whose TLS key is in one of them (every
    /// unit holding the same private key). A run keeps what the device presented in its
    /// evidence (`tls-certificate-N.pem`), ready to be given here when another unit is tested.
    #[serde(default)]
    pub other_unit_certificates: Vec<Loc<PathBuf>>,
    /// The lab's offline vulnerability data (VUL-01, VUL-02): OSV records, NVD feeds, the
    /// KEV catalogue, relative to this file.
    #[serde(default)]
    pub vulnerability_data: Option<super::software::RawVulnData>,
    /// The lab's rules for vulnerability management (SBOM required, the fix window).
    #[serde(default)]
    pub policy: Option<super::software::RawPolicy>,
    /// Several units of this model the lab holds, each with its label and wiring: a run
    /// shares the suite out among them (`--unit NAME` runs one), and the unique-password
    /// check (PWD-05) tries each unit's label password on every other unit.
    #[serde(default)]
    pub units: Vec<super::units::RawUnit>,
    /// A board on another host, managed by labgrid: certbench acquires the place for the
    /// run through the coordinator (the only lock) and takes its console (the exporter's
    /// NetworkSerialPort) and power (its power port) from the place.
    #[serde(default)]
    pub labgrid: Option<RawLabgrid>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLabgrid {
    /// The coordinator, HOST:PORT (labgrid's default port is 20408).
    pub coordinator: Loc<String>,
    /// The place's name (`labgrid-client places`).
    pub place: Loc<String>,
    /// The `labgrid-client` program (default: the one on PATH). A Python script (pip's is)
    /// is not run itself: its interpreter runs one labgrid client session for the whole run.
    #[serde(default)]
    pub client: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBenchBind {
    /// Address of the interface facing the board (default 127.0.0.1).
    #[serde(default)]
    pub bind: Option<Loc<String>>,
    /// The address the board's connections come from on this bench (overrides the
    /// profile's `network.address`).
    #[serde(default)]
    pub device_address: Option<Loc<String>>,
    /// The lab interface the board's network is wired to (e.g. `eth1`): certbench captures
    /// every frame there (root) and judges the board's flows (COM-01).
    #[serde(default)]
    pub capture_interface: Option<Loc<String>>,
    /// Serve DHCP on `capture_interface` to the board (`device_mac`), giving it
    /// `device_address` with the bench as router and name server: its names then resolve
    /// at the bench (recorded) and all its traffic crosses the captured link.
    #[serde(default)]
    pub dhcp: bool,
    /// The board's MAC address (`aa:bb:cc:dd:ee:ff`): the only client the bench's DHCP
    /// server answers.
    #[serde(default)]
    pub device_mac: Option<Loc<String>>,
    /// The lab's resolver (`ADDRESS` or `ADDRESS:PORT`): the bench's name server asks it for
    /// every name but the hosts the bench plays (MQTT cloud, update server) and relays the
    /// answer; without it every name resolves to the bench.
    #[serde(default)]
    pub dns_upstream: Option<Loc<String>>,
    /// 0 = any free port.
    #[serde(default)]
    pub mqtt_plain_port: Option<u16>,
    #[serde(default)]
    pub mqtt_tls_port: Option<u16>,
    #[serde(default)]
    pub update_http_port: Option<u16>,
    #[serde(default)]
    pub update_https_port: Option<u16>,
}
