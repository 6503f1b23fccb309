//! Scenarios (`scenarios/*.yaml`): what a check evidences, what it needs from the device,
//! and the steps that decide it. Parsed raw, then validated into [`Scenario`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::yaml::{self, InputError, InputErrors, Loc, Pos};
use crate::model::Evidences;
use crate::model::duration::Dur;
use crate::model::template::Template;

/// A scenario, as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// Unique id, lowercase with dashes (used in JUnit and result paths).
    pub id: Loc<String>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// What this scenario is evidence for.
    pub evidences: Evidences,
    /// What the device must have for this scenario to apply.
    #[serde(default)]
    pub requires: Requires,
    /// Values made at the start of the scenario (secrets are never printed).
    #[serde(default)]
    pub variables: BTreeMap<String, RawVariable>,
    /// Deadline for the whole scenario (default 10m).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Run the steps once per item, each run its own testcase; `{{image}}` names the item.
    #[serde(default)]
    pub for_each: Option<ForEach>,
    /// Steps run after all items, proving the channel works (e.g. a valid image installs).
    /// An item's PASS counts only if the positive control passes in the same run; otherwise
    /// it is ERROR.
    #[serde(default)]
    pub positive_control: Option<Vec<Loc<RawStep>>>,
    /// Run after every other scenario of the run (a check that judges the whole run, as
    /// COM-01 judges every flow the run captured).
    #[serde(default)]
    pub last: bool,
    /// Run before every other scenario of the run (a check whose findings later ones use, as
    /// the port scan hands the login services it finds to the remote password checks).
    #[serde(default)]
    pub first: bool,
    /// In a run over several units of the model (lab `units:`), run on every unit rather
    /// than on one (a check about each unit, as the unique-password check). `first` and
    /// `last` scenarios always run on every unit: their findings are the unit's own.
    #[serde(default)]
    pub every_unit: bool,
    pub steps: Vec<Loc<RawStep>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForEach {
    /// Every hostile image the device profile's update section allows: the corrupted
    /// variants of its layout, plus `older` and `other_model` when supplied.
    UpdateImage,
    /// The man-in-the-middle identities of TLS-01..04 (self_signed, wrong_host, expired,
    /// untrusted_ca): `{{identity}}` names the item. With `mqtt_tls: rotate` they share one
    /// boot: each testcase is decided from the connections that were presented its identity.
    TlsIdentity,
}

impl ForEach {
    /// The variable that names the item.
    pub fn var(self) -> &'static str {
        match self {
            ForEach::UpdateImage => "image",
            ForEach::TlsIdentity => "identity",
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Interfaces the device must have: console, power, factory_credentials.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// Maker declarations that must be true in the device profile.
    #[serde(default)]
    pub declarations: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interface {
    Console,
    Power,
    FactoryCredentials,
    FactoryReset,
    /// The device is an MQTT client of a cloud the bench can play (profile `network.mqtt`).
    MqttBench,
    /// ... and trusts a CA the bench can issue from, so a positive control is possible.
    MqttTrustedCa,
    /// The device hosts an MQTT broker (profile `network.broker`).
    MqttBroker,
    /// The maker does not declare that the device's MQTT channel is without TLS
    /// (profile `network.mqtt.tls: { applies: false, reason }`).
    MqttTls,
    /// The profile says how to break into the bootloader (console.boot_interrupt).
    BootInterrupt,
    /// The device declares how it is updated (profile `update` with a `delivery`).
    Update,
    /// The maker's update images are declared (profile `update`, with or without a
    /// delivery the bench can drive): for checks of the images themselves and of secure boot.
    UpdateImages,
    /// ... and checks for updates by itself (update.delivery: pull).
    UpdatePull,
    /// ... and fetches updates over HTTPS from a host whose CA the bench can issue from.
    UpdateHttps,
    /// The profile declares a debug port (profile `debug`).
    Debug,
    /// The profile declares remote login services (profile `services`).
    RemoteLogin,
    /// ... and at least one of them is SSH.
    Ssh,
    /// The maker declares how a password is changed over the network: an SSH or telnet
    /// service with `password_command` (e.g. `passwd`).
    RemotePasswordChange,
    /// The device has a TLS endpoint: a declared service with `tls: true`, or its own MQTT
    /// broker's TLS port (`network.broker`).
    TlsService,
    /// The bench sees the device's network link: its own namespace (`network.namespace`)
    /// or the lab's `bench.capture_interface`.
    Link,
    /// The owner can change the password (the maker does not declare
    /// `password_change: false`). A check of 5.1-4 (AUT-02) on a device that cannot FAILs;
    /// every other check that needs a change is NOT APPLICABLE, saying so.
    PasswordChange,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVariable {
    /// What to generate.
    pub generate: Generate,
    #[serde(default)]
    pub length: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Generate {
    /// A random strong password (upper, lower, digit, symbol); secret.
    Password,
}

/// What an unwanted outcome means.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Judge {
    /// fail = the device broke the rule; error = the harness could not decide.
    pub verdict: JudgeVerdict,
    /// The check id this outcome decides, e.g. PWD-07.
    #[serde(default)]
    pub check: Option<Loc<String>>,
    /// Why, in words for the report; `{{outcome}}` is what was seen instead.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JudgeVerdict {
    Fail,
    Error,
}

/// One step of a scenario.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawStep {
    /// Switch the board: on, off or cycle.
    Power(Loc<PowerAction>),
    /// Send to the console.
    Send(RawSend),
    /// Wait for a pattern.
    Expect(RawExpect),
    /// A pattern that must not appear within a window.
    ExpectNone(RawExpectNone),
    /// Log in with the profile's prompts and judge the outcome.
    Login(RawLoginStep),
    /// Answer a password-change dialog with a new password and judge the outcome.
    ChangePassword(RawChangePassword),
    /// Leave the shell (profile's logout command) and wait for the login prompt.
    Logout(RawLogout),
    /// Return the device to factory state with the profile's factory_reset method.
    FactoryReset(RawEmpty),
    /// Wait, e.g. for a device to settle.
    Sleep(Dur),
    /// Reconfigure the network bench; starts a new phase (older sessions are closed).
    Bench(RawBenchStep),
    /// Wait until the device reaches a stage on a bench listener in this phase.
    WaitSession(RawWaitSession),
    /// Watch a bench listener: the device must NOT reach a stage within the window.
    NoSession(RawNoSession),
    /// Connect to the device's own MQTT broker, in clear or over TLS trusting its CA.
    MqttConnect(RawMqttConnect),
    /// Check one of the maker's documents; REVIEW until a reviewer signs it off.
    Document(RawDocumentStep),
    /// Get to the device's shell with the credentials the run knows (powering on and
    /// answering a forced password change with a generated strong password if asked).
    Shell(RawEmpty),
    /// Open a password-change dialog from factory state: log in with the factory
    /// credentials; a forced change is the dialog, a shell runs the profile's
    /// `console.password_command` (e.g. `passwd`). Neither → the check is not decided (ERROR).
    OpenPasswordChange(RawEmpty),
    /// ATK-02: wake the console from power-on without credentials; a login prompt passes,
    /// a shell or CLI prompt that takes a command fails.
    ConsoleAccess(RawEmpty),
    /// ATK-04: from power-on, type the profile's boot_interrupt keys through the boot
    /// window; a bootloader prompt that takes commands without a password fails.
    BootBreakIn(RawEmpty),
    /// Offer the device an update image and judge what it does with it.
    UpdateImage(RawUpdateImage),
    /// UPD-01: with no user action the device must ask the bench for updates within the
    /// maker's declared interval (update.check_interval).
    UpdateCheck(RawEmpty),
    /// UPD-08: cut power at random points of a valid update; the device must always boot
    /// and run the old or the new version.
    UpdatePowerLoss(RawPowerLoss),
    /// ATK-03: attach, halt and read the declared flash through the debug port; the part
    /// must refuse.
    DebugLocked(RawEmpty),
    /// ATK-05: read the declared memory and search it for the run's secrets and for keys.
    DebugSecrets(RawEmpty),
    /// Log in over every remote service the profile declares (`services`) with this
    /// password (the user: the service's, else the factory user) and judge the outcome.
    RemoteLogin(RawRemoteLogin),
    /// PWD-03: the built-in list of common IoT default credentials (and the lab's
    /// `default_credentials` file) on every remote service; any login that works fails.
    /// Paced so the device's brute-force protection never makes a refusal meaningless.
    /// `state: factory` sweeps the state the device ships in (after `factory_reset`, before
    /// any password is set), where a botnet meets it.
    CredentialSweep(RawSweep),
    /// PWD-09: many wrong passwords as fast as each service answers; the device must slow
    /// them down or lock out, and the right password must work again afterwards.
    BruteForce(RawBruteForce),
    /// From here on, the password dialog steps (`change_password`) talk to a shell of the
    /// device over SSH or telnet instead of its serial console: the first service with a
    /// `password_command` (or the one named), logged in with the credentials that should
    /// work now. The dialog's prompts are the console's (`console.prompts`).
    RemoteConsole(RawRemoteConsole),
    /// PWD-08 on sessions: with the password that works now, open a session on every shell
    /// the device offers over the network (declared and scan-found SSH and telnet services;
    /// with `console: true` the serial console's shell is held too) and show each runs a
    /// command. `sessions_ended` judges them after the password change.
    OpenSessions(RawOpenSessions),
    /// PWD-08: after a password change, every session `open_sessions` held must be over: a
    /// command typed there must get no shell's answer. One that still runs fails.
    SessionsEnded(RawEmpty),
    /// COM-03 (SSH): every SSH service's key-exchange offer (read before any login) must
    /// hold no weak key exchange, host key, cipher or MAC algorithm.
    SshAlgorithms(RawEmpty),
    /// COM-03 for TLS: every TLS endpoint of the device (services with `tls: true`, its
    /// broker's TLS port) must refuse SSL 3.0, TLS 1.0 and 1.1 and the NULL, EXPORT, RC4,
    /// 3DES and anonymous suites, and answer a current TLS 1.2/1.3 hello (else ERROR: nothing
    /// was decided). `within`: how long a booting device may take to answer (default 30s).
    TlsConfig(RawTlsConfig),
    /// COM-01: every flow the device's link carried this run, its protocol identified from
    /// its bytes; plaintext application data not declared exempt fails, unknown protocols
    /// go to review. Waits `observe` first, so the device has time to talk.
    Traffic(RawTraffic),
    /// ATK-01: every TCP port of the device's address and UDP probes of the usual IoT
    /// services; a listening port the profile does not declare (`services`) fails.
    PortScan(RawEmpty),
    /// TLS-01..04 for every TLS client of the device the bench does not serve itself (its
    /// HTTPS telemetry, anything): the bench is the man in the middle of each, presenting per
    /// destination a valid certificate (the positive control), then a self-signed one, one
    /// for another host, an expired one, one from an untrusted CA. A client that completes a
    /// handshake with any of those fails. Watches up to `within` (default 60s) for each
    /// destination to have met every identity.
    TlsClients(RawTlsClients),
    /// COM-04: sets a fresh, unguessable value of each of the profile's `personal_data`
    /// items at the console's shell (the command the profile gives); from then on each value
    /// is a canary the `canaries` step searches the capture for.
    Plant(RawEmpty),
    /// COM-04 and PWD-10: searches every frame of the run's capture (both directions, every
    /// flow, TCP reassembled) for the passwords the run knows and the planted values, in the
    /// encodings devices use; any found in clear fails. Positive control: a value the bench
    /// sends the device in clear must be found by the same search. Waits `observe` after
    /// planting first (default 0s), so the device has time to send what it holds.
    Canaries(RawTraffic),
    /// AUT-01 (5.1-3): at the shell, the profile's `console.password_store_command`
    /// (default `cat /etc/shadow`) shows how each account's password is stored: DES,
    /// MD5-crypt, unsalted fast hashes or the password itself fail; yescrypt, scrypt,
    /// bcrypt, argon2, sha512-/sha256-crypt pass. Positive control: the account the run logs
    /// in with is in what was read, with a password hash.
    PasswordStore(RawEmpty),
    /// UPD-11 (5.3-7): the maker's valid update image's signature scheme, read from the
    /// image (a `.swu`'s CMS signature: the signer's key and the digest), verified (an
    /// Ed25519 trailer with the declared `update.signature.public_key`), or as declared
    /// (REVIEW). RSA under 2048 bits, DSA, ECDSA under P-256, MD5 or SHA-1 fail.
    UpdateCrypto(RawEmpty),
    /// VUL-01..03 (5.2-2, 5.2-3): what the firmware ships — the maker's SBOM
    /// (`software.sbom`), the update image's package databases and version strings, the
    /// output of `software.components_command` at the shell — judged: `known` (VUL-01:
    /// nothing in the KEV catalogue, nothing fixed upstream more than the lab's window before
    /// the build), `time_to_fix` (VUL-02: nothing fixed more than the window before today),
    /// `sbom` (VUL-03: the SBOM lists every component and version seen), `updateable`
    /// (UPD-12, 5.3-1: every component seen on the device or in the SBOM is in the update
    /// image, or declared `software.not_updateable` with a reason).
    Vulnerabilities(RawVulns),
    /// UPD-10 (5.7-1): the maker's valid image with a byte flipped inside its signed
    /// region written where the device boots from (`secure_boot.tamper`, bypassing the
    /// update agent), then a power cycle: the device must not run it (it keeps its
    /// firmware, or halts saying so, as declared). Positive control: the valid image
    /// written the same way boots. The baseline is restored (update.restore).
    SecureBoot(RawEmpty),
    /// PRV-01 (6-5): waits `observe` (default 0s), then every name the device looked up
    /// this run and every address it opened a flow to without a name must be one of the
    /// maker's `privacy.destinations`; an undeclared one fails, naming it.
    Destinations(RawTraffic),
    /// PRV-04 (6-4): after `plant`, waits `observe` (default 15s) from the planting, then
    /// searches what the bench could read of the device's messages (its broker's payloads,
    /// the HTTP requests it answered, in clear or under its certificate) for the planted
    /// values: one at a host not declared to receive that item fails.
    Recipients(RawTraffic),
    /// DEL-01, DEL-02 (5.11-1, 5.11-4): the planted values searched for in the maker's
    /// `privacy.deletion.data_paths` at the shell (positive control: each is found there),
    /// then the user's factory reset typed at the shell, its confirmation awaited, and the
    /// same search after the device's setup again: a value still there fails, naming where.
    Deletion(RawEmpty),
    /// DEL-03 (5.11-2): the device seen publishing to the bench's broker (positive
    /// control), then the user's factory reset typed at the shell; a new session of the
    /// device must publish on `privacy.deletion.cloud.mqtt_topic` within its `within`.
    CloudDeletion(RawEmpty),
    /// PRV-02, PRV-03 (6-2, 6-3): three windows of `window` (default 15s) on one timeline —
    /// after setup without consent, after the user gives it, after the user withdraws it
    /// (`privacy.consent`) — and in each, what the device sent to each declared destination
    /// (names looked up, flows opened, bytes). A destination marked `consent: true`
    /// contacted without consent fails PRV-02, after withdrawal PRV-03; if none is contacted
    /// with consent (the positive control) the check is undecided.
    Consent(RawConsentStep),
    /// PRV-05 / DOC-03: the privacy policy page the device serves (`privacy.policy_page`)
    /// fetched: it must answer 200, have every clause and the readability, and be the
    /// reviewed document (same SHA-256) — otherwise it awaits review again.
    ServedPolicy(RawEmpty),
    /// DOC-01 (5.2-1) on the device itself: each web service the device declares serves
    /// `/.well-known/security.txt` (RFC 9116: over HTTPS, Contact, Expires in the future).
    /// A device without a web service: NOT APPLICABLE here (the maker's document is judged
    /// by doc-vulnerability-disclosure).
    ServedSecurityTxt(RawEmpty),
    /// PWD-05 (5.1-1, 5.1-2): this unit's factory password (its label's) follows from
    /// nothing the unit shows (its MACs seen on the bench, serial, vendor, model) by the known
    /// schemes and is in no wordlist; every other unit's label password (lab `units:`) is
    /// refused at this unit's login and its own is taken (the positive control). Without
    /// other units: NOT APPLICABLE unless the password is guessable (FAIL).
    UniquePassword(RawEmpty),
    /// CFG-01 (5.5-5): each of the profile's `config_interfaces` performed without
    /// credentials, with wrong ones and with the owner's (the positive control), the setting
    /// read back at the shell after each; a change without the owner's credentials fails.
    ConfigAuth(RawEmpty),
    /// AUT-01 / 5.5-7: every remote login service (declared, or found by the port scan) that
    /// is neither TLS nor SSH gets one login with a throwaway password; one that decides on
    /// it read a password sent in clear and fails.
    ClearLogins(RawEmpty),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTlsClients {
    #[serde(default)]
    pub within: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RawConsent")] // the scenario schema keeps its name
pub struct RawConsentStep {
    /// How long each phase is watched (default 15s).
    #[serde(default)]
    pub window: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTraffic {
    /// How long to watch before judging (default 0s: judge what the run saw so far).
    #[serde(default)]
    pub observe: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteLogin {
    pub password: Loc<String>,
    pub expect: RemoteExpect,
    /// How long the services may take to answer (the device may be booting; default 60s).
    #[serde(default)]
    pub within: Option<Dur>,
    #[serde(default)]
    pub otherwise: Option<Judge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteExpect {
    /// Logged in.
    Accepted,
    /// Refused.
    Rejected,
    /// Refused, or taken only to demand a new password first (no access either way).
    NoAccess,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    /// The state the sweep meets: `current` (default: whatever the steps before left,
    /// usually the owner's password set) or `factory` (the device as it ships; the step
    /// refuses to run once this scenario has set a password).
    #[serde(default)]
    pub state: Option<SweepState>,
}

/// Which state of the device a credential sweep meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepState {
    #[default]
    Current,
    Factory,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBruteForce {
    /// Wrong passwords per service (default 100, at most 1000).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// The highest sustained guess rate a device may allow, per minute (default 10).
    #[serde(default)]
    pub max_rate: Option<u32>,
    /// Stop the burst after this long (default 5m): a device that slow is throttling.
    #[serde(default)]
    pub max_burst: Option<Dur>,
    /// How long to wait for the right password to work again after a lockout (default:
    /// the declared unlock time plus a minute, else 10m).
    #[serde(default)]
    pub unlock_within: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpdateImage {
    /// `valid`, `older`, `other_model`, a variant name, or `{{image}}` in a for_each scenario.
    pub image: Loc<String>,
    pub expect: UpdateOutcome,
    /// The certificate the bench's HTTPS update server presents meanwhile (a man in the
    /// middle: self_signed, untrusted_ca, expired, wrong_host; default valid). A device that
    /// refuses the handshake passes; one that fetches must still refuse the image (UPD-09).
    #[serde(default)]
    pub tls: Option<Loc<TlsSetting>>,
    /// With a man in the middle (`tls`): end the wait for the device's decision early, once
    /// the evidence is complete — the device made this many TLS handshakes with the bench, none
    /// led to a request for the image, and at least `min` has passed. The profile's
    /// `update.decision_time` stays the maximum; the step's evidence says why it ended.
    #[serde(default)]
    pub until: Option<RawUntil>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateOutcome {
    /// Refused before activation: reported, version unchanged after reboot, device works.
    Rejected,
    /// Installed: after reboot the device runs the image's version.
    Installed,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPowerLoss {
    /// How many power cuts (at least 10; the catalogue asks for 20).
    pub cuts: Loc<u32>,
    /// Seed of the random cut points (default: drawn and recorded, so a run can be replayed).
    #[serde(default)]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    SecurityTxt,
    DisclosurePolicy,
    SupportPeriod,
    PrivacyPolicy,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDocumentStep {
    pub kind: DocKind,
    /// The check this document evidences, e.g. DOC-01.
    pub check: Loc<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectOutcome {
    /// The broker answered an MQTT CONNECT (over TLS: and accepted it).
    Accepted,
    /// No MQTT conversation: TCP refused or closed, or the TLS handshake failed.
    Refused,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMqttConnect {
    pub tls: bool,
    pub expect: ConnectOutcome,
    /// Keep trying until this deadline when `accepted` is expected (the device may be booting).
    pub within: Dur,
    #[serde(default)]
    pub otherwise: Option<Judge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnOff {
    On,
    Off,
}

/// What the TLS listener presents, or `off` to block it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsSetting {
    Off,
    Valid,
    SelfSigned,
    UntrustedCa,
    Expired,
    WrongHost,
    /// TLS-05: only TLS 1.0 is offered (the valid certificate, should the device go on).
    OldVersion,
    /// TLS-01..04 in one boot: each new connection is presented the next man-in-the-middle
    /// identity (self-signed, wrong host, expired, untrusted CA); a rotation already running
    /// is kept, so the testcases of a `for_each: tls_identity` share the device's boot.
    Rotate,
}

impl TlsSetting {
    pub fn variant(self) -> Option<crate::model::CertVariant> {
        use crate::model::CertVariant as V;
        match self {
            TlsSetting::Off => None,
            TlsSetting::Valid => Some(V::Valid),
            TlsSetting::SelfSigned => Some(V::SelfSigned),
            TlsSetting::UntrustedCa => Some(V::UntrustedCa),
            TlsSetting::Expired => Some(V::Expired),
            TlsSetting::WrongHost => Some(V::WrongHost),
            // the valid certificate, behind a TLS 1.0 ServerHello
            TlsSetting::OldVersion => Some(V::Valid),
            TlsSetting::Rotate => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBenchStep {
    pub mqtt_plain: OnOff,
    pub mqtt_tls: TlsSetting,
    /// What to do when this phase needs a certificate the device trusts and it trusts no
    /// CA the bench can issue from: `not_applicable` (default: the scenario is NOT
    /// APPLICABLE) or `end` (the scenario ends here and keeps what its earlier steps decided;
    /// the step says the later phases could not run).
    #[serde(default)]
    pub without_trusted_ca: Untrusted,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Untrusted {
    #[default]
    NotApplicable,
    End,
}

/// How far a connection got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// Any connection attempt.
    Attempt,
    /// A completed TLS handshake (TLS listener) or an accepted TCP connection (plaintext).
    Tls,
    /// Any application byte after the handshake.
    AppData,
    /// An MQTT CONNECT.
    Connect,
    /// At least one MQTT PUBLISH.
    Publish,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWaitSession {
    pub listener: crate::model::ListenerName,
    pub reach: Reach,
    pub within: Dur,
    #[serde(default)]
    pub otherwise: Option<Judge>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNoSession {
    pub listener: crate::model::ListenerName,
    pub reach: Reach,
    pub window: Dur,
    #[serde(default)]
    pub on_match: Option<Judge>,
    /// The test only happened if the device tried: at least this many connection
    /// attempts on this listener within the window, else ERROR.
    #[serde(default)]
    pub require_attempts: Option<RawAttempts>,
    /// End the window early, once the evidence is complete: the device made this many
    /// attempts on the listener, each ended without reaching `reach`, and at least `min`
    /// has passed. `window` stays the maximum. The step's evidence says why it ended.
    #[serde(default)]
    pub until: Option<RawUntil>,
    /// With `mqtt_tls: rotate`: count only the connections that were presented this identity
    /// (`{{identity}}` in a `for_each: tls_identity` scenario, or self_signed, wrong_host,
    /// expired, untrusted_ca). The window then counts from the rotation's start; a device that
    /// made too few attempts with it by the window's end is power-cycled (at most the needed
    /// attempts' number of times) and the identity presented first.
    #[serde(default)]
    pub identity: Option<Loc<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOpenSessions {
    /// Hold the serial console's shell too (it must be at its shell): for a change made
    /// over the network, judged on the console.
    #[serde(default)]
    pub console: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteConsole {
    /// The service's name (`services[].name`); default the first service with a
    /// `password_command`.
    #[serde(default)]
    pub service: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTlsConfig {
    #[serde(default)]
    pub within: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUntil {
    pub refused_attempts: Loc<u32>,
    pub min: Dur,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAttempts {
    pub listener: crate::model::ListenerName,
    pub min: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    On,
    Off,
    Cycle,
    /// Cycle, unless the step just before (the previous testcase's last) rebooted the device
    /// and saw it working: then the boot would prove nothing new and is skipped, saying so.
    CycleUnlessFresh,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmpty {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVulns {
    pub judge: VulnJudge,
}

/// Which vulnerability-management check a `vulnerabilities` step decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VulnJudge {
    /// VUL-01 (5.2-3).
    Known,
    /// VUL-02 (5.2-2).
    TimeToFix,
    /// VUL-03: the SBOM describes the device.
    Sbom,
    /// UPD-12 (5.3-1): every component the device runs is carried by the maker's update
    /// image, or declared not updateable with a reason.
    Updateable,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawSend {
    /// Text followed by the profile's newline.
    Line(Loc<String>),
    /// Text, no newline.
    Text(Loc<String>),
    /// Raw bytes, 0..255.
    Bytes(Vec<u8>),
    /// A control key.
    Key(Key),
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Key {
    Enter,
    CtrlC,
    CtrlD,
    CtrlZ,
    Escape,
    Tab,
}

impl Key {
    pub fn bytes(self, newline: &str) -> Vec<u8> {
        match self {
            Key::Enter => newline.as_bytes().to_vec(),
            Key::CtrlC => vec![0x03],
            Key::CtrlD => vec![0x04],
            Key::CtrlZ => vec![0x1a],
            Key::Escape => vec![0x1b],
            Key::Tab => vec![b'\t'],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromptName {
    Login,
    Password,
    Shell,
    PasswordChange,
    LoginRejected,
    PasswordRejected,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// A regular expression; named groups `(?P<name>...)` become variables.
    #[serde(default)]
    pub pattern: Option<Loc<String>>,
    /// Or one of the profile's prompts.
    #[serde(default)]
    pub prompt: Option<PromptName>,
    /// Deadline (default 30s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// What a timeout means (default: error).
    #[serde(default)]
    pub on_timeout: Option<Judge>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpectNone {
    #[serde(default)]
    pub pattern: Option<Loc<String>>,
    #[serde(default)]
    pub prompt: Option<PromptName>,
    /// How long to watch.
    pub window: Dur,
    /// What a match means (default: fail).
    #[serde(default)]
    pub on_match: Option<Judge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginOutcome {
    /// A shell prompt, no questions asked.
    Shell,
    /// The device demanded a new password.
    PasswordChange,
    /// The device refused the credentials.
    Rejected,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoginStep {
    pub user: Loc<String>,
    pub password: Loc<String>,
    /// The outcome the requirement demands.
    pub expect: LoginOutcome,
    /// What any other outcome means (default: error).
    #[serde(default)]
    pub otherwise: Option<Judge>,
    /// Deadline for the whole dialog (default: the profile's boot_time + 30s).
    #[serde(default)]
    pub within: Option<Dur>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOutcome {
    Accepted,
    Rejected,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChangePassword {
    /// The new password to offer.
    pub new: Loc<String>,
    pub expect: ChangeOutcome,
    #[serde(default)]
    pub otherwise: Option<Judge>,
    #[serde(default)]
    pub within: Option<Dur>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLogout {
    #[serde(default)]
    pub within: Option<Dur>,
}

// ---------------------------------------------------------------- validated form

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub file: PathBuf,
    pub id: String,
    pub title: String,
    pub evidences: Evidences,
    pub requires: Requires,
    pub variables: Vec<(String, Generate, usize)>,
    pub timeout: Duration,
    pub steps: Vec<Step>,
    pub for_each: Option<ForEach>,
    pub positive_control: Vec<Step>,
    /// Set when a for_each scenario is expanded for a run.
    pub instance: Option<Instance>,
    /// Runs after every other scenario.
    pub last: bool,
    /// Runs before every other scenario.
    pub first: bool,
    /// Runs on every unit of a run over several units (with `first` and `last`).
    pub every_unit: bool,
}

/// One testcase of an expanded for_each scenario.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The id of the scenario as written.
    pub group: String,
    /// The item (`{{image}}`, `{{identity}}`), or None for the positive control.
    pub item: Option<String>,
    /// The variable naming the item: `image` or `identity`.
    pub var: &'static str,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub pos: Pos,
    pub kind: StepKind,
}

#[derive(Debug, Clone)]
pub enum Pattern {
    Regex(Template),
    Prompt(PromptName),
}

#[derive(Debug, Clone)]
pub struct Ruling {
    pub verdict: JudgeVerdict,
    pub check: Option<crate::model::CheckId>,
    pub reason: String,
}

#[derive(Debug, Clone, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum StepKind {
    Power(PowerAction),
    Send {
        bytes: SendBytes,
    },
    Expect {
        pattern: Pattern,
        within: Duration,
        on_timeout: Ruling,
    },
    ExpectNone {
        pattern: Pattern,
        window: Duration,
        on_match: Ruling,
    },
    Login {
        user: Template,
        password: Template,
        expect: LoginOutcome,
        otherwise: Ruling,
        within: Option<Duration>,
    },
    ChangePassword {
        new: Template,
        expect: ChangeOutcome,
        otherwise: Ruling,
        within: Duration,
    },
    Logout {
        within: Duration,
    },
    FactoryReset,
    Sleep(Duration),
    Bench {
        plain: bool,
        tls: TlsSetting,
        without_trusted_ca: Untrusted,
    },
    WaitSession {
        listener: crate::model::ListenerName,
        reach: Reach,
        within: Duration,
        otherwise: Ruling,
    },
    NoSession {
        listener: crate::model::ListenerName,
        reach: Reach,
        window: Duration,
        on_match: Ruling,
        require_attempts: Option<(crate::model::ListenerName, u32)>,
        /// (refused attempts, minimum window): end early once seen.
        until: Option<(u32, Duration)>,
        /// Only the connections presented this identity (a rotation): `{{identity}}` or a name.
        identity: Option<Template>,
    },
    MqttConnect {
        tls: bool,
        expect: ConnectOutcome,
        within: Duration,
        otherwise: Ruling,
    },
    Document {
        kind: DocKind,
        check: String,
    },
    Shell,
    OpenPasswordChange,
    ConsoleAccess,
    BootBreakIn,
    UpdateImage {
        image: Template,
        expect: UpdateOutcome,
        tls: Option<crate::model::CertVariant>,
        /// (handshakes, minimum): see `RawUpdateImage::until`.
        until: Option<(u32, Duration)>,
    },
    UpdateCheck,
    UpdatePowerLoss {
        cuts: u32,
        seed: Option<u64>,
    },
    DebugLocked,
    DebugSecrets,
    RemoteLogin {
        password: Template,
        expect: RemoteExpect,
        within: Duration,
        otherwise: Ruling,
    },
    CredentialSweep {
        state: SweepState,
    },
    SshAlgorithms,
    RemoteConsole {
        service: Option<String>,
    },
    OpenSessions {
        console: bool,
    },
    SessionsEnded,
    TlsConfig {
        within: Duration,
    },
    Traffic {
        observe: Duration,
    },
    Plant,
    Canaries {
        observe: Duration,
    },
    PasswordStore,
    UpdateCrypto,
    Vulnerabilities(VulnJudge),
    SecureBoot,
    Destinations {
        observe: Duration,
    },
    Recipients {
        observe: Duration,
    },
    Deletion,
    CloudDeletion,
    Consent {
        window: Duration,
    },
    ServedPolicy,
    ServedSecurityTxt,
    UniquePassword,
    ConfigAuth,
    ClearLogins,
    PortScan,
    TlsClients {
        within: Duration,
    },
    BruteForce {
        attempts: u32,
        max_rate: u32,
        max_burst: Duration,
        unlock_within: Option<Duration>,
    },
}

#[derive(Debug, Clone)]
pub enum SendBytes {
    Line(Template),
    Text(Template),
    Raw(Vec<u8>),
    Key(Key),
}

impl StepKind {
    /// The step's YAML key (`power`, `expect_none`, ...): the variant's name in snake case.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// Variables every scenario may use.
pub const BUILTIN_VARS: &[&str] = &["factory.user", "factory.password"];

pub fn load(path: &Path) -> Result<Scenario, InputErrors> {
    let raw: RawScenario = yaml::load(path)?;
    validate(path, raw)
}

struct Ctx<'a> {
    file: &'a Path,
    errs: Vec<InputError>,
    known: BTreeSet<String>,
}

impl Ctx<'_> {
    fn err(&mut self, pos: Pos, field: String, msg: String, hint: Option<&str>) {
        let mut e = InputError::new(self.file, Some(pos), field, msg);
        e.hint = hint.map(str::to_string);
        self.errs.push(e);
    }

    fn template(&mut self, field: String, src: &Loc<String>) -> Template {
        match Template::parse(&src.value) {
            Ok(t) => {
                for v in t.vars() {
                    if !self.known.contains(v) {
                        let known: Vec<_> = self.known.iter().map(|k| format!("{{{{{k}}}}}")).collect();
                        self.err(
                            src.pos,
                            field.clone(),
                            format!("unknown variable `{{{{{v}}}}}`"),
                            Some(&format!(
                                "defined at this point: {}; a capture `(?P<name>...)` in an earlier expect defines one",
                                known.join(", ")
                            )),
                        );
                    }
                }
                t
            }
            Err(e) => {
                self.err(src.pos, field, e, None);
                Template::literal(&src.value)
            }
        }
    }

    fn pattern(
        &mut self,
        field: String,
        p: &Option<Loc<String>>,
        prompt: Option<PromptName>,
        pos: Pos,
    ) -> Option<Pattern> {
        match (p, prompt) {
            (Some(p), None) => {
                let t = self.template(format!("{field}.pattern"), p);
                // check the regex with each variable replaced by a plain word
                let vars = t.vars().map(|v| (v.to_string(), "x".to_string())).collect();
                let probe = t
                    .render(&vars, crate::model::template::Quote::Regex)
                    .unwrap_or_default();
                match yaml::regex(
                    self.file,
                    &format!("{field}.pattern"),
                    &Loc {
                        value: probe,
                        pos: p.pos,
                    },
                ) {
                    Ok(re) => {
                        for name in re.capture_names().flatten() {
                            self.known.insert(name.to_string());
                        }
                    }
                    Err(mut e) => {
                        e.message = e.message.replace("\"x\"", "x");
                        self.errs.push(e);
                    }
                }
                Some(Pattern::Regex(t))
            }
            (None, Some(name)) => Some(Pattern::Prompt(name)),
            (Some(p), Some(_)) => {
                self.err(p.pos, field, "give either `pattern` or `prompt`, not both".into(), None);
                None
            }
            (None, None) => {
                self.err(
                    pos,
                    field,
                    "missing `pattern` (a regex) or `prompt` (a profile prompt name)".into(),
                    None,
                );
                None
            }
        }
    }

    fn judge(&mut self, field: String, j: &Option<Judge>, default: JudgeVerdict, default_reason: &str) -> Ruling {
        match j {
            None => Ruling {
                verdict: default,
                check: None,
                reason: default_reason.to_string(),
            },
            Some(j) => {
                if let Some(c) = &j.check {
                    self.check_id(format!("{field}.check"), c);
                }
                Ruling {
                    verdict: j.verdict,
                    check: j.check.as_ref().and_then(|c| crate::model::CheckId::parse(&c.value)),
                    reason: j.reason.clone(),
                }
            }
        }
    }

    fn check_id(&mut self, field: String, c: &Loc<String>) {
        if crate::model::CheckId::parse(&c.value).is_none() {
            self.err(
                c.pos,
                field,
                format!("unknown check id {:?}", c.value),
                Some("use an id from the security test catalogue, e.g. PWD-01, COM-02, UPD-03"),
            );
        }
    }
}

fn step_pos(s: &RawStep) -> Option<Pos> {
    match s {
        RawStep::Power(p) => Some(p.pos),
        RawStep::Send(RawSend::Line(l) | RawSend::Text(l)) => Some(l.pos),
        RawStep::Expect(e) => e.pattern.as_ref().map(|p| p.pos),
        RawStep::ExpectNone(e) => e.pattern.as_ref().map(|p| p.pos),
        RawStep::Login(l) => Some(l.user.pos),
        RawStep::ChangePassword(c) => Some(c.new.pos),
        _ => None,
    }
}

fn validate_steps(cx: &mut Ctx<'_>, raw: &[Loc<RawStep>], field: &str, first_pos: Pos) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut last_pos = first_pos;
    for (i, s) in raw.iter().enumerate() {
        let pos = if s.pos.line > 0 {
            s.pos
        } else {
            step_pos(s).unwrap_or(last_pos)
        };
        last_pos = pos;
        let s = &s.value;
        let f = format!("{field}[{i}]");
        let kind = match s {
            RawStep::Power(a) => Some(StepKind::Power(a.value)),
            RawStep::Send(send) => step_send(cx, &f, send),
            RawStep::Expect(e) => step_expect(cx, &f, e, pos),
            RawStep::ExpectNone(e) => step_expect_none(cx, &f, e, pos),
            RawStep::Login(l) => step_login(cx, &f, l),
            RawStep::ChangePassword(c) => step_change_password(cx, &f, c),
            RawStep::Logout(l) => Some(StepKind::Logout {
                within: l.within.unwrap_or(Dur::secs(30)).0,
            }),
            RawStep::FactoryReset(_) => Some(StepKind::FactoryReset),
            RawStep::Sleep(d) => Some(StepKind::Sleep(d.0)),
            RawStep::Bench(b) => Some(StepKind::Bench {
                plain: b.mqtt_plain == OnOff::On,
                tls: b.mqtt_tls,
                without_trusted_ca: b.without_trusted_ca,
            }),
            RawStep::WaitSession(w) => step_wait_session(cx, &f, w),
            RawStep::Document(d) => step_document(cx, &f, d),
            RawStep::MqttConnect(m) => step_mqtt_connect(cx, &f, m),
            RawStep::Shell(_) => Some(StepKind::Shell),
            RawStep::OpenPasswordChange(_) => Some(StepKind::OpenPasswordChange),
            RawStep::ConsoleAccess(_) => Some(StepKind::ConsoleAccess),
            RawStep::BootBreakIn(_) => Some(StepKind::BootBreakIn),
            RawStep::DebugLocked(_) => Some(StepKind::DebugLocked),
            RawStep::DebugSecrets(_) => Some(StepKind::DebugSecrets),
            RawStep::RemoteLogin(r) => step_remote_login(cx, &f, r),
            RawStep::CredentialSweep(w) => Some(StepKind::CredentialSweep {
                state: w.state.unwrap_or_default(),
            }),
            RawStep::SshAlgorithms(_) => Some(StepKind::SshAlgorithms),
            RawStep::RemoteConsole(r) => Some(StepKind::RemoteConsole {
                service: r.service.clone(),
            }),
            RawStep::OpenSessions(o) => Some(StepKind::OpenSessions { console: o.console }),
            RawStep::SessionsEnded(_) => Some(StepKind::SessionsEnded),
            RawStep::TlsConfig(t) => Some(StepKind::TlsConfig {
                within: t.within.unwrap_or(Dur::secs(30)).0,
            }),
            RawStep::Traffic(t) => Some(StepKind::Traffic {
                observe: t.observe.unwrap_or(Dur::secs(0)).0,
            }),
            RawStep::PortScan(_) => Some(StepKind::PortScan),
            RawStep::Plant(_) => Some(StepKind::Plant),
            RawStep::PasswordStore(_) => Some(StepKind::PasswordStore),
            RawStep::UpdateCrypto(_) => Some(StepKind::UpdateCrypto),
            RawStep::Vulnerabilities(v) => Some(StepKind::Vulnerabilities(v.judge)),
            RawStep::SecureBoot(_) => Some(StepKind::SecureBoot),
            RawStep::Destinations(t) => Some(StepKind::Destinations {
                observe: t.observe.unwrap_or(Dur::secs(0)).0,
            }),
            RawStep::Recipients(t) => Some(StepKind::Recipients {
                observe: t.observe.unwrap_or(Dur::secs(15)).0,
            }),
            RawStep::ConfigAuth(_) => Some(StepKind::ConfigAuth),
            RawStep::Deletion(_) => Some(StepKind::Deletion),
            RawStep::CloudDeletion(_) => Some(StepKind::CloudDeletion),
            RawStep::ServedPolicy(_) => Some(StepKind::ServedPolicy),
            RawStep::ServedSecurityTxt(_) => Some(StepKind::ServedSecurityTxt),
            RawStep::UniquePassword(_) => Some(StepKind::UniquePassword),
            RawStep::Consent(c) => Some(StepKind::Consent {
                window: c.window.unwrap_or(Dur::secs(15)).0,
            }),
            RawStep::ClearLogins(_) => Some(StepKind::ClearLogins),
            RawStep::Canaries(t) => Some(StepKind::Canaries {
                observe: t.observe.unwrap_or(Dur::secs(0)).0,
            }),
            RawStep::TlsClients(t) => Some(StepKind::TlsClients {
                within: t.within.unwrap_or(Dur::secs(60)).0,
            }),
            RawStep::BruteForce(b) => step_brute_force(cx, &f, b, pos),
            RawStep::UpdateCheck(_) => Some(StepKind::UpdateCheck),
            RawStep::UpdateImage(u) => step_update_image(cx, &f, u),
            RawStep::UpdatePowerLoss(p) => step_update_power_loss(cx, &f, p),
            RawStep::NoSession(n) => step_no_session(cx, &f, n),
        };
        if let Some(kind) = kind {
            steps.push(Step { pos, kind });
        }
    }
    steps
}

fn step_send(cx: &mut Ctx<'_>, f: &str, send: &RawSend) -> Option<StepKind> {
    Some(StepKind::Send {
        bytes: match send {
            RawSend::Line(l) => SendBytes::Line(cx.template(format!("{f}.send.line"), l)),
            RawSend::Text(l) => SendBytes::Text(cx.template(format!("{f}.send.text"), l)),
            RawSend::Bytes(b) => SendBytes::Raw(b.clone()),
            RawSend::Key(k) => SendBytes::Key(*k),
        },
    })
}

fn step_expect(cx: &mut Ctx<'_>, f: &str, e: &RawExpect, pos: Pos) -> Option<StepKind> {
    let within = e.within.unwrap_or(Dur::secs(30)).0;
    let on_timeout = cx.judge(
        format!("{f}.expect.on_timeout"),
        &e.on_timeout,
        JudgeVerdict::Error,
        "expected output did not appear in time",
    );
    cx.pattern(format!("{f}.expect"), &e.pattern, e.prompt, pos)
        .map(|pattern| StepKind::Expect {
            pattern,
            within,
            on_timeout,
        })
}

fn step_expect_none(cx: &mut Ctx<'_>, f: &str, e: &RawExpectNone, pos: Pos) -> Option<StepKind> {
    let on_match = cx.judge(
        format!("{f}.expect_none.on_match"),
        &e.on_match,
        JudgeVerdict::Fail,
        "forbidden output appeared",
    );
    cx.pattern(format!("{f}.expect_none"), &e.pattern, e.prompt, pos)
        .map(|pattern| StepKind::ExpectNone {
            pattern,
            window: e.window.0,
            on_match,
        })
}

fn step_login(cx: &mut Ctx<'_>, f: &str, l: &RawLoginStep) -> Option<StepKind> {
    Some(StepKind::Login {
        user: cx.template(format!("{f}.login.user"), &l.user),
        password: cx.template(format!("{f}.login.password"), &l.password),
        expect: l.expect,
        otherwise: cx.judge(
            format!("{f}.login.otherwise"),
            &l.otherwise,
            JudgeVerdict::Error,
            "unexpected login outcome",
        ),
        within: l.within.map(|d| d.0),
    })
}

fn step_change_password(cx: &mut Ctx<'_>, f: &str, c: &RawChangePassword) -> Option<StepKind> {
    Some(StepKind::ChangePassword {
        new: cx.template(format!("{f}.change_password.new"), &c.new),
        expect: c.expect,
        otherwise: cx.judge(
            format!("{f}.change_password.otherwise"),
            &c.otherwise,
            JudgeVerdict::Error,
            "unexpected password-change outcome",
        ),
        within: c.within.unwrap_or(Dur::secs(60)).0,
    })
}

fn step_wait_session(cx: &mut Ctx<'_>, f: &str, w: &RawWaitSession) -> Option<StepKind> {
    Some(StepKind::WaitSession {
        listener: w.listener,
        reach: w.reach,
        within: w.within.0,
        otherwise: cx.judge(
            format!("{f}.wait_session.otherwise"),
            &w.otherwise,
            JudgeVerdict::Error,
            "the device did not get that far on the bench",
        ),
    })
}

fn step_document(cx: &mut Ctx<'_>, f: &str, d: &RawDocumentStep) -> Option<StepKind> {
    cx.check_id(format!("{f}.document.check"), &d.check);
    Some(StepKind::Document {
        kind: d.kind,
        check: d.check.value.clone(),
    })
}

fn step_mqtt_connect(cx: &mut Ctx<'_>, f: &str, m: &RawMqttConnect) -> Option<StepKind> {
    Some(StepKind::MqttConnect {
        tls: m.tls,
        expect: m.expect,
        within: m.within.0,
        otherwise: cx.judge(
            format!("{f}.mqtt_connect.otherwise"),
            &m.otherwise,
            JudgeVerdict::Error,
            "unexpected outcome",
        ),
    })
}

fn step_remote_login(cx: &mut Ctx<'_>, f: &str, r: &RawRemoteLogin) -> Option<StepKind> {
    Some(StepKind::RemoteLogin {
        password: cx.template(format!("{f}.remote_login.password"), &r.password),
        expect: r.expect,
        within: r.within.unwrap_or(Dur::secs(60)).0,
        otherwise: cx.judge(
            format!("{f}.remote_login.otherwise"),
            &r.otherwise,
            JudgeVerdict::Error,
            "unexpected remote login outcome",
        ),
    })
}

fn step_brute_force(cx: &mut Ctx<'_>, f: &str, b: &RawBruteForce, pos: Pos) -> Option<StepKind> {
    let attempts = b.attempts.unwrap_or(100);
    let max_rate = b.max_rate.unwrap_or(10);
    if !(1..=1000).contains(&attempts) || max_rate == 0 {
        cx.err(
            pos,
            format!("{f}.brute_force"),
            format!(
                "attempts {attempts} and max_rate {max_rate}: attempts must be 1..=1000, max_rate at least 1 per minute"
            ),
            Some("certbench bounds what it sends a device"),
        );
    }
    Some(StepKind::BruteForce {
        attempts,
        max_rate,
        max_burst: b.max_burst.unwrap_or(Dur::secs(300)).0,
        unlock_within: b.unlock_within.map(|d| d.0),
    })
}

fn step_update_image(cx: &mut Ctx<'_>, f: &str, u: &RawUpdateImage) -> Option<StepKind> {
    let image = cx.template(format!("{f}.update_image.image"), &u.image);
    // a literal name: a built-in image, or (only the profile can tell) a supplied one
    let label = |s: &str| {
        s.starts_with("hostile_")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if image.vars().next().is_none()
        && super::update::ImageName::builtin(&u.image.value).is_none()
        && !label(&u.image.value)
    {
        cx.err(
            u.image.pos,
            format!("{f}.update_image.image"),
            format!("unknown image {:?}", u.image.value),
            Some("use valid, older, other_model, a variant (flip_header, flip_payload, flip_signature, unsigned, flip_start, flip_middle, flip_end, truncated, oversized, empty), a supplied hostile image (its label, which must start with hostile_) or {{image}}"),
        );
    }
    if let Some(t) = &u.tls
        && matches!(t.value, TlsSetting::Off | TlsSetting::OldVersion | TlsSetting::Rotate)
    {
        cx.err(
            t.pos,
            format!("{f}.update_image.tls"),
            "`off` would block the update channel and `old_version` and `rotate` are for the MQTT bench, so nothing could be tested".into(),
            Some("use valid, self_signed, untrusted_ca, expired or wrong_host"),
        );
    }
    let tls = u.tls.as_ref().and_then(|t| t.value.variant());
    let mitm = tls.is_some_and(|v| v != crate::model::CertVariant::Valid);
    let until = u.until.as_ref().and_then(|w| {
        if w.refused_attempts.value == 0 || !mitm {
            cx.err(
                w.refused_attempts.pos,
                format!("{f}.update_image.until"),
                if mitm {
                    "refused_attempts must be at least 1".to_string()
                } else {
                    "until ends a man-in-the-middle wait early; this step has no man in the middle (tls)".to_string()
                },
                Some("e.g. tls: expired, until: { refused_attempts: 3, min: 2s }"),
            );
            return None;
        }
        Some((w.refused_attempts.value, w.min.0))
    });
    Some(StepKind::UpdateImage {
        image,
        expect: u.expect,
        tls,
        until,
    })
}

fn step_update_power_loss(cx: &mut Ctx<'_>, f: &str, p: &RawPowerLoss) -> Option<StepKind> {
    if p.cuts.value < 10 {
        cx.err(
            p.cuts.pos,
            format!("{f}.update_power_loss.cuts"),
            format!("{} cuts are too few", p.cuts.value),
            Some("at least 10 power cuts; the security test catalogue asks for 20"),
        );
    }
    Some(StepKind::UpdatePowerLoss {
        cuts: p.cuts.value,
        seed: p.seed,
    })
}

fn step_no_session(cx: &mut Ctx<'_>, f: &str, n: &RawNoSession) -> Option<StepKind> {
    Some(StepKind::NoSession {
        listener: n.listener,
        reach: n.reach,
        window: n.window.0,
        on_match: cx.judge(
            format!("{f}.no_session.on_match"),
            &n.on_match,
            JudgeVerdict::Fail,
            "the device reached a forbidden stage",
        ),
        require_attempts: n.require_attempts.as_ref().map(|a| (a.listener, a.min)),
        until: n.until.as_ref().and_then(|u| {
            if u.refused_attempts.value == 0 || u.min.0 > n.window.0 {
                cx.err(
                    u.refused_attempts.pos,
                    format!("{f}.no_session.until"),
                    format!(
                        "refused_attempts must be at least 1 and min ({:?}) at most the window ({:?})",
                        u.min.0, n.window.0
                    ),
                    Some("the window is the longest the step waits; min the shortest"),
                );
                return None;
            }
            Some((u.refused_attempts.value, u.min.0))
        }),
        identity: n.identity.as_ref().map(|i| {
            let t = cx.template(format!("{f}.no_session.identity"), i);
            let literal_ok = i
                .value
                .parse::<crate::model::CertVariant>()
                .ok()
                .is_some_and(|v| v != crate::model::CertVariant::Valid);
            if t.vars().next().is_none() && !literal_ok {
                cx.err(
                    i.pos,
                    format!("{f}.no_session.identity"),
                    format!("unknown identity {:?}", i.value),
                    Some("use self_signed, wrong_host, expired, untrusted_ca or {{identity}}"),
                );
            }
            t
        }),
    })
}

pub fn validate(file: &Path, raw: RawScenario) -> Result<Scenario, InputErrors> {
    let mut cx = Ctx {
        file,
        errs: Vec::new(),
        known: BUILTIN_VARS.iter().map(|s| s.to_string()).collect(),
    };
    let id_ok = !raw.id.value.is_empty()
        && raw
            .id
            .value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        cx.err(
            raw.id.pos,
            "id".into(),
            format!("invalid id {:?}", raw.id.value),
            Some("use lowercase letters, digits and dashes"),
        );
    }
    for (i, r) in raw.evidences.requirements.iter().enumerate() {
        if !(1..=5).contains(&r.value) {
            cx.err(
                r.pos,
                format!("evidences.requirements[{i}]"),
                format!("there is no seed requirement {}", r.value),
                Some("the founding letter has requirements 1 to 5"),
            );
        }
    }
    let prov = regex::Regex::new(r"^[0-9]+(\.[0-9]+)*-[0-9]+$").expect("static regex");
    for (i, p) in raw.evidences.provisions.iter().enumerate() {
        if !prov.is_match(&p.value) {
            cx.err(
                p.pos,
                format!("evidences.provisions[{i}]"),
                format!("{:?} is not an EN 303 645 provision number", p.value),
                Some("write provisions like \"5.1-1\""),
            );
        } else if crate::model::catalogue::Catalogue::get().provision(&p.value).is_none() {
            cx.err(
                p.pos,
                format!("evidences.provisions[{i}]"),
                format!("provision {:?} is not in the requirement catalogue", p.value),
                Some("see `certbench coverage` for the EN 303 645 provisions certbench knows"),
            );
        }
    }
    for (i, c) in raw.evidences.checks.iter().enumerate() {
        cx.check_id(format!("evidences.checks[{i}]"), c);
    }
    let mut variables = Vec::new();
    for (name, v) in &raw.variables {
        let len = v.length.unwrap_or(20);
        if !(12..=128).contains(&len) {
            cx.err(
                raw.id.pos,
                format!("variables.{name}.length"),
                format!("length {len} is out of range"),
                Some("generated passwords are 12 to 128 characters"),
            );
        }
        variables.push((name.clone(), v.generate, len));
        cx.known.insert(name.clone());
    }
    if raw.steps.is_empty() {
        cx.err(
            raw.id.pos,
            "steps".into(),
            "a scenario needs at least one step".into(),
            None,
        );
    }
    if let Some(f) = raw.for_each {
        cx.known.insert(f.var().into());
    }
    let steps = validate_steps(&mut cx, &raw.steps, "steps", raw.id.pos);
    let positive_control = match &raw.positive_control {
        None => Vec::new(),
        Some(p) => {
            if raw.for_each.is_none() {
                cx.err(
                    raw.id.pos,
                    "positive_control".into(),
                    "a positive control belongs to a for_each scenario".into(),
                    Some("put the steps in `steps`, or add `for_each`"),
                );
            }
            cx.known.remove("image");
            validate_steps(&mut cx, p, "positive_control", raw.id.pos)
        }
    };
    if raw.for_each.is_some() && positive_control.is_empty() {
        cx.err(
            raw.id.pos,
            "positive_control".into(),
            "a for_each scenario needs a positive control".into(),
            Some("a refusal counts only next to proof that the device accepts a valid input in the same run"),
        );
    }
    if !cx.errs.is_empty() {
        return Err(InputErrors(cx.errs));
    }
    Ok(Scenario {
        file: file.to_path_buf(),
        id: raw.id.value,
        title: raw.title,
        evidences: raw.evidences,
        requires: raw.requires,
        variables,
        timeout: raw.timeout.unwrap_or(Dur::secs(600)).0,
        steps,
        for_each: raw.for_each,
        positive_control,
        instance: None,
        last: raw.last,
        first: raw.first,
        every_unit: raw.every_unit || raw.first || raw.last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_early_ending_update_wait_needs_a_man_in_the_middle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.yaml");
        let head =
            "id: s\ntitle: t\nevidences: { requirements: [2], provisions: [\"5.3-10\"], checks: [UPD-09] }\nsteps:\n";
        std::fs::write(
            &p,
            format!("{head}  - update_image: {{ image: valid, expect: installed, until: {{ refused_attempts: 3, min: 2s }} }}\n"),
        )
        .expect("write");
        let e = load(&p).expect_err("no mitm");
        assert_eq!(e.0[0].field, "steps[0].update_image.until", "{e}");
        std::fs::write(
            &p,
            format!("{head}  - update_image: {{ image: flip_payload, expect: rejected, tls: expired, until: {{ refused_attempts: 3, min: 2s }} }}\n"),
        )
        .expect("write");
        let sc = load(&p).expect("valid");
        assert!(matches!(
            sc.steps[0].kind,
            StepKind::UpdateImage { until: Some((3, d)), .. } if d == Duration::from_secs(2)
        ));
    }

    #[test]
    fn step_names_are_their_yaml_keys() {
        let names: Vec<&str> = [
            StepKind::FactoryReset,
            StepKind::OpenPasswordChange,
            StepKind::BootBreakIn,
            StepKind::SshAlgorithms,
            StepKind::PortScan,
            StepKind::Sleep(Duration::ZERO),
        ]
        .iter()
        .map(StepKind::name)
        .collect();
        assert_eq!(
            names,
            [
                "factory_reset",
                "open_password_change",
                "boot_break_in",
                "ssh_algorithms",
                "port_scan",
                "sleep"
            ]
        );
    }

    fn load_text(text: &str) -> Result<Scenario, InputErrors> {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, text).expect("write");
        load(&file)
    }

    const HEAD: &str =
        "id: t\ntitle: t\nevidences: { requirements: [1], provisions: [\"5.5-1\"], checks: [TLS-03] }\nsteps:\n";

    #[test]
    fn an_early_end_must_fit_its_window() {
        let ok = format!(
            "{HEAD}  - no_session: {{ listener: mqtt_tls, reach: tls, window: 10s, until: {{ refused_attempts: 3, min: 2s }} }}\n"
        );
        let s = load_text(&ok).expect("valid");
        assert!(matches!(
            s.steps[0].kind,
            StepKind::NoSession { until: Some((3, d)), .. } if d == Duration::from_secs(2)
        ));
        for bad in ["refused_attempts: 0, min: 2s", "refused_attempts: 3, min: 20s"] {
            let text = format!(
                "{HEAD}  - no_session: {{ listener: mqtt_tls, reach: tls, window: 10s, until: {{ {bad} }} }}\n"
            );
            let e = load_text(&text).expect_err(bad);
            let e = &e.0[0];
            assert_eq!(e.field, "steps[0].no_session.until", "{e}");
            assert_eq!(e.pos.map(|p| p.line), Some(5), "{e}");
        }
    }

    /// A rotation's identity is a man-in-the-middle one or `{{identity}}` in a
    /// `for_each: tls_identity` scenario; `rotate` is for the MQTT bench only. Anything else
    /// is refused with its field, line and column.
    #[test]
    fn a_rotation_identity_must_be_one_the_bench_can_present() {
        let step = |identity: &str| {
            format!(
                "{HEAD}  - no_session: {{ listener: mqtt_tls, reach: tls, window: 10s, identity: \"{identity}\" }}\n"
            )
        };
        let s = load_text(&step("expired")).expect("valid");
        assert!(matches!(s.steps[0].kind, StepKind::NoSession { identity: Some(_), .. }));
        for (bad, says) in [
            ("valid", "unknown identity"),
            ("self-signed", "unknown identity"),
            ("{{identity}}", "unknown variable `{{identity}}`"),
        ] {
            let e = load_text(&step(bad)).expect_err(bad);
            let e = &e.0[0];
            assert_eq!(e.field, "steps[0].no_session.identity", "{e}");
            assert!(e.to_string().contains(says), "{e}");
            let pos = e.pos.expect("a position");
            // the value's opening quote
            assert_eq!((pos.line, pos.column), (5, 74), "{e}");
        }
        let with_for_each = step("{{identity}}").replace(
            "steps:\n",
            "for_each: tls_identity\npositive_control:\n  - sleep: 1ms\nsteps:\n",
        );
        load_text(&with_for_each).expect("{{identity}} is known in a for_each: tls_identity scenario");
        let update = format!("{HEAD}  - update_image: {{ image: flip_payload, expect: rejected, tls: rotate }}\n");
        let e = load_text(&update).expect_err("rotate is for the MQTT bench");
        assert_eq!(e.0[0].field, "steps[0].update_image.tls", "{}", e.0[0]);
    }
}
