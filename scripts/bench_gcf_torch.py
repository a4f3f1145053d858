#!/usr/bin/env python3
"""The GCF training step of `copl-train bench gcf` in PyTorch, for the side-by-side table
of docs/benchmarks.md (scripts/gcf-speed.sh runs both in turn).

The same network as trainer/src/gcf/model.rs (eq. 2-5 with the authors' aggregate-first
form): per layer and side m = [Z+, Z+*e, Z-, Z-*e, e] W^T + b, LeakyReLU(0.2); Z = A e
with A normalised per polarity by sqrt(deg_u deg_r) (duplicates summed); edge dropout
0.1 on the normalised values; loss = mean BTL + lambda * mean squared norms of the batch's
final embeddings; AdamW; batch 1 024. The graph is read from the data set directory (the
seen users' training pairs, in file order, users numbered by first appearance, responses
in responses.jsonl order), as graph_of does.

Prints one JSON object: seconds a step (mean of --steps after one warm-up), peak RSS.
"""
import argparse
import json
import resource
import time

import torch


def load_pairs(data):
    unseen = set()
    for line in open(f"{data}/users.jsonl"):
        u = json.loads(line)
        if u.get("unseen"):
            unseen.add(u["user"])
    rows = {}
    for i, line in enumerate(open(f"{data}/responses.jsonl")):
        rows[json.loads(line)["id"]] = i
    users, pairs = {}, []
    for line in open(f"{data}/annotations.jsonl"):
        a = json.loads(line)
        if a["split"] != "train" or a["user"] in unseen:
            continue
        u = users.setdefault(a["user"], len(users))
        pairs.append((u, rows[a["chosen"]], rows[a["rejected"]]))
    return len(users), len(rows), pairs


def normalised(rows, cols, r, c):
    idx = torch.stack([torch.tensor(r), torch.tensor(c)])
    a = torch.sparse_coo_tensor(idx, torch.ones(len(r)), (rows, cols)).coalesce()
    deg_r = torch.sparse.sum(a, 1).to_dense()
    deg_c = torch.sparse.sum(a, 0).to_dense()
    i = a.indices()
    v = a.values() / torch.sqrt(deg_r[i[0]] * deg_c[i[1]])
    a = torch.sparse_coo_tensor(i, v, (rows, cols)).coalesce()
    return a.to_sparse_csr(), a.t().coalesce().to_sparse_csr()


def dropout(a, p):
    values = torch.nn.functional.dropout(a.values(), p=p)
    return torch.sparse_csr_tensor(a.crow_indices(), a.col_indices(), values, a.shape)


class Gcf(torch.nn.Module):
    def __init__(self, nu, nr, d, layers):
        super().__init__()
        self.u0 = torch.nn.Parameter(torch.nn.init.xavier_uniform_(torch.empty(nu, d)))
        self.r0 = torch.nn.Parameter(torch.nn.init.xavier_uniform_(torch.empty(nr, d)))
        self.wu = torch.nn.ModuleList([torch.nn.Linear(5 * d, d) for _ in range(layers)])
        self.wr = torch.nn.ModuleList([torch.nn.Linear(5 * d, d) for _ in range(layers)])

    def forward(self, pos, neg, p):
        (ap, apt), (an, ant) = pos, neg
        eu, er = self.u0, self.r0
        act = torch.nn.functional.leaky_relu
        for wu, wr in zip(self.wu, self.wr):
            zu_p = torch.sparse.mm(dropout(ap, p), er)
            zr_p = torch.sparse.mm(dropout(apt, p), eu)
            zu_n = torch.sparse.mm(dropout(an, p), er)
            zr_n = torch.sparse.mm(dropout(ant, p), eu)
            eu, er = (
                act(wu(torch.cat([zu_p, zu_p * eu, zu_n, zu_n * eu, eu], 1)), 0.2),
                act(wr(torch.cat([zr_p, zr_p * er, zr_n, zr_n * er, er], 1)), 0.2),
            )
        return eu, er


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nu, nr, pairs = load_pairs(args.data)
    u = [p[0] for p in pairs]
    pos = normalised(nu, nr, u, [p[1] for p in pairs])
    neg = normalised(nu, nr, u, [p[2] for p in pairs])
    model = Gcf(nu, nr, args.dim, args.layers)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    triples = torch.tensor(pairs)
    times = []
    for step in range(args.steps + 1):
        started = time.perf_counter()
        batch = triples[torch.randint(0, len(pairs), (args.batch,))]
        eu, er = model(pos, neg, 0.1)
        a, b, c = eu[batch[:, 0]], er[batch[:, 1]], er[batch[:, 2]]
        margin = (a * b).sum(1) - (a * c).sum(1)
        loss = -torch.nn.functional.logsigmoid(margin).mean() + 1e-3 * (
            a.pow(2).sum() + b.pow(2).sum() + c.pow(2).sum()
        ) / args.batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step > 0:
            times.append(time.perf_counter() - started)
    print(json.dumps({
        "engine": "pytorch",
        "torch": torch.__version__,
        "dim": args.dim,
        "users": nu,
        "responses": nr,
        "threads": args.threads,
        "steps": len(times),
        "seconds_per_step": sum(times) / len(times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
