#!/usr/bin/env bash
# Checks deploy/kubernetes/*.yaml against the Kubernetes API's JSON schemas, without a
# cluster or kubectl: kubernetes-validate (PyPI, schemas bundled, strict: unknown fields
# are errors) in .venv-deploy. `make test` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-deploy}
PY=${PYTHON:-python3}
REQ=kubernetes-validate==1.37.0
K8S=${K8S_VERSION:-1.34.0}
if [ ! -f "$VENV/READY" ] || [ "$(cat "$VENV/READY")" != "$REQ" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$REQ"
  echo "$REQ" >"$VENV/READY"
fi
# kustomization.yaml is kustomize's, not an API object.
files=$(ls deploy/kubernetes/*.yaml | grep -v kustomization.yaml)
"$VENV/bin/kubernetes-validate" --strict -k "$K8S" $files
