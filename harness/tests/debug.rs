//! The debug port: the QEMU-emulated microcontroller board (firmware built here with
//! Debian's gcc-arm-none-eabi, QEMU's gdbstub as its debug port), probe-rs with no probe
//! attached, and bad debug configuration.

mod common;

use common::*;

fn qemu_ready() -> bool {
    tools_ready(&["qemu-system-arm", "arm-none-eabi-gcc", "make"])
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
/// matches the firmware's vector table, reset via `monitor`, detach.
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
        .arg("-kernel")
        .arg(dir.path().join("qboard.elf"))
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
