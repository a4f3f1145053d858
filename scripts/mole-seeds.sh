#!/usr/bin/env bash
# Issue #13's seeds (item 6): scripts/mole-benchmarks.sh once per seed in SEEDS (the seed
# draws the data, GCF and the reward model alike) into $OUT/s<seed>, then the table of
# mean ± standard deviation (and the standard error of the mean) over the seeds run, per
# variant, seen and unseen users, and the differences the issue's criteria name (CoPL −
# Uniform, CoPL − G-Oracle) with their standard errors (`copl-report seeds`: the report's
# own section, report/src/mole_seeds.rs). A seed already run is skipped
# (mole-benchmarks.sh skips what is there), so the table can be printed alone
# (SEEDS="" prints what $OUT and evidence/ hold). Every other setting passes through to
# mole-benchmarks.sh (PRESET, USERS, VARIANTS, TEST, HELDOUT, NOISE, …); its recipe is
# the budget. At 1 000 users on ufp4 (CoPL, Uniform, G-Oracle: six models) ≈ 35 min a seed
# on 2 cores; at 10 000 ≈ 80 min without the G-Oracle.
#   PRESET=ufp4 USERS=1000 VARIANTS="copl uniform g-oracle" SEEDS="0 1 2" \
#     OUT=runs/seeds-ufp4-all-1k scripts/mole-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/seeds-mole}
SEEDS=${SEEDS-0 1 2}
VARIANTS=${VARIANTS:-copl uniform}
export VARIANTS
mkdir -p "$OUT"
# The seeds' JSON outlives the session in evidence/<name of OUT>/ (scripts/lib/evidence.sh):
# restored before, saved after, so a later session runs only the seeds and variants
# still missing. Commit evidence/ with the docs that cite it.
EVIDENCE=${EVIDENCE:-evidence/$(basename "$OUT")}
source scripts/lib/evidence.sh
evidence_restore "$OUT"
trap 'evidence_save "$OUT"' EXIT
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
# Saved after every seed too, not only at the exit: a session cut off hard (its shell
# killed, no trap run) keeps the seeds it finished (2026-12-04 lost an hour of them).
for seed in $SEEDS; do
  SEED=$seed OUT="$OUT/s$seed" scripts/mole-benchmarks.sh >/dev/null
  evidence_save "$OUT"
done

# The tables: copl-report's, the same text as the report's section (typed readers).
./target/release/copl-report seeds "$OUT"
