#!/usr/bin/env bash
# The hot swap under load (issue #18 item 5): copl-server on CKPT, `copl bench` at
# CONCURRENCY for DURATION seconds twice — once as it is (the baseline), once with a
# ReloadCheckpoint of CKPT2 (default: CKPT itself, read again: a full load all the same)
# a third of the way in. Prints calls/s, p50/p99 latency, failed calls and the server's
# peak resident memory (VmHWM, reset before each run) of both runs, the reload's load
# time and how long the old model took to drain. ≈ 2 × DURATION + 30 s.
#   CKPT=runs/demo-quick/ckpt DURATION=30 scripts/swap-benchmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-runs/demo-quick/ckpt}
CKPT2=${CKPT2:-$CKPT}
DURATION=${DURATION:-30}
CONCURRENCY=${CONCURRENCY:-64}
PORT=${PORT:-50073}
[ -f "$CKPT/manifest.json" ] || { echo "no checkpoint at $CKPT (scripts/demo.sh makes runs/demo-quick)" >&2; exit 2; }
source scripts/lib/serve.sh
USERS=$(seen_users "$CKPT" 8)
DATA=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
start_server "$CKPT" "$PORT" "$DATA" "$DATA/server.log" >/dev/null
field() { grep -o "\"$1\":[0-9.]*" "$2" | head -1 | grep -o '[0-9.]*$'; }
peak_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER/status"; }
bench() {
  $BIN/copl bench --concurrency "$CONCURRENCY" --duration "$DURATION" --users "$USERS" --json \
    | tr -d '\n ' >"$1"
}
row() {
  local errors
  errors=$(grep -o '"errors":{[^}]*}' "$2" | sed 's/"errors"://')
  echo "| $1 | $(field calls_per_second "$2") | $(field p50 "$2") | $(field p99 "$2") | $errors | $3 |"
}
$BIN/copl bench --concurrency "$CONCURRENCY" --duration 5 --users "$USERS" >/dev/null # warm
echo 5 >"/proc/$SERVER/clear_refs"
bench "$DATA/base.json"
base_peak=$(peak_mib)
echo 5 >"/proc/$SERVER/clear_refs"
bench "$DATA/swap.json" &
LOAD=$!
sleep "$(awk -v d="$DURATION" 'BEGIN {print d / 3}')"
$BIN/copl reload --checkpoint "$(realpath "$CKPT2")" --json | tr -d '\n ' >"$DATA/reload.json"
wait $LOAD
swap_peak=$(peak_mib)
sleep 1 # the old model's last calls
drained=$(sed 's/\x1b\[[0-9;]*m//g' "$DATA/server.log" | grep -o 'drained_ms=[0-9]*' | tail -1 | cut -d= -f2)
echo "copl-server on $CKPT, copl bench at concurrency $CONCURRENCY for $DURATION s per run;"
echo "the reload ($CKPT2) a third of the way into the second run:"
echo
echo "| run | calls/s | p50 ms | p99 ms | failed calls | peak RSS MiB |"
echo "|---|---|---|---|---|---|"
row "baseline" "$DATA/base.json" "$base_peak"
row "with a reload" "$DATA/swap.json" "$swap_peak"
echo
echo "reload: loaded and warmed in $(field load_ms "$DATA/reload.json") ms beside the serving model;"
echo "the old model's last call ended ${drained:-?} ms after the swap (then freed)."
