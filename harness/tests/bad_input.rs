//! Bad input is rejected before anything runs, with file:line:column, the field path and
//! a hint, and exit code 2. The messages are pinned by a snapshot.

mod common;

use common::*;

fn files(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join(dir))
        .expect("fixtures")
        .flatten()
        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
        // (a malformed file's own data, e.g. an SBOM, lies in a subfolder)
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_malformed_file_is_rejected_with_its_location() {
    let scenarios = files("fixtures/bad-yaml");
    let devices = files("fixtures/bad-devices");
    assert!(scenarios.len() + devices.len() >= 15, "at least 15 malformed files");
    let mut snapshot = String::new();
    // scenarios through `validate`, device profiles through `run` (which also resolves
    // secrets); both must refuse before anything runs
    let cmds = scenarios
        .iter()
        .map(|f| (f, vec!["validate", f.as_str()]))
        .chain(devices.iter().map(|f| {
            (
                f,
                vec![
                    "run",
                    "--skip-setup",
                    "-d",
                    f.as_str(),
                    "--out",
                    "/nonexistent/never-created",
                ],
            )
        }));
    for (f, args) in cmds {
        let o = certbench(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{f} must be rejected with exit 2:\n{}",
            text(&o)
        );
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            err.starts_with(f.as_str()),
            "{f}: message must start with the file name:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        // (a path resolved outside the profile's folder is absolute: the clone's place varies)
        let err = err.replace(&repo().display().to_string(), "<repo>");
        snapshot.push_str(&format!("$ certbench {}\n{err}\n", args.join(" ")));
    }
    insta::assert_snapshot!("malformed_files", snapshot);
}

#[test]
fn the_readme_example_profile_lab_and_scenario_are_valid() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let blocks: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().expect("block"))
        .collect();
    let find = |needle: &str| {
        *blocks
            .iter()
            .find(|b| b.contains(needle))
            .unwrap_or_else(|| panic!("README block with {needle}"))
    };
    let blocks = [
        find("# devices/acme-cam.yaml"),
        find("# labs/bench3.yaml"),
        find("# scenarios/my-check.yaml"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (sub, name, text) in [
        ("devices", "acme-cam.yaml", blocks[0]),
        ("labs", "bench3.yaml", blocks[1]),
        ("scenarios", "my-check.yaml", blocks[2]),
    ] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        std::fs::write(dir.path().join(sub).join(name), text).expect("write");
    }
    // the lab block names another unit's certificate: one is made here
    std::fs::create_dir_all(dir.path().join("labs/certs")).expect("mkdir");
    let other = rcgen::generate_simple_self_signed(vec!["acme-cam.local".to_string()]).expect("cert");
    std::fs::write(dir.path().join("labs/certs/acme-cam-unit-2.pem"), other.cert.pem()).expect("write");
    let p = |s: &str| dir.path().join(s).display().to_string();
    let o = certbench(&[
        "validate",
        "--lab",
        &p("labs/bench3.yaml"),
        &p("devices"),
        &p("labs"),
        &p("scenarios"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn the_shipped_files_are_valid() {
    let o = certbench(&["validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn run_with_a_bad_scenario_runs_nothing_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r");
    let o = certbench(&[
        "run",
        "--skip-setup",
        "-s",
        "fixtures/bad-yaml/04-bad-regex.yaml",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("fixtures/bad-yaml/04-bad-regex.yaml:7:16"),
        "{}",
        text(&o)
    );
    assert!(!out.exists(), "nothing may run on bad input");
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_codes() {
    assert_eq!(certbench(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(certbench(&["run", "--baud", "fast"]).status.code(), Some(2));
    let help = certbench(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let h = text(&help);
    for line in [
        "0  every planned check passed",
        "1  the device failed",
        "2  bad input",
        "3  harness",
    ] {
        assert!(h.contains(line), "--help must document exit codes: {h}");
    }
}

#[test]
fn schema_is_printed_for_each_kind() {
    for kind in ["device", "lab", "scenario"] {
        let o = certbench(&["schema", kind]);
        assert_eq!(o.status.code(), Some(0));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON schema");
        assert!(v.get("properties").is_some() || v.get("$defs").is_some(), "{kind}: {v}");
    }
    let o = certbench(&["schema", "scenario"]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("change_password") && s.contains("expect_none"),
        "step kinds are in the schema"
    );
}

/// `validate` names every file the profile references that does not exist, with its field;
/// at `run` only the checks that use a missing file ERROR, the others are still decided.
#[test]
fn missing_referenced_files_are_named_by_validate_and_spoil_only_their_checks() {
    let o = certbench(&["validate", "fixtures/devices/simboard-missing-files.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    for field in [
        "network.mqtt.trust.maker_ca.cert",
        "network.mqtt.trust.maker_ca.key",
        "documents.privacy_policy",
    ] {
        assert!(out.contains(&format!("error in `{field}`")), "{field}: {out}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("results");
    let o = certbench(&[
        "run",
        "-d",
        "fixtures/devices/simboard-missing-files.yaml",
        "--only",
        "console-access",
        "--only",
        "tls-certificates",
        "--only",
        "doc-privacy-policy",
        "--out",
        res.to_str().expect("utf8"),
        "--workdir",
        dir.path().to_str().expect("utf8"),
    ]);
    let cases = junit(&res.join("junit.xml"));
    let by = |id: &str| cases.iter().find(|c| c.name.starts_with(&format!("{id} "))).expect(id);
    assert_eq!(by("console-access").status, "pass", "{cases:?}\n{}", text(&o));
    // every testcase of the group, its control included, says why
    for item in [
        "self_signed",
        "wrong_host",
        "expired",
        "untrusted_ca",
        "positive_control",
    ] {
        let c = by(&format!("tls-certificates.{item}"));
        assert_eq!(c.status, "error", "{cases:?}");
        assert!(c.message.contains("network bench could not start"), "{cases:?}");
    }
    assert_eq!(by("doc-privacy-policy").status, "error", "{cases:?}");
    assert!(by("doc-privacy-policy").message.contains("cannot read"), "{cases:?}");
}

/// A device may declare several update delivery paths, or none (its images only, e.g. for
/// secure boot): then it has no update mechanism and the update checks FAIL, never pass or
/// go unplanned.
#[test]
fn several_update_delivery_paths_may_be_declared_and_none_is_no_update_mechanism() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = |delivery: &str| {
        format!(
            "identity: {{ vendor: t, model: m, hardware_revision: \"1\" }}\n\
             update:\n  host: updates.example\n  delivery:\n{delivery}\n\
             \x20 images: {{ valid: {{ file: \"{{{{workdir}}}}/v.bin\", version: \"2.0.0\" }} }}\n\
             \x20 version_command: version\n  version_pattern: 'v(?P<version>[0-9.]+)'\n"
        )
    };
    let both = dir.path().join("both.yaml");
    std::fs::write(
        &both,
        profile(
            "    pull: { manifest_path: /m.json, manifest: '{{image.url}}' }\n    console: { command: 'fwupdate {{image.url}}' }",
        ),
    )
    .expect("write");
    let o = certbench(&["validate", both.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let none = dir.path().join("none.yaml");
    std::fs::write(&none, profile("    {}")).expect("write");
    let o = certbench(&["validate", none.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = Certbench::profile(&none)
        .only("update-auto-default")
        .only("update-signature")
        .run();
    let cases = r.by_id();
    let auto = &cases["update-auto-default"];
    assert_eq!(auto.status, "failure", "{auto:?}\n{}", r.log);
    assert!(auto.message.contains("no update mechanism"), "{auto:?}");
    // the image's own signature is still judged (here: no readable scheme, not tested)
    assert_eq!(cases["update-signature"].status, "error", "{}", r.log);
    assert_eq!(r.code, Some(1), "a FAIL decides the exit code: {}", r.log);
}

/// Special files are refused at once, never read until memory runs out or forever.
#[test]
fn validate_refuses_special_files_without_reading_them() {
    for f in ["/dev/zero", "/dev/null"] {
        let o = certbench(&["validate", f]);
        assert_eq!(o.status.code(), Some(2), "{f}: {}", text(&o));
        assert!(text(&o).contains("not a regular file"), "{f}: {}", text(&o));
    }
}

/// A lab that asks for DHCP without what it needs, with a MAC that is none, or with an
/// upstream resolver that is no address: exit 2, each named by file, line and field.
#[test]
fn dhcp_and_dns_upstream_need_what_they_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.yaml");
    let run = |text: &str| {
        std::fs::write(&lab, text).expect("lab");
        certbench(&[
            "validate",
            "--lab",
            lab.to_str().expect("utf8"),
            repo().join("devices/simboard.yaml").to_str().expect("utf8"),
        ])
    };
    let o = run("bench:\n  dhcp: true\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("`bench.dhcp`") && t.contains("bench.capture_interface") && t.contains("bench.device_mac"),
        "{t}"
    );
    let o = run(
        "bench:\n  capture_interface: eth1\n  device_address: 192.168.7.20\n  device_mac: \"02:00:zz:00:00:07\"\n  dhcp: true\n",
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("lab.yaml:4:15: error in `bench.device_mac`"),
        "{}",
        text(&o)
    );
    let o = run("bench:\n  dns_upstream: resolver.lab\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("error in `bench.dns_upstream`: \"resolver.lab\" is not an address"),
        "{}",
        text(&o)
    );
}

/// A password command on a service that has no shell (HTTP here) is refused: exit 2, file,
/// line and field named.
#[test]
fn a_password_command_needs_a_shell_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = std::fs::read_to_string(repo().join("fixtures/devices/lighttpd-basic-login.yaml"))
        .expect("profile")
        .replace(
            "    path: /admin/\n",
            "    path: /admin/\n    password_command: passwd\n",
        );
    assert!(profile.contains("password_command"));
    let p = dir.path().join("web.yaml");
    std::fs::write(&p, profile).expect("write");
    let o = certbench(&["validate", p.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("web.yaml:19:")
            && text(&o).contains("error in `services[0].password_command`: a http_basic service has no shell"),
        "{}",
        text(&o)
    );
}

/// Every file a lab or profile names passes one gate, at `validate` and at `run`: a
/// symbolic link out of the folder (a host file's line would go to the device as a
/// password guess), a FIFO (would hang), a device such as /dev/zero (would never end) —
/// each refused with exit 2 naming the file and the field, nothing read.
#[test]
fn named_files_are_confined_to_their_folder_regular_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab_dir = dir.path().join("lab");
    std::fs::create_dir(&lab_dir).expect("mkdir");
    std::fs::write(dir.path().join("host-secret"), "root:hunter2\n").expect("write");
    std::os::unix::fs::symlink(dir.path().join("host-secret"), lab_dir.join("defaults.txt")).expect("link");
    let fifo = lab_dir.join("unit-2.pem");
    let c = std::ffi::CString::new(fifo.to_str().expect("utf8")).expect("cstr");
    // SAFETY: a valid NUL-terminated path
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", lab_dir.join("firmware.bin")).expect("link");
    let profile = repo().join("devices/simboard.yaml");
    for (field, line) in [
        ("default_credentials", "default_credentials: defaults.txt\n"),
        ("other_unit_certificates", "other_unit_certificates: [unit-2.pem]\n"),
    ] {
        let lab = lab_dir.join(format!("{field}.yaml"));
        std::fs::write(&lab, line).expect("lab");
        for cmd in ["validate", "run"] {
            let mut args = vec![
                cmd,
                "-d",
                profile.to_str().expect("utf8"),
                "--lab",
                lab.to_str().expect("utf8"),
            ];
            if cmd == "run" {
                args.extend([
                    "--skip-setup",
                    "--only",
                    "console-access",
                    "--out",
                    "/nonexistent/never-created",
                ]);
            } else {
                args = vec![
                    cmd,
                    profile.to_str().expect("utf8"),
                    "--lab",
                    lab.to_str().expect("utf8"),
                ];
            }
            let t0 = std::time::Instant::now();
            let o = certbench(&args);
            let out = text(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {field}: {out}");
            assert!(out.contains(field), "{cmd} {field}: {out}");
            assert!(
                out.contains("outside") || out.contains("not a regular file"),
                "{cmd} {field}: {out}"
            );
            assert!(!out.contains("hunter2"), "nothing of the host file is shown: {out}");
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(30),
                "never hangs on a FIFO"
            );
        }
    }
    // a profile whose image is a link to /dev/zero
    let p = lab_dir.join("device.yaml");
    let text_profile = std::fs::read_to_string(&profile)
        .expect("profile")
        .replace("\"{{workdir}}/sb1-0.9.0.sbimg\"", "firmware.bin");
    std::fs::write(&p, text_profile).expect("write");
    let o = certbench(&["validate", p.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("update.images.older.file"), "{}", text(&o));
}

/// A profile given without a folder (`-d dev.yaml`, run from its own folder) is in `.`:
/// its documents are found, its commands run there.
#[test]
fn a_profile_named_without_a_folder_lives_in_the_current_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("policy.md"), "# Privacy\n").expect("write");
    std::fs::write(
        dir.path().join("dev.yaml"),
        "identity: { vendor: t, model: m, hardware_revision: \"1\" }\ndocuments: { privacy_policy: policy.md }\n",
    )
    .expect("write");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_certbench"))
        .args(["validate", "dev.yaml"])
        .current_dir(dir.path())
        .output()
        .expect("certbench");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A device in a namespace gets its address there: its services need no
/// `network.address` (the run refuses to send anything when it made no namespace). Without
/// a namespace or an address, a service is refused at `validate`, field named.
#[test]
fn services_in_a_namespace_need_no_declared_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::fs::read_to_string(repo().join("fixtures/devices/netdev-telnet-listening.yaml")).expect("profile");
    assert!(base.contains("  namespace: true\n") && !base.contains("address:"));
    let services = "services:\n  - name: telnet\n    kind: telnet\n    port: \"23\"\n    prompts: { login: \"login: $\", password: \"Password: $\", shell: \"[$#] $\", login_rejected: \"Login incorrect\" }\n  - name: status\n    kind: ssh\n    port: \"22\"\n";
    let p = dir.path().join("ns.yaml");
    std::fs::write(&p, format!("{base}{services}")).expect("write");
    let o = certbench(&["validate", p.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(
        &p,
        format!(
            "{}{services}",
            base.replace("  namespace: true\n", "  namespace: false\n")
        ),
    )
    .expect("write");
    let o = certbench(&["validate", p.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("error in `services[0].host`: remote services need the device's address")
            && text(&o).contains("network.namespace"),
        "{}",
        text(&o)
    );
}

/// Profile format versions: a profile without `certbench: 2` still validates, and is told,
/// for what it declares, what now runs differently and what to declare; the shipped
/// profile (format 2) gets no notice; a format this certbench does not know is refused,
/// field named.
#[test]
fn an_older_profile_format_is_told_what_changed_and_an_unknown_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = certbench(&["validate", repo().join("devices").to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("notice:"), "{}", text(&o));
    let f = "fixtures/devices/lighttpd-status-page.yaml";
    let old = variant(f, "certbench: 2\n", "", dir.path());
    let o = certbench(&["validate", old.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("lighttpd-status-page.yaml: notice: default-credentials (PWD-03) now sweeps in the state the device ships in")
            && t.contains("password-factory-reuse")
            && t.contains("put `certbench: 2` at the top"),
        "{t}"
    );
    let newer = variant(f, "certbench: 2\n", "certbench: 3\n", dir.path());
    let o = certbench(&["validate", newer.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(
            "lighttpd-status-page.yaml:5:12: error in `certbench`: profile format 3 is not one this certbench reads"
        ),
        "{}",
        text(&o)
    );
}

/// The lab's vulnerability data: a KEV file that is not the catalogue is refused at load
/// (exit 2, the lab file's field and the KEV file's line and column); a file outside the lab's
/// folder too; an OSV zip cut short is read at run: the checks that need it ERROR, naming it.
#[test]
fn vulnerability_data_that_is_not_what_it_says_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.yaml");
    let kev = dir.path().join("kev.json");
    std::fs::write(
        &kev,
        "{\n  \"title\": \"not the catalogue\",\n  \"vulnerabilities\": 3\n}\n",
    )
    .expect("kev");
    let run = |text: &str| {
        std::fs::write(&lab, text).expect("lab");
        certbench(&[
            "validate",
            "--lab",
            lab.to_str().expect("utf8"),
            repo().join("devices/simboard.yaml").to_str().expect("utf8"),
        ])
    };
    let o = run("vulnerability_data:\n  kev: kev.json\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("lab.yaml:2:8: error in `vulnerability_data.kev`: kev.json: line 3, column")
            && t.contains("not the CISA KEV catalogue"),
        "{t}"
    );
    let o = run("vulnerability_data:\n  nvd: [/etc/hostname]\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("error in `vulnerability_data.nvd`"), "{}", text(&o));
    // a zip cut in the middle, as a broken download leaves it
    let full = {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        z.start_file("DSA-2896-1.json", zip::write::SimpleFileOptions::default())
            .expect("zip");
        std::io::Write::write_all(
            &mut z,
            &std::fs::read(repo().join("devices/labs/simboard-vulndata/osv/DSA-2896-1.json")).expect("osv"),
        )
        .expect("zip");
        z.finish().expect("zip").into_inner()
    };
    std::fs::write(dir.path().join("Debian.zip"), &full[..full.len() / 2]).expect("zip");
    std::fs::write(
        &lab,
        "vulnerability_data:\n  osv: [Debian.zip]\n  max_age_days: 36500\n",
    )
    .expect("lab");
    let (cases, code, _d, out) = run_only_with(
        "devices/simboard.yaml",
        &["vulnerabilities-known"],
        &["--lab", lab.to_str().expect("utf8")],
    );
    assert_eq!(code, Some(3), "{out}");
    let c = &cases["vulnerabilities-known"];
    assert_eq!(c.status, "error", "{c:?}");
    assert!(
        c.message.contains("Debian.zip: not a zip archive OSV publishes"),
        "{c:?}"
    );
}

/// A lab's units are checked before anything runs: a name used twice, a MAC that is none, a
/// label password file that cannot be read, a `--unit` the lab does not list — exit 2, each
/// named by file, line and field; no label password is printed.
#[test]
fn a_labs_units_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.yaml");
    let profile = repo().join("devices/simboard.yaml");
    let run = |text: &str, args: &[&str]| {
        std::fs::write(&lab, text).expect("lab");
        let mut a: Vec<&str> = args.to_vec();
        a.extend([
            "-d",
            profile.to_str().expect("utf8"),
            "--lab",
            lab.to_str().expect("utf8"),
        ]);
        certbench(&a)
    };
    let o = run(
        "units:\n  - { name: u1 }\n  - { name: u1, mac: '02:zz:00:00:00:01' }\n",
        &["run", "--skip-setup", "--out", "/nonexistent/never-created"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("lab.yaml:3:13: error in `units[1].name`") && t.contains("used twice"),
        "{t}"
    );
    assert!(
        t.contains("lab.yaml:3:22: error in `units[1].mac`") && t.contains("is not a MAC address"),
        "{t}"
    );
    let o = run(
        "units:\n  - { name: u1, factory_password: { file: labels/u1.password } }\n",
        &["run", "--skip-setup", "--out", "/nonexistent/never-created"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("error in `units[0].factory_password`: cannot read secret file"),
        "{}",
        text(&o)
    );
    let o = run(
        "units:\n  - { name: u1, factory_password: { value: Label-Secret-77 } }\n",
        &[
            "run",
            "--skip-setup",
            "--unit",
            "u9",
            "--out",
            "/nonexistent/never-created",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("error in `--unit`: the lab file declares no unit named \"u9\""),
        "{t}"
    );
    assert!(!t.contains("Label-Secret-77"), "{t}");
}

/// An inventory board whose lab file lists units must say which unit it is: without
/// `unit:`, exit 2 naming the board and the units; with it, the board's files load.
#[test]
fn an_inventory_board_on_a_lab_with_units_names_its_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("units.yaml");
    std::fs::write(
        &lab,
        "units:\n  - { name: u1, serial: S1, factory_password: { value: Label-One-1234 } }\n  - { name: u2, serial: S2 }\n",
    )
    .expect("lab");
    let inv = dir.path().join("inventory.yaml");
    let profile = repo().join("devices/simboard.yaml");
    let write = |unit: &str| {
        std::fs::write(
            &inv,
            format!(
                "boards:\n  - {{ name: b1, profile: {}, lab: units.yaml{unit} }}\n",
                profile.display()
            ),
        )
        .expect("inventory")
    };
    write("");
    let o = certbench(&[
        "run",
        "--inventory",
        inv.to_str().expect("utf8"),
        "--only",
        "open-ports",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("error in `boards[b1].unit`") && t.contains("lists units (u1, u2)"),
        "{t}"
    );
    assert!(!t.contains("Label-One-1234"), "{t}");
    write(", unit: u3");
    let o = certbench(&[
        "run",
        "--inventory",
        inv.to_str().expect("utf8"),
        "--only",
        "open-ports",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("declares no unit named \"u3\""), "{}", text(&o));
}
