#!/usr/bin/env bash
# Issue #13's seeds (item 6): scripts/mole-benchmarks.sh once per seed in SEEDS (the seed
# draws the data, GCF and the reward model alike) into $OUT/s<seed>, then the table of
# mean ± standard deviation (and the standard error of the mean) over the seeds run, per
# variant, seen and unseen users, and the differences the issue's criteria name (CoPL −
# Uniform, CoPL − G-Oracle) with their standard errors. A seed already run is skipped
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
for seed in $SEEDS; do
  SEED=$seed OUT="$OUT/s$seed" scripts/mole-benchmarks.sh >/dev/null
done

python3 - "$OUT" $VARIANTS <<'PY'
import glob, json, math, os, sys
out, variants = sys.argv[1], sys.argv[2:]
runs = sorted(d for d in glob.glob(f"{out}/s*") if os.path.isdir(d))

def accuracy(run, variant, users):
    p = os.path.join(run, variant + ".eval.json")
    if not os.path.exists(p):
        return None
    e = json.load(open(p)).get(users) or {}
    return e.get("overall", {}).get("accuracy")

def stats(xs):
    n = len(xs)
    if n == 0:
        return None
    mean = sum(xs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else float("nan")
    return mean, sd, sd / math.sqrt(n) if n > 1 else float("nan"), n

def cell(xs):
    s = stats([100 * x for x in xs])
    return "–" if s is None else f"{s[0]:.2f} ± {s[1]:.2f} (SE {s[2]:.2f}, n = {s[3]})"

print(f"{out}: seeds " + ", ".join(os.path.basename(r)[1:] for r in runs))
print()
print("| variant | seen | unseen | per seed (seen / unseen) |")
print("|---|---|---|---|")
for v in variants:
    seen = [a for r in runs if (a := accuracy(r, v, "seen")) is not None]
    unseen = [a for r in runs if (a := accuracy(r, v, "unseen")) is not None]
    per = ", ".join(
        f"{100 * (accuracy(r, v, 'seen') or float('nan')):.1f} / {100 * (accuracy(r, v, 'unseen') or float('nan')):.1f}"
        for r in runs if accuracy(r, v, "seen") is not None)
    print(f"| {v} | {cell(seen)} | {cell(unseen)} | {per} |")

# Paired differences (same seed, same data): the issue's criteria.
pairs = [("copl", "uniform"), ("copl", "g-oracle")]
lines = []
for a, b in pairs:
    if a not in variants or b not in variants:
        continue
    for users in ("seen", "unseen"):
        d = [x - y for r in runs
             if (x := accuracy(r, a, users)) is not None and (y := accuracy(r, b, users)) is not None]
        if d:
            lines.append(f"| {a} − {b} | {users} | {cell(d)} |")
if lines:
    print()
    print("| difference (paired by seed) | users | points |")
    print("|---|---|---|")
    print("\n".join(lines))
PY
