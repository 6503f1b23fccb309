//! Profile format versions (`certbench: 2` at the top of a device profile). A profile
//! written before a change of meaning still loads, but `validate` and `run` say, for what
//! this profile declares, what now runs differently and what to declare; README's "Profile
//! format versions" has the upgrade notes.

use super::profile::RawProfile;

/// The format this certbench writes and reads without notices.
pub const CURRENT: u32 = 2;

/// What changed between format 1 and 2 for this profile, each with what to declare. Empty
/// for a profile that says `certbench: 2`.
pub fn notices(raw: &RawProfile) -> Vec<String> {
    if raw.certbench.as_ref().is_some_and(|v| v.value >= CURRENT) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let declared = |name: &str| raw.declarations.contains_key(name);
    let has_services = raw
        .services
        .iter()
        .any(|s| s.kind != super::services::ServiceKind::NoLogin);
    if has_services {
        out.push(
            "default-credentials (PWD-03) now sweeps in the state the device ships in (before setup) as well as after: paced by the factory login; declare services[].throttle as the device really locks"
                .to_string(),
        );
    }
    if raw.console.is_some() && !declared("console_login") {
        out.push(
            "password-strength, password-factory-reuse, password-change-effective and password-changeable now run on a console that does not declare `console_login` (they were NOT APPLICABLE): declare `declarations.console_login: true`, or `false` for a console without a login (the password is then set over the service with password_command)"
                .to_string(),
        );
    }
    if raw.credentials.is_some() {
        out.push(
            "password-strength (PWD-07) no longer offers the factory password as a weak one: keeping it is its own finding, password-factory-reuse; password-changeable (AUT-02, 5.1-4) is new: a device whose password cannot be changed declares `declarations.password_change: false`"
                .to_string(),
        );
    }
    if raw.network.as_ref().is_some_and(|n| n.namespace && n.address.is_some()) && !raw.services.is_empty() {
        out.push(
            "in a network namespace, services no longer need `network.address` (the namespace gives the device its address); keep it only for runs without root"
                .to_string(),
        );
    }
    if raw
        .services
        .iter()
        .any(|s| s.kind == super::services::ServiceKind::HttpBasic)
    {
        out.push(
            "a page that needs no login can be declared `kind: no_login` (left out of the password checks, still known to ATK-01 and, with tls, COM-03) instead of as a login that takes any password"
                .to_string(),
        );
    }
    for n in &mut out {
        n.push_str(&format!(
            " — then put `certbench: {CURRENT}` at the top of the profile (README, \"Profile format versions\")"
        ));
    }
    if out.is_empty() {
        out.push(format!(
            "written for profile format 1: nothing it declares runs differently now; put `certbench: {CURRENT}` at the top"
        ));
    }
    out
}

/// The profile's format must be one this certbench reads.
pub fn check(rx: &super::resolver::Resolver, raw: &RawProfile) {
    if let Some(v) = &raw.certbench
        && !(1..=CURRENT).contains(&v.value)
    {
        rx.error(
            super::yaml::InputError::new(
                rx.file,
                Some(v.pos),
                "certbench",
                format!("profile format {} is not one this certbench reads", v.value),
            )
            .with_hint(format!(
                "formats 1 to {CURRENT} (README, \"Profile format versions\"); a newer format needs a newer certbench"
            )),
        );
    }
}
