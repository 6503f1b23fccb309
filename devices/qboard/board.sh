#!/bin/sh
# The emulated microcontroller board: QEMU's lm3s6965evb (Cortex-M3) running qboard.elf.
# Power on = start QEMU; its UART0 is a PTY linked at LINK; its debug port is QEMU's
# gdbstub on the unix socket GDB. Power off = kill QEMU (RAM, and so the password, is lost).
#
#   board.sh power-on  LINK GDB ELF STATE
#   board.sh power-off LINK STATE
set -eu
case "$1" in
power-on)
    link=$2; gdb=$3; elf=$4; state=$5
    mkdir -p "$state"
    [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null && exit 0
    rm -f "$link" "$gdb" "$state/qemu.log"
    setsid qemu-system-arm -M lm3s6965evb -display none -monitor none -serial pty \
        -gdb "unix:$gdb,server=on,wait=off" -kernel "$elf" </dev/null >"$state/qemu.log" 2>&1 &
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
        /bin/kill -s KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        rm -f "$state/pid"
    fi
    ;;
*) echo "usage: $0 power-on LINK GDB ELF STATE | power-off LINK STATE" >&2; exit 2 ;;
esac
