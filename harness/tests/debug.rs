//! The debug port: the QEMU-emulated microcontroller board (firmware built here with
//! Debian's gcc-arm-none-eabi, QEMU's gdbstub as its debug port), probe-rs with no probe
//! attached, and bad debug configuration.

mod common;

use common::*;

fn qemu_ready() -> bool {
    // (the boot stage is Rust for thumbv7m-none-eabi; images are signed with signify)
    tools_ready(&[
        "qemu-system-arm",
        "arm-none-eabi-gcc",
        "make",
        "signify-openbsd",
        "python3",
    ])
}

/// Secure boot (UPD-10, 5.7-1) proven end to end on the emulated board: its boot stage
/// verifies the application slot's Ed25519 signature. certbench writes the maker's valid
/// image with one byte flipped in its payload at the slot through QEMU's gdbstub (GDB `M`
/// packets, read back), power-cycles: the board refuses it and halts, saying so; the valid
/// image written the same way boots 1.1.0 (the positive control); the baseline is put back.
/// UPD-11 verifies the images' signify-made Ed25519 signature with the declared key.
#[test]
fn qemu_board_refuses_a_tampered_image_written_through_its_debug_port() {
    if !qemu_ready() {
        return;
    }
    let (cases, code, dir, log) = run_only("devices/qboard.yaml", &["secure-boot", "update-signature"]);
    let sb = &cases["secure-boot"];
    assert_eq!(sb.status, "pass", "{sb:?}\n{log}");
    assert_eq!(cases["update-signature"].status, "pass", "{log}");
    assert_eq!(code, Some(0), "{log}");
    // what each PASS rests on, from the report
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results/report.json")).expect("report")).expect("json");
    let detail = |id: &str, step: &str| -> String {
        let checks = report["checks"].as_array().expect("checks");
        let c = checks.iter().find(|c| c["result"]["id"] == id).expect("the check");
        let steps = c["result"]["steps"].as_array().expect("steps");
        let s = steps.iter().find(|s| s["name"] == step).expect("the step");
        s["detail"].as_str().expect("detail").to_string()
    };
    let sb = detail("secure-boot", "secure_boot");
    for said in [
        "tampered image (one byte flipped in the payload) was refused",
        "secure boot: refused the firmware",
        "the valid image written the same way boots (1.1.0)",
        "1.0.0 put back",
    ] {
        assert!(sb.contains(said), "{said:?} in {sb}");
    }
    let crypto = detail("update-signature", "update_crypto");
    assert!(
        crypto.contains("Ed25519") && crypto.contains("verified with the declared public key"),
        "{crypto}"
    );
}

/// The flawed board: the same images, a boot stage built to check nothing
/// (`BOOT_FEATURES=boots-unsigned`). It runs the tampered image: UPD-10 FAIL naming the
/// version it runs and how the image got there.
#[test]
fn qemu_board_whose_boot_stage_checks_nothing_fails_secure_boot() {
    if !qemu_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = std::fs::read_to_string(repo().join("devices/qboard.yaml")).expect("profile");
    let flawed = profile.replace("OUT={{workdir}}", "OUT={{workdir}} BOOT_FEATURES=boots-unsigned");
    assert_ne!(flawed, profile, "the setup line builds the firmware");
    std::fs::write(dir.path().join("qboard.yaml"), flawed).expect("write");
    std::os::unix::fs::symlink(repo().join("devices/qboard"), dir.path().join("qboard")).expect("link");
    let path = dir.path().join("qboard.yaml");
    let (cases, code, _out, log) = run_only(path.to_str().expect("utf8"), &["secure-boot"]);
    let sb = &cases["secure-boot"];
    assert_eq!(sb.status, "failure", "{sb:?}\n{log}");
    assert!(
        sb.message.starts_with("UPD-10")
            && sb.message.contains("booted the tampered image")
            && sb.message.contains("written through the debug port at 0x8000")
            && sb.message.contains("it runs 1.1.0 (was 1.0.0)"),
        "{sb:?}"
    );
    // the positive control ran too, and the baseline was put back
    assert!(
        sb.message
            .contains("the valid image written the same way boots (1.1.0)"),
        "{sb:?}"
    );
    assert_eq!(code, Some(1), "{log}");
}

#[test]
fn qemu_board_password_reset_passes_and_its_open_debug_port_gives_away_flash_and_the_password() {
    if !qemu_ready() {
        return;
    }
    let (cases, code, _dir, log) = run_only(
        "devices/qboard.yaml",
        &["password-reset-enforcement", "debug-port-locked", "secrets-in-memory"],
    );
    assert_eq!(cases["password-reset-enforcement"].status, "pass", "{log}");
    let locked = &cases["debug-port-locked"];
    assert_eq!(
        locked.status, "failure",
        "QEMU lets anyone read memory: {locked:?}\n{log}"
    );
    assert!(
        locked.message.starts_with("ATK-03") && locked.message.contains("read 4096 of 4096 bytes"),
        "{locked:?}"
    );
    assert!(locked.message.contains("SHA-256"), "{locked:?}");
    let secrets = &cases["secrets-in-memory"];
    assert_eq!(secrets.status, "failure", "{secrets:?}\n{log}");
    // the password the run set over the console, found in RAM by address, never by value
    assert!(
        secrets.message.contains("plaintext device_password at 0x2000"),
        "{secrets:?}"
    );
    assert_eq!(code, Some(1), "{log}");
}

#[test]
fn no_probe_attached_is_a_clear_error_not_a_pass_or_a_panic() {
    let (cases, code, _dir, log) = run_only("fixtures/devices/probe-rs-no-probe.yaml", &["debug-port-locked"]);
    let c = &cases["debug-port-locked"];
    assert_eq!(c.status, "error", "{c:?}\n{log}");
    assert!(c.message.contains("no debug probe is attached"), "{c:?}");
    assert_eq!(code, Some(3), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn probes_says_plainly_when_there_are_none() {
    let o = certbench(&["probes"]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o);
    // this machine has no probe; on one that has, each line is VID:PID[:serial] and a name
    assert!(
        t.contains("no debug probes found") || t.lines().all(|l| l.split(':').count() >= 2),
        "{t}"
    );
}

#[test]
fn an_unknown_chip_is_an_input_error_with_its_position() {
    let o = certbench(&["validate", "fixtures/bad-devices/06-device-unknown-chip.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(
        t.contains("06-device-unknown-chip.yaml:4:") && t.contains("debug.driver.probe_rs.chip"),
        "{t}"
    );
}

/// The GDB driver against QEMU's gdbstub directly: attach, halt, registers, memory that
/// matches the firmware's vector table, a flash write read back, reset via `monitor`, detach.
#[test]
fn gdb_driver_against_qemus_gdbstub() {
    use certbench::debug::DebugPort;
    if !qemu_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf8");
    let built = std::process::Command::new("make")
        .args(["--quiet", "-C", "devices/qboard", &format!("OUT={out}")])
        .current_dir(repo())
        .status()
        .expect("make");
    assert!(built.success());
    let sock = dir.path().join("gdb.sock");
    let mut qemu = std::process::Command::new("qemu-system-arm")
        .args([
            "-M",
            "lm3s6965evb",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "null",
            "-gdb",
        ])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .arg("-device")
        .arg(format!(
            "loader,file={},addr=0,force-raw=on",
            dir.path().join("flash.bin").display()
        ))
        .spawn()
        .expect("qemu");
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut g =
        certbench::debug::gdb::GdbRemote::new(&format!("unix:{}", sock.display()), std::time::Duration::from_secs(5));
    let result = (|| -> Result<(), certbench::debug::DebugError> {
        let what = g.attach()?;
        assert!(what.contains("stop reply"), "{what}");
        g.halt()?;
        let regs = g.registers()?;
        assert!(regs.len() >= 16 * 8, "r0..r15 at least: {regs}");
        // the vector table: initial stack pointer = top of the 64 KiB SRAM
        let mut sp = [0u8; 4];
        g.read(0, &mut sp)?;
        assert_eq!(u32::from_le_bytes(sp), 0x2001_0000);
        // a write to flash is read back as written (how secure boot's image gets there)
        let mut before = [0u8; 4];
        g.read(0x8000, &mut before)?;
        assert_eq!(&before, b"QBFW", "the application slot's image header");
        g.write(0x8000, b"XBFW")?;
        let mut after = [0u8; 4];
        g.read(0x8000, &mut after)?;
        assert_eq!(&after, b"XBFW");
        g.reset()?;
        g.resume()?;
        Ok(())
    })();
    let _ = qemu.kill();
    let _ = qemu.wait();
    result.expect("the GDB driver drives QEMU");
}

/// The lab asks for an image to be flashed before the run and no probe is attached: the
/// real cause is reported at once, every planned check is an ERROR naming it.
#[test]
fn flash_before_run_without_a_probe_reports_the_cause_for_every_check() {
    let r = Certbench::profile("fixtures/devices/probe-rs-no-probe.yaml")
        .args(&["--lab", "fixtures/labs/flash-before-run.yaml"])
        .only("debug-port-locked")
        .only("update-corrupt-image")
        .run();
    let log = r.log;
    assert_eq!(r.code, Some(3), "{log}");
    let cases = r.cases;
    assert_eq!(cases.len(), 2, "every planned check is in the results: {cases:?}");
    for c in &cases {
        assert_eq!(c.status, "error", "{c:?}");
        assert!(
            c.message.contains("flash_before_run failed") && c.message.contains("1366:1051"),
            "{c:?}"
        );
    }
}
