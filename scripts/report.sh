#!/usr/bin/env bash
# Issue #9's report, one command: each evaluation stage into $RUNS (a stage whose output
# is already there is skipped, so the report can be rewritten without retraining), then
# `copl-train report` writes docs/results.md and docs/results/*.png from the JSON.
#   - gcf/:      scripts/gcf-benchmarks.sh (ufp4 all/avg GCF vs MF, ufp2 ablation; 10 000
#                users, d = 64, 200 full-batch epochs)
#   - onboard/:  scripts/onboard-benchmarks.sh (eval-unseen on ufp4 all/avg)
#   - mole/ufp2: scripts/mole-benchmarks.sh (CoPL, Uniform, w/o MoLE on ufp2, 2 000 users,
#                MiniLM top 2 layers, 200 steps x 16 pairs; about 1 h on 2 cores)
# Stages still to add (docs/next.md): more data sets and the w/o-GNN row for Table 2,
# imbalance (Fig. 4), seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/report}
mkdir -p "$RUNS/mole"
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer
[ -f "$RUNS/gcf/ufp2-all-full.eval.json" ] || OUT="$RUNS/gcf" scripts/gcf-benchmarks.sh
[ -f "$RUNS/onboard/ufp4-avg.eval.json" ] || GCF="$RUNS/gcf" OUT="$RUNS/onboard" scripts/onboard-benchmarks.sh
[ -f "$RUNS/mole/ufp2/copl.eval.json" ] || OUT="$RUNS/mole/ufp2" scripts/mole-benchmarks.sh
[ -f "$RUNS/mole/ufp2/copl.experts.json" ] ||
  ./target/release/copl-train eval-experts --data "$RUNS/mole/ufp2/data" --ckpt "$RUNS/mole/ufp2/ckpt-copl" \
    >"$RUNS/mole/ufp2/copl.experts.json"
[ -f "$RUNS/onboard/ufp2.projection.json" ] ||
  ./target/release/copl-train eval-projection --data "$RUNS/mole/ufp2/data" --ckpt "$RUNS/mole/ufp2/ckpt-gcf" \
    >"$RUNS/onboard/ufp2.projection.json"
[ -f "$RUNS/onboard/ufp4-avg.projection.json" ] ||
  ./target/release/copl-train eval-projection --data "$RUNS/gcf/data-ufp4-avg" --ckpt "$RUNS/gcf/ckpt-ufp4-avg-gcf" \
    >"$RUNS/onboard/ufp4-avg.projection.json"
./target/release/copl-train report --runs "$RUNS" --out docs/results --markdown docs/results.md
