#!/usr/bin/env bash
# The serving benchmark (issue #7): `copl bench` against a running copl-server at
# concurrency 1, 8 and 64, then the same work (the same text, the same users in turn)
# scored directly through copl_core::model in one process at batch 1, 8 and 64
# (`copl-bench serve`), level by level. Prints a markdown table with the server's
# overhead in throughput (1 - server calls/s / bare rows/s).
# The server is idle while the bare model runs (2 cores). ≈ 2.5 min at DURATION=20.
#   CKPT=runs/mole-bench/ckpt-copl DURATION=15 scripts/serve-benchmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-runs/mole-bench/ckpt-copl}
DURATION=${DURATION:-15}
PORT=${PORT:-50071}
LEVELS=${LEVELS:-1,8,64}
PROMPT=${PROMPT:-How should I prepare for a job interview next week?}
RESPONSE=${RESPONSE:-Research the company, practise answers to common questions out loud, and prepare two questions of your own.}
[ -f "$CKPT/manifest.json" ] || { echo "no checkpoint at $CKPT (scripts/mole-benchmarks.sh makes one)" >&2; exit 2; }
source scripts/lib/serve.sh
# Eight seen users, taken in turn by both sides.
USERS=$(seen_users "$CKPT" 8)
DATA=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
start_server "$CKPT" "$PORT" "$DATA" "$DATA/server.log"
echo "server ($CKPT, users $USERS, $DURATION s per level), then the bare model at the same"
echo "batch size (the idle server takes no CPU meanwhile):"
IFS=, read -ra levels <<<"$LEVELS"
echo "| concurrency / batch | server calls/s | p50 ms | p99 ms | bare rows/s | bare batch p50 ms | overhead |"
echo "|---|---|---|---|---|---|---|"
for c in "${levels[@]}"; do
  $BIN/copl bench --concurrency "$c" --duration "$DURATION" --users "$USERS" \
    --prompt "$PROMPT" --response "$RESPONSE" --json \
    | tr -d '\n ' >"$DATA/server.json"
  $BIN/copl-bench serve --ckpt "$CKPT" --batches "$c" --duration "$DURATION" \
    --users "$USERS" --prompt "$PROMPT" --response "$RESPONSE" --json | tr -d '\n ' >"$DATA/bare.json"
  field() { grep -o "\"$1\":[0-9.]*" "$2" | head -1 | grep -o '[0-9.]*$'; }
  errors=$(grep -o '"errors":{[^}]*}' "$DATA/server.json")
  [ "$errors" = '"errors":{}' ] || echo "server errors at concurrency $c: $errors" >&2
  awk -v c="$c" -v s="$(field calls_per_second "$DATA/server.json")" \
    -v p50="$(field p50 "$DATA/server.json")" -v p99="$(field p99 "$DATA/server.json")" \
    -v b="$(field rows_per_second "$DATA/bare.json")" -v bp="$(field p50_ms "$DATA/bare.json")" \
    'BEGIN { printf "| %s | %.1f | %.0f | %.0f | %.1f | %.0f | %.1f %% |\n", c, s, p50, p99, b, bp, 100 * (1 - s / b) }'
done
