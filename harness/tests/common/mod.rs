//! Helpers shared by the integration tests: run the real binary, read its JUnit.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_certbench"))
}

/// Runs certbench in the repository root.
pub fn certbench(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("run certbench")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One testcase of a JUnit file.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub classname: String,
    /// "pass", "failure", "error" or "skipped".
    pub status: String,
    pub message: String,
    pub body: String,
}

/// Validates JUnit XML against the schema Jenkins and GitLab read (fixtures/junit/junit.xsd)
/// with xmllint; in CI a missing xmllint is an error.
pub fn validate_junit_xsd(path: &Path) {
    let have = Command::new("sh")
        .args(["-c", "command -v xmllint"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "xmllint (libxml2-utils) must be installed in CI"
        );
        return;
    }
    let o = Command::new("xmllint")
        .arg("-noout")
        .arg("-schema")
        .arg(repo().join("fixtures/junit/junit.xsd"))
        .arg(path)
        .output()
        .expect("run xmllint");
    assert!(
        o.status.success(),
        "{} does not validate against the JUnit XSD: {}",
        path.display(),
        text(&o)
    );
}

/// Parses JUnit XML with a real XML parser (panics on malformed XML) after checking it
/// against the JUnit XSD.
pub fn junit(path: &Path) -> Vec<Case> {
    use quick_xml::events::Event;
    validate_junit_xsd(path);
    let xml = std::fs::read_to_string(path).expect("read junit");
    let mut r = quick_xml::Reader::from_str(&xml);
    r.config_mut().check_end_names = true;
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    let mut in_status = false;
    loop {
        match r
            .read_event()
            .unwrap_or_else(|e| panic!("malformed JUnit XML at {}: {e}", r.buffer_position()))
        {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                if let Some(c) = cur.take() {
                    cases.push(c);
                }
                let attr = |n: &[u8]| {
                    e.attributes()
                        .filter_map(Result::ok)
                        .find(|a| a.key.as_ref() == n)
                        .map(|a| a.unescape_value().expect("attr").into_owned())
                        .unwrap_or_default()
                };
                cur = Some(Case {
                    name: attr(b"name"),
                    classname: attr(b"classname"),
                    status: "pass".into(),
                    message: String::new(),
                    body: String::new(),
                });
            }
            ev @ (Event::Start(_) | Event::Empty(_)) if matches!(&ev, Event::Start(e) | Event::Empty(e) if matches!(e.name().as_ref(), b"failure" | b"error" | b"skipped")) =>
            {
                let is_start = matches!(ev, Event::Start(_));
                let (Event::Start(e) | Event::Empty(e)) = ev else {
                    unreachable!()
                };
                let c = cur.as_mut().expect("status inside testcase");
                c.status = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                c.message = e
                    .attributes()
                    .filter_map(Result::ok)
                    .find(|a| a.key.as_ref() == b"message")
                    .map(|a| a.unescape_value().expect("attr").into_owned())
                    .unwrap_or_default();
                in_status = is_start;
            }
            Event::Text(t) if in_status => {
                if let Some(c) = cur.as_mut() {
                    c.body.push_str(&t.decode().expect("text"));
                }
            }
            Event::GeneralRef(r) if in_status => {
                let name = r.decode().expect("entity");
                let ch = match name.as_ref() {
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "amp" => "&".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    _ => r
                        .resolve_char_ref()
                        .expect("valid char ref")
                        .map(String::from)
                        .unwrap_or_default(),
                };
                if let Some(c) = cur.as_mut() {
                    c.body.push_str(&ch);
                }
            }
            Event::End(e) if matches!(e.name().as_ref(), b"failure" | b"error" | b"skipped") => in_status = false,
            _ => {}
        }
    }
    if let Some(c) = cur.take() {
        cases.push(c);
    }
    cases
}

/// Whether the third-party programs a test drives are installed. Missing ones skip the test
/// on a developer's machine; in CI (`.ci/run` installs them) they are a failure.
pub fn tools_ready(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    present_or_skip(&missing, "must be installed in CI (.ci/run does it)", "not installed")
}

/// True when nothing is missing; else in CI a failed test (CI must have everything), and
/// elsewhere a skip that says what is missing.
fn present_or_skip(missing: &[&str], in_ci: &str, skipped: &str) -> bool {
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{} {in_ci}", missing.join(", "));
    eprintln!("SKIPPED: {skipped}: {}", missing.join(", "));
    false
}

/// Like [`tools_ready`] for files .ci/run extracts from Debian packages (not on PATH).
pub fn deps_ready(paths: &[&str]) -> bool {
    let missing: Vec<&str> = paths.iter().copied().filter(|p| !Path::new(p).exists()).collect();
    present_or_skip(&missing, "must be present in CI (.ci/run extracts it)", "not present")
}

/// A `certbench run` as a test makes it: `Certbench::profile(p).only(id).env(k, v).run()`.
/// Results go to `<folder>/results`, the work folder to `<folder>/work` (a fresh temporary
/// folder unless `in_dir` gives one the test prepared).
#[derive(Debug, Default)]
pub struct Certbench {
    profile: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<tempfile::TempDir>,
    workdir: Option<PathBuf>,
}

/// What a run left: its exit code, testcases, folder and terminal output.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub cases: Vec<Case>,
    pub dir: tempfile::TempDir,
    pub log: String,
}

#[allow(dead_code)] // not every test binary uses every option
impl Certbench {
    pub fn profile(profile: impl AsRef<Path>) -> Self {
        Self {
            profile: profile.as_ref().to_string_lossy().into_owned(),
            ..Self::default()
        }
    }

    pub fn only(mut self, id: &str) -> Self {
        self.args.extend(["--only".into(), id.into()]);
        self
    }

    pub fn port(mut self, port: impl AsRef<Path>) -> Self {
        self.args
            .extend(["--port".into(), port.as_ref().to_string_lossy().into_owned()]);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// More command-line arguments (`--skip-setup`, `-s FILE`, `--set K=V`, ...).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Run in a folder the test prepared (fixtures written there).
    pub fn in_dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// The work folder, when not `<folder>/work` (e.g. the folder itself).
    pub fn workdir(mut self, w: impl AsRef<Path>) -> Self {
        self.workdir = Some(w.as_ref().to_path_buf());
        self
    }

    pub fn run(self) -> Ran {
        let dir = self.dir.unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
        let res = dir.path().join("results");
        let work = self.workdir.unwrap_or_else(|| dir.path().join("work"));
        let mut cmd = Command::new(bin());
        cmd.current_dir(repo())
            .env("NO_COLOR", "1")
            .args(["run", "-d", &self.profile, "--out"])
            .arg(&res)
            .arg("--workdir")
            .arg(&work)
            .args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let o = cmd.output().expect("run certbench");
        let junit_file = res.join("junit.xml");
        Ran {
            code: o.status.code(),
            // a refused input (exit 2) writes no results
            cases: if o.status.code() == Some(2) && !junit_file.exists() {
                Vec::new()
            } else {
                junit(&junit_file)
            },
            dir,
            log: text(&o),
        }
    }
}

#[allow(dead_code)] // not every test binary uses every helper
impl Ran {
    pub fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    /// The testcases by scenario id (the testcase name up to its first space).
    pub fn by_id(&self) -> std::collections::BTreeMap<String, Case> {
        self.cases
            .iter()
            .map(|c| (c.name.split(' ').next().unwrap_or_default().to_string(), c.clone()))
            .collect()
    }
}

/// Asserts that no file below `dir` (text or binary: a capture, a raw transcript) holds
/// any of `secrets`; says which file and which secret by its position, never its value.
/// Returns how many files were read, so a test can check the folder was not empty.
#[allow(dead_code)]
pub fn assert_no_secret(dir: &Path, secrets: &[&str]) -> usize {
    let files = walk(dir);
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (i, s) in secrets.iter().enumerate() {
            assert!(!s.is_empty(), "secret #{i} is empty");
            let found = bytes.windows(s.len()).any(|w| w == s.as_bytes());
            assert!(!found, "{} holds secret #{i}", f.display());
        }
    }
    files.len()
}

/// Runs the scenarios `only` against a profile (its setup included); returns the testcases
/// by scenario id, the exit code, the folder holding `results/` and the output.
pub fn run_only(
    profile: &str,
    only: &[&str],
) -> (
    std::collections::BTreeMap<String, Case>,
    Option<i32>,
    tempfile::TempDir,
    String,
) {
    run_only_with(profile, only, &[])
}

/// As `run_only`, with extra arguments (e.g. `--set NAME=VALUE`).
#[allow(dead_code)] // not every test binary uses it
pub fn run_only_with(
    profile: &str,
    only: &[&str],
    extra: &[&str],
) -> (
    std::collections::BTreeMap<String, Case>,
    Option<i32>,
    tempfile::TempDir,
    String,
) {
    let mut run = Certbench::profile(profile).args(extra);
    for id in only {
        run = run.only(id);
    }
    let r = run.run();
    (r.by_id(), r.code, r.dir, r.log)
}

/// The console password scenarios and their checks: PWD-01, PWD-07 (weak passwords; the
/// factory password kept, its own finding), PWD-08.
pub const PASSWORD_SCENARIOS: [(&str, &str); 4] = [
    ("password-reset-enforcement", "PWD-01"),
    ("password-strength", "PWD-07"),
    ("password-factory-reuse", "PWD-07"),
    ("password-change-effective", "PWD-08"),
];

/// Runs the password scenarios against a profile; returns (exit code, cases, out dir).
pub fn run_profile(profile: &str, extra: &[&str]) -> (Option<i32>, Vec<Case>, tempfile::TempDir, String) {
    let mut args = vec!["--skip-setup"];
    for (id, _) in PASSWORD_SCENARIOS {
        args.extend(["--only", id]);
    }
    args.extend_from_slice(extra);
    let r = Certbench::profile(profile).args(&args).run();
    (r.code, r.cases, r.dir, r.log)
}

/// A raw PTY pair: (master, slave, slave path). The test plays the device on the master.
pub fn open_pty() -> (std::fs::File, std::fs::File, String) {
    use std::os::fd::FromRawFd;
    let (mut m, mut s) = (-1, -1);
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: openpty fills two fds and a NUL-terminated name.
    let rc = unsafe { libc::openpty(&mut m, &mut s, name.as_mut_ptr(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: fresh fds from openpty; the name is NUL-terminated.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(s, &mut t);
        libc::cfmakeraw(&mut t);
        libc::tcsetattr(s, libc::TCSANOW, &t);
        (
            std::fs::File::from_raw_fd(m),
            std::fs::File::from_raw_fd(s),
            std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned(),
        )
    }
}

/// Every file below `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// A copy of the repository's `rel` (a scenario or profile) in `dir` with `from` replaced by
/// `to` (which must occur): a variant for one test, the original left as it is.
pub fn variant(rel: &str, from: &str, to: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(text.contains(from), "{rel} has no {from:?}");
    let name = Path::new(rel).file_name().expect("file name");
    let p = dir.join(name);
    std::fs::write(&p, text.replace(from, to)).expect("write variant");
    p
}

/// A copy of a simulated board's profile with edits, in a temporary folder: its commands
/// find the board beside the original (`{{profile_dir}}` written out); its documents, which
/// must lie in the profile's folder, are left out; the board is built by the workspace's
/// tests (the setup's build line is left out). Returns the folder and the copy.
#[allow(dead_code)] // not every test binary uses it
pub fn edited_profile(profile: &str, edits: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = repo().join(profile);
    let devices = original.parent().expect("folder").to_path_buf();
    let mut text = std::fs::read_to_string(&original).expect("profile");
    for (from, to) in edits {
        assert!(text.contains(from), "{profile} has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    let text: String = text
        .replace("{{profile_dir}}", devices.to_str().expect("utf8"))
        .lines()
        .filter(|l| *l != "documents:" && !l.contains(": simboard-docs/") && !l.contains("cargo build"))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = dir.path().join("edited.yaml");
    std::fs::write(&p, text).expect("write");
    (dir, p)
}

/// Runs one scenario on an edited copy of a simulated board's profile ([`edited_profile`]).
/// `setup`: run the profile's other setup commands (the update images), else skip them.
/// Returns the run's folder.
#[allow(dead_code)] // not every test binary uses it
pub fn board_edited(
    profile: &str,
    edits: &[(&str, &str)],
    scenario: &str,
    setup: bool,
) -> (tempfile::TempDir, Case, Option<i32>, String) {
    let (_copy, p) = edited_profile(profile, edits);
    let skip: &[&str] = if setup { &[] } else { &["--skip-setup"] };
    let (cases, code, results, out) = run_only_with(p.to_str().expect("utf8"), &[scenario], skip);
    let c = cases.get(scenario).cloned().unwrap_or_else(|| panic!("{out}"));
    (results, c, code, out)
}
