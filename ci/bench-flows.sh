#!/usr/bin/env bash
# P5: flow classification of a recorded capture against tshark's conversation table, on
# the same file in the same run, and the full-range TCP scan of a namespace device.
# A timing counts only when the run it timed was valid: certbench's flow counts equal what
# the generator wrote, and its TCP flow count equals tshark's conversation count.
#
#   bash ci/bench-flows.sh [MEGABYTES]     (default 120; needs tshark, root for the scan)
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-120}
cargo build --release -q
bin=${CARGO_TARGET_DIR:-target}/release/certbench
[ -x "$bin" ] || bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/certbench
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cap=$tmp/p5.pcapng
want=$(python3 ci/make_capture.py "$cap" "$mb")
size=$(stat -c %s "$cap")
echo "capture: $(( size / 1048576 )) MiB; generator wrote: $want"

# validity: the same counts as the generator, the same TCP conversations as tshark
got=$("$bin" flows "$cap" --quiet --device 198.18.0.2)
echo "certbench: $got"
for kv in $(echo "$want" | head -1); do
    k=${kv%=*}; v=${kv#*=}
    echo "$got" | grep -q " $v $k" || { echo "INVALID: certbench did not find $v $k flows" >&2; exit 1; }
done
tcp_want=$(echo "$want" | sed -n 's/^tcp=//p')
conv=$(tshark -r "$cap" -q -z conv,tcp 2>/dev/null | grep -c '<->')
[ "$conv" = "$tcp_want" ] || { echo "INVALID: tshark sees $conv TCP conversations, the generator wrote $tcp_want" >&2; exit 1; }
echo "$got" | grep -q "($tcp_want tcp," || { echo "INVALID: certbench's TCP flow count differs from tshark's $conv" >&2; exit 1; }

best() { # best of 3 wall times in ms
    local b=999999999
    for _ in 1 2 3; do
        local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
        local ms=$(( (t1 - t0) / 1000000 )); [ $ms -lt $b ] && b=$ms
    done
    echo $b
}
ours=$(best "$bin" flows "$cap" --quiet --device 198.18.0.2)
theirs=$(best tshark -r "$cap" -q -z conv,tcp)
python3 - "$size" "$ours" "$theirs" <<'PY'
import sys
size, ours, theirs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
mib = size / 1048576
print(f"certbench flows: {ours} ms ({mib / (ours / 1000):.0f} MiB/s); tshark -z conv,tcp: {theirs} ms ({mib / (theirs / 1000):.0f} MiB/s); certbench is {theirs / ours:.1f}x tshark")
PY
