#!/usr/bin/env python3
"""`helm lint --strict` and `helm template` for deploy/helm/copl-serve, without a helm
binary: Helm's own Go SDK (v4) through helm-python-sdk (PyPI; scripts/validate-deploy.sh
installs it in .venv-deploy). For the chart's defaults and every values file in its ci/
folder it lints, renders and writes the manifests to OUT/<case>.yaml, one object per
document (objects of custom resources, kinds the Kubernetes API schemas do not know,
to OUT/<case>.custom.yaml). It also renders the value sets the chart must refuse and
checks that each is refused with the reason it names. Exit status 1 on any failure.

    scripts/helm-template.py deploy/helm/copl-serve OUT
"""

from __future__ import annotations

import pathlib
import sys

import helm_python as helm
import yaml

# Kinds outside the core API (their CRDs' schemas are not bundled with
# kubernetes-validate): rendered and parsed, not schema-checked.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# Value sets the chart must refuse, and a phrase the refusal must contain.
REFUSED = [
    ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ({"store": {"backend": "embedded"}}, "keeps users on one replica's volume"),
    (
        {"store": {"backend": "embedded"}, "replicaCount": 1, "autoscaling": {"enabled": False}},
        "needs store.embeddedClaim",
    ),
    ({"models": {"source": "claim"}}, "needs models.existingClaim"),
    ({"tls": {"secretName": "t"}, "ports": {"http": 8080}}, "not together with tls.secretName"),
    ({"store": {"redisUrl": "http://redis:6379"}}, "redisUrl"),
    ({"auth": {"scoringKeysSha256": ["not-a-digest"]}}, "scoringKeysSha256"),
    ({"store": {"redisUrl": ""}, "redis": {"enabled": False}}, "needs store.redisUrl or redis.enabled"),
]


def lint(chart: pathlib.Path, values: dict, case: str) -> list[str]:
    report = helm.lint(chart, values, strict=True, kube_version="v1.34.0")
    # Severity 1 is information ("icon is recommended"); 2 warnings and 3 errors fail.
    return [
        f"{case}: lint {m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2
    ] + [f"{case}: lint: {e}" for e in report["errors"]]


def render(chart: helm.Chart, values: dict) -> list[dict]:
    manifests = chart.render(values, name="copl", namespace="copl", is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if not path.endswith(".yaml"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.append(document)
    return objects


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 1
    chart_dir, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    cases = [("defaults", {})] + [
        (p.name.removesuffix("-values.yaml").removesuffix(".yaml"), yaml.safe_load(p.read_text()) or {})
        for p in sorted((chart_dir / "ci").glob("*.yaml"))
    ]
    failures: list[str] = []
    with helm.Chart.load(chart_dir) as chart:
        for case, values in cases:
            failures += lint(chart_dir, values, case)
            try:
                objects = render(chart, values)
            except helm.HelmError as e:
                failures.append(f"{case}: render: {e}")
                continue
            core = [o for o in objects if (o.get("apiVersion"), o.get("kind")) not in CUSTOM_KINDS]
            custom = [o for o in objects if (o.get("apiVersion"), o.get("kind")) in CUSTOM_KINDS]
            (out / f"{case}.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
            if custom:
                (out / f"{case}.custom.yaml").write_text(yaml.safe_dump_all(custom, sort_keys=False))
            kinds = ", ".join(sorted(o["kind"] for o in objects))
            print(f"helm-template: {case}: {len(objects)} objects ({kinds})")
        for values, reason in REFUSED:
            try:
                render(chart, values)
                failures.append(f"refused case {values}: rendered, expected a refusal naming {reason!r}")
            except helm.HelmError as e:
                if reason not in str(e):
                    failures.append(f"refused case {values}: refused for another reason: {e}")
        print(f"helm-template: {len(REFUSED)} value sets refused as they should be"
              if not any(f.startswith("refused") for f in failures) else "")
    for failure in failures:
        print(f"helm-template: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
