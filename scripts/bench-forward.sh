#!/usr/bin/env bash
# The forward benchmark of docs/benchmarks.md (issue #11): copl-bench forward (our
# served forward, packed, and candle's reference forward) and the same forward in PyTorch
# (scripts/bench_forward_torch.py), in turn on the same inputs, on the default backbone.
# PyTorch and transformers are installed from PyPI into $VENV (about 5 GB) unless
# SKIP_TORCH=1. Writes runs/forward/{candle,torch}.json and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/forward}
VENV=${VENV:-.venv-bench}
REPEATS=${REPEATS:-3}
BATCHES=${BATCHES:-1,16,64}
TOKENS=${TOKENS:-128,512}
mkdir -p "$OUT"
scripts/fetch-backbone.sh minilm >/dev/null
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
./target/release/copl-bench forward --backbone backbones/minilm --repeats "$REPEATS" \
  --batches "$BATCHES" --tokens "$TOKENS" --json >"$OUT/candle.json"
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  [ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet torch transformers; }
  "$VENV/bin/python" scripts/bench_forward_torch.py --backbone backbones/minilm --repeats "$REPEATS" \
    --batches "$BATCHES" --tokens "$TOKENS" --json >"$OUT/torch.json" 2>/dev/null
fi
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
candle = json.load(open(f"{out}/candle.json"))
torch = json.load(open(f"{out}/torch.json")) if os.path.exists(f"{out}/torch.json") else []
key = lambda r: (r["variant"], r["batch"], r["tokens"], r["lengths"])
t = {key(r): r for r in torch}
ours = {key(r): r for r in candle if r["path"] == "packed"}
ref = {key(r): r for r in candle if r["path"] == "reference"}
print("tokens/s (real tokens; mixed = rows of different lengths, padded by the reference and PyTorch)")
print()
print("| variant | batch | tokens | lengths | packed (served) | candle reference | PyTorch | packed / PyTorch | reference / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|")
for k, r in ours.items():
    p, c = t.get(k), ref.get(k)
    tps = lambda x: f"{x['tokens_per_second']:.0f}" if x else "–"
    ratio = lambda x: f"{x['tokens_per_second'] / p['tokens_per_second']:.2f}" if x and p else "–"
    print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {tps(r)} | {tps(c)} | {tps(p)} | {ratio(r)} | {ratio(c)} |")
print()
print("batch 1 latency, ms (one forward)")
print()
print("| variant | tokens | lengths | packed | candle reference | PyTorch |")
print("|---|---|---|---|---|---|")
for k, r in ours.items():
    if k[1] != 1:
        continue
    ms = lambda x: f"{1000 * x['seconds']:.1f}" if x else "–"
    print(f"| {k[0]} | {k[2]} | {k[3]} | {ms(r)} | {ms(ref.get(k))} | {ms(t.get(k))} |")
PY
