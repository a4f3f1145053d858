#!/usr/bin/env bash
# The GCF step's speed table of docs/benchmarks.md (issue: GCF speed to the arithmetic):
# one training step (full-graph propagation at batch 1 024, backward, AdamW) on ufp4-avg
# (the sparse catalogue: the graph of the first table, 55 797 nodes) at 10 000 users,
# d = 64 and 512, by our fused step (all layer inputs kept, and every other one), candle's
# autograd (the reference) and PyTorch (scripts/bench_gcf_torch.py, same network, graph
# and threads) in turn, ROUNDS times; then at LARGER users (ufp4-avg, 100 000 by default)
# ours and PyTorch at d = 64; then our fused step with every other layer input on a
# generated graph of GENERATED users (1 000 000 by default; 16 answers a user, ufp4's
# shape) at d = 64. Each measurement is its own process (its own peak RSS). PyTorch comes
# from PyPI into $VENV unless SKIP_TORCH=1. Writes runs/gcf-speed/*.json, prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gcf-speed}
VENV=${VENV:-.venv-bench}
ROUNDS=${ROUNDS:-2}
DIMS=${DIMS:-64 512}
STEPS=${STEPS:-3}
LARGER=${LARGER:-100000}
GENERATED=${GENERATED:-1000000}
mkdir -p "$OUT"
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
BIN=./target/release/copl-train
source scripts/lib/into.sh
data() { # users → directory of ufp4-avg (sparse catalogue) at that many users
  local dir=$OUT/data-ufp4-avg${2:-}
  [ -f "$dir/annotations.jsonl" ] ||
    $BIN synth --preset ufp4 --catalogue sparse --sampling avg --users "$1" --seed 0 --out "$dir" >/dev/null
  echo "$dir"
}
DATA=$(data 10000)
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  [ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch; }
fi
torch() { # data dim output
  [ "${SKIP_TORCH:-0}" = 1 ] ||
    into "$3" "$VENV/bin/python" -W ignore scripts/bench_gcf_torch.py --data "$1" --dim "$2" --steps "$STEPS" --threads "$(nproc)"
}
for round in $(seq 1 "$ROUNDS"); do
  for dim in $DIMS; do
    steps=$STEPS
    into "$OUT/fused-d$dim-r$round.json" $BIN bench gcf --data "$DATA" --dim "$dim" --steps "$steps" --engine fused --json
    into "$OUT/fused-every-other-d$dim-r$round.json" $BIN bench gcf --data "$DATA" --dim "$dim" --steps "$steps" --engine fused --layer-inputs every-other --json
    # The reference is slow at d = 512 (≈ 10 s a step): one timed step there.
    [ "$dim" -ge 256 ] && steps=1
    into "$OUT/autograd-d$dim-r$round.json" $BIN bench gcf --data "$DATA" --dim "$dim" --steps "$steps" --engine autograd --json
    torch "$DATA" "$dim" "$OUT/torch-d$dim-r$round.json"
  done
done
if [ "$LARGER" -gt 0 ]; then
  LARGE=$(data "$LARGER" "-$LARGER")
  into "$OUT/large-fused.json" $BIN bench gcf --data "$LARGE" --dim 64 --steps 2 --engine fused --json
  into "$OUT/large-fused-every-other.json" $BIN bench gcf --data "$LARGE" --dim 64 --steps 2 --engine fused --layer-inputs every-other --json
  torch "$LARGE" 64 "$OUT/large-torch.json"
fi
[ "$GENERATED" -gt 0 ] &&
  into "$OUT/generated-fused-every-other.json" $BIN bench gcf --users "$GENERATED" --answers 16 --dim 64 --steps 1 --engine fused --layer-inputs every-other --json

python3 - "$OUT" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
def label(r):
    kept = r.get("layer_inputs", "all")
    return r["engine"] + ("" if kept == "all" or r["engine"] != "fused" else f" ({kept} layer inputs)")
rows = {}
for f in sorted(glob.glob(f"{out}/*-r*.json")):
    r = json.load(open(f))
    name = os.path.basename(f).rsplit("-r", 1)[0]
    rows.setdefault(name, []).append(r)
print("| users | d | engine | s/step (each round) | eq. 2 GEMMs, GFLOP | peak RSS MiB |")
print("|---|---|---|---|---|---|")
for name, rs in rows.items():
    g = rs[0].get("gemm_gflop_per_step")
    times = " / ".join("%.3f" % r["seconds_per_step"] for r in rs)
    gemm = "–" if g is None else "%.1f" % g
    peak = max(r["peak_rss_mib"] or 0 for r in rs)
    print(f"| 10 000 | {rs[0]['dim']} | {label(rs[0])} | {times} | {gemm} | {peak:.0f} |")
for f in ["large-fused", "large-fused-every-other", "large-torch", "generated-fused-every-other"]:
    p = f"{out}/{f}.json"
    if not os.path.exists(p):
        continue
    r = json.load(open(p))
    users = r.get("users")
    users = f"{users:,}".replace(",", " ") if users else "(as above)"
    if f.startswith("generated"):
        users += " (generated)"
    g = r.get("gemm_gflop_per_step")
    gemm = "–" if g is None else "%.1f" % g
    print(f"| {users} | {r['dim']} | {label(r)} | {r['seconds_per_step']:.2f} | {gemm} | {r['peak_rss_mib'] or 0:.0f} |")
PY
