#!/usr/bin/env bash
# Repeated runs of GOOD simulated boards, which must never be given a FAIL (a false FAIL is
# a defect of the harness, not of the board), plus a cross-talk check: each board's whole
# transcript may only ever show its own serial number (a PTY freed by one board and reused
# by another must never put the other's output into the evidence).
#
# usage: ci/stress.sh            full: 200 boards with a 5 s noisy boot through the password and
#                                console checks, update-power-loss on 10 boards (release build)
#        ci/stress.sh --short    what CI runs: 16 boards, no power-loss runs (debug build)
# Exit 0 only with zero FAILs and zero cross-talk; ERRORs are counted and printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/certbench-target}

if [ "${1:-}" = --short ]; then
    boards=${STRESS_BOARDS:-16}; power_boards=${STRESS_POWER_BOARDS:-0}; parallel=${STRESS_PARALLEL:-8}
    cargo build -q -p certbench -p simboard
    bin=$CARGO_TARGET_DIR/debug/certbench
else
    boards=${STRESS_BOARDS:-200}; power_boards=${STRESS_POWER_BOARDS:-10}; parallel=${STRESS_PARALLEL:-16}
    cargo build -q --release -p certbench -p simboard
    bin=$CARGO_TARGET_DIR/release/certbench
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
profile=$PWD/devices/simboard-slow-boot.yaml
echo "stress: $boards boards (5 s boot, 64 KiB boot log), $parallel at once; $power_boards update-power-loss boards; $(nproc) cores; $(date -u +%FT%TZ)"

# tally FILE...: verdict counts over JUnit files, and every board whose transcript shows a
# serial number other than its own
tally() {
    python3 - "$@" <<'PY'
import re, sys, pathlib
tc = fails = errors = skipped = 0
crosstalk = []
fail_msgs = []
with_serial = logs = 0
for j in sys.argv[1:]:
    x = pathlib.Path(j).read_text(errors="replace")
    for m in re.finditer(r"<testcase\b.*?(?:/>|</testcase>)", x, re.S):
        t = m.group(0); tc += 1
        if "<failure" in t:
            fails += 1; fail_msgs.append(re.search(r'name="([^"]*)"', t).group(1) + ": " + (re.search(r'<failure[^>]*message="([^"]*)"', t) or re.search("()", "")).group(1)[:200])
        elif "<error" in t:
            errors += 1
        elif "<skipped" in t:
            skipped += 1
    log = pathlib.Path(j).parent / "console-full.log"
    if log.exists():
        serials = set(re.findall(r"serial (SB[0-9a-f]{8})", log.read_text(errors="replace")))
        logs += 1
        with_serial += bool(serials)
        if len(serials) > 1:
            crosstalk.append(f"{log}: {sorted(serials)}")
print(f"testcases {tc}: {tc - fails - errors - skipped} pass, {fails} FAIL, {errors} ERROR, {skipped} other")
print(f"cross-talk: {len(crosstalk)} of {logs} transcripts show a foreign serial ({with_serial} show their own)")
if logs and with_serial < logs:
    print("  the boards' serials were not in every transcript: the cross-talk check could not run"); crosstalk.append("serial missing")
for m in fail_msgs[:20]:
    print("  FAIL", m)
for c in crosstalk:
    print("  CROSS-TALK", c)
sys.exit(1 if fails or crosstalk else 0)
PY
}

inventory() { # name count profile
    { echo "lock_dir: $work/locks-$1"; echo "boards:"
      for i in $(seq 1 "$2"); do echo "  - { name: $1-$i, profile: $3 }"; done; } > "$work/$1.yaml"
}

status=0
inventory pw "$boards" "$profile"
start=$(date +%s)
"$bin" run --skip-setup --inventory "$work/pw.yaml" --parallel "$parallel" \
    --only password-reset-enforcement --only password-strength --only password-change-effective \
    --only console-access --only boot-break-in --out "$work/pw" >"$work/pw.log" 2>&1 || true
echo "password and console checks: $(( $(date +%s) - start )) s"
tally "$work"/pw/*/junit.xml || status=1

if [ "$power_boards" -gt 0 ]; then
    inventory pl "$power_boards" "$PWD/devices/simboard.yaml"
    start=$(date +%s)
    "$bin" run --inventory "$work/pl.yaml" --parallel 5 --only update-power-loss --out "$work/pl" >"$work/pl.log" 2>&1 || true
    echo "update-power-loss: $(( $(date +%s) - start )) s"
    tally "$work"/pl/*/junit.xml || status=1
fi
exit $status
