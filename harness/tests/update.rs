//! The update checks (UPD-01..08) against the simulated board with each update flaw, a
//! board that never fetches, and a board whose positive control cannot pass.

mod common;

use std::process::Command;

use common::*;
use rstest::rstest;

const IMAGES: &[&str] = &[
    "flip_header",
    "flip_payload",
    "flip_signature",
    "unsigned",
    "truncated",
    "oversized",
    "empty",
    "older",
    "other_model",
];

/// Each board: the images that must FAIL (with their check); all others PASS.
#[rstest::rstest]
#[case::good_board("devices/simboard.yaml", &[])]
// good clients that report differently: "installing" before verifying is not acceptance,
// and a refusal without any message is decided by the version after a reboot
#[case::installing_before_verifying("devices/simboard-update-installing-first.yaml", &[])]
#[case::silent_refusal("devices/simboard-update-silent-refusal.yaml", &[])]
#[case::no_signature_check(
    "devices/simboard-no-signature-check.yaml",
    &[("flip_payload", "UPD-03"), ("flip_signature", "UPD-05"), ("unsigned", "UPD-05")]
)]
#[case::no_length_check("devices/simboard-no-length-check.yaml", &[("oversized", "UPD-04")])]
#[case::downgrade_allowed("devices/simboard-downgrade-allowed.yaml", &[("older", "UPD-07")])]
#[case::wrong_model_accepted("devices/simboard-wrong-model-accepted.yaml", &[("other_model", "UPD-06")])]
fn corrupt_images_fail_exactly_on_the_flawed_boards_variants(#[case] profile: &str, #[case] red: &[(&str, &str)]) {
    let (cases, code, dir, log) = run_only(profile, &["update-corrupt-image"]);
    assert_eq!(cases.len(), IMAGES.len() + 1, "{log}");
    let control = &cases["update-corrupt-image.positive_control"];
    assert_eq!(control.status, "pass", "{profile}: {control:?}");
    for img in IMAGES {
        let c = &cases[&format!("update-corrupt-image.{img}")];
        match red.iter().find(|(i, _)| i == img) {
            Some((_, check)) => {
                assert_eq!(c.status, "failure", "{profile}: {img}: {c:?}");
                assert!(c.message.starts_with(check), "{profile}: {c:?}");
                assert!(
                    c.message.contains("install") && c.message.contains("complete"),
                    "evidence: what the device did and what the bench served: {c:?}"
                );
                let ev = dir.path().join(format!(
                    "results/scenarios/update-corrupt-image.{img}/update-requests.jsonl"
                ));
                let t = std::fs::read_to_string(&ev).expect("bench log in the evidence");
                assert!(
                    t.contains(&format!("/images/{img}.bin")) && t.contains("\"completed\":true"),
                    "{t}"
                );
            }
            None => assert_eq!(c.status, "pass", "{profile}: {img}: {c:?}"),
        }
    }
    assert_eq!(code, Some(if red.is_empty() { 0 } else { 1 }), "{log}");
}

#[test]
fn a_board_that_never_fetches_the_image_gives_error_not_pass() {
    let (cases, code, _dir, log) = run_only(
        "fixtures/devices/simboard-update-unreachable.yaml",
        &["update-corrupt-image"],
    );
    assert_eq!(cases.len(), IMAGES.len() + 1, "{log}");
    for (id, c) in &cases {
        assert_eq!(c.status, "error", "{id}: {c:?}");
        assert!(c.message.contains("the test did not happen"), "{id}: {c:?}");
    }
    assert_eq!(code, Some(3), "ERROR only: exit 3\n{log}");
}

#[test]
fn without_a_passing_positive_control_no_refusal_counts() {
    let (cases, _code, _dir, log) = run_only(
        "fixtures/devices/simboard-other-maker-key.yaml",
        &["update-corrupt-image"],
    );
    let control = &cases["update-corrupt-image.positive_control"];
    assert_eq!(control.status, "failure", "{control:?}\n{log}");
    assert!(control.message.starts_with("UPD-02"), "{control:?}");
    for img in IMAGES {
        let c = &cases[&format!("update-corrupt-image.{img}")];
        // the board refused it (as it refuses everything): that is not a PASS
        assert_eq!(c.status, "error", "{img}: {c:?}");
        assert!(c.message.contains("positive control"), "{img}: {c:?}");
    }
}

#[rstest::rstest]
#[case::good_board("devices/simboard.yaml", "pass")]
#[case::auto_update_off("devices/simboard-auto-update-off.yaml", "failure")]
fn automatic_update_check_after_factory_reset(#[case] profile: &str, #[case] want: &str) {
    let (cases, _code, _dir, log) = run_only(profile, &["update-auto-default"]);
    let c = &cases["update-auto-default"];
    assert_eq!(c.status, want, "{c:?}\n{log}");
    if want == "failure" {
        assert!(
            c.message.starts_with("UPD-01") && c.message.contains("/manifest.json"),
            "{c:?}"
        );
    }
}

#[rstest::rstest]
#[case::good_board("devices/simboard.yaml", "pass")]
#[case::bricks_on_power_loss("devices/simboard-bricks-on-power-loss.yaml", "failure")]
fn power_cuts_during_an_update(#[case] profile: &str, #[case] want: &str) {
    let (cases, _code, dir, log) = run_only(profile, &["update-power-loss"]);
    let c = &cases["update-power-loss"];
    assert_eq!(c.status, want, "{c:?}\n{log}");
    let cuts = dir.path().join("results/scenarios/update-power-loss/power-cuts.jsonl");
    if want == "pass" {
        let t = std::fs::read_to_string(&cuts).expect("the cut table is evidence");
        let n = t.lines().count();
        assert!(n >= 10, "at least 10 cuts were made: {t}");
        for point in ["\"download\"", "\"install\"", "\"after_install\""] {
            assert!(t.contains(point), "cuts at {point}: {t}");
        }
        assert!(c.message.is_empty(), "{c:?}");
    } else {
        assert!(
            c.message.starts_with("UPD-08") && c.message.contains("does not boot"),
            "{c:?}"
        );
    }
}

/// The same device offered updates by a console command and by an MQTT message that its
/// agent (Debian's mosquitto_sub, TLS to the bench broker) receives.
#[rstest::rstest]
#[case::console_delivery("fixtures/devices/signify-update.yaml")]
#[case::mqtt_delivery("fixtures/devices/signify-update-mqtt.yaml")]
fn debian_signify_update_client_refuses_every_hostile_image_and_installs_the_valid_one(#[case] profile: &str) {
    if !tools_ready(&["signify-openbsd", "curl", "socat", "mosquitto_sub"]) {
        return;
    }
    let (cases, code, dir, log) = run_only(profile, &["update-corrupt-image"]);
    // a generic layout: start/middle/end flips instead of header/payload/signature
    for img in [
        "flip_start",
        "flip_middle",
        "flip_end",
        "truncated",
        "oversized",
        "empty",
        "older",
        "other_model",
    ] {
        let c = &cases[&format!("update-corrupt-image.{img}")];
        assert_eq!(c.status, "pass", "{img}: {c:?}\n{log}");
    }
    let control = &cases["update-corrupt-image.positive_control"];
    assert_eq!(control.status, "pass", "{log}");
    if profile.contains("mqtt") {
        let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
        assert!(
            events.contains("published on signify/sig-1/update to 1 subscriber"),
            "{log}"
        );
    }
    assert_eq!(code, Some(0), "{log}");
}

/// UPD-09 through a man in the middle of the HTTPS update channel: refused at the
/// handshake; fetched but blocked by the signature; or installed (FAIL).
#[rstest::rstest]
#[case::verifies_tls(
    "fixtures/devices/signify-update-https.yaml",
    "pass",
    "refused the update host presenting"
)]
#[case::insecure_tls_but_signed("fixtures/devices/signify-update-https-insecure.yaml", "pass", "")]
#[case::insecure_and_unsigned(
    "fixtures/devices/signify-update-https-insecure-unsigned.yaml",
    "failure",
    "UPD-09: the device installed"
)]
fn a_man_in_the_middle_of_the_update_channel(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    if !tools_ready(&["signify-openbsd", "curl", "socat"]) {
        return;
    }
    let (cases, _code, dir, log) = run_only(profile, &["update-mitm"]);
    let c = &cases["update-mitm"];
    assert_eq!(c.status, want, "{c:?}\n{log}");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{says:?} not in the evidence\n{log}");
    if want == "pass" {
        // the positive control ran last: the valid image came through the valid certificate
        assert!(events.contains("installed the valid image"), "{log}");
    }
}

#[test]
fn a_device_updating_over_plain_http_skips_the_mitm_check_with_its_reason() {
    // the simulated board as it was before its updates moved to HTTPS
    let dir = tempfile::tempdir().expect("tempdir");
    let p = variant("devices/simboard.yaml", "  scheme: https\n", "", dir.path());
    let (cases, _code, _dir, log) = run_only_with(p.to_str().expect("utf8"), &["update-mitm"], &["--skip-setup"]);
    let c = &cases["update-mitm"];
    assert_eq!(c.status, "skipped", "{c:?}\n{log}");
    assert!(c.message.contains("plain HTTP"), "{c:?}");
}

/// An image that empties the slot: the device no longer reports a version. That testcase
/// FAILs saying so; the restore runs although the version cannot be read, so every
/// following testcase (and the positive control) is still decided.
#[test]
fn an_unreadable_version_is_restored_and_the_next_testcases_are_decided() {
    let (cases, code, _dir, log) = run_only("devices/simboard-empty-image-accepted.yaml", &["update-corrupt-image"]);
    assert_eq!(cases.len(), IMAGES.len() + 1, "{log}");
    let empty = &cases["update-corrupt-image.empty"];
    assert_eq!(empty.status, "failure", "{empty:?}");
    assert!(empty.message.starts_with("UPD-04"), "{empty:?}");
    assert!(empty.message.contains("no longer reports a version"), "{empty:?}");
    for img in IMAGES.iter().filter(|i| **i != "empty") {
        let c = &cases[&format!("update-corrupt-image.{img}")];
        assert_eq!(c.status, "pass", "{img}: {c:?}\n{log}");
    }
    assert_eq!(cases["update-corrupt-image.positive_control"].status, "pass", "{log}");
    assert_eq!(code, Some(1), "{log}");
}

/// A hostile image the lab supplies (signed with another maker's key, which certbench
/// cannot make for every format) runs as its own testcase under the same positive control:
/// refused by the good board, FAIL UPD-05 on the board that checks no signature.
#[rstest::rstest]
#[case::good("fixtures/devices/simboard-hostile-supplied.yaml", "pass")]
#[case::no_signature_check("fixtures/devices/simboard-hostile-supplied-no-signature-check.yaml", "failure")]
fn a_supplied_hostile_image_is_a_testcase_of_its_own(#[case] profile: &str, #[case] want: &str) {
    let (cases, _code, _dir, log) = run_only(profile, &["update-corrupt-image"]);
    assert_eq!(cases.len(), IMAGES.len() + 2, "{log}");
    let c = &cases["update-corrupt-image.hostile_foreign_key"];
    assert_eq!(c.status, want, "{c:?}\n{log}");
    assert_eq!(c.classname, "UPD-05", "{c:?}");
    if want == "failure" {
        assert!(c.message.contains("another maker's key"), "{c:?}");
    }
    assert_eq!(cases["update-corrupt-image.positive_control"].status, "pass", "{log}");
}

/// Debian's SWUpdate as the device (CMS-signed .swu, hashed artifact, hardware
/// compatibility, no downgrade), layout `swu`: the good client refuses every hostile image
/// (the lab-supplied foreign-key image too) and installs the valid one, with no false FAIL
/// from padding; an unsigned-glue twin (`cpio -idu` into the slot) FAILs on exactly the
/// images it installs.
#[rstest::rstest]
#[case::swupdate("", &[])]
#[case::unsigned_glue(
    "--unsigned-glue",
    &[
        ("older", "UPD-07"),
        ("other_model", "UPD-06"),
        ("hostile_foreign_key", "UPD-05"),
        ("flip_sw_description", "UPD-03"),
        ("flip_sw_description_sig", "UPD-05"),
        ("flip_artifact_rootfs_img", "UPD-03"),
    ]
)]
fn debian_swupdate_with_the_swu_layout(#[case] flaw: &str, #[case] red: &[(&str, &str)]) {
    if !tools_ready(&["swupdate", "cpio", "openssl", "curl", "socat"]) {
        return;
    }
    let set = format!("flaw={flaw}");
    let (cases, code, _dir, log) = run_only_with(
        "fixtures/devices/swupdate.yaml",
        &["update-corrupt-image"],
        &["--set", &set],
    );
    let images = [
        "empty",
        "older",
        "other_model",
        "hostile_foreign_key",
        "flip_sw_description",
        "flip_sw_description_sig",
        "flip_artifact_rootfs_img",
        "truncate_artifact_rootfs_img",
    ];
    assert_eq!(
        cases.len(),
        images.len() + 1,
        "no padding or appended-bytes variant: {log}"
    );
    assert_eq!(cases["update-corrupt-image.positive_control"].status, "pass", "{log}");
    for img in images {
        let c = &cases[&format!("update-corrupt-image.{img}")];
        match red.iter().find(|(i, _)| *i == img) {
            Some((_, check)) => {
                assert_eq!(c.status, "failure", "{img}: {c:?}\n{log}");
                assert!(c.message.starts_with(check), "{c:?}");
                if img.starts_with("flip_") {
                    assert!(c.message.contains("image: flipped byte"), "which bytes: {c:?}");
                }
            }
            None => assert_eq!(c.status, "pass", "{img}: {c:?}\n{log}"),
        }
    }
    assert_eq!(code, Some(if red.is_empty() { 0 } else { 1 }), "{log}");
}

/// UPD-11 (5.3-7) on signatures openssl made, as a maker's build would: a `.swu` whose
/// sw-description is CMS-signed (cpio newc, as SWUpdate reads it) with an RSA-1024 key and
/// SHA-1 fails, naming both; RSA-3072 with SHA-256 and ECDSA P-256 pass; the scheme is read
/// from the signature itself (the signer's certificate, the signer info's digest).
#[rstest]
#[case::rsa1024_sha1(&["-newkey", "rsa:1024"], "sha1", Some("an RSA key of 1024 bits (at least 2048) and a SHA-1 digest (SHA-256 or stronger)"), "RSA-1024 with SHA-1")]
#[case::rsa3072_sha256(&["-newkey", "rsa:3072"], "sha256", None, "RSA-3072 with SHA-256")]
#[case::p256_sha256(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "sha256", None, "ECDSA-256 with SHA-256")]
fn update_signatures_made_by_openssl_are_read_from_the_swu(
    #[case] key: &[&str],
    #[case] md: &str,
    #[case] weak: Option<&str>,
    #[case] seen: &str,
) {
    if !tools_ready(&["openssl", "cpio"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ok = |c: &mut Command| {
        let o = c.current_dir(d).output().expect("run");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ok(Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=maker signer"])
        .args(key)
        .args(["-keyout", "signer.key", "-out", "signer.pem"]));
    std::fs::write(d.join("sw-description"), "software = { version = \"2.0.0\"; };\n").expect("write");
    ok(Command::new("openssl").args([
        "cms",
        "-sign",
        "-in",
        "sw-description",
        "-out",
        "sw-description.sig",
        "-signer",
        "signer.pem",
        "-inkey",
        "signer.key",
        "-outform",
        "DER",
        "-nosmimecap",
        "-binary",
        "-md",
        md,
    ]));
    ok(Command::new("sh").args([
        "-c",
        "printf 'sw-description\\nsw-description.sig\\n' | cpio -o -H newc --quiet > image.swu",
    ]));
    let image = std::fs::read(d.join("image.swu")).expect("swu");
    let layout = certbench::config::update::Layout::Swu { artifacts: Vec::new() };
    let s = certbench::update::crypto::scheme(&image, &layout, None)
        .expect("judged")
        .expect("read from the image");
    assert!(s.to_string().starts_with(seen), "{s}");
    assert!(
        s.to_string().contains("read from sw-description.sig: CMS SignedData"),
        "{s}"
    );
    assert_eq!(s.weakness().as_deref(), weak, "{s}");
}

/// The same check as a scenario on Debian's SWUpdate device (its maker signs with RSA-2048
/// and SHA-256, openssl's CMS default): PASS, the scheme read from the image it serves.
#[test]
fn debian_swupdate_images_are_signed_with_best_practice_cryptography() {
    if !tools_ready(&["swupdate", "cpio", "openssl", "curl", "socat"]) {
        return;
    }
    let r = Certbench::profile("fixtures/devices/swupdate.yaml")
        .args(&["--set", "flaw="])
        .only("update-signature")
        .run();
    let c = &r.by_id()["update-signature"];
    assert_eq!(c.status, "pass", "{c:?}\n{}", r.log);
    let events = std::fs::read_to_string(r.dir.path().join("results/events.jsonl")).expect("events");
    assert!(
        events.contains("RSA-2048 with SHA-256 (read from sw-description.sig: CMS SignedData, signer"),
        "{events}"
    );
}

/// UPD-10 (5.7-1) on the simulated board: an image with a flipped payload byte written
/// straight into the boot slot (its maintenance command `flash-raw`, bypassing the update
/// agent). The good board's boot ROM refuses it and falls back, saying so; the
/// boots-unsigned board runs it: FAIL naming the version it booted. Both beside the
/// positive control (the valid image written the same way boots), the baseline put back.
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "was refused: it still runs 1.0.0, saying")]
#[case::boots_unsigned(
    "devices/simboard-boots-unsigned.yaml",
    "failure",
    "UPD-10: the device booted the tampered image"
)]
fn secure_boot_refuses_an_image_written_past_the_update_agent(
    #[case] profile: &str,
    #[case] want: &str,
    #[case] says: &str,
) {
    let (cases, code, dir, out) = run_only(profile, &["secure-boot"]);
    let c = &cases["secure-boot"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{says:?}: {events}");
    assert!(
        events.contains("the valid image written the same way boots (2.0.0); 1.0.0 put back (update.restore)"),
        "the positive control and the restore: {events}"
    );
    assert_eq!(code, Some(if want == "pass" { 0 } else { 1 }), "{out}");
}

/// Without its positive control UPD-10 decides nothing: a raw write command the board does
/// not have (it never fetches the image) is ERROR, never PASS.
#[test]
fn secure_boot_without_a_working_write_path_is_an_error() {
    let (_d, c, code, out) = board_edited(
        "devices/simboard.yaml",
        &[(
            "console: \"flash-raw {{image.url}}\"",
            "console: \"flash-rom {{image.url}}\"",
        )],
        "secure-boot",
        true,
    );
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(
        c.message.contains("did not see the device fetch the whole image"),
        "{c:?}"
    );
    assert_eq!(code, Some(3), "{out}");
}
