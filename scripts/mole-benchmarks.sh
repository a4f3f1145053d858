#!/usr/bin/env bash
# MoLE reward-model accuracy (issue #6; paper Tables 2-4 in kind), one command:
# a synthetic benchmark (PRESET, default ufp2: UF-P-2-like) with common pairs and unseen
# users, GCF, then the
# reward model as CoPL, Uniform, the w/o-MoLE ablation (user token) and CoPL over
# matrix-factorisation embeddings (the paper's w/o-GNN row, "copl-mf"), each evaluated
# on seen users and on unseen users onboarded from their answers (eq. 11), overall, per
# group, controversial versus common. Writes runs/mole-bench/*.json and prints the
# markdown table of docs/benchmarks.md. STEPS and BATCH default to the recipe
# (scripts/lib/mole.sh); 10–35 min a model on 2 cores.
# Also the report's grid (scripts/report.sh): SAMPLING all|avg, RATIO (seen users' group
# sizes, e.g. 1:9, the paper's Fig. 4), UNSEEN (unseen users; 0 skips onboarding),
# VARIANTS (a subset, or copl-lb / copl-inv / copl-focal: CoPL with the gate load-balancing
# loss or minority re-weighting; g-oracle: the paper's G-Oracle, a Uniform model per
# group; copl-oracle: CoPL routed by each seen user's ground-truth group, issue #13's
# diagnostic, its own test figure only: no model, no eval; copl-oracle-soft: a mixture
# user on every component's expert at their weight (soft routing, the autograd engine;
# ENGINE must not be packed); copl-kmeans: CoPL with its gates
# started on k-means clusters of the GCF embeddings, --gate-init kmeans, which plain copl
# does too by default; copl-random: the paper's random gates), SEED and EVAL_ARGS (copl-train eval's, e.g. --per-group); BATCH (pairs a step),
# ENGINE (auto: packed where it runs; packed: the hand-written backward, ≈ 3× faster;
# autograd: candle's), EVAL_EVERY, LR and WARMUP (share of steps; `copl-train mole`'s),
# RANK (every expert's LoRA rank, α = 2r; the paper's baselines use 64), GCF_EPOCHS (GCF's
# and MF's full-batch epochs; scripts/lib/gcf.sh's gcf_epochs by default), HELDOUT (synth
# --heldout-prompts: a share of prompts no training pair has; half the test pairs are on
# their texts, and a third table splits seen texts from new texts), NOISE (synth
# --label-noise: the share of labels flipped, annotator noise, test labels alike: the
# data's summary gives the share left unflipped, the ceiling of any model), GCF_ARGS
# (more `copl-train gcf` flags, e.g. --keep-last; not MF's).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/mole-bench}
PRESET=${PRESET:-ufp2}
# 30 % of catalogue pairs common to all groups (Table 3's split); tldr has none (its groups
# disagree on every pair of different lengths).
COMMON_SHARE=${COMMON_SHARE:-$([ "$PRESET" = tldr ] && echo 0 || echo 0.3)}
USERS=${USERS:-2000}
source scripts/lib/mole.sh
# The recipe's budget for the preset (scripts/lib/mole.sh) unless told.
STEPS=${STEPS:-$(mole_recipe_steps "$PRESET")}
TOKENS=${TOKENS:-128}
LAYERS=${LAYERS:-2}
TEST=${TEST:-512}
SAMPLING=${SAMPLING:-all}
RATIO=${RATIO:-}
UNSEEN=${UNSEEN:-100}
SEED=${SEED:-0}
VARIANTS=${VARIANTS:-copl uniform user-token copl-mf}
BATCH=${BATCH:-$MOLE_BATCH}
ENGINE=${ENGINE:-auto}
EVAL_EVERY=${EVAL_EVERY:-50}
LR=${LR:-5e-4}
WARMUP=${WARMUP:-0.03}
RANK=${RANK:-}
HELDOUT=${HELDOUT:-}
NOISE=${NOISE:-}
GCF_ARGS=${GCF_ARGS:-}
# E.g. --per-group (imbalanced data: each group measured on as many test pairs).
EVAL_ARGS=${EVAL_ARGS:-}
mkdir -p "$OUT"
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
BIN=./target/release/copl-train
source scripts/lib/into.sh
source scripts/lib/gcf.sh
# GCF's (and MF's) epochs: scripts/lib/gcf.sh's rule for the data's users unless told.
GCF_EPOCHS=${GCF_EPOCHS:-$(gcf_epochs "$USERS")}
[ -d backbones/minilm ] || scripts/fetch-backbone.sh minilm

# A variant is done when its evaluation is there (copl-oracle, which writes no model, when
# its summary is). The data and embeddings are made only for what is left, and only where
# their files are missing: a set restored from evidence/ (scripts/lib/evidence.sh: the
# JSON of an earlier session, no data or checkpoints) is remade from its seed for the
# variants it lacks, and not touched when it lacks none.
variant_done() { [ -f "$OUT/$1.eval.json" ] || { [[ $1 == copl-oracle* ]] && [ -f "$OUT/$1.json" ]; }; }
todo=()
for variant in $VARIANTS; do
  variant_done "$variant" || todo+=("$variant")
done
if [ ${#todo[@]} -gt 0 ]; then
  [ -f "$OUT/data/annotations.jsonl" ] ||
    $BIN synth --preset "$PRESET" --sampling "$SAMPLING" --users "$USERS" --unseen-users "$UNSEEN" \
      --common-share "$COMMON_SHARE" ${RATIO:+--group-ratio "$RATIO"} ${HELDOUT:+--heldout-prompts "$HELDOUT"} ${NOISE:+--label-noise "$NOISE"} --seed "$SEED" \
      --out "$OUT/data" >/dev/null
  [ -f "$OUT/ckpt-gcf/manifest.json" ] ||
    into "$OUT/gcf.json" $BIN gcf --data "$OUT/data" --out "$OUT/ckpt-gcf" "${GCF_CPU[@]}" --epochs "$GCF_EPOCHS" \
      --seed "$SEED" $GCF_ARGS --json
  [[ " ${todo[*]} " != *" copl-mf "* ]] || [ -f "$OUT/ckpt-mf/manifest.json" ] ||
    into "$OUT/mf.json" $BIN gcf --data "$OUT/data" --out "$OUT/ckpt-mf" --model mf "${GCF_CPU[@]}" --epochs "$GCF_EPOCHS" \
      --seed "$SEED" --json
fi

for variant in "${todo[@]}"; do
  # g-oracle: the paper's G-Oracle, a Uniform model per ground-truth group trained on
  # that group's users only, each user scored by their group's (eval-oracle).
  if [ "$variant" = g-oracle ]; then
    models=()
    for group in $(python3 -c 'import json, sys
print(" ".join(sorted({json.loads(l).get("group") or "" for l in open(sys.argv[1])} - {""})))' \
      "$OUT/data/users.jsonl"); do
      [ -f "$OUT/ckpt-oracle-$group/manifest.json" ] ||
        into "$OUT/g-oracle-$group.json" $BIN mole --data "$OUT/data" --ckpt "$OUT/ckpt-gcf" \
          --out "$OUT/ckpt-oracle-$group" --variant uniform --group "$group" \
          --adapt-layers "$LAYERS" --max-tokens "$TOKENS" --steps "$STEPS" --batch-pairs "$BATCH" \
          --lr "$LR" --warmup "$WARMUP" --eval-every "$EVAL_EVERY" --val-pairs 128 --seed "$SEED" --test-pairs "$TEST" \
          --engine "$ENGINE" ${RANK:+--rank "$RANK"} --json
      models+=(--group-ckpt "$group=$OUT/ckpt-oracle-$group")
    done
    into "$OUT/g-oracle.eval.json" $BIN eval-oracle --data "$OUT/data" "${models[@]}" \
      --test-pairs "$TEST" $EVAL_ARGS --json
    continue
  fi
  # copl-mf: CoPL's reward model over the MF checkpoint's user embeddings (w/o GNN);
  # copl-lb / copl-inv / copl-focal: CoPL with one of the options of the paper's §7.
  embeddings=ckpt-gcf model=$variant extra=()
  case $variant in
    copl-mf) embeddings=ckpt-mf model=copl ;;
    copl-lb) model=copl extra=(--load-balance 0.01) ;;
    copl-inv) model=copl extra=(--reweight inverse-frequency) ;;
    copl-focal) model=copl extra=(--reweight focal) ;;
    copl-oracle) model=copl extra=(--routing oracle) ;;
    copl-oracle-soft) model=copl extra=(--routing oracle-soft) ;;
    copl-kmeans) model=copl extra=(--gate-init kmeans) ;;
    copl-random) model=copl extra=(--gate-init random) ;;
  esac
  into "$OUT/$variant.json" $BIN mole --data "$OUT/data" --ckpt "$OUT/$embeddings" --out "$OUT/ckpt-$variant" \
    --variant "$model" --adapt-layers "$LAYERS" --max-tokens "$TOKENS" "${extra[@]}" \
    --steps "$STEPS" --batch-pairs "$BATCH" --lr "$LR" --warmup "$WARMUP" --eval-every "$EVAL_EVERY" --val-pairs 128 \
    --seed "$SEED" --test-pairs "$TEST" --engine "$ENGINE" ${RANK:+--rank "$RANK"} --json
  # Oracle routing writes no model (its gates read group codes): nothing to evaluate.
  [[ $variant == copl-oracle* ]] && continue
  into "$OUT/$variant.eval.json" $BIN eval --data "$OUT/data" --ckpt "$OUT/ckpt-$variant" \
    --test-pairs "$TEST" $EVAL_ARGS --json
done

# The tables, read as their writers' types (report/src/variants.rs).
./target/release/copl-report variants "$OUT" $VARIANTS
