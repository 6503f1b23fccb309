//! Device profiles (`devices/NAME.yaml`) and lab bindings: what a board is, and where it
//! is wired on this bench.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::common::RawTrust;
use super::common::{CommandSpec, Declaration};
use super::console::{self, ConsoleSpec};
use super::credentials::{self, Credentials};
use super::documents::{self, Documents};
use super::network::{self, DeviceBroker, Link};
use super::power::{self, PowerSpec};
use super::profile::{RawLab, RawProfile};
use super::resolver::{Benches, Overrides, Resolver};
use super::yaml::{self, InputError, InputErrors, Loc};
use crate::model::DeviceIdentity;
use crate::model::template::Template;

/// A resolved device, ready to drive.
#[derive(Debug, Clone)]
pub struct Device {
    pub profile_file: PathBuf,
    /// What runs differently now for a profile of an older format (config::version).
    pub notices: Vec<String>,
    pub identity: DeviceIdentity,
    pub console: Option<ConsoleSpec>,
    pub factory: Option<Credentials>,
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
    /// What the device holds that must never cross the wire in clear (`personal_data:`).
    pub personal_data: Vec<crate::model::personal::PersonalData>,
    /// Security-relevant configuration over the network (`config_interfaces:`).
    pub config_ops: Vec<crate::model::config_op::ConfigOp>,
    /// The maker's raw write path to the boot slot (`secure_boot:`).
    pub secure_boot: Option<crate::model::secure_boot::SecureBoot>,
    /// The destinations the maker declares (`privacy.destinations`); None: no declaration.
    pub destinations: Option<Vec<crate::model::privacy::Destination>>,
    /// The grade the privacy policy must read at (`privacy.reading_grade`, `children`).
    pub reading_grade: u8,
    /// How the user erases their data (`privacy.deletion`).
    pub deletion: Option<crate::model::privacy::Deletion>,
    /// How the user gives and withdraws consent (`privacy.consent`).
    pub consent: Option<crate::model::privacy::Consent>,
    /// Where the device serves its privacy policy (`privacy.policy_page`).
    pub policy_page: Option<crate::model::privacy::PolicyPage>,
    /// What the maker says the firmware ships (`software:`).
    pub software: crate::model::software::Software,
    /// The lab's vulnerability data, if it supplied any, and its policy.
    pub vuln_data: Option<crate::model::software::VulnData>,
    pub vuln_policy: crate::model::software::VulnPolicy,
    /// The model's units the lab holds (lab `units:`), and the one this run drives.
    pub units: Vec<crate::model::unit::Unit>,
    pub unit: Option<crate::model::unit::Unit>,
    /// The labgrid place the board is (lab `labgrid:`): console and power come from it.
    pub labgrid: Option<crate::model::labgrid::Place>,
}

impl Device {
    /// Whether the device has an update path the bench can drive (`update.delivery`): the
    /// update checks need one, and minimum requirement 2 fails without it.
    pub fn has_update_mechanism(&self) -> bool {
        self.update.as_ref().is_some_and(|u| !u.deliveries.is_empty())
    }
}

/// The lab's `labgrid:` place: the coordinator's address checked; the console and power
/// come from the place, so the lab file must not wire them too.
fn labgrid(
    rx: &Resolver,
    l: &super::profile::RawLabgrid,
    lab: &RawLab,
    namespace: bool,
) -> Option<crate::model::labgrid::Place> {
    let file = rx.lab_file.as_path();
    if namespace {
        rx.error(
            InputError::new(
                file,
                Some(l.place.pos),
                "labgrid",
                "the profile's device is started by certbench in a network namespace of its own (network.namespace); a labgrid place is powered, and so started, on its exporter's host".to_string(),
            )
            .with_hint("for a board in a place, leave network.namespace out and bind the board's network with `bench:`"),
        );
        return None;
    }
    let c = &l.coordinator.value;
    let port_ok = c
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        rx.error(
            InputError::new(
                file,
                Some(l.coordinator.pos),
                "labgrid.coordinator",
                format!("{c:?} is not HOST:PORT"),
            )
            .with_hint("e.g. coordinator: labgrid.lab.example:20408"),
        );
        return None;
    }
    if l.place.value.trim().is_empty() {
        rx.error(InputError::new(
            file,
            Some(l.place.pos),
            "labgrid.place",
            "the place has no name".to_string(),
        ));
        return None;
    }
    if let Some(p) = &lab.port {
        rx.error(
            InputError::new(
                file,
                Some(p.pos),
                "port",
                "the board's console is the labgrid place's serial port; a lab `port` would be a second one"
                    .to_string(),
            )
            .with_hint("leave `port` out: the exporter's NetworkSerialPort is used"),
        );
        return None;
    }
    if lab.power.is_some() {
        rx.error(
            InputError::new(
                file,
                Some(l.place.pos),
                "power",
                "the board's power is the labgrid place's power port; a lab `power` would switch something else"
                    .to_string(),
            )
            .with_hint("leave `power` out of the lab file"),
        );
        return None;
    }
    Some(crate::model::labgrid::Place {
        coordinator: c.clone(),
        place: l.place.value.trim().to_string(),
        client: l.client.clone().unwrap_or_else(|| "labgrid-client".into()),
    })
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
    if let Some(p) = raw.software.as_ref().and_then(|s| s.sbom.as_ref()) {
        path("software.sbom", Some(p.pos), &p.value.to_string_lossy());
    }
    if let Some(p) = raw.software.as_ref().and_then(|s| s.vex.as_ref()) {
        path("software.vex", Some(p.pos), &p.value.to_string_lossy());
    }
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

/// The profile and lab resolved into a `Device`: each section by its own file, in this
/// order (the order of the error messages), over one [`Resolver`].
fn resolve(file: &Path, raw: RawProfile, lab: Option<(&Path, RawLab)>, ov: &Overrides) -> Result<Device, InputErrors> {
    let (lab_file, lab) = match lab {
        Some((f, l)) => (f.to_path_buf(), l),
        None => (file.to_path_buf(), RawLab::default()),
    };
    let (raw_unit, vars, ov) = unit_and_vars(&lab_file, &lab, ov)?;
    let ov = &ov;
    let benches = Benches {
        namespace: raw.network.as_ref().is_some_and(|n| n.namespace),
        mqtt: raw.network.as_ref().is_some_and(|n| n.mqtt.is_some()),
        update: raw.update.is_some(),
    };
    let rx = Resolver::new(file, lab_file, vars, benches);
    let units = super::units::resolve(&rx, &lab.units, ov.skip_secrets);
    let labgrid = lab
        .labgrid
        .as_ref()
        .and_then(|l| labgrid(&rx, l, &lab, benches.namespace));
    let unit = raw_unit.and_then(|r| units.iter().find(|u| u.name == r.name.value.trim()).cloned());
    set_unit_vars(&rx, unit.as_ref());
    let attribution = network::attribution(&rx, &raw, &lab);
    // `{{device.address}}`: so a simulated device can be told where to connect from
    if let Some(ip) = attribution.device {
        rx.set_var("device.address", ip.to_string());
    }
    let power = power::power(&rx, &raw, &lab);
    let factory_reset = power::factory_reset(&rx, &raw, &lab);
    let setup = power::setup(&rx, &raw);
    let console = raw.console.as_ref().and_then(|c| console::resolve(&rx, c, &lab, ov));
    let factory = factory_login(&rx, &raw, unit.as_ref(), ov.skip_secrets);
    let broker = network::broker(&rx, &raw);
    let mqtt = network::mqtt(&rx, &raw, &lab, attribution);
    let documents = documents::documents(&rx, &raw);
    let signoffs = documents::signoffs(&rx, documents.as_ref());
    let not_applicable = documents::not_applicable(&rx, &raw);
    let update_bind = network::update_bind(&lab);
    let update = update(&rx, &raw);
    let debug = debug(&rx, &raw, &lab, ov);
    let address = device_address(attribution.device, benches.namespace);
    let services = services(&rx, &raw, address, console.as_ref());
    let default_credentials = credentials::lab_defaults(&rx, &lab);
    let other_unit_certificates = credentials::other_unit_certificates(&rx, &lab);
    let http_answers =
        rx.collect(|e| super::answers::resolve(file, raw.network.as_ref().map_or(&[][..], |n| &n.http_answers), e));
    let plaintext_exempt = network::plaintext_exempt(&rx, &raw);
    let link = network::link(&raw, &lab);
    let dhcp = network::dhcp(&rx, &lab, attribution);
    let dns_upstream = network::dns_upstream(&rx, &lab);
    let personal_data = super::personal::resolve(&rx, &raw.personal_data, &raw.services);
    let config_ops = super::config_ops::resolve(&rx, &raw.config_interfaces, &raw.services);
    let secure_boot =
        super::secure_boot::resolve(&rx, raw.secure_boot.as_ref(), raw.update.is_some(), raw.debug.is_some());
    let (destinations, reading_grade, deletion, consent, policy_page) = privacy(&rx, &raw, &personal_data);
    let (software, vuln_data, vuln_policy) = (
        super::software::software(&rx, raw.software.as_ref(), raw.console.is_some()),
        super::software::vuln_data(&rx, lab.vulnerability_data.as_ref()),
        super::software::policy(lab.policy.as_ref()),
    );
    let capture_limit = raw.network.as_ref().and_then(|n| n.capture_mib).unwrap_or(256).max(1) << 20;
    let identity = identity(&rx, &raw, unit.as_ref());
    super::version::check(&rx, &raw);
    let notices = super::version::notices(&raw);
    let (errs, vars, port_vars) = rx.finish();
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
        mqtt_tls: raw.network.as_ref().and_then(|n| n.mqtt.as_ref()?.tls.clone()),
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
        port_vars,
        link,
        plaintext_exempt,
        http_answers,
        capture_limit,
        firewall_drops: raw
            .network
            .as_ref()
            .and_then(|n| Some(n.firewall_drops.as_ref()?.value.clone())),
        dhcp,
        dns_upstream,
        personal_data,
        config_ops,
        secure_boot,
        destinations,
        reading_grade,
        deletion,
        consent,
        policy_page,
        software,
        vuln_data,
        vuln_policy,
        units,
        unit,
        labgrid,
    })
}

/// The unit a run drives, the variables its commands see, the overrides with its port.
type UnitWiring = (Option<super::units::RawUnit>, BTreeMap<String, String>, Overrides);

/// The unit this run drives (`--unit`: its wiring over the lab's), the lab's variables with
/// the unit's over them (the model as a whole: every unit's names) and the command line's
/// last, and the overrides with the unit's console port.
fn unit_and_vars(lab_file: &Path, lab: &RawLab, ov: &Overrides) -> Result<UnitWiring, InputErrors> {
    let raw_unit = match &ov.unit {
        Some(n) => match lab.units.iter().find(|u| u.name.value == *n) {
            Some(u) => Some(u.clone()),
            None => {
                return Err(InputError::new(
                    lab_file,
                    None,
                    "--unit",
                    format!("the lab file declares no unit named {n:?}"),
                )
                .with_hint("units are listed under `units:` in the lab file")
                .into());
            }
        },
        None => None,
    };
    let mut vars = lab.vars.clone();
    match &raw_unit {
        Some(u) => vars.extend(u.vars.clone()),
        // the model as a whole (each unit is loaded on its own to run): every unit's names
        // are known to its commands
        None => {
            for u in &lab.units {
                for (k, v) in &u.vars {
                    vars.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    vars.extend(ov.vars.clone());
    // the unit's console port, unless the command line names one
    let ov = match raw_unit.as_ref().and_then(|u| u.port.clone()) {
        Some(port) if ov.port.is_none() => Overrides {
            port: Some(port),
            ..ov.clone()
        },
        _ => ov.clone(),
    };
    Ok((raw_unit, vars, ov))
}

type PrivacyParts = (
    Option<Vec<crate::model::privacy::Destination>>,
    u8,
    Option<crate::model::privacy::Deletion>,
    Option<crate::model::privacy::Consent>,
    Option<crate::model::privacy::PolicyPage>,
);

/// What the privacy section yields, in the order its errors are reported: the declared
/// destinations, the policy's reading grade, deletion, consent and the served policy page.
fn privacy(rx: &Resolver, raw: &RawProfile, personal: &[crate::model::personal::PersonalData]) -> PrivacyParts {
    let p = raw.privacy.as_ref();
    (
        p.map(|p| super::privacy::resolve(rx, Some(p), personal)),
        super::privacy::reading_grade(rx, p),
        super::privacy::deletion(rx, p),
        super::privacy::consent(rx, p),
        super::privacy::policy_page(rx, p, &raw.services),
    )
}

/// The update section.
fn update(rx: &Resolver, raw: &RawProfile) -> Option<super::update::UpdateSpec> {
    let template = |f: &Path, field: &str, src: &Loc<String>| rx.template(f, field, src);
    let u = raw.update.as_ref()?;
    rx.collect(|e| super::update::resolve(rx.file, u, rx.base, &template, e))
}

/// The network services, reached at `address`, with the console's prompts for those that
/// offer a shell.
fn services(
    rx: &Resolver,
    raw: &RawProfile,
    address: super::services::DeviceAddress,
    console: Option<&ConsoleSpec>,
) -> Vec<super::services::Service> {
    let template = |f: &Path, field: &str, src: &Loc<String>| rx.template(f, field, src);
    let prompts = console.map(|c| &c.prompts);
    rx.collect(|e| super::services::resolve(rx.file, &raw.services, address, prompts, &template, e))
}

/// The debug section, with the lab's probe and what it flashes before a run.
fn debug(rx: &Resolver, raw: &RawProfile, lab: &RawLab, ov: &Overrides) -> Option<super::debug::DebugSpec> {
    let d = raw.debug.as_ref()?;
    let at_lab = super::debug::LabDebug {
        probe: lab.debug_probe.as_ref(),
        flash_before_run: lab.flash_before_run.as_ref(),
    };
    super::debug::resolve(rx, d, at_lab, ov.known_chip)
}

/// Where the device's services are reached: its declared address, else its namespace.
fn device_address(declared: Option<std::net::IpAddr>, namespace: bool) -> super::services::DeviceAddress {
    use super::services::DeviceAddress;
    match declared {
        Some(ip) => DeviceAddress::Declared(ip),
        None if namespace => DeviceAddress::Namespace,
        None => DeviceAddress::Unknown,
    }
}

/// The item's identity: the unit's serial over the profile's, the firmware file found
/// beside the profile.
fn identity(rx: &Resolver, raw: &RawProfile, unit: Option<&crate::model::unit::Unit>) -> DeviceIdentity {
    let mut identity = raw.identity.clone();
    if let Some(s) = unit.and_then(|u| u.serial.clone()) {
        identity.serial = Some(s);
    }
    identity.firmware_file = identity.firmware_file.as_ref().map(|p| rx.in_profile(p));
    identity
}

/// `{{unit.name}}`, `{{unit.serial}}`, `{{unit.mac}}`: empty when no unit is named.
fn set_unit_vars(rx: &Resolver, unit: Option<&crate::model::unit::Unit>) {
    rx.set_var("unit.name", unit.map(|u| u.name.clone()).unwrap_or_default());
    rx.set_var("unit.serial", unit.and_then(|u| u.serial.clone()).unwrap_or_default());
    rx.set_var(
        "unit.mac",
        unit.and_then(|u| u.mac.as_ref())
            .map(crate::model::unit::format_mac)
            .unwrap_or_default(),
    );
}

/// The factory login; a unit's label password is its factory password.
fn factory_login(
    rx: &Resolver,
    raw: &RawProfile,
    unit: Option<&crate::model::unit::Unit>,
    skip: bool,
) -> Option<Credentials> {
    let mut factory = credentials::factory(rx, raw, skip);
    if let Some(p) = unit.and_then(|u| u.password.clone()) {
        match &mut factory {
            Some(f) => f.password = p,
            None if raw.credentials.is_none() => rx.error(
                InputError::new(
                    &rx.lab_file,
                    None,
                    "units[].factory_password",
                    "the profile declares no `credentials.factory` (the user the label's password belongs to)",
                )
                .with_hint("declare `credentials.factory.user` in the profile"),
            ),
            None => {}
        }
    }
    factory
}
