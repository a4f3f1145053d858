#!/usr/bin/env bash
# Soaks against copl-server, sampling its resident memory every 5 s. Two modes:
#
# MODE=overload (issue #10): copl bench far above capacity for DURATION s with a small
#   queue. Shows excess calls refused with RESOURCE_EXHAUSTED at once (the queue does not
#   grow), admitted calls' latency bounded by the queue, memory flat, nothing crashing.
#     CKPT=runs/demo/ckpt DURATION=180 QUEUE=128 CONCURRENCY=256 scripts/overload-soak.sh
#
# MODE=mixed (issue #15): normal Score traffic (copl bench, NORMAL concurrency, mixed
#   users) beside hostile traffic from the same run (scripts/hostile_client.py mixed,
#   HOSTILE workers: 4 MB responses with truncate, 4 MiB bodies without a key, a
#   grpc-timeout past any clock, batches over the item limit, over-long user ids, wrong
#   keys), with an API key configured. First IDLE s of normal traffic alone (the idle
#   p99), then DURATION s with the hostile traffic, the normal calls' latency taken per
#   minute. Writes $OUT/soak.json (typed by nothing but this script and its plot) and
#   $OUT/soak.png (RSS and the per-minute p99 against the idle p99), prints the figures.
#     MODE=mixed CKPT=runs/demo/ckpt DURATION=1800 OUT=runs/soak scripts/overload-soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-overload}
CKPT=${CKPT:-runs/demo/ckpt}
DURATION=${DURATION:-180}
QUEUE=${QUEUE:-128}
CONCURRENCY=${CONCURRENCY:-256}
PORT=${PORT:-50081}
OUT=${OUT:-runs/soak}
IDLE=${IDLE:-60}
NORMAL=${NORMAL:-4}
HOSTILE=${HOSTILE:-2}
[ -f "$CKPT/manifest.json" ] || { echo "no checkpoint at $CKPT (make demo makes one)" >&2; exit 2; }
source scripts/lib/serve.sh
WORK=$(mktemp -d)
HOSTILE_PID=""
trap 'kill $SERVER $SAMPLER $HOSTILE_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
sample_rss() {
  while kill -0 "$SERVER" 2>/dev/null; do
    echo "$(date +%s.%N) $(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")"
    sleep 5
  done
}

if [ "$MODE" = overload ]; then
  COPL_LIMITS__MAX_QUEUED_REQUESTS=$QUEUE start_server "$CKPT" "$PORT" "$WORK" "$WORK/log"
  USERS=$(seen_users "$CKPT" 8)
  sample_rss >"$WORK/rss" &
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
  exit 0
fi

[ "$MODE" = mixed ] || { echo "MODE is overload or mixed, not $MODE" >&2; exit 2; }
scripts/python-client.sh venv
mkdir -p "$OUT"
with_scoring_key "$WORK"
start_server "$CKPT" "$PORT" "$WORK/data" "$WORK/log"
USERS=$(seen_users "$CKPT" 8)
sample_rss >"$OUT/rss.txt" &
SAMPLER=$!
normal() { # normal SECONDS: copl bench's JSON report of normal Score calls, on one line
  "$BIN/copl" bench --concurrency "$NORMAL" --duration "$1" --users "$USERS" --api-key "$KEY" \
    --timeout 30 --json | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)))'
}
echo "mixed soak: $IDLE s of normal traffic alone, then $DURATION s beside hostile traffic"
start=$(date +%s.%N)
normal "$IDLE" >"$OUT/idle.json"
hostile_start=$(date +%s.%N)
.venv-client/bin/python scripts/hostile_client.py --addr "127.0.0.1:$PORT" --key "$KEY" \
  --concurrency "$HOSTILE" --duration "$DURATION" --pause 0.2 mixed >"$OUT/hostile.json" &
HOSTILE_PID=$!
: >"$OUT/minutes.jsonl"
for _ in $(seq 1 $((DURATION / 60))); do
  normal 60 >>"$OUT/minutes.jsonl"
done
wait "$HOSTILE_PID"
HOSTILE_PID=""
kill -0 "$SERVER" || { echo "the server died" >&2; cat "$WORK/log" >&2; exit 1; }
"$BIN/copl" health
grep -c '"message":"call refused"\|call refused' "$WORK/log" >"$OUT/refused-lines.txt" || true
kill "$SAMPLER" 2>/dev/null || true

# The figure: a scratch venv with matplotlib (PyPI).
[ -x .venv-plot/bin/python ] || { python3 -m venv .venv-plot && .venv-plot/bin/pip install -q matplotlib; }
.venv-plot/bin/python - "$OUT" "$start" "$hostile_start" "$DURATION" <<'PY'
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out, start, hostile_start, duration = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rss = [tuple(map(float, l.split())) for l in open(f"{out}/rss.txt") if len(l.split()) == 2]
idle = json.load(open(f"{out}/idle.json"))
minutes = [json.loads(l) for l in open(f"{out}/minutes.jsonl") if l.strip()]
hostile = json.load(open(f"{out}/hostile.json"))
t = [(a - start) / 60 for a, _ in rss]
mib = [k / 1024 for _, k in rss]
warm = [m for (a, _), m in zip(rss, mib) if a - hostile_start >= 300]  # after 5 minutes
summary = {
    "idle_p99_ms": idle["latency_ms"]["p99"],
    "soak_p99_ms_by_minute": [m["latency_ms"]["p99"] for m in minutes],
    "soak_p99_ms_worst_minute": max(m["latency_ms"]["p99"] for m in minutes),
    "normal_calls_ok": sum(m["calls_ok"] for m in minutes),
    "normal_errors": {k: sum(m["errors"].get(k, 0) for m in minutes)
                      for k in sorted({k for m in minutes for k in m["errors"]})},
    "hostile": hostile,
    "rss_mib_start": mib[0], "rss_mib_peak": max(mib), "rss_mib_end": mib[-1],
    "rss_mib_after_warmup_min": min(warm) if warm else None,
    "rss_mib_after_warmup_max": max(warm) if warm else None,
}
json.dump(summary, open(f"{out}/soak.json", "w"), indent=1)
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(t, mib, color="tab:blue", label="server RSS (MiB)")
ax.axvline((hostile_start - start) / 60, color="grey", ls=":", label="hostile traffic starts")
ax.set_xlabel("minutes"); ax.set_ylabel("RSS (MiB)"); ax.set_ylim(0, max(mib) * 1.2)
ax2 = ax.twinx()
xs = [(hostile_start - start) / 60 + i + 1 for i in range(len(minutes))]
ax2.plot(xs, summary["soak_p99_ms_by_minute"], "o-", color="tab:red", ms=3, label="p99 of normal Score, per minute (ms)")
ax2.axhline(idle["latency_ms"]["p99"], color="tab:red", ls="--", lw=1, label="idle p99 (ms)")
ax2.axhline(3 * idle["latency_ms"]["p99"], color="tab:red", ls=":", lw=1, label="3 × idle p99")
ax2.set_ylabel("p99 latency (ms)"); ax2.set_ylim(0, max(3.3 * idle["latency_ms"]["p99"], max(summary["soak_p99_ms_by_minute"]) * 1.1))
lines = ax.get_legend_handles_labels(); lines2 = ax2.get_legend_handles_labels()
ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower right", fontsize=8)
ax.set_title("copl-server: normal Score traffic beside hostile traffic")
fig.tight_layout(); fig.savefig(f"{out}/soak.png", dpi=110)
print(json.dumps({k: v for k, v in summary.items() if k != "soak_p99_ms_by_minute"}, indent=1))
PY
