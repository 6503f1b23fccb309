#!/usr/bin/env bash
# A model's suite over its units (issue 33, BENCHMARKS.md "Several units"): the whole suite
# on the simulated board with a realistic boot (devices/simboard-slow-boot.yaml, 5 s), once on
# one unit (--unit sb-0001) and once shared out over the lab's three units. Each run counts
# only if it is valid: no ERROR, no FAIL, and every scenario decided as on the one unit (the
# unit checks on every unit). Then the wall-time ratio, and the model's wall time projected
# for a board that boots in 60 s (ci/units-projection.py: each boot at 60 s, planned again).
# usage: ci/units-bench.sh        (root: each unit gets its namespace)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/certbench-target}
cargo build -q --release
B=$CARGO_TARGET_DIR/release/certbench
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
P=devices/simboard-slow-boot.yaml
L=devices/labs/simboard.yaml

timed() { # name, args...
    local name=$1; shift
    local start end
    start=$(date +%s.%N)
    "$B" run -d "$P" --lab "$L" --out "$W/$name" "$@" >"$W/$name.out" 2>&1 || true
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

verdicts() { # results dir -> "id verdict" lines, one per scenario id (all units agreeing)
    python3 - "$1" <<'PY'
import json, sys
seen = {}
for line in open(sys.argv[1] + "/events.jsonl"):
    e = json.loads(line)
    if e["event"] == "scenario_finished":
        r = e["result"]
        seen.setdefault(r["id"], set()).add(r["verdict"])
bad = [i for i, v in seen.items() if v & {"error", "fail"} or len(v) != 1]
if bad:
    sys.exit("INVALID: " + ", ".join(f"{i}: {sorted(seen[i])}" for i in bad))
for i in sorted(seen):
    print(i, next(iter(seen[i])))
PY
}

one=$(timed one --unit sb-0001)
verdicts "$W/one" >"$W/one.v" || { tail -20 "$W/one.out"; exit 1; }
three=$(timed three)
verdicts "$W/three" >"$W/three.v" || { tail -20 "$W/three.out"; exit 1; }
diff "$W/one.v" "$W/three.v" || { echo "INVALID: the units decided otherwise than one unit"; exit 1; }
printf "one unit:    wall %.1f s; %s\n" "$one" "$(grep -E '^[0-9]+ passed' "$W/one.out")"
printf "three units: wall %.1f s; %s\n" "$three" "$(grep -E '^[0-9]+ passed' "$W/three.out")"
printf "ratio three/one: %.2f (target <= 0.45)\n" "$(echo "$three / $one" | bc -l)"
echo "projection for a board that boots in 60 s, the suite planned over 1..4 units (ci/units-projection.py):"
python3 ci/units-projection.py "$W/three" 60 | sed 's/^/  /'
