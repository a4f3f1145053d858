#!/usr/bin/env bash
# The forward benchmark of docs/benchmarks.md: copl-train bench forward (candle) and the
# same forward in PyTorch (scripts/bench_forward_torch.py), on the default backbone.
# PyTorch and transformers are installed from PyPI into $VENV (about 5 GB) unless
# SKIP_TORCH=1. Writes runs/forward/{candle,torch}.json and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/forward}
VENV=${VENV:-.venv-bench}
REPEATS=${REPEATS:-2}
mkdir -p "$OUT"
scripts/fetch-backbone.sh minilm >/dev/null
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer
./target/release/copl-train bench forward --backbone backbones/minilm --repeats "$REPEATS" --json >"$OUT/candle.json"
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  [ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch transformers; }
  "$VENV/bin/python" scripts/bench_forward_torch.py --backbone backbones/minilm --repeats "$REPEATS" --json >"$OUT/torch.json" 2>/dev/null
fi
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
candle = json.load(open(f"{out}/candle.json"))
torch = json.load(open(f"{out}/torch.json")) if os.path.exists(f"{out}/torch.json") else []
t = {(r["variant"], r["batch"], r["tokens"]): r for r in torch}
print("| variant | batch | tokens | candle tokens/s | PyTorch tokens/s | candle / PyTorch |")
print("|---|---|---|---|---|---|")
for r in candle:
    k = (r["variant"], r["batch"], r["tokens"])
    p = t.get(k)
    ratio = f"{r['tokens_per_second'] / p['tokens_per_second']:.2f}" if p else "–"
    pt = f"{p['tokens_per_second']:.0f}" if p else "–"
    print(f"| {r['variant']} | {r['batch']} | {r['tokens']} | {r['tokens_per_second']:.0f} | {pt} | {ratio} |")
PY
