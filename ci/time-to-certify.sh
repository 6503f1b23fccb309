#!/usr/bin/env bash
# Time to certify: the main job (every scenario against the simulated board, setup included,
# as README's main command runs it) timed, with the boots it cost and each scenario's time.
# The run counts only if it is valid: no ERROR and no FAIL on the good board, and every
# planned testcase decided as in README ("68 passed, 4 not applicable, 3 awaiting review":
# the suite shared out over the lab's three units, the unit checks on each).
# usage: ci/time-to-certify.sh [RUNS]     (results: BENCHMARKS.md, "Time to certify")
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/certbench-target}
runs=${1:-1}
cargo build -q --release   # the default members (certbench, simboard): the setup then builds nothing
B=$CARGO_TARGET_DIR/release/certbench
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for i in $(seq 1 "$runs"); do
    start=$(date +%s.%N)
    "$B" run --lab devices/labs/simboard.yaml --out "$W/r$i" >"$W/out$i" 2>&1 || true
    end=$(date +%s.%N)
    summary=$(grep -E '^[0-9]+ passed' "$W/out$i" || true)
    case "$summary" in
        "68 passed, 0 failed, 0 errors, 4 not applicable, 3 awaiting review"*) ;;
        *) echo "INVALID RUN $i: $summary"; tail -20 "$W/out$i"; exit 1 ;;
    esac
    # the simulated board makes a new serial line at each boot (power applied or its own reboot)
    boots=$(cat "$W/r$i"/units/*/scenarios/*/console.log | grep -c '== console .* opened' || true)
    printf "run %d: wall %.1f s (setup included); %s; boots seen on the consoles: %d\n" \
        "$i" "$(echo "$end - $start" | bc)" "${summary%% in *}" "$boots"
    # P1 per unit: its wall time against its device-bound lower bound, and a 60 s-boot
    # projection (the model's is its slowest unit's)
    for u in "$W/r$i"/units/*; do
        wall=$(python3 -c "import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e['event']=='run_finished': print(e['duration_ms']/1000)" "$u/events.jsonl")
        python3 ci/p1.py "$u" "$wall" 60 | sed "s|^|  $(basename "$u"): |" | grep -E 'P1 =|projection|boots'
    done
done
python3 - "$W/r$runs/events.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "scenario_finished":
        r = e["result"]
        print(f"  {r['id']:<45} {r['verdict']:<15} {r['duration_ms'] / 1000:6.1f} s  {r.get('unit', '')}")
PY
