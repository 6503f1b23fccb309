//! The board's firmware: boot, login with a forced factory-password change, a password
//! policy, a small shell, and state that survives power cycles. Flaws can be switched on
//! one at a time to give certbench something real to catch.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::BoardOptions;
use crate::pty::SerialLine;

const FIRMWARE_VERSION: &str = "1.0.0";
const HOSTNAME: &str = "simboard";

/// A deliberate defect, switched on with `--flaw NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// The factory password gives a shell; no change is forced.
    NoForcedChange,
    /// Any non-empty new password is accepted.
    WeakPasswords,
    /// After the change, the factory password still logs in.
    FactoryPasswordKept,
    /// The password rules are sound, but the factory password (printed on the label) is
    /// taken as the owner's new password.
    FactoryPasswordReusable,
    /// Telemetry goes over plaintext MQTT only.
    PlaintextOnly,
    /// Any server certificate is accepted.
    NoCertValidation,
    /// The chain is checked, the host name is not.
    NoHostnameValidation,
    /// When TLS fails, telemetry goes over plaintext instead.
    PlaintextFallback,
    /// Update images are installed without checking their signature.
    NoSignatureCheck,
    /// Trailing bytes after a signed image are ignored instead of refused.
    NoLengthCheck,
    /// Older images are installed (no rollback protection).
    DowngradeAllowed,
    /// Images for another model are installed.
    WrongModelAccepted,
    /// Automatic update checks are off until the user turns them on.
    AutoUpdateOff,
    /// The image is written over the running slot: power loss mid-install bricks the board.
    BricksOnPowerLoss,
    /// The console gives a root shell at once, without any login (a maintenance UART).
    OpenConsole,
    /// A key pressed during boot stops autoboot at a bootloader prompt that takes commands
    /// without any password.
    OpenBootloader,
    /// An empty image is "installed": the slot is emptied and the board no longer knows its
    /// version (it prints `firmware unknown`).
    EmptyImageAccepted,
    /// After five TLS failures in a row the client stops checking certificates (an
    /// "insecure fallback" to keep the cloud reachable).
    ValidationOffAfterFailures,
    /// The factory password logs in over the remote services before the owner set one.
    RemoteFactoryLogin,
    /// The same, with a reminder first ("you are required to change your password") in
    /// front of a shell that runs commands: a nag, not a forced change.
    RemoteFactoryNag,
    /// A password change ends no session: shells opened with the old password (console,
    /// telnet, SSH) keep running commands.
    SessionsSurviveChange,
    /// A hidden `support`/`support` account logs in on every remote service.
    DefaultAccount,
    /// Remote logins are never slowed down or locked.
    NoLoginThrottle,
    /// Also posts its telemetry in clear over HTTP to a second cloud host (--telemetry-url).
    PlaintextTelemetry,
    /// Also serves its telnet console without TLS on port 23 (undeclared).
    TelnetListening,
    /// A debug monitor left listening on TCP port 4444 (undeclared).
    DebugPort,
    /// Its management services run an old TLS stack that still agrees to TLS 1.0 and 1.1.
    LegacyTls,
    /// The TLS certificate it made at first boot is already expired (a clock or a
    /// provisioning fault).
    ExpiredCertificate,
    /// Every unit serves TLS with the same private key, compiled into the firmware.
    SharedTlsKey,
    /// Its SSH service still offers the SHA-1 Diffie-Hellman key exchanges (group1, group14).
    WeakSsh,
    /// When a TLS handshake to its cloud fails, it tries again with an old TLS 1.0 stack
    /// (the version "fallback dance") and goes on with a server that answers TLS 1.0.
    TlsVersionFallback,
    /// Also polls for updates over plain HTTP (http://updates.simboard.test:8080/manifest.json,
    /// a URL left in the firmware, declared nowhere).
    PlainHttpPoll,
    /// Also posts telemetry with its ingest token to http://telemetry.simboard.test/v1/ingest
    /// (port 80, in clear).
    TelemetryHttp80,
    /// Its HTTPS telemetry client (telemetry.simboard.test:443) accepts any certificate.
    HttpsClientNoVerify,
    /// Its HTTPS telemetry client checks certificates, but when a handshake fails it tries
    /// again with an old TLS 1.0 stack (RSA key exchange, CBC suites) and goes on with a
    /// server that answers TLS 1.0 with a certificate it trusts.
    HttpsClientTls10,
    /// Also posts a diagnostics record in clear over HTTP (--telemetry-url) carrying the
    /// owner's e-mail address, base64-encoded in a JSON field.
    TelemetryLeaksEmail,
    /// Looks up a diagnostics name that carries the Wi-Fi PSK hex-encoded in its first label.
    PskInDns,
    /// Stores passwords as MD5-crypt (`$1$`) instead of yescrypt.
    Md5PasswordStore,
    /// Its web API changes settings (the update server) without a login.
    ConfigWithoutAuth,
    /// Its web API saves a setting before it checks the login, then answers 401: the
    /// refusal is in words only.
    ConfigSavedBeforeAuth,
    /// Its own MQTT broker (--broker-port) takes connections without a user name and
    /// password, and with them the owner's settings (`config/update_server`).
    BrokerAnonymous,
    /// The update agent verifies images, but the boot ROM boots whatever is in the boot
    /// slot (an image written there with `flash-raw` runs unverified).
    BootsUnsigned,
    /// Also reports to an analytics host its maker does not declare (HTTPS, every second).
    UndeclaredTracker,
    /// Its web login (the web port) is served over plain HTTP, not HTTPS.
    PasswordOverHttp,
    /// A factory reset (`simboard factory-reset --flaw reset-keeps-password`) forgets
    /// everything but the owner's password.
    ResetKeepsPassword,
    /// The user's factory reset (`factory-reset` at its shell) asks for setup again but
    /// leaves the owner's cloud account token on flash (/data/settings).
    ResetKeepsToken,
    /// Sends its usage analytics whether or not the owner consented.
    TelemetryBeforeConsent,
    /// Keeps sending its usage analytics after the owner withdrew consent (until reboot).
    TelemetryAfterWithdrawal,
    /// Its web page /privacy serves an older policy than the maker's document (one that
    /// says nothing of deleting data or the account).
    ServesOldPolicy,
    /// The user's factory reset erases the data but says nothing when done.
    NoDeletionNotice,
    /// The user's factory reset erases the board but never asks its cloud to delete the
    /// owner's account.
    CloudAccountKept,
    /// Its MQTT telemetry also carries the Wi-Fi passphrase, which its cloud is not
    /// declared to receive.
    TelemetryOvershares,
    /// Its firmware links an old OpenSSL (1.0.1f, Heartbleed): the running device reports
    /// it; the SBOM and the update image say 3.0.15.
    VulnerableComponent,
    /// The running firmware carries a component (its bootloader, U-Boot) that the update
    /// image does not: no update ever replaces it.
    ComponentNotUpdateable,
    /// The device's web service serves a security.txt whose Expires has passed.
    ExpiredSecurityTxt,
    /// The running device reports a BusyBox its SBOM does not list (1.36.0, the SBOM says
    /// 1.36.1): the maker's SBOM does not describe the device.
    SbomDrift,
    /// Every unit comes with the same factory password, whatever its serial (5.1-1).
    SamePasswordAllUnits,
    /// The factory password is the last six hex digits of the unit's MAC (5.1-2).
    PasswordFromMac,
}

impl Flaw {
    pub const ALL: [Flaw; 58] = [
        Flaw::NoForcedChange,
        Flaw::WeakPasswords,
        Flaw::FactoryPasswordKept,
        Flaw::FactoryPasswordReusable,
        Flaw::PlaintextOnly,
        Flaw::NoCertValidation,
        Flaw::NoHostnameValidation,
        Flaw::PlaintextFallback,
        Flaw::NoSignatureCheck,
        Flaw::NoLengthCheck,
        Flaw::DowngradeAllowed,
        Flaw::WrongModelAccepted,
        Flaw::AutoUpdateOff,
        Flaw::BricksOnPowerLoss,
        Flaw::OpenConsole,
        Flaw::OpenBootloader,
        Flaw::EmptyImageAccepted,
        Flaw::ValidationOffAfterFailures,
        Flaw::RemoteFactoryLogin,
        Flaw::RemoteFactoryNag,
        Flaw::SessionsSurviveChange,
        Flaw::DefaultAccount,
        Flaw::NoLoginThrottle,
        Flaw::PlaintextTelemetry,
        Flaw::TelnetListening,
        Flaw::DebugPort,
        Flaw::LegacyTls,
        Flaw::ExpiredCertificate,
        Flaw::SharedTlsKey,
        Flaw::WeakSsh,
        Flaw::TlsVersionFallback,
        Flaw::PlainHttpPoll,
        Flaw::TelemetryHttp80,
        Flaw::HttpsClientNoVerify,
        Flaw::HttpsClientTls10,
        Flaw::TelemetryLeaksEmail,
        Flaw::PskInDns,
        Flaw::Md5PasswordStore,
        Flaw::ConfigWithoutAuth,
        Flaw::ConfigSavedBeforeAuth,
        Flaw::BrokerAnonymous,
        Flaw::BootsUnsigned,
        Flaw::UndeclaredTracker,
        Flaw::PasswordOverHttp,
        Flaw::ResetKeepsPassword,
        Flaw::ResetKeepsToken,
        Flaw::TelemetryBeforeConsent,
        Flaw::TelemetryAfterWithdrawal,
        Flaw::ServesOldPolicy,
        Flaw::NoDeletionNotice,
        Flaw::CloudAccountKept,
        Flaw::TelemetryOvershares,
        Flaw::VulnerableComponent,
        Flaw::SbomDrift,
        Flaw::ExpiredSecurityTxt,
        Flaw::ComponentNotUpdateable,
        Flaw::SamePasswordAllUnits,
        Flaw::PasswordFromMac,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Flaw::NoForcedChange => "no-forced-change",
            Flaw::WeakPasswords => "weak-passwords",
            Flaw::FactoryPasswordKept => "factory-password-kept",
            Flaw::FactoryPasswordReusable => "factory-password-reusable",
            Flaw::PlaintextOnly => "plaintext-only",
            Flaw::NoCertValidation => "no-cert-validation",
            Flaw::NoHostnameValidation => "no-hostname-validation",
            Flaw::PlaintextFallback => "plaintext-fallback",
            Flaw::NoSignatureCheck => "no-signature-check",
            Flaw::NoLengthCheck => "no-length-check",
            Flaw::DowngradeAllowed => "downgrade-allowed",
            Flaw::WrongModelAccepted => "wrong-model-accepted",
            Flaw::AutoUpdateOff => "auto-update-off",
            Flaw::BricksOnPowerLoss => "bricks-on-power-loss",
            Flaw::OpenConsole => "open-console",
            Flaw::OpenBootloader => "open-bootloader",
            Flaw::EmptyImageAccepted => "empty-image-accepted",
            Flaw::ValidationOffAfterFailures => "validation-off-after-failures",
            Flaw::RemoteFactoryLogin => "remote-factory-login",
            Flaw::RemoteFactoryNag => "remote-factory-nag",
            Flaw::SessionsSurviveChange => "sessions-survive-change",
            Flaw::DefaultAccount => "default-account",
            Flaw::NoLoginThrottle => "no-login-throttle",
            Flaw::PlaintextTelemetry => "plaintext-telemetry",
            Flaw::TelnetListening => "telnet-listening",
            Flaw::DebugPort => "debug-port",
            Flaw::LegacyTls => "legacy-tls",
            Flaw::ExpiredCertificate => "expired-certificate",
            Flaw::SharedTlsKey => "shared-tls-key",
            Flaw::WeakSsh => "weak-ssh",
            Flaw::TlsVersionFallback => "tls-version-fallback",
            Flaw::PlainHttpPoll => "plain-http-poll",
            Flaw::TelemetryHttp80 => "telemetry-http-80",
            Flaw::HttpsClientNoVerify => "https-client-no-verify",
            Flaw::HttpsClientTls10 => "https-client-tls10",
            Flaw::TelemetryLeaksEmail => "telemetry-leaks-email",
            Flaw::PskInDns => "psk-in-dns",
            Flaw::Md5PasswordStore => "md5-password-store",
            Flaw::ConfigWithoutAuth => "config-without-auth",
            Flaw::ConfigSavedBeforeAuth => "config-saved-before-auth",
            Flaw::BrokerAnonymous => "broker-anonymous",
            Flaw::BootsUnsigned => "boots-unsigned",
            Flaw::UndeclaredTracker => "undeclared-tracker",
            Flaw::PasswordOverHttp => "password-over-http",
            Flaw::ResetKeepsPassword => "reset-keeps-password",
            Flaw::ResetKeepsToken => "reset-keeps-token",
            Flaw::TelemetryBeforeConsent => "telemetry-before-consent",
            Flaw::TelemetryAfterWithdrawal => "telemetry-after-withdrawal",
            Flaw::ServesOldPolicy => "serves-old-policy",
            Flaw::NoDeletionNotice => "no-deletion-notice",
            Flaw::CloudAccountKept => "cloud-account-kept",
            Flaw::TelemetryOvershares => "telemetry-overshares",
            Flaw::VulnerableComponent => "vulnerable-component",
            Flaw::SbomDrift => "sbom-drift",
            Flaw::ExpiredSecurityTxt => "expired-security-txt",
            Flaw::ComponentNotUpdateable => "component-not-updateable",
            Flaw::SamePasswordAllUnits => "same-password-all-units",
            Flaw::PasswordFromMac => "password-from-mac",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// What survives a power cycle (the board's flash).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// None while the factory password is still in force.
    pub password: Option<String>,
    pub version: String,
    /// The slot the board boots from (A/B updates).
    pub slot: char,
    /// An install over the running slot was under way (only the bricking flaw does that).
    pub installing: bool,
    /// What the owner set (`set NAME VALUE`): e-mail, Wi-Fi PSK, device name.
    pub data: Vec<(String, String)>,
}

impl State {
    fn factory() -> Self {
        Self {
            password: None,
            version: FIRMWARE_VERSION.into(),
            slot: 'A',
            installing: false,
            data: Vec::new(),
        }
    }

    /// A value the owner set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.data.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn load(path: &Path) -> Self {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Self::factory();
        };
        let mut s = Self::factory();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("password", v)) => s.password = Some(v.to_string()),
                Some(("version", v)) => s.version = v.to_string(),
                Some(("slot", v)) => s.slot = v.chars().next().unwrap_or('A'),
                Some(("installing", v)) => s.installing = v == "1",
                Some((k, v)) if k.starts_with("data.") => s.data.push((k[5..].to_string(), v.to_string())),
                _ => {}
            }
        }
        s
    }

    pub fn save(&self, path: &Path) {
        let mut text = format!(
            "version={}\nslot={}\ninstalling={}\n",
            self.version,
            self.slot,
            u8::from(self.installing)
        );
        if let Some(p) = &self.password {
            text.push_str(&format!("password={p}\n"));
        }
        for (k, v) in &self.data {
            text.push_str(&format!("data.{k}={v}\n"));
        }
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// Writes firmware `version` into slot A as a programmer on the debug port would,
    /// keeping the rest of the flash (the password).
    pub fn flash(path: &Path, version: &str) -> Result<(), String> {
        let mut s = Self::load(path);
        s.version = version.to_string();
        s.slot = 'A';
        s.installing = false;
        s.save(path);
        Ok(())
    }

    pub fn erase(path: &Path) -> Result<(), String> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("erase {}: {e}", path.display())),
        }
    }
}

/// The board's password rules for a new password (`weak`: the weak-passwords flaw, which
/// takes anything but an empty one). Err says why it is refused, as the board prints it.
pub fn password_policy(
    new: &str,
    user: &str,
    factory: Option<&str>,
    old: Option<&str>,
    weak: bool,
) -> Result<(), &'static str> {
    if new.is_empty() {
        return Err("the password is empty");
    }
    if weak {
        return Ok(());
    }
    let lower = new.to_lowercase();
    if new.chars().count() < 10 {
        return Err("it is shorter than 10 characters");
    }
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err("it is a commonly used password");
    }
    if lower.contains(&user.to_lowercase()) {
        return Err("it contains the user name");
    }
    if Some(new) == factory {
        return Err("it is the factory password");
    }
    if old == Some(new) {
        return Err("it is the same as the old password");
    }
    Ok(())
}

/// The most common passwords of leaked lists; enough to catch the classic weak choices.
const COMMON_PASSWORDS: &[&str] = &[
    "123456",
    "123456789",
    "12345678",
    "password",
    "qwerty",
    "qwerty123",
    "1234567890",
    "111111",
    "123123",
    "abc123",
    "password1",
    "1234567",
    "admin",
    "admin123",
    "letmein",
    "welcome",
    "monkey",
    "dragon",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "master",
    "shadow",
    "superman",
    "trustno1",
    "passw0rd",
    "changeme",
    "default",
    "root",
    "toor",
    "guest",
    "user",
    "support",
    "service",
    "system",
    "1q2w3e4r",
    "qwertyuiop",
    "000000",
    "654321",
    "666666",
    "888888",
    "123321",
    "zaq12wsx",
    "password123",
    "administrator",
];

/// The board on its serial line: boot, bootloader, login, shell.
pub struct Board {
    opts: BoardOptions,
    line: SerialLine,
    state: State,
    /// The previous line ended with CR: a following LF belongs to it.
    skip_lf: bool,
}

enum LineInput {
    Text(String),
    Interrupted,
    Closed,
}

/// How a new-password dialog ended.
enum Changed {
    Yes,
    No,
    Interrupted,
}

enum Session {
    Logout,
    Reboot,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Board {
    pub fn new(opts: BoardOptions, line: SerialLine) -> Self {
        let state = State::load(&opts.state);
        Self {
            opts,
            line,
            state,
            skip_lf: false,
        }
    }

    fn has(&self, flaw: Flaw) -> bool {
        self.opts.flaws.contains(&flaw)
    }

    /// This unit's serial number (from where its console is wired, so parallel boards differ).
    fn serial(&self) -> String {
        let digest = Sha256::digest(self.opts.link.to_string_lossy().as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!("SB{hex}")
    }

    fn out(&mut self, s: &str) {
        self.line.write_all(s.as_bytes());
    }

    pub fn run(mut self) -> Result<(), String> {
        if let Some(u) = self.opts.update.clone() {
            let flaws = self.opts.flaws.clone();
            let state = self.opts.state.clone();
            let console = self.line.writer();
            std::thread::spawn(move || crate::update::agent(u, flaws, state, console));
        }
        if let Some(r) = self.opts.remote.clone() {
            crate::remote::start(r);
        }
        if let Some(m) = self.opts.mqtt.clone() {
            let flaws = self.opts.flaws.clone();
            let https = (m.clone(), flaws.clone());
            std::thread::spawn(move || crate::mqtt::run(m, flaws, |l| eprintln!("{l}")));
            // its second TLS client: HTTPS telemetry to its cloud, checked with the same CA
            if https.1.contains(&Flaw::UndeclaredTracker) {
                let t = https.0.clone();
                std::thread::spawn(move || {
                    crate::mqtt::https_loop(&t, &[], "metrics.adtrack.test", "/collect", &|| true)
                });
            }
            // usage analytics, only with the owner's consent (`consent on`; off at the factory)
            let (t, state, flaws) = (https.0.clone(), self.opts.state.clone(), https.1.clone());
            std::thread::spawn(move || {
                let ever = std::sync::atomic::AtomicBool::new(false);
                let gate = || {
                    let on = State::load(&state).get("analytics_consent") == Some("on");
                    if on {
                        ever.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    on || flaws.contains(&Flaw::TelemetryBeforeConsent)
                        || (flaws.contains(&Flaw::TelemetryAfterWithdrawal)
                            && ever.load(std::sync::atomic::Ordering::Relaxed))
                };
                crate::mqtt::https_loop(&t, &[], "analytics.simboard.test", "/v1/usage", &gate)
            });
            std::thread::spawn(move || crate::mqtt::https_telemetry(&https.0, &https.1));
        }
        if let (true, Some(url)) = (
            self.opts.flaws.contains(&Flaw::PlaintextTelemetry),
            self.opts.telemetry_url.clone(),
        ) {
            std::thread::spawn(move || crate::net::post_telemetry(&url));
        }
        if let (true, Some(url)) = (
            self.opts.flaws.contains(&Flaw::TelemetryLeaksEmail),
            self.opts.telemetry_url.clone(),
        ) {
            let state = self.opts.state.clone();
            std::thread::spawn(move || crate::net::post_diagnostics(&url, &state));
        }
        if self.opts.flaws.contains(&Flaw::PskInDns) {
            let state = self.opts.state.clone();
            std::thread::spawn(move || crate::net::psk_lookups(&state));
        }
        if self.opts.flaws.contains(&Flaw::PlainHttpPoll) {
            std::thread::spawn(|| {
                crate::net::http_loop("updates.simboard.test:8080", |_| {
                    "GET /manifest.json?model=SB-1&version=1.0.0 HTTP/1.1\r\nHost: updates.simboard.test:8080\r\nConnection: close\r\n\r\n".to_string()
                })
            });
        }
        if self.opts.flaws.contains(&Flaw::TelemetryHttp80) {
            std::thread::spawn(|| {
                crate::net::http_loop("telemetry.simboard.test:80", |n| {
                    let body = format!("{{\"device\":\"simboard-sb1\",\"rssi\":-{},\"seq\":{n}}}", 60 + n % 7);
                    format!(
                        "POST /v1/ingest HTTP/1.1\r\nHost: telemetry.simboard.test\r\nAuthorization: Bearer sbt_4f0c9e2d7a1b\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                })
            });
        }
        loop {
            self.boot();
            loop {
                match self.login() {
                    None => return Ok(()), // line closed
                    Some(Session::Logout) => continue,
                    Some(Session::Reboot) => break,
                }
            }
        }
    }

    fn boot(&mut self) {
        self.state = State::load(&self.opts.state);
        if self.state.installing {
            // power was lost while the running slot was being overwritten
            self.out("\r\nSimBoard ROM v2.1\r\nboot: firmware image in the active slot is corrupt, halting\r\n");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        self.out("\r\n\x1b[1;32mSimBoard ROM v2.1\x1b[0m (c) certbench simulated hardware\r\n");
        let serial = self.serial();
        self.out(&format!("Board serial {serial}\r\n"));
        if self.has(Flaw::OpenBootloader) {
            self.out("Hit any key to stop autoboot:  1 ");
            if self.line.poll_input(1000) == Some(true) {
                self.line.flush_input();
                self.bootloader();
            }
            self.out("\r\n");
        } else {
            // production firmware: the autoboot cannot be interrupted
            self.out("autoboot: break-in disabled\r\n");
        }
        self.secure_boot();
        self.out(&format!("Booting firmware slot {} ...\r\n", self.state.slot));
        // A chatty boot log, like a real kernel, to keep the harness's matcher honest.
        let mut written = 0usize;
        let mut n = 0u64;
        while written < self.opts.noise_kib * 1024 {
            let l = format!(
                "[{:5}.{:06}] \x1b[33minit\x1b[0m: probing device {n:04x} ... ok\r\n",
                n / 1000,
                (n * 997) % 1_000_000
            );
            written += l.len();
            self.out(&l);
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(self.opts.boot_ms));
        let v = self.state.version.clone();
        self.out(&format!("\r\nsimboard firmware {v} ready\r\n"));
        // like a getty: what was typed during boot is not taken as a user name
        self.line.flush_input();
    }

    /// The boot ROM's check of an image written straight into the boot slot (`flash-raw`,
    /// not through the update agent): booted only when the maker's key verifies its
    /// signature; otherwise the ROM falls back to the firmware the slot held before. The
    /// boots-unsigned flaw boots it unverified.
    fn secure_boot(&mut self) {
        let raw = self.opts.state.with_extension("raw");
        let Ok(img) = std::fs::read(&raw) else { return };
        let _ = std::fs::remove_file(&raw);
        let version = |img: &[u8]| -> Option<String> {
            let le = |i: usize| Some(u16::from_le_bytes([*img.get(i)?, *img.get(i + 1)?]));
            (img.get(..8) == Some(&crate::update::MAGIC[..]))
                .then(|| Some(crate::update::show((le(8)?, le(10)?, le(12)?))))
                .flatten()
        };
        let checked = match &self.opts.update {
            _ if self.has(Flaw::BootsUnsigned) => Ok(()),
            Some(u) => crate::update::verify(
                &img,
                &u.pubkey,
                (0, 0, 0),
                crate::update::Lax {
                    downgrade: true,
                    ..Default::default()
                },
            )
            .map(drop),
            None => Err("no maker key provisioned".to_string()),
        };
        match (checked, version(&img)) {
            (Ok(()), Some(v)) => {
                self.out(&format!("secure boot: slot {} image {v} accepted\r\n", self.state.slot));
                self.state.version = v;
                self.state.save(&self.opts.state);
            }
            (Ok(()), None) => {
                self.out("boot: no firmware image in the boot slot, halting\r\n");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            (Err(why), _) => self.out(&format!(
                "secure boot: slot {} image refused ({why}); falling back to firmware {}\r\n",
                self.state.slot, self.state.version
            )),
        }
    }

    /// `flash-raw URL`: the maker's maintenance path that writes an image straight into the
    /// boot slot (as `dd` to the boot partition would), without the update agent.
    fn flash_raw(&mut self, url: &str) {
        let tls = self.opts.update.as_ref().and_then(|u| u.tls.clone());
        match crate::update::get(url, 64 << 20, tls.as_ref()) {
            Ok(img) => {
                let n = img.len();
                match std::fs::write(self.opts.state.with_extension("raw"), img) {
                    Ok(()) => self.out(&format!("flash-raw: {n} bytes written to the boot slot\r\n")),
                    Err(e) => self.out(&format!("flash-raw: write failed: {e}\r\n")),
                }
            }
            Err(e) => self.out(&format!("flash-raw: download failed: {e}\r\n")),
        }
    }

    /// The bootloader's command line (only the open-bootloader flaw reaches it): no password.
    fn bootloader(&mut self) {
        loop {
            self.out("\r\n=> ");
            let cmd = match self.read_line(true) {
                Some(LineInput::Text(t)) => t,
                Some(LineInput::Interrupted) => continue,
                _ => return,
            };
            match cmd.trim() {
                "" => {}
                "help" => self.out("boot, help, printenv, version\r\n"),
                "version" => self.out("SimBoot 2024.01 (simulated)\r\n"),
                "printenv" => self.out("bootargs=console=ttyS0 init=/sbin/init\r\nbootdelay=1\r\n"),
                "boot" => return,
                other => self.out(&format!("Unknown command '{other}' - try 'help'\r\n")),
            }
        }
    }

    fn login(&mut self) -> Option<Session> {
        if self.has(Flaw::OpenConsole) {
            return self.shell("root");
        }
        loop {
            self.out(&format!("\r\n{HOSTNAME} login: "));
            let user = match self.read_line(true)? {
                LineInput::Text(t) => t,
                LineInput::Interrupted => continue,
                LineInput::Closed => return None,
            };
            if user.is_empty() {
                continue;
            }
            self.out("Password: ");
            let password = match self.read_line(false)? {
                LineInput::Text(t) => t,
                LineInput::Interrupted => continue,
                LineInput::Closed => return None,
            };
            self.out("\r\n");
            if user != self.opts.factory_user {
                self.reject();
                continue;
            }
            let factory_ok = password == self.opts.factory_password;
            // the password in flash: a change made over the network since boot counts
            self.state.password = State::load(&self.opts.state).password;
            match self.state.password.clone() {
                None if factory_ok => {
                    if !self.has(Flaw::NoForcedChange) {
                        match self.force_change(&user)? {
                            true => {}
                            false => continue,
                        }
                    }
                }
                Some(current) if password == current => {}
                Some(_) if factory_ok && self.has(Flaw::FactoryPasswordKept) => {}
                _ => {
                    self.reject();
                    continue;
                }
            }
            return self.shell(&user);
        }
    }

    /// `passwd`: current password, then a new one under the same policy as the forced change.
    fn passwd(&mut self, user: &str) -> Option<()> {
        self.out("Current password: ");
        let current = match self.read_line(false)? {
            LineInput::Text(t) => t,
            LineInput::Interrupted => return Some(()),
            LineInput::Closed => return None,
        };
        self.out("\r\n");
        let expected = self
            .state
            .password
            .clone()
            .unwrap_or_else(|| self.opts.factory_password.clone());
        if current != expected {
            std::thread::sleep(Duration::from_millis(100));
            self.out("passwd: Authentication token manipulation error\r\n");
            return Some(());
        }
        match self.new_password(user)? {
            Changed::Yes => self.out("passwd: password updated successfully\r\n"),
            Changed::Interrupted => {}
            Changed::No => self.out("passwd: have exhausted maximum number of retries for service\r\n"),
        }
        Some(())
    }

    fn reject(&mut self) {
        std::thread::sleep(Duration::from_millis(100));
        self.out("Login incorrect\r\n");
    }

    /// The first-login dialog. Returns Some(true) once a new password is stored.
    fn force_change(&mut self, user: &str) -> Option<bool> {
        self.out("You are required to change the factory password now.\r\n");
        Some(match self.new_password(user)? {
            Changed::Yes => {
                self.out("Password changed.\r\n");
                true
            }
            Changed::Interrupted => false,
            Changed::No => {
                self.out("Too many failures; password unchanged.\r\n");
                false
            }
        })
    }

    /// New password twice, under the policy, three tries; stores it when accepted.
    fn new_password(&mut self, user: &str) -> Option<Changed> {
        for _attempt in 0..3 {
            self.out("New password: ");
            let new = match self.read_line(false)? {
                LineInput::Text(t) => t,
                LineInput::Interrupted => return Some(Changed::Interrupted),
                LineInput::Closed => return None,
            };
            self.out("\r\nRetype new password: ");
            let again = match self.read_line(false)? {
                LineInput::Text(t) => t,
                LineInput::Interrupted => return Some(Changed::Interrupted),
                LineInput::Closed => return None,
            };
            self.out("\r\n");
            if new != again {
                self.out("Sorry, passwords do not match.\r\n");
                continue;
            }
            if let Err(why) = self.policy(user, &new) {
                self.out(&format!("BAD PASSWORD: {why}\r\n"));
                continue;
            }
            self.state.password = Some(new);
            self.state.save(&self.opts.state);
            return Some(Changed::Yes);
        }
        Some(Changed::No)
    }

    /// The account's line of the board's password store: yescrypt, or MD5-crypt with the
    /// flaw (the salt and digest derived from the password, in the scheme's alphabet).
    /// The board's files a shell command can read: what the owner set, the password store.
    fn files(&self, user: &str) -> Vec<(&'static str, String)> {
        let st = State::load(&self.opts.state);
        let settings: String = st.data.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        vec![
            ("/data/settings", settings),
            (
                "/etc/shadow",
                format!("root:*:19000:0:99999:7:::\n{}\n", self.shadow_entry(user)),
            ),
        ]
    }

    fn shadow_entry(&self, user: &str) -> String {
        const A: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let password = State::load(&self.opts.state)
            .password
            .unwrap_or_else(|| self.opts.factory_password.clone());
        let d = Sha256::digest(password.as_bytes());
        let chars =
            |n: usize, off: usize| -> String { (0..n).map(|i| A[(d[(i + off) % 32] % 64) as usize] as char).collect() };
        let hash = if self.has(Flaw::Md5PasswordStore) {
            format!("$1${}${}", chars(8, 0), chars(22, 8))
        } else {
            format!("$y$j9T${}${}", chars(22, 0), chars(43, 5))
        };
        format!("{user}:{hash}:19700:0:99999:7:::")
    }

    /// `set NAME VALUE`: what the owner sets at setup (kept in flash).
    fn set(&mut self, cmd: &str) {
        const NAMES: [&str; 4] = ["owner_email", "wifi_psk", "device_name", "account_token"];
        let mut w = cmd.split_whitespace().skip(1);
        match (w.next(), w.next(), w.next()) {
            (Some(k), Some(v), None) if NAMES.contains(&k) => {
                let mut st = State::load(&self.opts.state);
                st.data.retain(|(n, _)| n != k);
                st.data.push((k.to_string(), v.to_string()));
                st.save(&self.opts.state);
                self.state.data = st.data;
                self.out(&format!("ok: {k} set\r\n"));
            }
            _ => self.out(&format!("usage: set {{{}}} VALUE\r\n", NAMES.join("|"))),
        }
    }

    fn policy(&self, user: &str, new: &str) -> Result<(), &'static str> {
        password_policy(
            new,
            user,
            (!self.has(Flaw::FactoryPasswordReusable)).then_some(self.opts.factory_password.as_str()),
            self.state.password.as_deref(),
            self.has(Flaw::WeakPasswords),
        )
    }

    fn shell(&mut self, user: &str) -> Option<Session> {
        self.out(&format!("Welcome, {user}. Type 'help' for commands.\r\n"));
        // the password this session was opened with: a change made elsewhere ends it
        let mut opened_with = State::load(&self.opts.state).password;
        loop {
            self.out(&format!("{user}@{HOSTNAME}:~$ "));
            let cmd = match self.read_line(true)? {
                LineInput::Text(t) => t,
                LineInput::Interrupted => continue,
                LineInput::Closed => return None,
            };
            if !self.has(Flaw::SessionsSurviveChange) && State::load(&self.opts.state).password != opened_with {
                self.out("\r\nThe password was changed: this session has ended.\r\nlogout\r\n");
                return Some(Session::Logout);
            }
            let cmd = cmd.trim();
            match cmd {
                "" => {}
                "help" => {
                    self.out("commands: version, components, id, set, config get update_server, cat /etc/shadow, grep -rlF -e TEXT PATH..., consent on|off, flash-raw URL, passwd, reboot, factory-reset, exit\r\n")
                }
                set if set.starts_with("set ") || set == "set" => self.set(set),
                raw if raw.starts_with("flash-raw ") => {
                    let url = raw["flash-raw ".len()..].trim().to_string();
                    self.flash_raw(&url);
                }
                "config get update_server" => {
                    let v = State::load(&self.opts.state)
                        .get("update_server")
                        .unwrap_or("updates.simboard.test")
                        .to_string();
                    self.out(&format!("update_server={v}\r\n"));
                }
                "consent on" | "consent off" => {
                    let on = cmd == "consent on";
                    let mut st = State::load(&self.opts.state);
                    st.data.retain(|(n, _)| n != "analytics_consent");
                    st.data.push(("analytics_consent".into(), if on { "on" } else { "off" }.into()));
                    st.save(&self.opts.state);
                    self.state.data = st.data;
                    self.out(if on {
                        "ok: usage analytics consent given\r\n"
                    } else {
                        "ok: usage analytics consent withdrawn\r\n"
                    });
                }
                g if g.starts_with("grep ") => {
                    let files = self.files(user);
                    self.out(&grep(g, &files));
                }
                "cat /etc/shadow" => {
                    let entry = self.shadow_entry(user);
                    self.out(&format!("root:*:19000:0:99999:7:::\r\n{entry}\r\n"));
                }
                "passwd" => {
                    self.passwd(user)?;
                    opened_with = State::load(&self.opts.state).password;
                }
                "components" => {
                    // what the firmware links, as its libraries print their versions
                    let mut banners: Vec<String> = crate::update::COMPONENTS.iter().map(|s| s.to_string()).collect();
                    if self.has(Flaw::VulnerableComponent) {
                        banners[1] = "OpenSSL 1.0.1f 6 Jan 2014".into();
                    }
                    if self.has(Flaw::SbomDrift) {
                        banners[0] = "BusyBox v1.36.0 (2023-01-03 00:00:00 UTC) multi-call binary.".into();
                    }
                    if self.has(Flaw::ComponentNotUpdateable) {
                        banners.push("U-Boot 2023.01 (Jan 09 2023 - 12:00:00 +0000) SimBoard".into());
                    }
                    self.out(&format!("{}\r\n", banners.join("\r\n")));
                }
                "version" => {
                    let v = self.state.version.clone();
                    self.out(&format!("firmware {v}\r\n"));
                }
                "id" => {
                    let serial = self.serial();
                    self.out(&format!("model SB-1 serial {serial}\r\n"));
                }
                "reboot" => {
                    self.out("Rebooting...\r\n");
                    return Some(Session::Reboot);
                }
                "factory-reset" => {
                    // the cloud account first, while the board still holds its credentials
                    if let Some(m) = &self.opts.mqtt
                        && !self.has(Flaw::CloudAccountKept)
                    {
                        match crate::mqtt::request_account_deletion(m) {
                            Ok(()) => self.out("Your cloud account has been deleted.\r\n"),
                            Err(e) => self.out(&format!("Could not reach the cloud to delete your account: {e}\r\n")),
                        }
                    }
                    let mut kept = State::load(&self.opts.state).data;
                    kept.retain(|(n, _)| n == "account_token");
                    let _ = State::erase(&self.opts.state);
                    if self.has(Flaw::ResetKeepsToken) && !kept.is_empty() {
                        let mut fresh = State::load(&self.opts.state);
                        fresh.data = kept;
                        fresh.save(&self.opts.state);
                    }
                    if self.has(Flaw::NoDeletionNotice) {
                        self.out("Rebooting...\r\n");
                    } else {
                        self.out("Factory reset done: your data has been erased. Rebooting...\r\n");
                    }
                    return Some(Session::Reboot);
                }
                "exit" | "logout" => {
                    self.out("logout\r\n");
                    return Some(Session::Logout);
                }
                other => {
                    let name = other.split_whitespace().next().unwrap_or(other).to_string();
                    self.out(&format!("{name}: command not found\r\n"));
                }
            }
        }
    }

    /// Reads one line like a getty: echo when asked, backspace, Ctrl-C aborts the line.
    fn read_line(&mut self, echo: bool) -> Option<LineInput> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.line.read_byte() else {
                return Some(LineInput::Closed);
            };
            let skip_lf = std::mem::take(&mut self.skip_lf);
            match b {
                b'\n' if skip_lf => continue,
                b'\r' | b'\n' => {
                    self.skip_lf = b == b'\r';
                    if echo {
                        self.out("\r\n");
                    }
                    return Some(LineInput::Text(String::from_utf8_lossy(&buf).into_owned()));
                }
                0x03 => {
                    self.out("^C\r\n");
                    return Some(LineInput::Interrupted);
                }
                0x7f | 0x08 if buf.pop().is_some() && echo => self.out("\x08 \x08"),
                0x7f | 0x08 => {}
                b if b >= 0x20 => {
                    buf.push(b);
                    if echo {
                        self.line.write_all(&[b]);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_rules_refuse_what_a_weak_policy_would_take() {
        let p = |new: &str| password_policy(new, "admin", Some("simboard-factory"), Some("Old-Password-77"), false);
        assert_eq!(p(""), Err("the password is empty"));
        assert_eq!(p("Short-1"), Err("it is shorter than 10 characters"));
        assert_eq!(p("password123"), Err("it is a commonly used password"));
        assert_eq!(p("my-admin-pass-9"), Err("it contains the user name"));
        assert_eq!(p("Old-Password-77"), Err("it is the same as the old password"));
        assert_eq!(
            password_policy("simboard-factory", "root", Some("simboard-factory"), None, false),
            Err("it is the factory password")
        );
        // the reusable-factory flaw: no factory rule, the others stand
        assert_eq!(password_policy("simboard-factory", "root", None, None, false), Ok(()));
        assert!(password_policy("123456", "root", None, None, false).is_err());
        assert_eq!(p("correct-horse-battery-42"), Ok(()));
        // the flaw: anything goes but nothing
        assert_eq!(password_policy("123456", "admin", Some("f"), None, true), Ok(()));
        assert!(password_policy("", "admin", Some("f"), None, true).is_err());
    }

    #[test]
    fn the_flash_keeps_what_a_power_cycle_must_not_lose() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("state");
        assert_eq!(State::load(&f), State::factory(), "blank flash is the factory state");
        let s = State {
            password: Some("Changed-Password-1".into()),
            version: "2.0.0".into(),
            slot: 'B',
            installing: true,
            data: vec![("owner_email".into(), "x@y.example".into())],
        };
        s.save(&f);
        assert_eq!(State::load(&f), s);
        State::flash(&f, "1.0.0").expect("flash");
        let after = State::load(&f);
        assert_eq!(
            (after.version.as_str(), after.slot, after.password),
            ("1.0.0", 'A', s.password)
        );
        State::erase(&f).expect("erase");
        assert_eq!(State::load(&f), State::factory());
    }

    #[test]
    fn every_flaw_reads_back_by_its_name() {
        for f in Flaw::ALL {
            assert_eq!(Flaw::parse(f.name()), Some(f));
        }
        assert_eq!(Flaw::parse("no-such-flaw"), None);
    }
}

/// The words of a shell command line: blanks separate, single quotes quote (`'\''` is a
/// quote inside), a backslash escapes one character outside quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                any = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                any = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                any = true;
                cur.push(c);
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// `grep -rlF -e TEXT PATH...` over the board's files: the names of the files under each
/// path that hold TEXT, as grep prints them (other options are not supported).
fn grep(line: &str, files: &[(&str, String)]) -> String {
    let words = shell_words(line);
    let mut pattern = None;
    let mut paths = Vec::new();
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-e" => pattern = it.next().cloned(),
            o if o.starts_with('-') && o[1..].chars().all(|c| "rlFs".contains(c)) => {}
            o if o.starts_with('-') || o.starts_with("2>") => return format!("grep: unsupported option {o}\r\n"),
            p if pattern.is_none() => pattern = Some(p.to_string()),
            p => paths.push(p.to_string()),
        }
    }
    let Some(pattern) = pattern else {
        return "usage: grep -rlF -e TEXT PATH...\r\n".into();
    };
    let mut out = String::new();
    for p in &paths {
        let under: Vec<&(&str, String)> = files
            .iter()
            .filter(|(name, _)| p == "/" || *name == p || name.starts_with(&format!("{}/", p.trim_end_matches('/'))))
            .collect();
        if under.is_empty() {
            out.push_str(&format!("grep: {p}: No such file or directory\r\n"));
        }
        for (name, text) in under {
            if text.contains(&pattern) {
                out.push_str(&format!("{name}\r\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod grep_tests {
    use super::*;

    #[test]
    fn grep_lists_the_files_that_hold_the_text() {
        let files = vec![
            ("/data/settings", "owner_email=a@b.c\n".to_string()),
            ("/etc/shadow", "x".to_string()),
        ];
        assert_eq!(grep("grep -rlF -e 'a@b.c' '/data'", &files), "/data/settings\r\n");
        assert_eq!(grep("grep -rlF -e 'it'\\''s' /data /etc", &files), "");
        assert_eq!(grep("grep -rlF -e x /", &files), "/etc/shadow\r\n");
        assert!(grep("grep -rlF -e x /nowhere", &files).contains("No such file"));
        assert_eq!(shell_words("a 'b c' 'it'\\''s'"), vec!["a", "b c", "it's"]);
    }
}
