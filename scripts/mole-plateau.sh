#!/usr/bin/env bash
# Where MoLE training stops paying (issue #19's recipe): CoPL on each preset's ALL set at
# 1 000 users, STEPS × BATCH pairs (default 1 500 × 32, a quarter of the paper's pairs),
# validation every 100 steps, once per learning rate in LRS, each run on the preset's one
# data set and GCF checkpoint (the first run makes them; the others link them). Prints
# each run's validation curve, best step, test accuracy (seen, unseen) and training
# time, the table of docs/benchmarks.md "The recipe" (VARIANTS="copl copl-oracle" adds
# oracle routing, seen users from its own test pairs). 12–25 min a run on 2 cores.
# PRESETS=none only prints the table of the runs already in $OUT.
#   PRESETS="tldr ufp2 ufp4 personal" LRS="5e-4" STEPS=1500 BATCH=32 WARMUP=0.03
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/plateau}
PRESETS=${PRESETS:-tldr ufp2 ufp4 personal}
LRS=${LRS:-5e-4}
STEPS=${STEPS:-1500}
BATCH=${BATCH:-32}
WARMUP=${WARMUP:-0.03}
VARIANTS=${VARIANTS:-copl}
mkdir -p "$OUT"
for preset in $PRESETS; do
  [ "$preset" = none ] && continue
  # A run of this preset already there (an earlier call, another lr) lends its data.
  first=
  for d in "$OUT/$preset-all-1k-lr"*; do
    if [ -z "$first" ] && [ -f "$d/gcf.json" ] && [ ! -L "$d/data" ]; then first=$d; fi
  done
  for lr in $LRS; do
    dir="$OUT/$preset-all-1k-lr$lr"
    if [ -n "$first" ] && [ ! -e "$dir/data" ]; then
      mkdir -p "$dir"
      ln -s "$(realpath "$first/data")" "$dir/data"
      ln -s "$(realpath "$first/ckpt-gcf")" "$dir/ckpt-gcf"
      cp "$first/gcf.json" "$dir/gcf.json"
    fi
    env PRESET="$preset" USERS=1000 STEPS="$STEPS" BATCH="$BATCH" LR="$lr" WARMUP="$WARMUP" \
      VARIANTS="$VARIANTS" EVAL_EVERY=100 TEST=256 OUT="$dir" scripts/mole-benchmarks.sh >/dev/null
    first=${first:-$dir}
  done
done

python3 - "$OUT" $VARIANTS <<'PY'
import glob, json, os, sys
out, variants = sys.argv[1], sys.argv[2:]
marks = [100, 200, 300, 500, 700, 1000, 1200, 1500]
print("| set, lr | variant | " + " | ".join(f"val @{m}" for m in marks)
      + " | best (step) | test seen | test unseen | training s | pairs/s |")
print("|---|---|" + "---|" * len(marks) + "---|---|---|---|---|")
for d in sorted(glob.glob(f"{out}/*")):
    for v in variants:
        t, e = (os.path.join(d, v + s) for s in (".json", ".eval.json"))
        if not os.path.exists(t):
            continue
        # copl-oracle has no eval (no model): its own test figure on seen users.
        t = json.load(open(t))
        e = json.load(open(e)) if os.path.exists(e) else None
        curve = {h["step"]: h["val_accuracy"] for h in t["history"]}
        cells = ["%.1f" % (100 * curve[m]) if m in curve else "–" for m in marks]
        seen = e["seen"]["overall"]["accuracy"] if e else t["test_accuracy"]
        unseen = ((e or {}).get("unseen") or {}).get("overall")
        print(f"| {os.path.basename(d)} | {v} | " + " | ".join(cells)
              + f" | {100 * t['best_val_accuracy']:.1f} ({t['best_step']})"
              + f" | {100 * seen:.1f}"
              + f" | {'–' if unseen is None else '%.1f' % (100 * unseen['accuracy'])}"
              + f" | {t['train_seconds']:.0f} | {t['pairs_per_second']:.0f} |")
PY
