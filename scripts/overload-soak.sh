#!/usr/bin/env bash
# Overload soak (issue #10): copl bench far above capacity for minutes against
# copl-server with a small queue, sampling the server's resident memory. What it shows:
# excess calls get RESOURCE_EXHAUSTED at once (the queue does not grow), admitted calls'
# latency stays bounded by the queue, memory stays flat, nothing crashes.
#   CKPT=runs/demo/ckpt DURATION=180 QUEUE=128 CONCURRENCY=256 scripts/overload-soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-runs/demo/ckpt}
DURATION=${DURATION:-180}
QUEUE=${QUEUE:-128}
CONCURRENCY=${CONCURRENCY:-256}
PORT=${PORT:-50081}
[ -f "$CKPT/manifest.json" ] || { echo "no checkpoint at $CKPT (make demo makes one)" >&2; exit 2; }
source scripts/lib/serve.sh
WORK=$(mktemp -d)
trap 'kill $SERVER $SAMPLER 2>/dev/null || true; rm -rf "$WORK"' EXIT
COPL_LIMITS__MAX_QUEUED_REQUESTS=$QUEUE start_server "$CKPT" "$PORT" "$WORK" "$WORK/log"
USERS=$(seen_users "$CKPT" 8)
( while kill -0 $SERVER 2>/dev/null; do
    echo "$(date +%s) $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)"
    sleep 5
  done ) >"$WORK/rss" &
SAMPLER=$!
echo "soak: queue $QUEUE, concurrency $CONCURRENCY, $DURATION s against $CKPT"
$BIN/copl bench --concurrency "$CONCURRENCY" --duration "$DURATION" --users "$USERS" \
  --timeout 30 --json | tee "$WORK/bench.json"
kill -0 $SERVER || { echo "the server died" >&2; cat "$WORK/log" >&2; exit 1; }
$BIN/copl health
echo "server RSS (MiB) every 5 s: $(awk '{ printf "%.0f ", $2 / 1024 }' "$WORK/rss")"
awk 'NR == 1 { first = $2 } { if ($2 > max) max = $2; last = $2 }
     END { printf "server RSS: %.0f MiB at start, %.0f MiB peak, %.0f MiB at the end (%d samples)\n",
           first / 1024, max / 1024, last / 1024, NR }' "$WORK/rss"
