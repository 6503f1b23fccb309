#!/usr/bin/env python3
"""The emulated board's firmware images, as its maker's build makes them.

  mkimage.py image APP.bin VERSION SECKEY OUT.img   signed application image
  mkimage.py flash BOOT.bin APP.img OUT.bin          the whole flash: boot stage, then the slot

An application image: a 256-byte header (b"QBFW", little-endian u32 length of header and
payload, the version NUL-padded to 16 bytes, zeros), the payload (the application linked at
0x8100), then the 64-byte Ed25519 signature of header and payload made by signify-openbsd
(certbench's `signed_trailer` layout: header_len 256, signature_len 64).
"""
import base64
import os
import struct
import subprocess
import sys
import tempfile

HEADER_LEN = 256
SLOT = 0x8000
FLASH = 0x40000


def image(app_bin, version, seckey, out):
    payload = open(app_bin, "rb").read()
    v = version.encode()
    if len(v) > 15:
        sys.exit(f"version {version!r} is longer than 15 bytes")
    header = b"QBFW" + struct.pack("<I", HEADER_LEN + len(payload)) + v.ljust(16, b"\0")
    signed = header.ljust(HEADER_LEN, b"\0") + payload
    with tempfile.TemporaryDirectory() as d:
        msg, sig = os.path.join(d, "fw"), os.path.join(d, "fw.sig")
        open(msg, "wb").write(signed)
        subprocess.run(["signify-openbsd", "-S", "-s", seckey, "-m", msg, "-x", sig], check=True)
        # signify's signature file: a comment line, then base64 of "Ed", key number, signature
        raw = base64.b64decode(open(sig).read().splitlines()[1])
    if len(raw) != 74 or raw[:2] != b"Ed":
        sys.exit("signify wrote an unexpected signature")
    open(out, "wb").write(signed + raw[10:])


def flash(boot_bin, app_img, out):
    boot = open(boot_bin, "rb").read()
    app = open(app_img, "rb").read()
    if len(boot) > SLOT or SLOT + len(app) > FLASH:
        sys.exit("the boot stage or the image does not fit the flash")
    open(out, "wb").write(boot.ljust(SLOT, b"\xff") + app)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "image":
        image(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "flash":
        flash(*sys.argv[2:])
    else:
        sys.exit(__doc__)
