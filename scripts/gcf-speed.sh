#!/usr/bin/env bash
# The GCF step's speed table of docs/benchmarks.md (issue: GCF speed to the arithmetic):
# one training step (full-graph propagation at batch 1 024, backward, AdamW) on ufp4-avg
# at 10 000 users, d = 64 and 512, by our fused step, candle's autograd (the reference)
# and PyTorch (scripts/bench_gcf_torch.py, same network, graph and threads) in turn,
# ROUNDS times; then the fused step on a generated graph of GENERATED users (16 answers a
# user, ufp4's shape) at d = 64. GENERATED defaults to 250 000: the step's memory grows
# linearly with the nodes and 1 000 000 users would need ≈ 4× the measured peak, over
# this machine's 24 GiB today (docs/gcf.md, "What is left"). Each measurement is its own process (its own peak RSS). PyTorch comes
# from PyPI into $VENV unless SKIP_TORCH=1. Writes runs/gcf-speed/*.json, prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gcf-speed}
VENV=${VENV:-.venv-bench}
ROUNDS=${ROUNDS:-2}
DIMS=${DIMS:-64 512}
STEPS=${STEPS:-3}
GENERATED=${GENERATED:-250000}
mkdir -p "$OUT"
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer
BIN=./target/release/copl-train
source scripts/lib/into.sh
DATA=$OUT/data-ufp4-avg
[ -f "$DATA/synth.json" ] ||
  $BIN synth --preset ufp4 --sampling avg --users 10000 --seed 0 --out "$DATA" >/dev/null
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  [ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch; }
fi
for round in $(seq 1 "$ROUNDS"); do
  for dim in $DIMS; do
    steps=$STEPS
    into "$OUT/fused-d$dim-r$round.json" $BIN bench gcf --data "$DATA" --dim "$dim" --steps "$steps" --engine fused --json
    # The reference is slow at d = 512 (≈ 70 s a step): one timed step there.
    [ "$dim" -ge 256 ] && steps=1
    into "$OUT/autograd-d$dim-r$round.json" $BIN bench gcf --data "$DATA" --dim "$dim" --steps "$steps" --engine autograd --json
    if [ "${SKIP_TORCH:-0}" != 1 ]; then
      into "$OUT/torch-d$dim-r$round.json" "$VENV/bin/python" -W ignore scripts/bench_gcf_torch.py --data "$DATA" --dim "$dim" --steps "$STEPS" --threads "$(nproc)"
    fi
  done
done
[ "$GENERATED" -gt 0 ] &&
  into "$OUT/fused-generated-d64.json" $BIN bench gcf --users "$GENERATED" --answers 16 --dim 64 --steps 1 --engine fused --json

python3 - "$OUT" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(f"{out}/*-r*.json")):
    r = json.load(open(f))
    name = os.path.basename(f).rsplit("-r", 1)[0]
    rows.setdefault(name, []).append(r)
print("| d | engine | s/step (each round) | eq. 2 GEMMs, GFLOP | peak RSS MiB |")
print("|---|---|---|---|---|")
for name, rs in rows.items():
    g = rs[0].get("gemm_gflop_per_step")
    times = " / ".join("%.3f" % r["seconds_per_step"] for r in rs)
    gemm = "–" if g is None else "%.1f" % g
    peak = max(r["peak_rss_mib"] or 0 for r in rs)
    print(f"| {rs[0]['dim']} | {rs[0]['engine']} | {times} | {gemm} | {peak:.0f} |")
m = f"{out}/fused-generated-d64.json"
if os.path.exists(m):
    r = json.load(open(m))
    print(f"\n{r['users']} users (generated, {r['responses']} responses, {r['positive_edges']} + {r['negative_edges']} edges), d = 64, fused: {r['seconds_per_step']:.2f} s a step, peak RSS {r['peak_rss_mib']:.0f} MiB, graph built in {r['graph_seconds']:.1f} s")
PY
