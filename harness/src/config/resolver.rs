//! What every profile section's `resolve` shares: the profile and lab files, the list of
//! input errors found so far, the template variables a command may name, and template and
//! regex checking. One value, passed to each section (`config::device` composes them).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::yaml::{self, InputError, Loc};
use crate::model::template::Template;

/// Names a command template may use besides the lab's `vars`.
pub const COMMAND_VARS: &[&str] = &[
    "console",
    "workdir",
    "exe_dir",
    "profile_dir",
    "run_id",
    "results",
    // the device's namespace (`network.namespace`): a prefix that starts a command in it
    // (empty when the run has no namespace) and its name
    "netns.exec",
    "netns.name",
    // the bench's end of the namespace's link (the device's gateway)
    "netns.bench",
    // the CA whose certificates the bench's man in the middle presents as valid to the
    // device's other TLS clients (the MQTT bench's when there is one), for provisioning
    // the device; empty without a namespace
    "netns.ca_cert",
    // the unit of the model this run drives (lab `units:`): its name, label serial and MAC
    // (each empty without units)
    "unit.name",
    "unit.serial",
    "unit.mac",
];

/// CLI overrides of the lab binding.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Check where secrets come from but do not read them (`certbench validate`: secrets
    /// are supplied where the run happens).
    pub skip_secrets: bool,
    /// Check that every file the profile references exists and is readable
    /// (`certbench validate`). At `run` a missing file only makes the checks that use it
    /// ERROR, with the cause.
    pub check_files: bool,
    pub port: Option<String>,
    pub baud: Option<u32>,
    pub vars: BTreeMap<String, String>,
    /// Checks a `debug.driver.probe_rs.chip` name (the debug layer passes probe-rs's target
    /// list in; config does not call probe-rs). None: any name is taken.
    pub known_chip: Option<ChipCheck>,
    /// The unit of the lab's `units:` this run drives (`--unit`, or one task of a run over
    /// the units); None: the lab's units are only known (their labels, for PWD-05).
    pub unit: Option<String>,
}

/// Whether a chip name is known: Err says why not.
pub type ChipCheck = fn(&str) -> Result<(), String>;

/// Which benches the profile has: their variables are known to templates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Benches {
    /// `network.namespace`: the namespace gives the device its address when it is made.
    pub namespace: bool,
    /// `network.mqtt`: the MQTT bench's variables.
    pub mqtt: bool,
    /// `update`: the update bench's variables.
    pub update: bool,
}

#[derive(Debug)]
pub struct Resolver<'a> {
    /// The profile.
    pub file: &'a Path,
    /// The lab binding (the profile when there is none).
    pub lab_file: PathBuf,
    /// The profile's folder: relative paths start here.
    pub base: &'a Path,
    errs: RefCell<Vec<InputError>>,
    vars: RefCell<BTreeMap<String, String>>,
    benches: Benches,
    port_vars: RefCell<BTreeSet<String>>,
}

impl<'a> Resolver<'a> {
    pub fn new(file: &'a Path, lab_file: PathBuf, vars: BTreeMap<String, String>, benches: Benches) -> Self {
        Self {
            file,
            lab_file,
            base: crate::util::folder_of(file),
            errs: RefCell::new(Vec::new()),
            vars: RefCell::new(vars),
            benches,
            port_vars: RefCell::new(BTreeSet::new()),
        }
    }

    /// The lab binding's folder.
    pub fn lab_base(&self) -> &Path {
        crate::util::folder_of(&self.lab_file)
    }

    /// A path the profile names: relative to the profile's folder.
    pub fn in_profile(&self, p: &Path) -> PathBuf {
        self.base.join(p)
    }

    /// A path the lab binding names: relative to the lab file's folder.
    pub fn in_lab(&self, p: &Path) -> PathBuf {
        self.lab_base().join(p)
    }

    pub fn error(&self, e: InputError) {
        self.errs.borrow_mut().push(e);
    }

    pub fn errors(&self, es: impl IntoIterator<Item = InputError>) {
        self.errs.borrow_mut().extend(es);
    }

    /// Runs a section validator that collects into its own list.
    pub fn collect<T>(&self, f: impl FnOnce(&mut Vec<InputError>) -> T) -> T {
        let mut e = Vec::new();
        let t = f(&mut e);
        self.errors(e);
        t
    }

    pub fn set_var(&self, name: &str, value: String) {
        self.vars.borrow_mut().insert(name.into(), value);
    }

    /// Whether a template may name `name` (a `{{port.NAME}}` is recorded: a free port is
    /// picked for it at run start).
    pub fn known(&self, name: &str) -> bool {
        if let Some(p) = name.strip_prefix("port.")
            && !p.is_empty()
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.port_vars.borrow_mut().insert(name.to_string());
            return true;
        }
        COMMAND_VARS.contains(&name)
            || self.vars.borrow().contains_key(name)
            || (name == "device.address" && self.benches.namespace)
            || (self.benches.mqtt && super::bench::VARS.contains(&name))
            || (self.benches.update && super::update::VARS.contains(&name))
    }

    /// Parses a template of field `field` in file `f`; an unknown variable is an error
    /// naming what is known.
    pub fn template(&self, f: &Path, field: &str, src: &Loc<String>) -> Option<Template> {
        match Template::parse(&src.value) {
            Ok(t) => {
                for v in t.vars() {
                    let image_var = (field.starts_with("update.") || field.starts_with("secure_boot."))
                        && super::update::IMAGE_VARS.contains(&v);
                    // the value certbench generates for a planted item
                    let planted = (field.starts_with("personal_data[") || field.starts_with("config_interfaces["))
                        && v == "value";
                    if !self.known(v) && !image_var && !planted {
                        self.error(
                            InputError::new(f, Some(src.pos), field, format!("unknown variable `{{{{{v}}}}}`"))
                                .with_hint(unknown_variable_hint(field)),
                        );
                    }
                }
                Some(t)
            }
            Err(e) => {
                self.error(InputError::new(f, Some(src.pos), field, e));
                None
            }
        }
    }

    /// A regex of field `field` in the profile.
    pub fn regex(&self, field: &str, src: &Loc<String>) -> Option<regex::bytes::Regex> {
        yaml::regex(self.file, field, src).map_err(|e| self.error(e)).ok()
    }

    /// The errors found, the variables as they ended, and the `{{port.NAME}}` names used.
    pub fn finish(self) -> (Vec<InputError>, BTreeMap<String, String>, BTreeSet<String>) {
        (
            self.errs.into_inner(),
            self.vars.into_inner(),
            self.port_vars.into_inner(),
        )
    }
}

fn unknown_variable_hint(field: &str) -> String {
    let list = |vs: &[&str]| vs.iter().map(|v| format!("{{{{{v}}}}}")).collect::<Vec<_>>().join(", ");
    format!(
        "commands may use {}, or names given in the lab's `vars` / `--set NAME=VALUE`{}",
        list(COMMAND_VARS),
        if field.starts_with("update.") {
            format!("; update fields also {}", list(super::update::IMAGE_VARS))
        } else if field.starts_with("personal_data[") || field.starts_with("config_interfaces[") {
            "; here also {{value}} (the value certbench generates)".to_string()
        } else {
            String::new()
        }
    )
}
