#!/usr/bin/env bash
# The Python client (clients/python): a virtual environment for its tests, and its gRPC
# stubs generated from proto/copl/v1/reward.proto.
#
#   scripts/python-client.sh venv   .venv-client/ with grpcio, protobuf, pytest, TRL (with
#                                   torch and transformers, for the reward function's
#                                   test inside GRPOTrainer: ≈ 6 GB, ≈ 6 min, PyPI's torch
#                                   being the CUDA build) and the client installed
#                                   (editable); PyPI only; idempotent
#   scripts/python-client.sh gen    regenerate clients/python/copl_client/v1/ from the proto
#                                   (after a change to the proto; a test checks they agree)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-client}
PY=${PYTHON:-python3}
REQS=(grpcio==1.85.3 grpcio-tools==1.85.1 protobuf==7.36.2 pytest==9.2.0
  trl==1.16.0 torch==2.15.0 transformers==5.25.0 accelerate==1.16.0 datasets==5.2.0)

venv() {
  if [ -f "$VENV/READY" ] && [ "$(cat "$VENV/READY")" = "${REQS[*]}" ]; then
    return 0
  fi
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${REQS[@]}"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e clients/python
  echo "${REQS[*]}" >"$VENV/READY"
}

# Generates into $1 with imports made relative to the package.
generate() {
  local out=$1
  mkdir -p "$out"
  "$VENV/bin/python" -m grpc_tools.protoc -I proto --python_out="$out" \
    --grpc_python_out="$out" --pyi_out="$out" proto/copl/v1/reward.proto
  mv "$out"/copl/v1/reward_pb2.py "$out"/copl/v1/reward_pb2_grpc.py "$out"/copl/v1/reward_pb2.pyi "$out"/
  rm -rf "$out/copl"
  sed -i 's/^from copl\.v1 import reward_pb2 as/from . import reward_pb2 as/' "$out/reward_pb2_grpc.py"
}

case ${1:-} in
  venv) venv ;;
  gen)
    venv
    generate clients/python/copl_client/v1
    ;;
  generate-into) generate "${2:?generate-into DIR}" ;;
  *)
    echo "usage: scripts/python-client.sh venv|gen" >&2
    exit 2
    ;;
esac
