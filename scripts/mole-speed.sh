#!/usr/bin/env bash
# The MoLE training-step speed table of docs/benchmarks.md (issue #19): one step
# (forward, backward, AdamW; batch BATCH pairs of TOKENS random ids; frozen states
# cached) of CoPL on MiniLM by the packed engine and candle's autograd, MoLE in all
# layers and in the top 2, and PyTorch (scripts/bench_forward_torch.py --train-step:
# the same MoLE in every layer, no gates), each in its own process in turn, ROUNDS
# times. PyTorch and transformers come from PyPI into $VENV unless SKIP_TORCH=1.
# Writes runs/mole-speed/*.json and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/mole-speed}
VENV=${VENV:-.venv-bench}
ROUNDS=${ROUNDS:-2}
BATCH=${BATCH:-16}
TOKENS=${TOKENS:-128}
mkdir -p "$OUT"
scripts/fetch-backbone.sh minilm >/dev/null
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer
BIN=./target/release/copl-train
source scripts/lib/into.sh
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  "$VENV/bin/python" -c 'import torch, transformers' 2>/dev/null ||
    { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch transformers; }
fi
for round in $(seq 1 "$ROUNDS"); do
  for layers in all top2; do
    flags=()
    [ "$layers" = top2 ] && flags=(--adapt-layers 2)
    for engine in packed autograd; do
      into "$OUT/$engine-$layers-r$round.json" $BIN bench mole "${flags[@]}" --batch-pairs "$BATCH" \
        --tokens "$TOKENS" --steps 3 --engine "$engine" --json
    done
  done
  if [ "${SKIP_TORCH:-0}" != 1 ]; then
    into "$OUT/torch-all-r$round.json" "$VENV/bin/python" -W ignore scripts/bench_forward_torch.py \
      --backbone backbones/minilm --train-step --tokens "$TOKENS" --json
  fi
done

python3 - "$OUT" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(f"{out}/*-r*.json")):
    r = json.load(open(f))
    r = r[0] if isinstance(r, list) else r
    rows.setdefault(os.path.basename(f).rsplit("-r", 1)[0], []).append(r["pairs_per_second"])
print("| MoLE in | engine | pairs/s (each round) |")
print("|---|---|---|")
for name in ["packed-all", "autograd-all", "torch-all", "packed-top2", "autograd-top2"]:
    if name in rows:
        engine, layers = name.split("-")
        label = {"all": "all layers", "top2": "top 2 layers"}[layers]
        engine = {"torch": "PyTorch"}.get(engine, engine)
        print(f"| {label} | {engine} | {' / '.join('%.1f' % x for x in rows[name])} |")
PY
