#!/bin/sh
# The emulated microcontroller board: QEMU's lm3s6965evb (Cortex-M3) running the flash image
# the build made (boot stage + signed application, see Makefile). Power on = start QEMU; its
# UART0 is a PTY linked at LINK; its debug port is QEMU's gdbstub on the unix socket GDB.
# Power off = save the flash (as real flash keeps what was written to it, e.g. through the
# debug port) and kill QEMU (RAM, and so the password, is lost).
#
#   board.sh power-on  LINK GDB FLASH STATE   FLASH: the factory image, used until saved
#   board.sh power-off LINK STATE
#   board.sh restore   FLASH STATE            the lab's reflash: the factory image back
#
# (QEMU reloads its flash from the file at a reset too: a debugger's `monitor system_reset`
# discards what was written since power-on, unlike silicon; certbench power-cycles.)
set -eu
save_flash() { # STATE: the flash (256 KiB at 0) through QEMU's monitor, kept atomically
    [ -S "$1/monitor" ] || return 0
    python3 - "$1" <<'PY' || echo "board.sh: could not save the flash" >&2
import os, socket, sys
state = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(os.path.join(state, "monitor"))
def until_prompt():
    got = b""
    while not got.endswith(b"(qemu) "):
        b = s.recv(4096)
        if not b:
            raise SystemExit("the monitor closed")
        got += b
until_prompt()
s.sendall(b'pmemsave 0 0x40000 "%s"\n' % os.path.join(state, "flash.new").encode())
until_prompt()
os.replace(os.path.join(state, "flash.new"), os.path.join(state, "flash.bin"))
PY
}
case "$1" in
power-on)
    link=$2; gdb=$3; flash=$4; state=$5
    mkdir -p "$state"
    [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null && exit 0
    [ -f "$state/flash.bin" ] || cp "$flash" "$state/flash.bin"
    rm -f "$link" "$gdb" "$state/qemu.log" "$state/monitor"
    setsid qemu-system-arm -M lm3s6965evb -display none -serial pty \
        -monitor "unix:$state/monitor,server=on,wait=off" \
        -gdb "unix:$gdb,server=on,wait=off" \
        -device "loader,file=$state/flash.bin,addr=0,force-raw=on" </dev/null >"$state/qemu.log" 2>&1 &
    echo $! > "$state/pid"
    i=0
    # (the log of this boot only: an old one would name a PTY number another program may own now)
    while ! grep -q 'redirected to /dev/pts/' "$state/qemu.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    pts=$(sed -n 's|.*redirected to \(/dev/pts/[0-9]*\).*|\1|p' "$state/qemu.log" | head -n1)
    [ -n "$pts" ] || { echo "QEMU did not give a serial PTY" >&2; cat "$state/qemu.log" >&2; exit 1; }
    ln -sf "$pts" "$link"
    ;;
power-off)
    link=$2; state=$3
    # the link goes first: a dangling link would lead a reader to whatever PTY reuses the number
    rm -f "$link"
    if [ -f "$state/pid" ]; then
        pid=$(cat "$state/pid")
        kill -0 "$pid" 2>/dev/null && save_flash "$state"
        /bin/kill -s KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        rm -f "$state/pid" "$state/monitor"
    fi
    ;;
restore)
    flash=$2; state=$3
    mkdir -p "$state"
    cp "$flash" "$state/flash.new" && mv "$state/flash.new" "$state/flash.bin"
    ;;
*) echo "usage: $0 power-on LINK GDB FLASH STATE | power-off LINK STATE | restore FLASH STATE" >&2; exit 2 ;;
esac
