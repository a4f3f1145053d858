#!/usr/bin/env bash
# What a hostile request costs the server (issue #15's "done when"), on a checkpoint
# (the demo's by default: `make demo`), with an API key configured:
#   - a Score with a 4 MB response and truncate: true — CPU per call (20 in turn; the
#     server's utime + stime from /proc, 10 ms ticks) and memory (peak RSS above the
#     RSS before it, one call; VmHWM reset through /proc/PID/clear_refs);
#   - 64 such calls at once: the server's peak RSS;
#   - a 4 MiB ScoreBatch body (two million empty items) without a key: peak RSS above
#     the RSS before, one call and 64 at once, and CPU per call.
# Prints one markdown table (docs/benchmarks.md "What a hostile request costs").
#   CKPT=runs/demo/ckpt scripts/hostile-costs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-runs/demo/ckpt}
PORT=${PORT:-50091}
BYTES=${BYTES:-4000000}
[ -f "$CKPT/manifest.json" ] || { echo "no checkpoint at $CKPT (make demo makes one)" >&2; exit 2; }
scripts/python-client.sh venv
PY=.venv-client/bin/python
source scripts/lib/serve.sh
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
with_scoring_key "$WORK"
start_server "$CKPT" "$PORT" "$WORK/data" "$WORK/log" >/dev/null

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$SERVER/status"; }
reset_hwm() { echo 5 >"/proc/$SERVER/clear_refs"; }
# The server's CPU so far, ms (utime + stime: fields 14 and 15 of /proc/PID/stat).
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / hz }' "/proc/$SERVER/stat"; }
hostile() { "$PY" scripts/hostile_client.py --addr "127.0.0.1:$PORT" --key "$KEY" "$@"; }

# Warm-up: the first calls build the packed model and the tokenizer's caches.
hostile big --bytes "$BYTES" --count 3 >"$WORK/warm.json"
idle=$(rss_kib)

before=$(rss_kib); reset_hwm
hostile big --bytes "$BYTES" --count 1 >"$WORK/big1.json"
big_one=$(($(hwm_kib) - before))
c0=$(cpu_ms)
hostile big --bytes "$BYTES" --count 20 >"$WORK/big20.json"
big_cpu=$(awk -v a="$c0" -v b="$(cpu_ms)" 'BEGIN { printf "%.1f", (b - a) / 20 }')
reset_hwm
hostile big --bytes "$BYTES" --count 64 --concurrency 64 >"$WORK/big64.json"
big_peak=$(hwm_kib)

before=$(rss_kib); reset_hwm
hostile unauth --count 1 >"$WORK/unauth1.json"
unauth_one=$(($(hwm_kib) - before))
before=$(rss_kib); reset_hwm; c0=$(cpu_ms)
hostile unauth --count 64 --concurrency 64 >"$WORK/unauth64.json"
unauth_64=$(($(hwm_kib) - before))
unauth_cpu=$(awk -v a="$c0" -v b="$(cpu_ms)" 'BEGIN { printf "%.1f", (b - a) / 64 }')

codes() { "$PY" -c 'import json,sys; print(", ".join(f"{k} × {v}" for k, v in json.load(open(sys.argv[1]))["codes"].items()))' "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "server $CKPT, idle RSS after warm-up $(mib "$idle") MiB; a response of $BYTES bytes"
echo
echo "| request | answered | measure | value | bar |"
echo "|---|---|---|---|---|"
echo "| Score, $BYTES-byte response, truncate, one call | $(codes "$WORK/big1.json") | peak RSS above the RSS before | $(mib "$big_one") MiB | < 3× its size ($(mib $((3 * BYTES / 1024))) MiB) |"
echo "| the same, 20 in turn | $(codes "$WORK/big20.json") | server CPU a call | $big_cpu ms | < 50 ms |"
echo "| the same, 64 at once | $(codes "$WORK/big64.json") | server peak RSS | $(mib "$big_peak") MiB | < 1.5 GB |"
echo "| ScoreBatch, 4 MiB of empty items, no key, one call | $(codes "$WORK/unauth1.json") | peak RSS above the RSS before | $(mib "$unauth_one") MiB | < 10 MB |"
echo "| the same, 64 at once | $(codes "$WORK/unauth64.json") | peak RSS above the RSS before (all 64), CPU a call | $(mib "$unauth_64") MiB, $unauth_cpu ms | < 10 MB a call |"
