//! `power:`, `factory_reset:` and `setup:` (the lab's power and reset win over the
//! profile's): the commands certbench runs on the bench host.

use std::path::Path;

use super::common::CommandSpec;
use super::profile::{RawLab, RawPower, RawProfile};
use super::resolver::Resolver;
use crate::model::duration::Dur;
use crate::model::template::Template;

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
    /// A labgrid place's power resource (set for the run once the place is acquired).
    Labgrid {
        place: String,
        off_time: std::time::Duration,
    },
}

pub fn power(rx: &Resolver, raw: &RawProfile, lab: &RawLab) -> Option<PowerSpec> {
    let src: Option<(&Path, &RawPower)> = lab
        .power
        .as_ref()
        .map(|p| (rx.lab_file.as_path(), p))
        .or(raw.power.as_ref().map(|p| (rx.file, p)));
    src.and_then(|(f, p)| match p {
        RawPower::Manual => Some(PowerSpec::Manual),
        RawPower::External(e) => {
            let on = rx.template(f, "power.external.on", &e.on);
            let off = rx.template(f, "power.external.off", &e.off);
            let cycle = e.cycle.as_ref().map(|c| rx.template(f, "power.external.cycle", c));
            Some(PowerSpec::External {
                on: on?,
                off: off?,
                cycle: cycle.flatten(),
                timeout: e.timeout.unwrap_or(Dur::secs(30)).0,
                off_time: e.off_time.unwrap_or(Dur(std::time::Duration::from_secs(1))).0,
            })
        }
    })
}

pub fn factory_reset(rx: &Resolver, raw: &RawProfile, lab: &RawLab) -> Option<CommandSpec> {
    let (f, r) = lab
        .factory_reset
        .as_ref()
        .map(|p| (rx.lab_file.as_path(), p))
        .or(raw.factory_reset.as_ref().map(|p| (rx.file, p)))?;
    Some(CommandSpec {
        command: rx.template(f, "factory_reset.command", &r.command)?,
        timeout: r.timeout.unwrap_or(Dur::secs(60)).0,
    })
}

pub fn setup(rx: &Resolver, raw: &RawProfile) -> Vec<Template> {
    raw.setup
        .iter()
        .enumerate()
        .filter_map(|(i, s)| rx.template(rx.file, &format!("setup[{i}]"), s))
        .collect()
}
