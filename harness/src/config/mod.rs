//! User files: device profiles, lab bindings, scenarios. Raw serde types stay here; the
//! rest of certbench gets validated structures.

pub mod answers;
pub mod bench;
pub mod common;
pub mod config_ops;
pub mod console;
pub mod credentials;
pub mod debug;
pub mod device;
pub mod documents;
pub mod network;
pub mod personal;
pub mod power;
pub mod privacy;
pub mod profile;
pub mod resolver;
pub mod scenario;
pub mod secret;
pub mod secure_boot;
pub mod services;
pub mod signoff;
pub mod software;
pub mod units;
pub mod update;
pub mod version;
pub mod yaml;

/// JSON Schemas for editor completion, by file kind.
pub fn schema(kind: &str) -> Option<serde_json::Value> {
    let s = match kind {
        "device" => schemars::schema_for!(profile::RawProfile),
        "lab" => schemars::schema_for!(profile::RawLab),
        "scenario" => schemars::schema_for!(scenario::RawScenario),
        _ => return None,
    };
    serde_json::to_value(s).ok()
}

/// Every field of a profile (`device`) or lab file that names a file on this machine. Each
/// passes the one gate ([`crate::util::check_user_file`] / [`crate::util::read_user_file`]:
/// inside the naming file's folder — or the run's work folder for paths made at run time —
/// symbolic links followed, a regular file, bounded) at load, at `validate` and where it is
/// read at run. A test walks the schemas so that a new file field cannot miss the list.
pub const FILE_FIELDS: &[(&str, &str)] = &[
    ("device", "credentials.factory.password.file"),
    ("device", "documents.disclosure_policy"),
    ("device", "documents.privacy_policy"),
    ("device", "documents.security_txt"),
    ("device", "documents.signoff"),
    ("device", "documents.support_period"),
    ("device", "identity.firmware_file"),
    ("device", "network.broker.ca_cert"),
    ("device", "network.http_answers[].body_file"),
    ("device", "network.mqtt.trust.maker_ca.cert"),
    ("device", "network.mqtt.trust.maker_ca.key"),
    ("device", "update.images.hostile[].file"),
    ("device", "update.images.older.file"),
    ("device", "update.images.other_model.file"),
    ("device", "update.images.valid.file"),
    ("device", "update.trust.maker_ca.cert"),
    ("device", "update.trust.maker_ca.key"),
    ("device", "software.sbom"),
    ("device", "software.vex"),
    ("lab", "default_credentials"),
    ("lab", "flash_before_run"),
    ("lab", "other_unit_certificates"),
    ("lab", "units[].factory_password.file"),
    ("lab", "vulnerability_data.kev"),
    ("lab", "vulnerability_data.nvd"),
    ("lab", "vulnerability_data.osv"),
];

/// Fields whose names look like files but are not: paths of URLs on the device or the
/// bench, a serial device (opened as a console, never read as a file).
#[cfg(test)]
const NOT_FILES: &[&str] = &[
    // the profile format version (`certbench: 2`)
    "certbench",
    // a request path the bench answers
    "network.http_answers[].path",
    "config_interfaces[].request.path",
    "personal_data[].set.request.path",
    "services[].path",
    "services[].session.path",
    "privacy.policy_page.path",
    "update.delivery.pull.manifest_path",
    "update.image_path",
    // the maker's Ed25519 public key, written in hex in the profile
    "update.signature.public_key",
];

#[cfg(test)]
mod file_fields {
    /// Every property path of a JSON schema ($refs followed), dotted, `[]` for arrays.
    fn paths(schema: &serde_json::Value) -> Vec<String> {
        fn walk(node: &serde_json::Value, defs: &serde_json::Value, path: &str, depth: u32, out: &mut Vec<String>) {
            if depth > 12 {
                return;
            }
            if let Some(r) = node.get("$ref").and_then(|r| r.as_str()) {
                let name = r.rsplit('/').next().unwrap_or("");
                walk(&defs[name], defs, path, depth + 1, out);
            }
            for k in ["anyOf", "oneOf", "allOf"] {
                for x in node.get(k).and_then(|v| v.as_array()).into_iter().flatten() {
                    walk(x, defs, path, depth + 1, out);
                }
            }
            if let Some(items) = node.get("items") {
                walk(items, defs, &format!("{path}[]"), depth + 1, out);
            }
            for (k, v) in node.get("properties").and_then(|p| p.as_object()).into_iter().flatten() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.push(p.clone());
                walk(v, defs, &p, depth + 1, out);
            }
        }
        let mut out = Vec::new();
        walk(schema, &schema["$defs"], "", 0, &mut out);
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn every_field_that_names_a_file_passes_the_one_gate() {
        let looks_like_a_file =
            regex::Regex::new(r"(?i)(file|cert|key$|credentials$|certificates|documents\.|path$|_run$)")
                .expect("regex");
        for kind in ["device", "lab"] {
            let schema = super::schema(kind).expect("schema");
            let all = paths(&schema);
            for p in &all {
                let leaf = !all.iter().any(|q| q.starts_with(&format!("{p}.")));
                if !leaf || !looks_like_a_file.is_match(p) || super::NOT_FILES.contains(&p.as_str()) {
                    continue;
                }
                assert!(
                    super::FILE_FIELDS.contains(&(kind, p.as_str())),
                    "{kind}: the field {p} names a file but is not in config::FILE_FIELDS (the gate every named file passes)"
                );
            }
            // and no stale entry
            for (k, f) in super::FILE_FIELDS.iter().filter(|(k, _)| *k == kind) {
                assert!(all.iter().any(|p| p == f), "{k}: {f} is not in the schema");
            }
        }
    }
}

#[cfg(test)]
mod properties {
    //! The loaders against mutated real files: whatever the damage, an error with a place
    //! in the file (or a loaded file), never a panic.

    use proptest::prelude::*;
    use std::path::{Path, PathBuf};

    fn repo_file(rel: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// One edit a careless hand or a broken editor makes.
    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, char),
        Delete(usize),
        DuplicateLine(usize),
        Indent(usize, usize),
        Truncate(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let chars = prop_oneof![
            Just(':'),
            Just('-'),
            Just(' '),
            Just('\t'),
            Just('{'),
            Just('['),
            Just('"'),
            Just('\''),
            Just('&'),
            Just('*'),
            Just('!'),
            Just('\n'),
            Just('#'),
            any::<char>(),
        ];
        prop_oneof![
            (any::<usize>(), chars).prop_map(|(i, c)| Edit::Insert(i, c)),
            any::<usize>().prop_map(Edit::Delete),
            any::<usize>().prop_map(Edit::DuplicateLine),
            (any::<usize>(), 1usize..6).prop_map(|(i, n)| Edit::Indent(i, n)),
            any::<usize>().prop_map(Edit::Truncate),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut s: Vec<char> = text.chars().collect();
        for e in edits {
            let n = s.len().max(1);
            match *e {
                Edit::Insert(i, c) => s.insert(i % (s.len() + 1), c),
                Edit::Delete(i) => {
                    if !s.is_empty() {
                        s.remove(i % n);
                    }
                }
                Edit::DuplicateLine(i) | Edit::Indent(i, _) => {
                    let text: String = s.iter().collect();
                    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                    if lines.is_empty() {
                        continue;
                    }
                    let k = i % lines.len();
                    match *e {
                        Edit::Indent(_, by) => lines[k] = format!("{}{}", " ".repeat(by), lines[k]),
                        _ => lines.insert(k, lines[k].clone()),
                    }
                    s = lines.join("\n").chars().collect();
                }
                Edit::Truncate(i) => s.truncate(i % n),
            }
        }
        s.into_iter().collect()
    }

    fn check_errors(file: &Path, text: &str, errs: &super::yaml::InputErrors) -> Result<(), TestCaseError> {
        let lines = text.lines().count() as u32 + 2;
        prop_assert!(!errs.0.is_empty(), "an Err holds at least one error");
        for e in &errs.0 {
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.file == file || e.file.is_absolute(), "{}", e.file.display());
            if let Some(p) = e.pos {
                prop_assert!(p.line >= 1 && p.line <= lines, "line {} of {lines}: {e}", p.line);
                prop_assert!(p.column >= 1, "{e}");
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]

        #[test]
        fn mutated_scenarios_load_or_say_where(which in 0usize..4, edits in proptest::collection::vec(edit(), 1..6)) {
            let name = ["scenarios/password-reset-enforcement.yaml", "scenarios/update-corrupt-image.yaml",
                "scenarios/plaintext-mqtt-rejection.yaml", "scenarios/boot-break-in.yaml"][which];
            let text = apply(&repo_file(name), &edits);
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("scenario.yaml");
            std::fs::write(&file, &text).expect("write");
            if let Err(errs) = super::scenario::load(&file) {
                check_errors(&file, &text, &errs)?;
            }
        }

        #[test]
        fn mutated_profiles_load_or_say_where(which in 0usize..3, edits in proptest::collection::vec(edit(), 1..6)) {
            let name = ["devices/simboard.yaml", "devices/qboard.yaml", "fixtures/devices/swupdate.yaml"][which];
            let text = apply(&repo_file(name), &edits);
            let dir = tempfile::tempdir().expect("tempdir");
            let file: PathBuf = dir.path().join("device.yaml");
            std::fs::write(&file, &text).expect("write");
            let ov = super::resolver::Overrides { skip_secrets: true, check_files: true, ..Default::default() };
            if let Err(errs) = super::device::load(&file, None, &ov) {
                check_errors(&file, &text, &errs)?;
            }
        }

        #[test]
        fn arbitrary_text_is_refused_with_a_place(text in "\\PC{0,400}") {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("scenario.yaml");
            std::fs::write(&file, &text).expect("write");
            if let Err(errs) = super::scenario::load(&file) {
                check_errors(&file, &text, &errs)?;
            }
        }
    }
}
