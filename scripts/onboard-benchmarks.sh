#!/usr/bin/env bash
# Onboarding figures of docs/benchmarks.md, one command (needs the GCF checkpoints of
# scripts/gcf-benchmarks.sh, which it runs first if they are missing):
#   - eval-unseen on ufp4 all / avg: Table 5 (CoPL, naive average, per-user optimisation),
#     2/4-hop, accuracy against answers (Fig. 5), suggested against random survey pairs;
#   - bench onboard: latency and memory on the 10 000-user checkpoint and on a generated
#     graph of 1 000 000 users x 16 answers.
set -euo pipefail
cd "$(dirname "$0")/.."
GCF=${GCF:-runs/gcf-bench}
OUT=${OUT:-runs/onboard}
mkdir -p "$OUT"
# A GCF run restored from evidence/ (scripts/lib/evidence.sh keeps its JSON, not its
# checkpoint) is trained again from its seed for the checkpoint read here.
for s in all avg; do
  [ -f "$GCF/ckpt-ufp4-$s-gcf/manifest.json" ] || rm -f "$GCF/ufp4-$s-gcf.json"
done
[ -f "$GCF/ufp4-avg-gcf.json" ] && [ -f "$GCF/ufp4-all-gcf.json" ] || OUT=$GCF scripts/gcf-benchmarks.sh
# The package set of every release build here (one feature resolution: no rebuilds).
cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
BIN=./target/release/copl-train

for s in all avg; do
  $BIN eval-unseen --data "$GCF/data-ufp4-$s" --ckpt "$GCF/ckpt-ufp4-$s-gcf" --json >"$OUT/ufp4-$s.eval.json"
done
$BIN bench onboard --ckpt "$GCF/ckpt-ufp4-avg-gcf" --data "$GCF/data-ufp4-avg" --json >"$OUT/bench-10k.json"
$BIN bench onboard --users 1000000 --answers 16 --json >"$OUT/bench-1m.json"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
ev = {s: json.load(open(f"{out}/ufp4-{s}.eval.json")) for s in ("all", "avg")}
pct = lambda x: "–" if x is None else f"{100 * x:.2f}"
print("| ufp4 | seen (GCF) | CoPL 2-hop | CoPL 4-hop | naive avg 2-hop | user opt | population |")
print("|---|---|---|---|---|---|---|")
for s, e in ev.items():
    m = e["methods"]
    print(f"| {s} | {pct(e['seen_accuracy'])} | {pct(m['copl_2hop']['accuracy'])} | "
          f"{pct(m['copl_4hop']['accuracy'])} | {pct(m['naive_avg_2hop']['accuracy'])} | "
          f"{pct(m['user_opt']['accuracy'])} | {pct(m['population']['accuracy'])} |")
print()
print("| ufp4 | answers | random 2-hop | random 4-hop | suggested (adaptive) | suggested (batch) |")
print("|---|---|---|---|---|---|")
for s, e in ev.items():
    for p in e["by_answers"]:
        print(f"| {s} | {p['answers']} | {pct(p['random_2hop'])} | {pct(p['random_4hop'])} | "
              f"{pct(p['suggested_adaptive'])} | {pct(p['suggested_batch'])} |")
print()
print("| graph | method | p50 µs | p99 µs | mean µs | neighbourhood | adapter MiB |")
print("|---|---|---|---|---|---|---|")
for name in ("10k", "1m"):
    b = json.load(open(f"{out}/bench-{name}.json"))
    label = f"{b['users']:,} users"
    mem = "?" if b["adapter_rss_mib"] is None else f"{b['adapter_rss_mib']:.0f}"
    for key, hood in (("copl_2hop", b["mean_neighbourhood_2hop"]), ("copl_4hop", b["mean_neighbourhood_4hop"]),
                      ("user_opt", None), ("user_opt_autograd", None)):
        l = b[key]
        h = "" if hood is None else f"{hood:.0f}"
        print(f"| {label} | {key} | {l['p50_us']:.0f} | {l['p99_us']:.0f} | {l['mean_us']:.0f} | {h} | {mem} |")
PY
