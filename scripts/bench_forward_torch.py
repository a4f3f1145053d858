"""The same forward as `copl-bench forward`, in PyTorch + Hugging Face
transformers, on this CPU: backbone alone, with MoLE (one shared + 8 experts of rank 8
on query and value, stacked, a per-row mask) for one user and for mixed users.

    python scripts/bench_forward_torch.py --backbone backbones/minilm [--json]
    python scripts/bench_forward_torch.py --train-step --adapter peft|mole \
        --adapt-layers 2|all --tokens 128,512 --batch-pairs 16,64 [--json]

`--train-step` times what `copl-train bench mole` times (see train_step);
`scripts/mole-speed.sh` runs both in turn.

On a GPU (issue #14's scripts/gpu-check.sh): `--device cuda --dtype bf16` over either
family (a Gemma's q_proj and v_proj carry the MoLE), `--compile` also times
`torch.compile` of the same model, `--variants` picks the rows; CUDA is synchronised
around every timed forward.

Needs torch and transformers, and peft for `--adapter peft` (`scripts/bench-forward.sh`
and `scripts/mole-speed.sh` install them in a venv).
Random token ids; every row `tokens` long ("fixed") or a mix of lengths ("mixed", the
formula of `copl-bench forward`), padded to the longest with the attention mask
as Hugging Face does; tokens/s counts real tokens. Median of at least `--repeats` timed forwards (enough for about a second, at most 50)
after a warm-up, inference mode, torch threads = the machine's cores.
"""
import argparse
import json
import math
import statistics
import time

import torch
import transformers
from transformers import BertModel

RANK, EXPERTS, ALPHA = 8, 8, 16.0


class MoleLinear(torch.nn.Module):
    def __init__(self, base: torch.nn.Linear):
        super().__init__()
        self.base = base
        k = (EXPERTS + 1) * RANK
        w = base.weight
        self.a = torch.nn.Parameter(torch.randn(k, base.in_features, device=w.device, dtype=w.dtype) / base.in_features**0.5)
        self.b = torch.nn.Parameter(torch.randn(base.out_features, k, device=w.device, dtype=w.dtype) * 0.01)
        self.mask = None  # [n, k], set per batch

    def forward(self, x):
        n, t, i = x.shape
        low = (x.reshape(n * t, i) @ self.a.T).reshape(n, t, -1) * (self.mask * (ALPHA / RANK)).unsqueeze(1)
        return self.base(x) + (low.reshape(n * t, -1) @ self.b.T).reshape(n, t, -1)


def masks(n, mixed, device="cpu", dtype=torch.float32):
    experts = torch.randint(0, EXPERTS, (n if mixed else 1,)).expand(n)
    weights = torch.rand(n) * 0.5 + 0.5
    m = torch.zeros(n, (EXPERTS + 1) * RANK)
    m[:, :RANK] = 1.0
    for row, e in enumerate(experts.tolist()):
        m[row, RANK * (1 + e): RANK * (2 + e)] = weights[row]
    return m.to(device=device, dtype=dtype)


def load(backbone, device, dtype):
    """The backbone in `backbone` twice (plain, and with MoLE on query/value or
    q_proj/v_proj), in eval mode on `device` in `dtype`: (plain, mole, adapted, vocab)."""
    config = json.load(open(f"{backbone}/config.json"))
    def one():
        if config["model_type"] == "bert":
            return BertModel.from_pretrained(backbone, add_pooling_layer=False)
        cls = {"gemma": transformers.GemmaForCausalLM,
               "gemma3_text": transformers.Gemma3ForCausalLM}[config["model_type"]]
        return cls.from_pretrained(backbone, torch_dtype=dtype).model
    plain, mole = (one().to(device=device, dtype=dtype).eval() for _ in range(2))
    adapted = []
    if config["model_type"] == "bert":
        sites = [(layer.attention.self, ("query", "value")) for layer in mole.encoder.layer]
    else:
        sites = [(layer.self_attn, ("q_proj", "v_proj")) for layer in mole.layers]
    for owner, names in sites:
        for name in names:
            m = MoleLinear(getattr(owner, name))
            setattr(owner, name, m)
            adapted.append(m)
    return plain, mole, adapted, config["vocab_size"]


def mixed_lengths(batch, longest):
    """Row i: 16·(longest/16)^u, u = frac((i + 1)·0.618…) (as trainer/src/mole/bench.rs)."""
    golden = (5 ** 0.5 - 1) / 2
    out = []
    for i in range(batch):
        u = ((i + 1) * golden) % 1.0
        n = int(round(16 * (longest / 16) ** u))
        out.append(max(min(16, longest), min(n, longest)))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backbone", default="backbones/minilm")
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--tokens", default="128,512")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=("f32", "bf16"), default="f32")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of each model")
    p.add_argument("--variants", default="backbone,mole_one_user,mole_mixed_users")
    p.add_argument("--lengths", default="fixed,mixed")
    p.add_argument("--train-step", action="store_true",
                   help="time training steps (forward, backward, AdamW) instead of forwards")
    p.add_argument("--batch-pairs", default="16", help="--train-step: pairs a step (list)")
    p.add_argument("--adapt-layers", default="all", help="--train-step: the top K layers, or all")
    p.add_argument("--adapter", choices=("mole", "peft"), default="mole",
                   help="--train-step: this file's MoLE, or PEFT's LoRA (q, v, r = 8)")
    args = p.parse_args()
    if args.train_step:
        return train_step(args)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    plain, mole, adapted, vocab = load(args.backbone, args.device, dtype)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    wanted = args.variants.split(",")
    paths = [("eager", plain, mole)]
    if args.compile:
        paths.append(("compile", torch.compile(plain), torch.compile(mole)))
    rows = []
    with torch.inference_mode():
        for tokens in map(int, args.tokens.split(",")):
            for batch, mix in ((b, m) for b in map(int, args.batches.split(",")) for m in args.lengths.split(",")):
                lengths = [tokens] * batch if mix == "fixed" else mixed_lengths(batch, tokens)
                width = max(lengths)
                ids = torch.randint(min(1000, vocab // 2), vocab, (batch, width), device=args.device)
                attention = torch.zeros_like(ids)
                for row, n in enumerate(lengths):
                    attention[row, :n] = 1
                for path, plain_model, mole_model in paths:
                    variants = [("backbone", plain_model, None), ("mole_one_user", mole_model, False)]
                    if batch > 1:
                        variants.append(("mole_mixed_users", mole_model, True))
                    for variant, model, mixed in variants:
                        if variant not in wanted:
                            continue
                        if mixed is not None:
                            m = masks(batch, mixed, args.device, dtype)
                            for module in adapted:
                                module.mask = m
                        warm = time.perf_counter()
                        model(input_ids=ids, attention_mask=attention)
                        sync()
                        # At least --repeats, and enough for about a second (as copl-bench forward).
                        enough = math.ceil(1.0 / max(time.perf_counter() - warm, 1e-3))
                        times = []
                        for _ in range(max(1, args.repeats, min(enough, 50))):
                            started = time.perf_counter()
                            model(input_ids=ids, attention_mask=attention)
                            sync()
                            times.append(time.perf_counter() - started)
                        s = statistics.median(times)
                        rows.append(dict(variant=variant, path=path, batch=batch, tokens=tokens,
                                         lengths=mix, seconds=s, tokens_per_second=sum(lengths) / s))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['variant']:<18} {r['path']:<8} {r['batch']:>5}  {r['tokens']:>6}  {r['lengths']:<6} {r['seconds']:>10.4f}  {r['tokens_per_second']:>9.0f}")


def train_step(args):
    """The step `copl-train bench mole` times, in PyTorch: a frozen backbone whose top
    `--adapt-layers` layers (or all) carry adapters, a reward head, mean pooling, the BTL
    loss and AdamW over the adapters and head. The frozen layers below the adapted ones
    (the embeddings when every layer is adapted) run once outside the timed step, as
    `bench mole` times with its frozen-state cache warm. `--adapter mole`: the MoLE of
    this file (a shared and 8 routed experts of rank 8 on query and value, a per-row
    mask; gates left out, a small MLP); `--adapter peft`: PEFT's LoRA (q, v, r = 8,
    alpha 16, no dropout) on the same layers, the usual personalisation-free baseline."""
    torch.manual_seed(0)
    model = BertModel.from_pretrained(args.backbone, add_pooling_layer=False)
    model.requires_grad_(False)
    layers = model.config.num_hidden_layers
    top = layers if args.adapt_layers == "all" else int(args.adapt_layers)
    first = layers - top
    if args.adapter == "peft":
        from peft import LoraConfig, get_peft_model
        config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0,
                            target_modules=["query", "value"],
                            layers_to_transform=list(range(first, layers)))
        model = get_peft_model(model, config).base_model.model
        adapted = []
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        adapted = []
        for layer in model.encoder.layer[first:]:
            for name in ("query", "value"):
                m = MoleLinear(getattr(layer.attention.self, name))
                setattr(layer.attention.self, name, m)
                adapted.append(m)
        params = [p for m in adapted for p in (m.a, m.b)]
    head = torch.nn.Linear(model.config.hidden_size, 1)
    params += list(head.parameters())
    opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=1e-3)
    blocks = model.encoder.layer

    def run(hidden, start):
        for block in blocks[start:]:
            out = block(hidden)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    rows = []
    for tokens in map(int, args.tokens.split(",")):
        for pairs in map(int, args.batch_pairs.split(",")):
            ids = torch.randint(1000, model.config.vocab_size, (2 * pairs, tokens))
            with torch.no_grad():
                frozen = model.embeddings(input_ids=ids)
                for block in blocks[:first]:
                    out = block(frozen)
                    frozen = out[0] if isinstance(out, tuple) else out
            m = masks(2 * pairs, True)
            for module in adapted:
                module.mask = m
            times = []
            for _ in range(max(1, args.repeats) + 1):
                started = time.perf_counter()
                hidden = run(frozen, first)
                r = head(hidden.mean(1)).squeeze(-1)
                loss = torch.nn.functional.softplus(-(r[:pairs] - r[pairs:])).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - started)
            s = statistics.median(times[1:])
            rows.append(dict(adapter=args.adapter, adapt_layers=args.adapt_layers,
                             batch_pairs=pairs, tokens=tokens, seconds=s,
                             pairs_per_second=pairs / s, threads=torch.get_num_threads()))
    print(json.dumps(rows, indent=2) if args.json else rows)


if __name__ == "__main__":
    main()
