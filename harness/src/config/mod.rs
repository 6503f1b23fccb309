//! User files: device profiles, lab bindings, scenarios. Raw serde types stay here; the
//! rest of certbench gets validated structures.

pub mod bench;
pub mod credentials;
pub mod debug;
pub mod device;
pub mod scenario;
pub mod services;
pub mod signoff;
pub mod update;
pub mod yaml;

pub use crate::model::{duration, template};

/// JSON Schemas for editor completion, by file kind.
pub fn schema(kind: &str) -> Option<serde_json::Value> {
    let s = match kind {
        "device" => schemars::schema_for!(device::RawProfile),
        "lab" => schemars::schema_for!(device::RawLab),
        "scenario" => schemars::schema_for!(scenario::RawScenario),
        _ => return None,
    };
    serde_json::to_value(s).ok()
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
            let ov = super::device::Overrides { skip_secrets: true, check_files: true, ..Default::default() };
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
