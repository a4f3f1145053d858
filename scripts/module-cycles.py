#!/usr/bin/env python3
"""No module cycles inside a crate (DEVELOPERS.md's style): reads every crate's
`src/**/*.rs`, draws an edge from a module to each module it names through `crate::…`
or `super::…` (comments and `#[cfg(test)] mod tests` left out: doc links and test
imports are not dependencies), and prints every strongly connected set of two or more
modules. Exit status 1 when there is one. `make test` runs it (`make cycles`).

Usage: scripts/module-cycles.py [CRATE_DIR...]   (default: every workspace crate)
"""
import os
import re
import sys
from collections import defaultdict



def workspace_crates():
    """The members of the workspace's Cargo.toml (one list, the manifest's)."""
    text = open("Cargo.toml").read()
    members = re.search(r"^members\s*=\s*\[([^\]]*)\]", text, re.M)
    return re.findall(r'"([^"]+)"', members.group(1)) if members else []



def module_name(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts)


def dependencies(crate):
    src = os.path.join(crate, "src")
    modules = {}
    for directory, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(directory, name)
                modules[module_name(src, path)] = path
    edges = defaultdict(set)
    for module, path in modules.items():
        text = open(path, encoding="utf-8").read()
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
        text = "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))
        here = module.split("::") if module else []
        # `super` of a file module is its parent; of a `mod.rs`, the parent of its folder.
        parent = here[:-1]
        named = [p.split("::") for p in re.findall(r"\bcrate::([a-z_][a-z0-9_:]*)", text)]
        named += [parent + p.split("::") for p in re.findall(r"\bsuper::([a-z_][a-z0-9_:]*)", text)]
        for segments in named:
            for k in range(len(segments), 0, -1):
                target = "::".join(segments[:k])
                if target in modules:
                    # A module's own descendants and ancestors are not cycles.
                    if target != module and not target.startswith(module + "::") \
                            and not (module.startswith(target + "::") or target == ""):
                        edges[module].add(target)
                    break
    return modules, edges


def cycles(modules, edges):
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(modules):
        if v not in index:
            visit(v)
    return found


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.chdir(root)
    crates = sys.argv[1:] or [c for c in workspace_crates() if os.path.isdir(os.path.join(c, "src"))]
    bad = 0
    for crate in crates:
        for component in cycles(*dependencies(crate)):
            bad += 1
            print(f"{crate}: module cycle: {' <-> '.join(component)}")
    if bad:
        sys.exit(1)
    print(f"no module cycles in {', '.join(crates)}")


if __name__ == "__main__":
    main()
