"""Where a profiled process's time goes, by kind of work: reads `perf report --stdio
--sort dso,symbol --no-children` on stdin (perf record -e cpu-clock: this machine's
hardware counters are not exposed) and prints each category's share of samples and the
largest symbols outside GEMM. Used by scripts/mole-speed.sh (PROFILE=1)."""
import collections
import re
import sys

# First match wins: the categories a training step's time splits into.
CATEGORIES = [
    ("GEMM (gemm crate kernels and packing)", ("gemm",)),
    ("attention (scores, softmax, context, their backward)", ("attention", "softmax")),
    # On AVX-512 machines our fused kernels (core/src/simd.rs) show up as pulp's V4
    # `vectorize` trampoline, not under their own names (a call-graph profile on Zen 5,
    # 2026-12-04: bias + GELU, softmax, layer norm and their backward; gemm's kernels
    # are not among them).
    ("fused element-wise kernels (layer norm, GELU, bias, softmax) and backward",
     ("layer_norm", "gelu", "norm", "residual", "pulp::")),
    ("MoLE low-rank terms and gates", ("mole", "lora", "gate", "low_rank", "routing")),
    ("AdamW, clipping", ("adam", "clip")),
    ("memory (memset, memcpy, allocator)", ("memset", "memcpy", "memmove", "mi_", "malloc", "free")),
    ("kernel (page faults, scheduling)", ("[k]",)),
]

shares = collections.Counter()
others = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\[[.k]\])\s+(.*)", line)
    if not m:
        continue
    share, dso, kind, symbol = float(m[1]), m[2], m[3], m[4].strip()
    text = f"{kind} {dso} {symbol}".lower()
    for name, keys in CATEGORIES:
        if any(k in text for k in keys):
            shares[name] += share
            break
    else:
        shares["other"] += share
        others[symbol[:90]] += share
for name, _ in CATEGORIES + [("other", ())]:
    print(f"| {name} | {shares[name]:.1f} % |")
print()
print("largest symbols in 'other':")
for symbol, share in others.most_common(8):
    print(f"  {share:5.1f} %  {symbol}")
