//! Whether a scenario can run on this device, decided before any step: the maker's ICS, the
//! interfaces it needs, the maker's declarations.

use super::rig::Rig;
use crate::config::scenario::{Interface, Scenario};

/// Whether a scenario can run on this device, decided before any step.
#[derive(Debug, Clone, PartialEq)]
pub enum Applicability {
    Run,
    /// NOT APPLICABLE with the reason (the maker's ICS or declaration, an absent interface).
    NotApplicable(String),
    /// A minimum requirement needs what the device lacks: FAIL with the reason.
    Fail {
        check: Option<String>,
        reason: String,
    },
}

/// The link checks on a device whose network the bench cannot see (the rating then lists
/// them as not run: `report::rating::NO_VIEW_OF_LINK` starts this text).
pub(crate) const NO_LINK: &str = "the bench has no view of the device's network: the profile declares no namespace (network.namespace, for an emulated device) and the lab names no capture interface (bench.capture_interface, for a board)";

/// Minimum requirement 2 (automatic security updates) needs an update mechanism: a
/// device without one fails the update checks instead of skipping them.
const NO_UPDATE_MECHANISM: &str = "the device has no update mechanism the bench can drive (its profile declares no `update` section, or no `update.delivery`); minimum requirement 2 (automatic security updates) needs one";

impl Rig {
    /// Whether the scenario runs, is NOT APPLICABLE, or fails at once because the device
    /// lacks an interface a minimum requirement needs.
    pub fn gate(&self, sc: &Scenario) -> Applicability {
        // the maker's ICS first: a check whose provisions are all declared not applicable
        let provs: Vec<&str> = sc.evidences.provisions.iter().map(|p| p.value.as_str()).collect();
        if !provs.is_empty() && provs.iter().all(|p| self.device.not_applicable.contains_key(*p)) {
            let reasons: Vec<String> = provs
                .iter()
                .map(|p| format!("{p}: {}", self.device.not_applicable[*p]))
                .collect();
            return Applicability::NotApplicable(format!(
                "not applicable per the maker's ICS ({})",
                reasons.join("; ")
            ));
        }
        // (update-mitm only judges an update channel that exists: NOT APPLICABLE without one,
        // so a missing mechanism never counts against requirement 1)
        let needs = |set: &[Interface]| sc.requires.interfaces.iter().any(|i| set.contains(i));
        let no_update = (needs(&[Interface::Update, Interface::UpdatePull]) && !self.device.has_update_mechanism())
            || (needs(&[Interface::UpdateImages]) && self.device.update.is_none());
        if no_update {
            let checks: Vec<&str> = sc.evidences.checks.iter().map(|c| c.value.as_str()).collect();
            // what the maker would declare, if it states the provisions do not apply
            let open: Vec<&str> = provs
                .iter()
                .copied()
                .filter(|p| !self.device.not_applicable.contains_key(*p))
                .collect();
            return Applicability::Fail {
                check: (!checks.is_empty()).then(|| checks.join("+")),
                reason: format!(
                    "{}: {NO_UPDATE_MECHANISM}. If the maker states that this check's provisions do not apply, declare {} in `ics.not_applicable`, each with the maker's reason",
                    checks.join("+"),
                    open.join(", ")
                ),
            };
        }
        // minimum requirement 3 needs a way to change the password (5.1-4): a device whose
        // maker declares none fails the check of it, and the checks that would change it
        // are not applicable, saying why
        if sc.requires.interfaces.contains(&Interface::PasswordChange)
            && let Some(why) = self.password_fixed()
        {
            if sc.evidences.checks.iter().any(|c| c.value == "AUT-02") {
                return Applicability::Fail {
                    check: Some("AUT-02".into()),
                    reason: format!(
                        "AUT-02: the maker declares that the password cannot be changed ({why}); EN 303 645 5.1-4 asks for a simple mechanism to change it"
                    ),
                };
            }
            return Applicability::NotApplicable(format!(
                "the maker declares that the password cannot be changed ({why}): AUT-02 (password-changeable) fails for it"
            ));
        }
        if sc.requires.interfaces.contains(&Interface::MqttTls)
            && let Some(decl) = &self.device.mqtt_tls
            && !decl.applies()
        {
            return Applicability::NotApplicable(format!(
                "the maker declares that the MQTT channel does not use TLS{}; COM-02 (plaintext-mqtt-rejection) decides whether it speaks in clear",
                decl.reason().map(|r| format!(": {r}")).unwrap_or_default()
            ));
        }
        for i in &sc.requires.interfaces {
            if let Some(m) = self.missing(i) {
                return Applicability::NotApplicable(m.to_string());
            }
        }
        for d in &sc.requires.declarations {
            match self.device.declarations.get(d) {
                None => return Applicability::NotApplicable(format!("the device profile does not declare `{d}`")),
                Some(decl) if !decl.applies() => {
                    return Applicability::NotApplicable(match decl.reason() {
                        Some(r) => format!("the maker declares `{d}` does not apply: {r}"),
                        None => format!("the maker declares `{d}: false`"),
                    });
                }
                Some(_) => {}
            }
        }
        Applicability::Run
    }

    /// The maker's reason when it declares the password cannot be changed
    /// (`declarations.password_change: false`).
    fn password_fixed(&self) -> Option<String> {
        let d = self.device.declarations.get("password_change")?;
        (!d.applies()).then(|| d.reason().unwrap_or("declarations.password_change: false").to_string())
    }

    /// Why the device lacks interface `i`, when it does.
    fn missing(&self, i: &Interface) -> Option<&'static str> {
        match i {
            // decided in `gate` (a FAIL for AUT-02)
            Interface::MqttTls | Interface::PasswordChange => None,
            Interface::BootInterrupt => self
                .device
                .console
                .as_ref()
                .is_none_or(|c| c.boot_interrupt.is_none())
                .then_some("the profile declares no bootloader break-in (console.boot_interrupt: the keys a person would type during boot and the bootloader's prompt)"),
            Interface::Console => self
                .console
                .is_none()
                .then_some("the device profile declares no console"),
            Interface::Power => self.power.is_none().then_some("no power control is configured"),
            Interface::FactoryCredentials => self
                .device
                .factory
                .is_none()
                .then_some("the device profile declares no factory credentials"),
            Interface::FactoryReset => self
                .device
                .factory_reset
                .is_none()
                .then_some("no factory_reset method is configured"),
            Interface::MqttBench => self
                .net
                .is_none()
                .then_some("the device profile declares no MQTT cloud (network.mqtt)"),
            Interface::MqttBroker => self
                .device
                .broker
                .is_none()
                .then_some("the device profile declares no MQTT broker on the device (network.broker)"),
            Interface::Update => (!self.device.has_update_mechanism())
                .then_some("the device profile declares no update method (update.delivery)"),
            Interface::UpdateImages => self
                .update
                .is_none()
                .then_some("the device profile declares no update images (update)"),
            Interface::UpdatePull => match &self.update {
                None => Some("the device profile declares no update method (update)"),
                Some(u) if u.spec.pull().is_none() => {
                    Some("the device does not check for updates by itself (update.delivery is not pull)")
                }
                Some(_) => None,
            },
            Interface::Debug => self
                .device
                .debug
                .is_none()
                .then_some("the device profile declares no debug port (debug)"),
            Interface::Ssh => (!self
                .device
                .services
                .iter()
                .any(|s| s.kind == crate::config::services::ServiceKind::Ssh))
            .then_some("the device profile declares no SSH service (services: kind ssh)"),
            Interface::RemotePasswordChange => (!self.device.services.iter().any(|s| s.password_command.is_some()))
                .then_some("the maker declares no remote password change (an SSH or telnet service with password_command)"),
            Interface::Link => self.device.link.is_none().then_some(NO_LINK),
            Interface::TlsService => (!self.device.services.iter().any(|s| s.tls)
                && self.device.broker.is_none())
            .then_some("the device profile declares no TLS endpoint (a service with tls: true, or network.broker)"),
            Interface::RemoteLogin => (!self.device.services.iter().any(|s| s.kind.logs_in())
                && !self.gateway.scan.as_ref().is_some_and(|open| {
                    open.iter()
                        .any(|p| p.proto == "tcp" && matches!(p.service.as_str(), "telnet" | "ssh" | "ftp" | "mqtt"))
                }))
            .then_some(
                "the device profile declares no remote login services (services: telnet, web login, its MQTT broker; services declared no_login have none)",
            ),
            Interface::UpdateHttps => match &self.update {
                None => Some("the device profile declares no update method (update)"),
                Some(u) if u.spec.scheme != crate::config::update::Scheme::Https => Some(
                    "the device fetches updates over plain HTTP (update.scheme); tampering in transit is covered by the signature checks of update-corrupt-image",
                ),
                Some(u) if u.https.is_none() => Some(
                    "the device trusts no CA the bench can issue from (update.trust), so no positive control over HTTPS is possible",
                ),
                Some(_) => None,
            },
            Interface::MqttTrustedCa => (!self.net.as_ref().is_some_and(|n| n.has_trusted_ca())).then_some(
                "the device trusts no CA the bench can issue from (network.mqtt.trust), so no positive control is possible",
            ),
        }
    }
}
