#!/usr/bin/env bash
# Benchmarks P1-P4 of BENCHMARKS.md, measured side by side in one run on this machine.
# usage: ci/bench.sh            (needs: cargo, python3 with pexpect, /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/certbench-target}
cargo build -q --release -p certbench -p simboard
cargo build -q --release -p certbench --example expect_throughput
B=$CARGO_TARGET_DIR/release/certbench
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(date -u +%F)"

echo; echo "## P1 harness overhead (full suite, simulated board)"
"$B" run --skip-setup --out "$W/p1" >/dev/null || true
python3 - "$W/p1/events.jsonl" <<'PY'
import json, sys
steps = total = 0
kinds = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "step_finished":
        d = e["step"]["duration_ms"]; steps += d
        kinds[e["step"]["name"]] = kinds.get(e["step"]["name"], 0) + d
    if e["event"] == "run_finished":
        total = e["duration_ms"]
print(f"run wall time {total} ms; time inside device steps {steps} ms; ratio {total/steps:.3f}")
print("  step time by kind (ms): " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda x: -x[1])))
PY

echo; echo "## P2 console matching (2 MiB boot log, 20 patterns, 4 KiB chunks)"
"$CARGO_TARGET_DIR/release/examples/expect_throughput" 2 --write "$W/boot.log"
python3 ci/bench_pexpect.py "$W/boot.log" 16384
python3 ci/bench_pexpect.py "$W/boot.log" none

echo; echo "## P3 scale (password-reset-enforcement on N simulated boards in parallel)"
for n in 1 8 32 64; do
    {
        echo "lock_dir: $W/locks"
        echo "boards:"
        for i in $(seq 1 "$n"); do echo "  - { name: sb$i, profile: $PWD/devices/simboard.yaml }"; done
    } > "$W/lab$n.yaml"
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$W/time$n" "$B" run --skip-setup --inventory "$W/lab$n.yaml" --only password-reset-enforcement --out "$W/p3-$n" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    rss=$(awk -F: '/Maximum resident set size/{gsub(/ /,"",$2); print $2}' "$W/time$n")
    pass=$(grep -l 'failures="0" errors="0"' "$W"/p3-$n/*/junit.xml 2>/dev/null | wc -l)
    printf "boards %2d: wall %6.2f s, peak harness RSS %6d KiB (%.0f KiB/board), %d/%d boards passed\n" \
        "$n" "$(echo "$end - $start" | bc)" "$rss" "$(echo "$rss / $n" | bc -l)" "$pass" "$n"
done

echo; echo "## P4 board death (process killed mid-wait) to ERROR"
for i in 1 2 3; do
    rm -rf "$W/p4"; mkdir -p "$W/p4"
    "$B" run --skip-setup -s fixtures/scenarios/wait-forever.yaml --out "$W/p4/r" --workdir "$W/p4" >/dev/null 2>&1 &
    pid=$!
    until grep -q '"index":2,"name":"expect"' "$W/p4/r/events.jsonl" 2>/dev/null; do sleep 0.05; done
    sleep 0.5
    kill -9 "$(cat "$W/p4/simboard.pid")"
    t0=$(date +%s.%N)
    # the ERROR is in the event log as soon as it is decided
    until grep -q '"status":"error"' "$W/p4/r/events.jsonl" 2>/dev/null; do sleep 0.005; done
    t1=$(date +%s.%N)
    wait "$pid" || true
    t2=$(date +%s.%N)
    printf "run %d: ERROR recorded %.3f s after the kill; process exited after %.3f s\n" "$i" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t0" | bc)"
done
