"""The tables of scripts/gpu-check.sh's directory, as markdown (docs/benchmarks.md "On
an H200" takes them as they are). Reads what the parts wrote: copl-bench scores /
forward JSON, bench_forward_torch.py's rows, `copl bench --json`, copl-train's summaries.

    python scripts/gpu/summary.py OUT
"""
import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main(out):
    print("# GPU check\n")
    gpu = os.path.join(out, "gpu.txt")
    if os.path.exists(gpu):
        print(f"GPU: {open(gpu).read().strip()}\n")
    print("## Parts\n")
    for line in open(os.path.join(out, "parts.txt")):
        print(f"- {line.strip()}")
    print("\n## (a) Correctness: the device's scores against the CPU's F32\n")
    print("| checkpoint | dtype | rows | max abs diff | allowed | mixed batch vs alone |")
    print("|---|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(out, "correctness-*.json"))):
        c = load(path)
        if not c:
            continue
        cmp = c.get("compared") or {}
        family = os.path.basename(path)[12:-5].removesuffix("-f32")
        print(f"| {family} | {c['dtype']} | {len(c['rows'])} | {cmp.get('max_abs_diff', float('nan')):.3g} "
              f"| {cmp.get('allowed', float('nan')):.3g} | {c['batch_vs_alone_max_diff']:.3g} |")
    print("\n## (b) Forward speed, tokens/s (BF16 on a GPU, F32 in the dry run; ours = copl-bench forward, PyTorch eager)\n")
    print("| shape | variant | batch | tokens | lengths | ours | PyTorch eager | ours / eager |")
    print("|---|---|---|---|---|---|---|---|")
    compiled = []
    for path in sorted(glob.glob(os.path.join(out, "speed-*-copl.json"))):
        shape = os.path.basename(path)[6:-10]
        ours = load(path) or []
        torch = load(path.replace("-copl.json", "-torch.json")) or []
        key = lambda r: (r["variant"], r["batch"], r["tokens"], r["lengths"])
        eager = {key(r): r for r in torch if r.get("path", "eager") == "eager"}
        for r in ours:
            t = eager.get(key(r))
            ratio = f"{r['tokens_per_second'] / t['tokens_per_second']:.2f}" if t else "–"
            tt = f"{t['tokens_per_second']:.0f}" if t else "–"
            print(f"| {shape} | {r['variant']} | {r['batch']} | {r['tokens']} | {r['lengths']} "
                  f"| {r['tokens_per_second']:.0f} | {tt} | {ratio} |")
        for c in load(path.replace("-copl.json", "-torch-compile.json")) or []:
            mine = next((r for r in ours if key(r) == key(c)), None)
            if c["path"] == "compile" and mine:
                compiled.append((shape, c, mine))
    if compiled:
        print("\n| shape | variant | batch × tokens | ours | torch.compile | ours / compile |")
        print("|---|---|---|---|---|---|")
        for shape, c, mine in compiled:
            print(f"| {shape} | {c['variant']} | {c['batch']} × {c['tokens']} | {mine['tokens_per_second']:.0f} "
                  f"| {c['tokens_per_second']:.0f} | {mine['tokens_per_second'] / c['tokens_per_second']:.2f} |")
    print("\n## (c) copl-server on the device (tiny BERT checkpoint), copl bench\n")
    print("| concurrency | calls/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(out, "server-c*.json")), key=lambda p: int(p.rsplit("c", 1)[1][:-5])):
        b = load(path)
        if b:
            print(f"| {b['concurrency']} | {b['calls_per_second']:.0f} | {b['latency_ms']['p50']:.1f} "
                  f"| {b['latency_ms']['p99']:.1f} | {b['errors'] or 'none'} |")
    print("\n## (d) Training on the device\n")
    mole = load(os.path.join(out, "training-mole.json"))
    if mole:
        print(f"- copl-train mole (tiny Gemma, {mole['engine']} engine): {mole['pairs_per_second']:.1f} pairs/s")
    gcf = load(os.path.join(out, "training-gcf.json"))
    if gcf:
        print(f"- copl-train gcf ({gcf['users']} users, {gcf['train_pairs']} training pairs): "
              f"{gcf['seconds_per_epoch']:.2f} s/epoch")


if __name__ == "__main__":
    main(sys.argv[1])
