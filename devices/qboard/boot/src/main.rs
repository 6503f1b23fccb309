//! The emulated board's first boot stage (QEMU lm3s6965evb, Cortex-M3), kept in the first
//! 32 KiB of flash like a microcontroller's ROM bootloader. It verifies the application slot
//! at 0x8000 before running it: the image there is a 256-byte header (`QBFW`, the length of
//! header and payload, the version), the payload, then an Ed25519 signature over header and
//! payload, made by the maker's build with signify. A slot whose signature does not verify
//! is refused, said on the console, and the board halts (the maker's `on_failure: halt`).
//!
//! The `boots-unsigned` feature is the flawed build certbench must catch: it checks nothing.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

const SLOT: usize = 0x8000;
const FLASH_END: usize = 0x4_0000;
const HEADER_LEN: usize = 256;
const SIGNATURE_LEN: usize = 64;
/// The maker's signing key (signify's public key, its 32 key bytes), put here by the build.
const PUBLIC_KEY: &[u8; 32] = include_bytes!(env!("QBOARD_PUBLIC_KEY"));

const UART0_DR: *mut u32 = 0x4000_C000 as *mut u32;
const UART0_FR: *const u32 = 0x4000_C018 as *const u32;
const UART0_CTL: *mut u32 = 0x4000_C030 as *mut u32;
const VTOR: *mut u32 = 0xE000_ED08 as *mut u32;

fn put(s: &[u8]) {
    for &c in s {
        // SAFETY: the UART's data and flag registers, polled; nothing else uses the UART yet
        unsafe {
            while UART0_FR.read_volatile() & (1 << 5) != 0 {}
            UART0_DR.write_volatile(c as u32);
        }
    }
}

/// Flash as bytes: the slot is read in place.
fn flash(start: usize, len: usize) -> &'static [u8] {
    // SAFETY: callers keep start..start+len inside the 256 KiB flash, which is always mapped
    unsafe { core::slice::from_raw_parts(start as *const u8, len) }
}

/// Halts safely: no firmware runs. The refusal is said again and again, as a halted
/// board's LED would blink, so a console opened after power-on still reads it.
fn refuse(why: &[u8]) -> ! {
    loop {
        put(b"secure boot: refused the firmware in the application slot: ");
        put(why);
        put(b"; halted\r\n");
        pause();
    }
}

/// Roughly a second on QEMU (a counted loop: no interrupt runs in this stage).
fn pause() {
    for i in 0..250_000_000u32 {
        // SAFETY: a no-op the compiler must keep, so the loop is not removed
        unsafe { core::arch::asm!("nop", in("r0") i) }
    }
}

/// What the application slot holds, its header checked.
struct Slot {
    /// Header and payload: what the signature covers.
    signed: &'static [u8],
    signature: &'static [u8],
    version: &'static [u8],
}

fn slot() -> Result<Slot, &'static [u8]> {
    let header = flash(SLOT, HEADER_LEN);
    if &header[..4] != b"QBFW" {
        return Err(b"no firmware header");
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if !(HEADER_LEN + 8..=FLASH_END - SLOT - SIGNATURE_LEN).contains(&len) {
        return Err(b"its length is out of bounds");
    }
    let version = &header[8..24];
    let end = version.iter().position(|&b| b == 0).unwrap_or(version.len());
    Ok(Slot {
        signed: flash(SLOT, len),
        signature: flash(SLOT + len, SIGNATURE_LEN),
        version: &version[..end],
    })
}

fn verified(signed: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        ed25519_compact::PublicKey::from_slice(PUBLIC_KEY),
        ed25519_compact::Signature::from_slice(signature),
    ) else {
        return false;
    };
    key.verify(signed, &sig).is_ok()
}

#[unsafe(no_mangle)]
extern "C" fn boot_main() -> ! {
    // SAFETY: enables UART0 (QEMU's model works without it; real silicon does not)
    unsafe { UART0_CTL.write_volatile(UART0_CTL.read_volatile() | 1) };
    put(b"\r\nqboard boot stage 1.0\r\n");
    let slot = match slot() {
        Ok(s) => s,
        Err(why) => refuse(why),
    };
    if !cfg!(feature = "boots-unsigned") && !verified(slot.signed, slot.signature) {
        refuse(b"its signature does not verify");
    }
    put(b"secure boot: starting firmware ");
    put(slot.version);
    put(b"\r\n");
    let app = SLOT + HEADER_LEN;
    let words = flash(app, 8);
    let sp = u32::from_le_bytes([words[0], words[1], words[2], words[3]]);
    let pc = u32::from_le_bytes([words[4], words[5], words[6], words[7]]);
    // SAFETY: the application's vector table (checked above unless this is the flawed
    // build) gives its stack and entry; nothing of this stage is used after the jump
    unsafe {
        VTOR.write_volatile(app as u32);
        core::arch::asm!("msr msp, {sp}", "bx {pc}", sp = in(reg) sp, pc = in(reg) pc, options(noreturn));
    }
}

#[repr(C)]
pub struct Vectors {
    stack: *const u8,
    reset: unsafe extern "C" fn() -> !,
}
// SAFETY: read-only data in flash
unsafe impl Sync for Vectors {}

unsafe extern "C" {
    static _stack_top: u8;
    fn reset() -> !;
}

#[unsafe(link_section = ".vectors")]
#[used]
static VECTORS: Vectors = Vectors {
    stack: &raw const _stack_top,
    reset,
};

// the reset handler: no .data or .bss to set up (this stage has no mutable statics)
core::arch::global_asm!(
    ".section .text.reset, \"ax\"",
    ".global reset",
    ".type reset, %function",
    ".thumb_func",
    "reset:",
    "b boot_main",
);

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    refuse(b"the boot stage failed")
}
