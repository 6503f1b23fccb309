#!/usr/bin/env bash
# Issue 32 performance: what a labgrid place costs a run (acquire, read its resources,
# release: the three `labgrid-client` calls certbench makes) against a local coordinator and
# exporter. Each round is checked first: the place is acquired after `acquire` (its
# resources listed) and free after `release`; a round that is not is reported, never timed.
#   ci/bench-labgrid.sh [ROUNDS]
set -euo pipefail
rounds=${1:-10}
lg=${LABGRID:-/var/cache/certbench-deps/labgrid/bin}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# (the coordinator keeps its places in its working folder)
(cd "$dir" && exec "$lg/labgrid-coordinator" -l "127.0.0.1:$port" >"$dir/coordinator.log" 2>&1) &
cpid=$!
cat >"$dir/exporter.yaml" <<'YAML'
board1:
  NetworkPowerPort:
    model: simplerest
    host: 'http://127.0.0.1:9/outlet/{index}/{value}'
    index: 0
YAML
sleep 2
"$lg/labgrid-exporter" -c "127.0.0.1:$port" -n bench --hostname 127.0.0.1 "$dir/exporter.yaml" >"$dir/exporter.log" 2>&1 &
epid=$!
trap 'kill $epid $cpid 2>/dev/null; rm -rf "$dir"' EXIT
c() { "$lg/labgrid-client" -x "127.0.0.1:$port" -p bench-place "$@"; }
for _ in $(seq 50); do
    r=$("$lg/labgrid-client" -x "127.0.0.1:$port" resources 2>/dev/null || true)
    grep -q bench/board1 <<<"$r" && break
    sleep 0.2
done
c create && c add-match 'bench/board1/*'
total=0; worst=0; ok=0
for i in $(seq "$rounds"); do
    t0=$(date +%s.%N)
    c acquire >/dev/null
    shown=$(c show)
    c release >/dev/null
    t1=$(date +%s.%N)
    after=$(c show)
    if ! grep -q "Acquired resource 'NetworkPowerPort'" <<<"$shown" || ! grep -q "acquired: None" <<<"$after"; then
        echo "round $i: the place was not acquired and released as expected: not timed" >&2
        continue
    fi
    d=$(echo "$t1 - $t0" | bc)
    total=$(echo "$total + $d" | bc); ok=$((ok + 1))
    worst=$(echo "if ($d > $worst) $d else $worst" | bc)
done
[ "$ok" -gt 0 ] || { echo "no valid round" >&2; exit 1; }
echo "labgrid place per run (acquire + show + release): mean $(echo "scale=3; $total / $ok" | bc) s, worst $worst s, $ok of $rounds rounds valid"
