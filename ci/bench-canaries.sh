#!/usr/bin/env bash
# P7: the COM-04 canary search of a recorded capture against tshark's `frame contains`, on
# the same file in the same run. A timing counts only when the run it timed was valid:
# certbench finds the planted value in clear in exactly the frames tshark finds it in, and
# its base64 copies as often as the generator wrote them.
#
#   bash ci/bench-canaries.sh [MEGABYTES]     (default 120; needs tshark)
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-120}
cargo build --release -q
bin=${CARGO_TARGET_DIR:-target}/release/certbench
[ -x "$bin" ] || bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/certbench
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cap=$tmp/p7.pcapng
value=owner.q7x2k9m4v8@example.test
want=$(python3 ci/make_capture.py "$cap" "$mb" "$value")
size=$(stat -c %s "$cap")
echo "capture: $(( size / 1048576 )) MiB; generator wrote: $(echo "$want" | head -1)"
# 16 values: the planted one and 15 that are nowhere in the file
{
    echo "owner_email:personal=$value"
    for i in $(seq 1 15); do echo "other_$i=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"; done
} > "$tmp/values"

out=$("$bin" canaries "$cap" --values "$tmp/values" --device 198.18.0.2 || true)
raw_want=$(echo "$want" | head -1 | tr ' ' '\n' | sed -n 's/^value_raw=//p')
b64_want=$(echo "$want" | head -1 | tr ' ' '\n' | sed -n 's/^value_base64=//p')
ours=$(echo "$out" | grep '^owner_email' | grep 'raw encoding' | grep -o 'frame.number in {[0-9, ]*}' | tr -dc '0-9 \n' | tr ' ' '\n' | sed '/^$/d' | sort -n | tr '\n' ' ')
theirs=$(tshark -r "$cap" -Y "frame contains \"$value\"" -T fields -e frame.number 2>/dev/null | sort -n | tr '\n' ' ')
b64=$(echo "$out" | grep '^owner_email' | grep -c 'base64 encoding' || true)
others=$(echo "$out" | grep -c '^other_' || true)
echo "frames with the value in clear: certbench $(echo "$ours" | wc -w), tshark $(echo "$theirs" | wc -w), the same frames: $([ "$ours" = "$theirs" ] && echo yes || echo no); base64 copies: $b64"
[ -n "$ours" ] && [ "$ours" = "$theirs" ] || { echo "INVALID: the frames differ" >&2; exit 1; }
[ "$(echo "$ours" | wc -w)" = "$raw_want" ] || { echo "INVALID: $raw_want planted in clear" >&2; exit 1; }
[ "$b64" = "$b64_want" ] || { echo "INVALID: certbench found $b64 base64 copies, the generator wrote $b64_want" >&2; exit 1; }
[ "$others" = 0 ] || { echo "INVALID: a value that is nowhere in the file was found" >&2; exit 1; }

best() { # best of 3 wall times in ms
    local b=999999999
    for _ in 1 2 3; do
        local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s%N)
        local ms=$(( (t1 - t0) / 1000000 )); [ $ms -lt $b ] && b=$ms
    done
    echo $b
}
peak() { # peak resident memory in MiB (the search exits 1: it found the value)
    { /usr/bin/time -f %M "$@" >/dev/null 2>"$tmp/time" || true; } ; tail -1 "$tmp/time" | awk '{printf "%d", $1/1024}'
}
t_ours=$(best "$bin" canaries "$cap" --values "$tmp/values" --device 198.18.0.2 --quiet)
t_theirs=$(best tshark -r "$cap" -Y "frame contains \"$value\"")
mem=$(peak "$bin" canaries "$cap" --values "$tmp/values" --device 198.18.0.2 --quiet)
python3 - "$size" "$t_ours" "$t_theirs" "$mem" <<'PY'
import sys
size, ours, theirs, mem = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
mib = size / 1048576
print(f"certbench canaries (16 values x every encoding, TCP reassembled): {ours} ms ({mib / (ours / 1000):.0f} MiB/s), peak {mem} MiB; "
      f"tshark -Y 'frame contains' (one value, raw only): {theirs} ms ({mib / (theirs / 1000):.0f} MiB/s); certbench is {theirs / ours:.1f}x tshark")
PY
