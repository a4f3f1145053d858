#!/usr/bin/env bash
# Issue #9's report, one command: each evaluation stage into $RUNS (a stage whose output
# is already there is skipped, so the report can be rewritten without retraining, and an
# interrupted run goes on where it stopped), then `copl-report` writes
# docs/results.md and docs/results/*.png from the JSON. Scales (2 cores, MiniLM, MoLE in
# the top 2 layers, 128 tokens, the recipe of scripts/lib/mole.sh: 32 pairs a step, 400
# steps for tldr and ufp2, 600 for ufp4 and personal, where validation stops rising):
#   - gcf/:      scripts/gcf-benchmarks.sh (ufp4 all/avg GCF vs MF, ufp2 ablation; 10 000
#                users, d = 64, 600 full-batch epochs; minutes)
#   - onboard/:  scripts/onboard-benchmarks.sh (eval-unseen on ufp4 all/avg; minutes)
#   - mole-seeds/<set>: Table 2's cells over seeds 0–2 (scripts/mole-seeds.sh): ufp4-all
#                at 1 000 users (CoPL, Uniform, G-Oracle) and 10 000 (CoPL, Uniform),
#                personal-all, tldr-all, ufp2-all at 2 000 (CoPL, Uniform); ≈ 8 h, done
#                (evidence/report/mole-seeds)
#   - mole/<set>: Table 2 at one seed. Its CoPL, Uniform and (ufp4-all-1k) G-Oracle cells
#                are the mole-seeds stage's seed 0, copied (the same data, GCF, recipe
#                and test pairs: the grid's settings are the seeds'); trained here are
#                only the cells the seeds lack: w/o MoLE and w/o GNN on ufp2-all (2 000
#                users), w/o GNN on ufp4-all (10 000 users: the paper's Table 4 is on UF-P
#                ALL), and CoPL on the AVG sets (5–10 min a model at 1 000 users on an
#                AVX-512 VM, 2026-12-04; 2–3× that on the AVX2 one; 10 000 users run the
#                frozen layers for almost every row: ≈ 30 min)
#   - oracle:    oracle routing (`mole --routing oracle`, variant copl-oracle: CoPL with
#                every seen user on their group's expert; issue #13 item 1) on ufp4-all-1k
#                and personal-all, and there also soft (copl-oracle-soft: a mixture user on
#                every component's expert at their weight; autograd engine), then the paper's G-Oracle (a Uniform model per
#                ground-truth group, `mole --group`, `eval-oracle`) on ufp4-all, tldr-all
#                and ufp2-all (ufp4-all-1k's comes from the seeds; about 2 h)
#   - imbalance/<preset>-a-b: CoPL at group sizes 1:9, 3:7 and 9:1 on ufp2 and tldr (AVG,
#                as Fig. 4; 5:5 is mole/<preset>-avg), and the §7 options on ufp2 1:9
#                (re-weighting, load balancing; and re-weighting on tldr 1:9)
#   - strength/ufp4-all-1k: Uniform and G-Oracle at the paper's LoRA rank 64 (issue #13
#                item 3; ours default to the rank-8 shared expert) on the seeds' seed-0
#                data: is CoPL's win a weak-baseline artefact? (5 models; the rank-64
#                Uniform took 46 min here beside other jobs, 2026-12-07)
#   - noise/<set>: label noise 0.1 (`synth --label-noise`, test labels alike) on
#                ufp4-all-1k: CoPL and Uniform, and CoPL over GCF's last epoch
#                (`gcf --keep-last`; issue #13 item 5, its open problem; ≈ 30 min)
#   - new-texts/<set>: a fifth of the prompts held out of every training pair
#                (`synth --heldout-prompts 0.2`), half of each user's test pairs on their
#                responses; CoPL and Uniform scored on seen and on new texts (issue #13
#                item 4) on ufp4-all-1k and ufp2-all (1 024 test pairs; ≈ 20 min a set)
#   - longer/<set>: past the plateau (personal-all, tldr 1:9), the same data and
#                embeddings trained 1 500 steps × 32 pairs, a quarter of the paper's
#                pairs: what training beyond the recipe still gives
#   - seeds/:    scripts/seed-benchmarks.sh: GCF vs MF, negative edges, adaptation over
#                seeds 0-2 at 1 000 users (mean ± std; about 10 min)
# Stages span sessions: their JSON is kept in evidence/report/ (scripts/lib/evidence.sh),
# restored into $RUNS at the start and saved back at the end; commit evidence/ with the
# regenerated docs/results.md. At the recipe about 10–14 h in all on 2 cores (an estimate: 5–30 min a model, ≈ 45
# models; 6 h at the old 100 × 16 grid), more than one session; STAGES limits it (e.g.
# STAGES="gcf onboard"; STAGES=none rewrites the report from the runs already there).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/report}
STAGES=${STAGES:-gcf onboard mole-seeds mole oracle imbalance options strength noise new-texts longer seeds}
BIN=./target/release/copl-train
source scripts/lib/into.sh
source scripts/lib/gcf.sh
source scripts/lib/evidence.sh
mkdir -p "$RUNS/mole" "$RUNS/imbalance"
# Earlier sessions' JSON (evidence/report/), then this run's saved back at the end, and at
# every exit: an interrupted run keeps what it finished.
evidence_restore "$RUNS"
trap 'evidence_save "$RUNS"' EXIT
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
stage() { [[ " $STAGES " == *" $1 "* ]]; }
# The grid's budget is the recipe (scripts/lib/mole.sh; mole-benchmarks.sh's default when
# STEPS and BATCH are not given), since 2026-12-04 (issue #19). docs/results.md up to
# then was made at 100 steps × 16 pairs: a stage rerun moves its figures.
# 512 test pairs, as scripts/mole-seeds.sh: the seeds' seed 0 is the grid's cell.
GRID=(USERS=1000 TEST=512)
# Evidence is saved after every set, not only at the exit: a session cut off hard (its
# shell killed, no trap run) keeps the sets it finished.
mole() { # mole <set dir> <env...>: scripts/mole-benchmarks.sh into $RUNS/<set dir>
  local dir=$1
  shift
  env "$@" OUT="$RUNS/$dir" scripts/mole-benchmarks.sh
  evidence_save "$RUNS"
}
# from_seeds <set>: Table 2's one-seed cells that the mole-seeds stage has at seed 0
# (scripts/mole-seeds.sh runs mole-benchmarks.sh with SEED=0 and the grid's settings),
# copied into mole/<set> instead of trained twice; mole-benchmarks.sh then trains only
# the variants they lack, on data and GCF remade from the same seed.
from_seeds() { json_fill "$RUNS/mole-seeds/$1/s0" "$RUNS/mole/$1"; }

# Table 2's cells the seeds have, before any stage (cheap copies; the report shows them
# even when the mole stage has not run).
for set in ufp2-all tldr-all ufp4-all ufp4-all-1k personal-all; do from_seeds "$set"; done
if stage gcf; then
  [ -f "$RUNS/gcf/ufp2-all-full.eval.json" ] || OUT="$RUNS/gcf" scripts/gcf-benchmarks.sh
fi
if stage onboard; then
  [ -f "$RUNS/onboard/ufp4-avg.eval.json" ] ||
    GCF="$RUNS/gcf" OUT="$RUNS/onboard" scripts/onboard-benchmarks.sh
fi
if stage mole-seeds; then
  # Table 2's cells over three seeds (issue #13, item 6): each seed its own data, GCF and
  # models (scripts/mole-seeds.sh; mean ± std and paired differences in the report).
  seeds() { # seeds <set> <env...>
    local set=$1
    shift
    env "$@" SEEDS="0 1 2" OUT="$RUNS/mole-seeds/$set" EVIDENCE="$EVIDENCE/mole-seeds/$set" \
      scripts/mole-seeds.sh
  }
  seeds ufp4-all-1k PRESET=ufp4 USERS=1000 VARIANTS="copl uniform g-oracle"
  seeds ufp4-all PRESET=ufp4 USERS=10000 VARIANTS="copl uniform"
  seeds personal-all PRESET=personal USERS=1000 VARIANTS="copl uniform"
  seeds tldr-all PRESET=tldr USERS=1000 VARIANTS="copl uniform"
  seeds ufp2-all PRESET=ufp2 USERS=2000 VARIANTS="copl uniform"
fi
if stage mole; then
  mole mole/ufp2-all PRESET=ufp2 USERS=2000 TEST=512
  mole mole/tldr-all "${GRID[@]}" PRESET=tldr VARIANTS="copl uniform"
  # ufp4 ALL at the paper's 10 000 users, with w/o GNN (CoPL over MF embeddings). At
  # 1 000 users (ufp4-all-1k) GCF needs 1 500 epochs to tell the four groups apart
  # (scripts/lib/gcf.sh).
  mole mole/ufp4-all "${GRID[@]}" USERS=10000 PRESET=ufp4 VARIANTS="copl uniform copl-mf"
  mole mole/ufp4-all-1k "${GRID[@]}" PRESET=ufp4 VARIANTS="copl uniform"
  mole mole/personal-all "${GRID[@]}" PRESET=personal VARIANTS="copl uniform"
  # AVG: CoPL only. Uniform ignores who answered, so AVG sampling (the same number of
  # pairs, spread unevenly over users) changes nothing for it: the paper's Uniform rows
  # are equal for ALL and AVG.
  for preset in ufp2 tldr ufp4 personal; do
    mole "mole/$preset-avg" "${GRID[@]}" PRESET=$preset SAMPLING=avg VARIANTS=copl
  done
fi
if stage oracle; then
  # The paper's G-Oracle (a Uniform model per ground-truth group): can this backbone and
  # budget learn the groups apart at all, and does CoPL reach it? ufp4-all-1k's is the
  # seeds' seed 0. Personal's users have weights, not groups: its oracle routing sends
  # each to the argmax of their weights. Oracle routing first: it splits CoPL's distance
  # from the G-Oracle into the gates' part and the experts' (issue #13 item 1).
  mole mole/ufp4-all-1k "${GRID[@]}" PRESET=ufp4 VARIANTS="g-oracle copl-oracle"
  mole mole/personal-all "${GRID[@]}" PRESET=personal VARIANTS="copl-oracle copl-oracle-soft"
  mole mole/ufp4-all "${GRID[@]}" USERS=10000 PRESET=ufp4 VARIANTS=g-oracle
  mole mole/tldr-all "${GRID[@]}" PRESET=tldr VARIANTS=g-oracle
  mole mole/ufp2-all PRESET=ufp2 USERS=2000 TEST=512 VARIANTS=g-oracle
fi
if stage imbalance; then
  # 3:7 first (issue #13 item 5 names it; 1:9 has been measured before, docs/benchmarks.md).
  for ratio in 3:7 1:9 9:1; do
    for preset in ufp2 tldr; do
      mole "imbalance/$preset-${ratio/:/-}" "${GRID[@]}" PRESET=$preset SAMPLING=avg RATIO=$ratio \
        UNSEEN=0 EVAL_ARGS=--per-group VARIANTS=copl
    done
  done
  # The balanced point is Table 2's AVG run.
  for preset in ufp2 tldr; do
    [ -e "$RUNS/imbalance/$preset-5-5" ] || ln -s "../mole/$preset-avg" "$RUNS/imbalance/$preset-5-5"
  done
fi
if stage options; then
  set_dir="$RUNS/imbalance/ufp2-1-9"
  mole imbalance/ufp2-1-9 "${GRID[@]}" PRESET=ufp2 SAMPLING=avg RATIO=1:9 UNSEEN=0 \
    EVAL_ARGS=--per-group VARIANTS="copl copl-inv copl-focal copl-lb"
  # tldr 1:9, where the minority falls to 0 %: does re-weighting its pairs lift it?
  mole imbalance/tldr-1-9 "${GRID[@]}" PRESET=tldr SAMPLING=avg RATIO=1:9 UNSEEN=0 \
    EVAL_ARGS=--per-group VARIANTS="copl copl-inv"
  for variant in copl copl-lb; do
    [ -f "$set_dir/$variant.experts.json" ] ||
      into "$set_dir/$variant.experts.json" $BIN eval-experts --json --data "$set_dir/data" --ckpt "$set_dir/ckpt-$variant"
  done
fi
if stage strength; then
  # Issue #13 item 3: the baselines at the paper's capacity (every expert LoRA rank 64,
  # α = 128; ours default to rank 8) on the data of ufp4-all-1k's seed 0 (remade from
  # the seed), beside the seeds' CoPL, Uniform and G-Oracle at rank 8.
  mole strength/ufp4-all-1k "${GRID[@]}" PRESET=ufp4 RANK=64 VARIANTS="uniform g-oracle"
fi
if stage noise; then
  # Issue #13 item 5: a tenth of all labels flipped (annotators' noise; test labels
  # alike, so the data's summary gives the ceiling). GCF fits the flipped labels and its
  # best-by-validation epoch comes early; its last epoch keeps the groups apart
  # (docs/benchmarks.md "Label noise"): CoPL over both.
  mole noise/ufp4-all-1k "${GRID[@]}" PRESET=ufp4 NOISE=0.1 VARIANTS="copl uniform"
  mole noise/ufp4-all-1k-keep-last "${GRID[@]}" PRESET=ufp4 NOISE=0.1 GCF_ARGS=--keep-last \
    VARIANTS=copl
fi
if stage new-texts; then
  # Issue #13 item 4: texts nobody annotated. 1 024 test pairs: 512 a cell on each kind.
  mole new-texts/ufp4-all-1k "${GRID[@]}" TEST=1024 PRESET=ufp4 HELDOUT=0.2 VARIANTS="copl uniform"
  mole new-texts/ufp2-all USERS=2000 TEST=1024 PRESET=ufp2 HELDOUT=0.2 VARIANTS="copl uniform"
fi
longer() { # longer <grid set> <env...>: the grid set's data and embeddings, 1 500 steps
  local set=$1 set_dir="$RUNS/longer/${1#*/}"
  shift
  # The grid set's files where this session has them; a grid set restored from evidence/
  # without them: the longer run remakes the same data from the same seed and settings.
  if [ ! -e "$set_dir/data/annotations.jsonl" ] && [ -f "$RUNS/$set/data/annotations.jsonl" ] &&
    [ -f "$RUNS/$set/ckpt-gcf/manifest.json" ]; then
    mkdir -p "$set_dir"
    rm -rf "$set_dir/data" "$set_dir/ckpt-gcf"
    ln -s "../../$set/data" "$set_dir/data"
    ln -s "../../$set/ckpt-gcf" "$set_dir/ckpt-gcf"
    cp "$RUNS/$set/gcf.json" "$set_dir/gcf.json"
  fi
  mole "longer/${set#*/}" "${GRID[@]}" STEPS=1500 EVAL_EVERY=100 "$@"
}
if stage longer; then
  longer mole/personal-all PRESET=personal VARIANTS="copl uniform"
  longer imbalance/tldr-1-9 PRESET=tldr SAMPLING=avg RATIO=1:9 UNSEEN=0 EVAL_ARGS=--per-group \
    VARIANTS=copl
fi
if stage seeds; then
  OUT="$RUNS/seeds" scripts/seed-benchmarks.sh
fi
# The cheap analyses of whatever checkpoints exist (seconds each), then the report.
# made_in SET_DIR: where the set's data and checkpoints are — the set's own directory, or
# for a Table 2 set whose cells were copied from the seeds, the seeds' seed 0 (the same
# run) when this checkout trained it there.
made_in() {
  local seeds="$RUNS/mole-seeds/$(basename "$1")/s0"
  if [ ! -d "$1/ckpt-copl" ] && [ -d "$seeds/ckpt-copl" ] && [ -f "$seeds/data/users.jsonl" ]; then
    echo "$seeds"
  else
    echo "$1"
  fi
}
for set_dir in "$RUNS"/mole/*/ "$RUNS"/imbalance/*/; do
  experts="$set_dir/copl.experts.json"
  from=$(made_in "${set_dir%/}")
  { [ -d "$from/ckpt-copl" ] && [ ! -f "$experts" ]; } || continue
  # Allocation is counted by ground-truth group: personal's users have weights instead.
  grep -q '"group"' "$from/data/users.jsonl" || continue
  into "$experts" $BIN eval-experts --json --data "$from/data" --ckpt "$from/ckpt-copl"
done
mkdir -p "$RUNS/onboard"
from=$(made_in "$RUNS/mole/ufp2-all")
if [ -d "$from/ckpt-gcf" ] && [ ! -f "$RUNS/onboard/ufp2.projection.json" ]; then
  into "$RUNS/onboard/ufp2.projection.json" \
    $BIN eval-projection --json --data "$from/data" --ckpt "$from/ckpt-gcf"
fi
if [ -d "$RUNS/gcf/ckpt-ufp4-avg-gcf" ] && [ ! -f "$RUNS/onboard/ufp4-avg.projection.json" ]; then
  into "$RUNS/onboard/ufp4-avg.projection.json" \
    $BIN eval-projection --json --data "$RUNS/gcf/data-ufp4-avg" --ckpt "$RUNS/gcf/ckpt-ufp4-avg-gcf"
fi
./target/release/copl-report --runs "$RUNS" --out docs/results --markdown docs/results.md
