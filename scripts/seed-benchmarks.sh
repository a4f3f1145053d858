#!/usr/bin/env bash
# The cheap stages over several seeds (issue #9: mean ± std), at 1 000 seen users: each
# seed generates its own data (synth --seed), trains GCF and its baselines (MF on ufp4,
# GCF without negative edges on ufp2, the Table 6 / A4 comparisons) and onboards ufp4's
# unseen users (Table 5). A few minutes a seed on 2 cores. Writes
# $OUT/<set>-<model>-s<seed>.eval.json (eval-gcf) and $OUT/<set>-s<seed>.unseen.json
# (eval-unseen).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/report/seeds}
SEEDS=${SEEDS:-0 1 2}
USERS=${USERS:-1000}
mkdir -p "$OUT"
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
BIN=./target/release/copl-train
source scripts/lib/into.sh
source scripts/lib/gcf.sh
COMMON=("${GCF_CPU[@]}" --epochs "$(gcf_epochs "$USERS")")

for seed in $SEEDS; do
  for set in ufp4-all ufp4-avg ufp2-all; do
    data="$OUT/data-$set-s$seed"
    [ -f "$data/annotations.jsonl" ] ||
      $BIN synth --preset "${set%-*}" --sampling "${set#*-}" --users "$USERS" --seed "$seed" \
        --out "$data" >/dev/null
    case $set in
      ufp2-*) models="gcf no-neg" ;;
      *) models="gcf mf" ;;
    esac
    for model in $models; do
      name="$set-$model-s$seed"
      [ -f "$OUT/$name.eval.json" ] && continue
      case $model in
        gcf) flags=() ;;
        mf) flags=(--model mf) ;;
        no-neg) flags=(--no-negative-edges) ;;
      esac
      $BIN gcf --data "$data" --out "$OUT/ckpt-$name" "${COMMON[@]}" "${flags[@]}" --seed "$seed" \
        --json >/dev/null
      into "$OUT/$name.eval.json" $BIN eval-gcf --data "$data" --ckpt "$OUT/ckpt-$name" --json
    done
    if [[ $set == ufp4-* ]] && [ ! -f "$OUT/$set-s$seed.unseen.json" ]; then
      into "$OUT/$set-s$seed.unseen.json" \
        $BIN eval-unseen --data "$data" --ckpt "$OUT/ckpt-$set-gcf-s$seed" --json
    fi
  done
done
