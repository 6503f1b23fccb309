//! `network:` with the lab's `bench:` binding: whose connections are the device's, the MQTT
//! cloud the bench plays, the device's own broker, how the bench sees the device's link,
//! DHCP and DNS on a lab interface, and the maker's plaintext exemptions.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::common::RawTrust;
use super::profile::{RawLab, RawProfile};
use super::resolver::Resolver;
use super::yaml::InputError;
use crate::model::template::Template;

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

/// The address the device's connections come from: the lab's `bench.device_address`, else
/// the profile's `network.address`.
pub fn attribution(rx: &Resolver, raw: &RawProfile, lab: &RawLab) -> crate::model::Attribution {
    let declared = match (
        lab.bench.as_ref().and_then(|b| b.device_address.as_ref()),
        raw.network.as_ref().and_then(|n| n.address.as_ref()),
    ) {
        (Some(a), _) => Some((rx.lab_file.as_path(), a, "bench.device_address")),
        (None, Some(a)) => Some((rx.file, a, "network.address")),
        (None, None) => None,
    };
    let device = declared.and_then(|(f, a, field)| match a.value.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            rx.error(
                InputError::new(f, Some(a.pos), field, format!("{:?} is not an IP address", a.value))
                    .with_hint("give the address the board's connections come from, e.g. 192.168.7.20"),
            );
            None
        }
    });
    crate::model::Attribution { device }
}

pub fn broker(rx: &Resolver, raw: &RawProfile) -> Option<DeviceBroker> {
    let b = raw.network.as_ref()?.broker.as_ref()?;
    let host = rx.template(rx.file, "network.broker.host", &b.host);
    let plain = match &b.plain_port {
        Some(p) => rx.template(rx.file, "network.broker.plain_port", p),
        None => Some(Template::literal("1883")),
    };
    let tls = rx.template(rx.file, "network.broker.tls_port", &b.tls_port);
    let ca = rx.template(rx.file, "network.broker.ca_cert", &b.ca_cert);
    Some(DeviceBroker {
        host: host?,
        plain_port: plain?,
        tls_port: tls?,
        ca_cert: ca?,
    })
}

/// The MQTT cloud the bench plays (`network.mqtt`), bound where the lab says.
pub fn mqtt(
    rx: &Resolver,
    raw: &RawProfile,
    lab: &RawLab,
    attribution: crate::model::Attribution,
) -> Option<super::bench::BenchSpec> {
    let m = raw.network.as_ref()?.mqtt.as_ref()?;
    let bind = lab.bench.clone().unwrap_or_default();
    let ip = match &bind.bind {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(b) => match b.value.parse() {
            Ok(ip) => ip,
            Err(_) => {
                rx.error(
                    InputError::new(
                        &rx.lab_file,
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
        RawTrust::MakerCa { cert, key } => crate::model::TrustSource::Maker {
            cert: rx.in_profile(cert),
            key: rx.in_profile(key),
        },
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
}

/// Where the update bench binds: the lab's `bench.bind` (else loopback) and its ports.
pub fn update_bind(lab: &RawLab) -> (IpAddr, u16, u16) {
    let bind = lab.bench.clone().unwrap_or_default();
    let ip = match bind.bind.as_ref().map(|b| b.value.parse::<IpAddr>()) {
        Some(Ok(ip)) => ip,
        _ => IpAddr::from([127, 0, 0, 1]),
    };
    (
        ip,
        bind.update_http_port.unwrap_or(0),
        bind.update_https_port.unwrap_or(0),
    )
}

pub fn plaintext_exempt(rx: &Resolver, raw: &RawProfile) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, reason) in raw.network.as_ref().map(|n| &n.plaintext_exempt).into_iter().flatten() {
        if crate::model::PLAINTEXT_NAMES.contains(&name.as_str()) {
            out.insert(name.clone(), reason.value.clone());
        } else {
            rx.error(
                InputError::new(
                    rx.file,
                    Some(reason.pos),
                    format!("network.plaintext_exempt.{name}"),
                    format!("{name:?} is not a plaintext protocol certbench identifies"),
                )
                .with_hint(format!("one of: {}", crate::model::PLAINTEXT_NAMES.join(", "))),
            );
        }
    }
    out
}

pub fn link(raw: &RawProfile, lab: &RawLab) -> Option<Link> {
    match (
        raw.network.as_ref().is_some_and(|n| n.namespace),
        lab.bench.as_ref().and_then(|b| b.capture_interface.as_ref()),
    ) {
        (_, Some(i)) => Some(Link::Interface(i.value.clone())),
        (true, None) => Some(Link::Namespace),
        (false, None) => None,
    }
}

/// The MAC the bench's DHCP server answers (lab `bench.dhcp`), with what it needs.
pub fn dhcp(rx: &Resolver, lab: &RawLab, attribution: crate::model::Attribution) -> Option<[u8; 6]> {
    let b = lab.bench.as_ref().filter(|b| b.dhcp)?;
    let mut missing = Vec::new();
    if b.capture_interface.is_none() {
        missing.push("bench.capture_interface (the lab interface the board is wired to)");
    }
    if !matches!(attribution.device, Some(IpAddr::V4(_))) {
        missing.push("an IPv4 bench.device_address (the address the board is given)");
    }
    let mac = b.device_mac.as_ref().map(|m| (m, crate::util::parse_mac(&m.value)));
    match &mac {
        None => missing.push("bench.device_mac (the only client answered)"),
        Some((m, None)) => rx.error(
            InputError::new(
                &rx.lab_file,
                Some(m.pos),
                "bench.device_mac",
                format!("{:?} is not a MAC address", m.value),
            )
            .with_hint("six hex pairs: aa:bb:cc:dd:ee:ff"),
        ),
        Some((_, Some(_))) => {}
    }
    if !missing.is_empty() {
        rx.error(
            InputError::new(
                &rx.lab_file,
                None,
                "bench.dhcp",
                format!("needs {}", missing.join(", ")),
            )
            .with_hint("certbench leases the board's declared address to the board's MAC only, on its interface"),
        );
    }
    mac.and_then(|(_, m)| m)
}

pub fn dns_upstream(rx: &Resolver, lab: &RawLab) -> Option<SocketAddr> {
    let u = lab.bench.as_ref()?.dns_upstream.as_ref()?;
    let v = u.value.trim();
    let parsed = v
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| v.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)));
    if parsed.is_none() {
        rx.error(
            InputError::new(
                &rx.lab_file,
                Some(u.pos),
                "bench.dns_upstream",
                format!("{v:?} is not an address"),
            )
            .with_hint("an IP address, optionally with a port: 192.168.1.1 or 127.0.0.1:5353"),
        );
    }
    parsed
}
