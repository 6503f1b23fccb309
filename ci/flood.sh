#!/usr/bin/env bash
# A hostile console: the device floods N MB of one byte (default NUL) and then prints READY.
# Measures the harness's peak memory and the size of the evidence; the run must be valid
# (the flood scenario PASS, no ERROR) or nothing is reported. Results: BENCHMARKS.md.
# usage: ci/flood.sh [MB] [BYTE-HEX]    (needs socat, /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/certbench-target}
mb=${1:-50}
byte=${2:-00}
cargo build -q --release   # the default members (certbench, simboard): the setup then builds nothing
B=$CARGO_TARGET_DIR/release/certbench
W=$(mktemp -d)
cleanup() { [ -n "${dev:-}" ] && kill "$dev" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
# the device: N MB of the byte, then READY (a script, as socat splits its address at commas)
cat >"$W/device.sh" <<DEV
perl -e 'binmode STDOUT; my \$c = chr(0x$byte) x 1000000; print \$c for 1..$mb; print "READY\\r\\n"; sleep 60'
DEV
socat PTY,link="$W/fake.tty",raw,echo=0 SYSTEM:"sh $W/device.sh" &
dev=$!
until [ -e "$W/fake.tty" ]; do sleep 0.05; done
/usr/bin/time -v -o "$W/time" "$B" run -d fixtures/devices/fake-pty.yaml --port "$W/fake.tty" \
    -s fixtures/scenarios/flood.yaml --out "$W/r" --workdir "$W/w" >"$W/out" 2>&1 || true
if ! grep -q 'failures="0" errors="0"' "$W/r/junit.xml" || grep -q '<skipped' "$W/r/junit.xml"; then
    echo "INVALID RUN (the flood scenario did not pass):"; cat "$W/out"; exit 1
fi
rss=$(awk -F: '/Maximum resident set size/{gsub(/ /,"",$2); print $2}' "$W/time")
log=$(stat -c %s "$W/r/scenarios/flood/console.log")
raw=$(stat -c %s "$W/r/scenarios/flood/console.raw")
printf "flood of %d MB of 0x%s: PASS; peak harness RSS %d MiB; console.raw %d bytes; console.log %d bytes\n" \
    "$mb" "$byte" "$((rss / 1024))" "$raw" "$log"
