#!/usr/bin/env bash
# Issue #9's report, one command: each evaluation stage into $RUNS (a stage whose output
# is already there is skipped, so the report can be rewritten without retraining), then
# `copl-train report` writes docs/results.md and docs/results/*.png from the JSON.
#   - gcf/:      scripts/gcf-benchmarks.sh (ufp4 all/avg GCF vs MF, ufp2 ablation; 10 000
#                users, d = 64, 200 full-batch epochs)
#   - onboard/:  scripts/onboard-benchmarks.sh (eval-unseen on ufp4 all/avg)
#   - mole/<preset>: scripts/mole-benchmarks.sh for each of $PRESETS (default ufp2; the
#                paper's four: "ufp2 tldr ufp4 personal"): CoPL, Uniform, w/o MoLE, w/o GNN,
#                2 000 users, MiniLM top 2 layers, 200 steps x 16 pairs; about 1 h each on
#                2 cores), then eval-experts on each CoPL checkpoint
# Stages still to add (docs/next.md): more data sets and the w/o-GNN row for Table 2,
# imbalance (Fig. 4), seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/report}
PRESETS=${PRESETS:-ufp2}
mkdir -p "$RUNS/mole"
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer
[ -f "$RUNS/gcf/ufp2-all-full.eval.json" ] || OUT="$RUNS/gcf" scripts/gcf-benchmarks.sh
[ -f "$RUNS/onboard/ufp4-avg.eval.json" ] || GCF="$RUNS/gcf" OUT="$RUNS/onboard" scripts/onboard-benchmarks.sh
for preset in $PRESETS; do
  set_dir="$RUNS/mole/$preset"
  [ -f "$set_dir/copl-mf.eval.json" ] || PRESET="$preset" OUT="$set_dir" scripts/mole-benchmarks.sh
  [ -f "$set_dir/copl.experts.json" ] ||
    ./target/release/copl-train eval-experts --data "$set_dir/data" --ckpt "$set_dir/ckpt-copl" \
      >"$set_dir/copl.experts.json"
done
[ -f "$RUNS/onboard/ufp2.projection.json" ] ||
  ./target/release/copl-train eval-projection --data "$RUNS/mole/ufp2/data" --ckpt "$RUNS/mole/ufp2/ckpt-gcf" \
    >"$RUNS/onboard/ufp2.projection.json"
[ -f "$RUNS/onboard/ufp4-avg.projection.json" ] ||
  ./target/release/copl-train eval-projection --data "$RUNS/gcf/data-ufp4-avg" --ckpt "$RUNS/gcf/ckpt-ufp4-avg-gcf" \
    >"$RUNS/onboard/ufp4-avg.projection.json"
./target/release/copl-train report --runs "$RUNS" --out docs/results --markdown docs/results.md
