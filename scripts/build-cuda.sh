#!/usr/bin/env bash
# The CUDA build on a machine without a GPU or a CUDA toolkit (issue #14): nvcc 13.0, its
# headers and the runtime from PyPI (pinned and sha256-checked:
# scripts/cuda-requirements.txt) into .venv-cuda, then
#   scripts/build-cuda.sh              `cargo check` of the workspace with the `cuda`
#                                      feature (candle's kernels compiled to PTX by nvcc):
#                                      what `make test` runs, so the CUDA code cannot rot.
#                                      ≈ 10 min cold on 2 cores, seconds warm.
#   MODE=build scripts/build-cuda.sh   release binaries with `cuda` (scripts/build-release.sh
#                                      with CUDA=1) into $DIST (dist-cuda/bin), stripped,
#                                      then their sizes and the libraries they link.
# CUDA_COMPUTE_CAP: the GPUs' compute capability without the dot (default 90: H100/H200).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-cuda
MODE=${MODE:-check}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
if [ ! -x "$VENV/bin/pip" ] || ! cmp -s scripts/cuda-requirements.txt "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --no-deps --require-hashes -r scripts/cuda-requirements.txt
  cp scripts/cuda-requirements.txt "$VENV/requirements.txt"
fi
CUDA_ROOT=$(cd "$VENV"/lib/python3*/site-packages/nvidia/cu13 && pwd)
export CUDA_ROOT CUDA_PATH=$CUDA_ROOT PATH=$CUDA_ROOT/bin:$PATH
echo "nvcc: $(nvcc --version | tail -1); compute capability $CUDA_COMPUTE_CAP"
case $MODE in
  check)
    cargo check --locked --workspace --features copl-server/cuda,copl-trainer/cuda
    ;;
  build)
    DIST=${DIST:-dist-cuda}
    CUDA=1 DIST=$DIST scripts/build-release.sh
    du -b "$DIST"/bin/* | awk '{printf "%s: %.1f MiB\n", $2, $1 / 1048576}'
    for bin in copl-server copl-train; do
      echo "$bin links:"
      ldd "$DIST/bin/$bin" | awk '{print "  " $1}'
    done
    ;;
  *)
    echo "MODE=$MODE: use check or build" >&2
    exit 2
    ;;
esac
