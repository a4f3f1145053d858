#!/usr/bin/env bash
# The Helm chart (deploy/helm/copl-serve) checked without a cluster, a helm binary or
# kubectl: `helm lint --strict` and `helm template` through Helm's own Go SDK
# (helm-python-sdk, PyPI: scripts/helm-template.py) for the chart's defaults and every
# values file in its ci/ folder, the value sets it must refuse refused, then every
# rendered object against the Kubernetes API's JSON schemas (kubernetes-validate, schemas
# bundled, strict: unknown fields are errors). Both in .venv-deploy. `make test` runs it.
#   OUT=dir scripts/validate-deploy.sh   keeps the rendered manifests in dir
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-deploy}
PY=${PYTHON:-python3}
REQ="kubernetes-validate==1.37.0 helm-python-sdk==0.2.2"
K8S=${K8S_VERSION:-1.34.0}
if [ ! -f "$VENV/READY" ] || [ "$(cat "$VENV/READY")" != "$REQ" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  # shellcheck disable=SC2086 # two requirements
  "$VENV/bin/pip" install -q --disable-pip-version-check $REQ
  echo "$REQ" >"$VENV/READY"
fi
OUT=${OUT:-$(mktemp -d)}
"$VENV/bin/python" scripts/helm-template.py deploy/helm/copl-serve "$OUT"
# Objects of custom resources (*.custom.yaml: the ServiceMonitor) are not in the API's
# schemas: helm-template.py rendered and parsed them.
mapfile -t files < <(ls "$OUT"/*.yaml | grep -v '\.custom\.yaml$')
"$VENV/bin/kubernetes-validate" --strict -k "$K8S" --quiet "${files[@]}"
echo "validate-deploy: ${#files[@]} rendered value sets pass the Kubernetes $K8S schemas (strict)"
