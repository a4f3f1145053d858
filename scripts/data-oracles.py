#!/usr/bin/env python3
"""What a synthetic ufp/tldr data set allows a graph model to reach (docs/gcf.md).

Usage: scripts/data-oracles.py DATA_DIR [DATA_DIR ...]

For each data set (a `copl-train synth` output with users.jsonl groups):
- held-out (val) group-vote oracle: a seen user's validation pair is answered by the
  majority of the *same group's* training answers on that very pair, else of all
  annotators' answers on it, else a coin. It knows every user's group, so it is what
  perfect group identification plus pair memory gives; GCF's held-out accuracy is read
  against it.
- test level-posterior oracle (ufp presets: attributes are levels 0..4, uniform): a test
  pair (a, b) of a user of group g is decided by the posterior of a's and b's level on
  g's attribute given the same group's training wins and losses of a and b (each
  against a partner of unknown level). Test pairs were annotated by nobody, so only the
  responses' other comparisons carry signal; this is close to what any graph model can
  reach on them (it ignores transitivity through shared partners, worth little here).
- the catalogue's shape: annotators a survey pair, survey pairs a response.
"""
import collections
import json
import sys

LEVELS = 5


def load(d):
    users = {}
    for line in open(f"{d}/users.jsonl"):
        u = json.loads(line)
        users[u["user"]] = u
    attrs = {}
    for line in open(f"{d}/responses.jsonl"):
        r = json.loads(line)
        attrs[r["id"]] = r.get("attributes") or {}
    return users, attrs


def main(d):
    users, attrs = load(d)
    train = collections.defaultdict(list)  # unordered pair -> [(user, chosen)]
    record = collections.defaultdict(collections.Counter)  # (response, group) -> wins/losses
    counted = set()
    val, test = [], []
    for line in open(f"{d}/annotations.jsonl"):
        a = json.loads(line)
        u = users[a["user"]]
        if u.get("unseen"):
            continue
        if a["split"] == "train":
            key = tuple(sorted((a["chosen"], a["rejected"])))
            train[key].append((a["user"], a["chosen"]))
            g = u.get("group")
            once = (a["chosen"], a["rejected"], g)
            if once not in counted:  # one win/loss per pair and group
                counted.add(once)
                record[(a["chosen"], g)]["w"] += 1
                record[(a["rejected"], g)]["l"] += 1
        elif a["split"] == "val":
            val.append(a)
        else:
            test.append(a)

    right = 0.0
    for a in val:
        g = users[a["user"]].get("group")
        answers = train.get(tuple(sorted((a["chosen"], a["rejected"]))), [])
        same = [c for (v, c) in answers if users[v].get("group") == g]
        pool = same or [c for (_, c) in answers]
        s = sum(1 if c == a["chosen"] else -1 for c in pool)
        right += 1.0 if s > 0 else 0.5 if s == 0 else 0.0
    val_oracle = right / max(len(val), 1)

    test_oracle = None
    if all(users[a["user"]].get("group") in attrs.get(a["chosen"], {}) for a in test[:100]):
        def posterior(r, g):
            c = record.get((r, g), {})
            p = [((x / (LEVELS - 1)) ** c.get("w", 0)) * (((LEVELS - 1 - x) / (LEVELS - 1)) ** c.get("l", 0))
                 for x in range(LEVELS)]
            s = sum(p)
            return [q / s for q in p] if s > 0 else [1 / LEVELS] * LEVELS
        right = 0.0
        for a in test:
            g = users[a["user"]]["group"]
            pa, pb = posterior(a["chosen"], g), posterior(a["rejected"], g)
            gt = sum(pa[x] * pb[y] for x in range(LEVELS) for y in range(LEVELS) if x > y)
            lt = sum(pa[x] * pb[y] for x in range(LEVELS) for y in range(LEVELS) if x < y)
            right += 1.0 if gt > lt else 0.5 if gt == lt else 0.0
        test_oracle = right / max(len(test), 1)

    responses_in_survey = collections.Counter()
    for (x, y) in train:
        responses_in_survey[x] += 1
        responses_in_survey[y] += 1
    annotators = sum(len(v) for v in train.values()) / max(len(train), 1)
    per_response = sum(responses_in_survey.values()) / max(len(responses_in_survey), 1)
    t = "–" if test_oracle is None else f"{100 * test_oracle:.1f}"
    print(f"| {d} | {100 * val_oracle:.1f} | {t} | {annotators:.2f} | {per_response:.2f} |")


if __name__ == "__main__":
    print("| data | held-out group-vote oracle | test level-posterior oracle | annotators a survey pair | survey pairs a response |")
    print("|---|---|---|---|---|")
    for d in sys.argv[1:]:
        main(d)
