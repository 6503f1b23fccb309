//! The model's units in the lab file (`units:`): each unit's label (serial, factory
//! password, MAC) and wiring (console port, values for commands). A run over several units
//! shares the suite out among them; `--unit NAME` runs one.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::resolver::Resolver;
use super::secret::SecretSource;
use super::yaml::{InputError, Loc};
use crate::model::unit::{Unit, parse_mac};

/// One unit of the model, as written in the lab file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUnit {
    /// Unique name (results folder, JUnit, terminal prefix), e.g. the label's serial.
    pub name: Loc<String>,
    /// The serial number on its label (`{{unit.serial}}` in commands).
    #[serde(default)]
    pub serial: Option<String>,
    /// The factory password on its label (`env:`, `file:` relative to the lab file, or
    /// `value:`); replaces the profile's `credentials.factory.password` for this unit.
    #[serde(default)]
    pub factory_password: Option<SecretSource>,
    /// Its MAC address as on the label: a simulated or emulated unit's link is given it.
    #[serde(default)]
    pub mac: Option<Loc<String>>,
    /// This unit's serial port (overrides the lab's and the profile's).
    #[serde(default)]
    pub port: Option<String>,
    /// Values for `{{name}}` in this unit's commands (over the lab's `vars`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// The lab's units, their secrets read (or only checked, `skip`).
pub fn resolve(rx: &Resolver, raw: &[RawUnit], skip: bool) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for (i, u) in raw.iter().enumerate() {
        let field = |f: &str| format!("units[{i}].{f}");
        let name = u.name.value.trim();
        if name.is_empty()
            || units.iter().any(|x| x.name == name)
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            rx.error(
                InputError::new(
                    &rx.lab_file,
                    Some(u.name.pos),
                    field("name"),
                    format!("unit name {:?} is empty, used twice, or not a plain name", u.name.value),
                )
                .with_hint("a unit's name names its results folder: letters, digits, '-', '_', '.'"),
            );
        }
        let password = match &u.factory_password {
            Some(src) => match super::secret::secret(rx.lab_base(), src, skip) {
                Ok(p) if p.is_empty() && !skip => {
                    rx.error(InputError::new(
                        &rx.lab_file,
                        None,
                        field("factory_password"),
                        "is empty",
                    ));
                    None
                }
                Ok(p) => Some(p),
                Err(msg) => {
                    rx.error(InputError::new(&rx.lab_file, None, field("factory_password"), msg));
                    None
                }
            },
            None => None,
        };
        let mac = u.mac.as_ref().and_then(|m| {
            let parsed = parse_mac(&m.value);
            if parsed.is_none() {
                rx.error(
                    InputError::new(
                        &rx.lab_file,
                        Some(m.pos),
                        field("mac"),
                        format!("{:?} is not a MAC address", m.value),
                    )
                    .with_hint("six hex pairs, e.g. 02:53:42:00:00:01"),
                );
            }
            parsed
        });
        units.push(Unit {
            name: name.to_string(),
            serial: u.serial.clone(),
            password,
            mac,
            port: u.port.clone(),
            vars: u.vars.clone(),
        });
    }
    units
}
