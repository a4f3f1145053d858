#!/usr/bin/env bash
# MoLE reward-model accuracy (issue #6; paper Tables 2-4 in kind), one command:
# a synthetic benchmark (PRESET, default ufp2: UF-P-2-like) with common pairs and unseen
# users, GCF, then the
# reward model as CoPL, Uniform, the w/o-MoLE ablation (user token) and CoPL over
# matrix-factorisation embeddings (the paper's w/o-GNN row, "copl-mf"), each evaluated
# on seen users and on unseen users onboarded from their answers (eq. 11), overall, per
# group, controversial versus common. Writes runs/mole-bench/*.json and prints the
# markdown table of docs/benchmarks.md. About 1 h on 2 cores (settings in the table).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/mole-bench}
PRESET=${PRESET:-ufp2}
# 30 % of catalogue pairs common to all groups (Table 3's split); tldr has none (its groups
# disagree on every pair of different lengths).
COMMON_SHARE=${COMMON_SHARE:-$([ "$PRESET" = tldr ] && echo 0 || echo 0.3)}
USERS=${USERS:-2000}
STEPS=${STEPS:-200}
TOKENS=${TOKENS:-128}
LAYERS=${LAYERS:-2}
TEST=${TEST:-512}
mkdir -p "$OUT"
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer
BIN=./target/release/copl-train
[ -d backbones/minilm ] || scripts/fetch-backbone.sh minilm

[ -f "$OUT/data/synth.json" ] ||
  $BIN synth --preset "$PRESET" --users "$USERS" --unseen-users 100 --common-share "$COMMON_SHARE" \
    --seed 0 --out "$OUT/data" >/dev/null
[ -f "$OUT/gcf.json" ] ||
  $BIN gcf --data "$OUT/data" --out "$OUT/ckpt-gcf" --dim 64 --epochs 200 --lr 1e-2 \
    --batch-size 1000000 --json >"$OUT/gcf.json"

[ -f "$OUT/mf.json" ] ||
  $BIN gcf --data "$OUT/data" --out "$OUT/ckpt-mf" --model mf --dim 64 --epochs 200 --lr 1e-2 \
    --batch-size 1000000 --json >"$OUT/mf.json"

for variant in copl uniform user-token copl-mf; do
  [ -f "$OUT/$variant.eval.json" ] && continue
  # copl-mf: CoPL's reward model over the MF checkpoint's user embeddings (w/o GNN).
  if [ "$variant" = copl-mf ]; then embeddings=ckpt-mf model=copl; else embeddings=ckpt-gcf model=$variant; fi
  $BIN mole --data "$OUT/data" --ckpt "$OUT/$embeddings" --out "$OUT/ckpt-$variant" \
    --variant "$model" --adapt-layers "$LAYERS" --max-tokens "$TOKENS" \
    --steps "$STEPS" --batch-pairs 16 --lr 5e-4 --eval-every 50 --val-pairs 128 \
    --test-pairs "$TEST" --json >"$OUT/$variant.json"
  $BIN eval --data "$OUT/data" --ckpt "$OUT/ckpt-$variant" --test-pairs "$TEST" \
    --json >"$OUT/$variant.eval.json"
done

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def pct(s): return "–" if s is None else f"{100*s['accuracy']:.2f}"
print("| variant | seen all | seen controversial | seen common | unseen all | unseen controversial | unseen common | mole test | pairs/s | cache hit rate |")
print("|---|---|---|---|---|---|---|---|---|---|")
for v in ["copl", "uniform", "user-token", "copl-mf"]:
    t = json.load(open(os.path.join(out, v + ".json")))
    e = json.load(open(os.path.join(out, v + ".eval.json")))
    s, u = e["seen"], e.get("unseen") or {}
    print(f"| {v} | {pct(s['overall'])} | {pct(s.get('controversial'))} | {pct(s.get('common'))} "
          f"| {pct(u.get('overall'))} | {pct(u.get('controversial'))} | {pct(u.get('common'))} "
          f"| {100*t['test_accuracy']:.2f} | {t['pairs_per_second']:.2f} | {t['frozen_cache_hit_rate']:.2f} |")
print()
print("| variant | group | seen | unseen |")
print("|---|---|---|---|")
for v in ["copl", "uniform", "user-token", "copl-mf"]:
    e = json.load(open(os.path.join(out, v + ".eval.json")))
    for g, s in e["seen"]["by_group"].items():
        u = (e.get("unseen") or {}).get("by_group", {}).get(g)
        print(f"| {v} | {g} | {pct(s)} | {pct(u)} |")
PY
