#!/usr/bin/env bash
# The MoLE training-step speed table of docs/benchmarks.md (issue #19): one step (forward,
# backward, AdamW over random ids, every row TOKENS long, the frozen states below the
# adapted layers cached) of CoPL on MiniLM, for every cell of the grid
#   TOKENS (128 512) × LAYERS (1 2 all: MoLE in the top K layers) × BATCHES (16 64 pairs),
# by the packed engine (`copl-train bench mole`) and, in turn with it, PyTorch training
# the same layers two ways (scripts/bench_forward_torch.py --train-step): PEFT's LoRA
# (q, v, r = 8: the anchor) and the same MoLE as ours (shared + 8 experts, a per-row
# mask; gates left out). candle's autograd (the reference engine) runs only where it
# takes under a minute (AUTOGRAD cells, "128/16" by default). Each engine in its own
# process, one cell after another, ROUNDS times. SKIP lists cells left out ("512/64/all":
# ≈ 20 GB of saved attention in PyTorch's all-layer step). torch, transformers and peft
# come from PyPI into $VENV unless SKIP_TORCH=1. BEFORE_BIN (a copl-train built from an
# earlier commit, e.g. in a git worktree) runs the packed step again in turn with ours, as
# the "before" column: a change measured side by side, same inputs, same minutes.
# Writes runs/mole-speed/*.json and prints the table (pairs/s; ours ÷ PEFT, ours ÷ before).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/mole-speed}
VENV=${VENV:-.venv-bench}
ROUNDS=${ROUNDS:-1}
TOKENS=${TOKENS:-128 512}
LAYERS=${LAYERS:-1 2 all}
BATCHES=${BATCHES:-16 64}
AUTOGRAD=${AUTOGRAD:-128/16}
SKIP=${SKIP:-512/64/all}
mkdir -p "$OUT"
scripts/fetch-backbone.sh minilm >/dev/null
# BIN: a copl-train built already (nothing is built); otherwise this tree's, built here
# with the package set of every release build here (one feature resolution: no rebuilds).
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
  BIN=./target/release/copl-train
fi
source scripts/lib/into.sh
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  "$VENV/bin/python" -c 'import torch, transformers, peft' 2>/dev/null ||
    { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch transformers peft; }
fi
for round in $(seq 1 "$ROUNDS"); do
  for tokens in $TOKENS; do
    for layers in $LAYERS; do
      flags=()
      [ "$layers" = all ] || flags=(--adapt-layers "$layers")
      for batch in $BATCHES; do
        cell="$tokens/$batch/$layers"
        [[ " $SKIP " == *" $cell "* ]] && continue
        name="t$tokens-b$batch-l$layers-r$round"
        engines=(packed)
        [[ " $AUTOGRAD " == *" $tokens/$batch "* ]] && engines+=(autograd)
        if [ -n "${BEFORE_BIN:-}" ]; then
          into "$OUT/before-$name.json" "$BEFORE_BIN" bench mole "${flags[@]}" \
            --batch-pairs "$batch" --tokens "$tokens" --steps 3 --engine packed --json
        fi
        for engine in "${engines[@]}"; do
          into "$OUT/$engine-$name.json" $BIN bench mole "${flags[@]}" --batch-pairs "$batch" \
            --tokens "$tokens" --steps 3 --engine "$engine" --json
        done
        if [ "${SKIP_TORCH:-0}" != 1 ]; then
          for adapter in peft mole; do
            into "$OUT/torch-$adapter-$name.json" "$VENV/bin/python" -W ignore \
              scripts/bench_forward_torch.py --backbone backbones/minilm --train-step \
              --adapter "$adapter" --adapt-layers "$layers" --tokens "$tokens" \
              --batch-pairs "$batch" --json
          done
        fi
      done
    done
  done
done

python3 - "$OUT" <<'PY'
import collections, glob, json, os, re, sys
out = sys.argv[1]
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(f"{out}/*-t*-b*-l*-r*.json")):
    engine, tokens, batch, layers, _ = re.match(
        r"(.+)-t(\d+)-b(\d+)-l(\w+)-r(\d+)\.json", os.path.basename(f)).groups()
    r = json.load(open(f))
    r = r[0] if isinstance(r, list) else r
    rows[(int(tokens), layers, int(batch))][engine].append(r["pairs_per_second"])
engines = ["packed", "before", "autograd", "torch-peft", "torch-mole"]
print("| tokens | MoLE in | pairs a step | packed | packed before | autograd | PyTorch + PEFT LoRA | PyTorch MoLE | packed ÷ PEFT | packed ÷ before |")
print("|---|---|---|---|---|---|---|---|---|---|")
order = {"1": 0, "2": 1, "all": 2}
for key in sorted(rows, key=lambda k: (k[0], order.get(k[1], 9), k[2])):
    tokens, layers, batch = key
    cells = rows[key]
    fmt = lambda e: " / ".join("%.1f" % x for x in cells[e]) if e in cells else "–"
    mean = lambda e: sum(cells[e]) / len(cells[e])
    ratio = lambda a, b: "%.2f×" % (mean(a) / mean(b)) if a in cells and b in cells else "–"
    label = "all layers" if layers == "all" else f"top {layers}"
    print(f"| {tokens} | {label} | {batch} | " + " | ".join(fmt(e) for e in engines)
          + f" | {ratio('packed', 'torch-peft')} | {ratio('packed', 'before')} |")
PY

# PROFILE=1: where the packed step's time goes (perf record -e cpu-clock over 8 steps of
# 16 pairs at 128 tokens, MoLE in the top 2 layers and in all; model load included),
# by kind of work (scripts/lib/perf_share.py).
if [ "${PROFILE:-0}" = 1 ]; then
  for layers in 2 all; do
    flags=()
    [ "$layers" = all ] || flags=(--adapt-layers "$layers")
    perf record -q -e cpu-clock -o "$OUT/perf-$layers.data" -- \
      $BIN bench mole "${flags[@]}" --batch-pairs 16 --tokens 128 --steps 8 --engine packed >/dev/null
    echo "packed step, MoLE in ${layers/2/the top 2} layers, 128 tokens, 16 pairs:"
    perf report -i "$OUT/perf-$layers.data" --stdio --sort dso,symbol --no-children 2>/dev/null |
      python3 scripts/lib/perf_share.py
  done
fi
