#!/usr/bin/env bash
# The CUDA build on a machine without a GPU or a CUDA toolkit (issue #14): nvcc 13.0, its
# headers and the runtime from PyPI (pinned and sha256-checked:
# scripts/cuda-requirements.txt; MODE=build adds the libraries it links,
# scripts/cuda-link-requirements.txt) into .venv-cuda, then
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
# The compiler for either mode; a release build also links cuBLAS, cuRAND and NVRTC
# (scripts/cuda-link-requirements.txt, ≈ 570 MB of wheels the check does not need). No
# pip cache: it would hold a second copy of every wheel (CI's disk is small).
requirements=(scripts/cuda-requirements.txt)
if [ "$MODE" = build ]; then requirements+=(scripts/cuda-link-requirements.txt); fi
# A venv made from other compiler pins is made afresh; each file installed is stamped.
if [ ! -x "$VENV/bin/pip" ] || ! cmp -s scripts/cuda-requirements.txt "$VENV/cuda-requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
fi
for req in "${requirements[@]}"; do
  stamp=$VENV/$(basename "$req")
  if ! cmp -s "$req" "$stamp"; then
    "$VENV/bin/pip" install -q --no-cache-dir --no-deps --require-hashes -r "$req"
    cp "$req" "$stamp"
  fi
done
CUDA_ROOT=$(cd "$VENV"/lib/python3*/site-packages/nvidia/cu13 && pwd)
export CUDA_ROOT CUDA_PATH=$CUDA_ROOT PATH=$CUDA_ROOT/bin:$PATH
echo "nvcc: $(nvcc --version | tail -1); compute capability $CUDA_COMPUTE_CAP"
case $MODE in
  check)
    cargo check --locked --workspace --features copl-server/cuda,copl-trainer/cuda
    ;;
  build)
    # candle builds cudarc with `dynamic-linking`: the final link wants libcuda, libnvrtc,
    # libcurand, libcublas, libcublasLt and libcudart by their unversioned names. The
    # wheels ship only `lib*.so.N`, and the driver's libcuda is in no wheel: a link
    # directory gets symlinks to the former and a stub of the latter (every driver
    # function cudarc declares, soname libcuda.so.1), so the binaries record the sonames
    # and take the GPU machine's own libraries at run time. Given to the linker by
    # LIBRARY_PATH, which (unlike RUSTFLAGS) rebuilds nothing.
    LINK=$VENV/link
    mkdir -p "$LINK"
    for lib in "$CUDA_ROOT"/lib/lib{cublas,cublasLt,curand,nvrtc,cudart}.so.*; do
      ln -sf "$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")" "$LINK/$(basename "${lib%%.so.*}").so"
    done
    cudarc=$(cargo metadata --locked --format-version 1 --features copl-server/cuda,copl-trainer/cuda |
      python3 -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc").rsplit("/", 1)[0])')
    grep -oE '^ +fn cu[A-Za-z0-9_]+\(' "$cudarc/src/driver/sys/mod.rs" | sed -E 's/^ +fn (cu[A-Za-z0-9_]+)\(/int \1(void) { return 999; }/' |
      sort -u >"$LINK/cuda-stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINK/libcuda.so" "$LINK/cuda-stub.c"
    export LIBRARY_PATH=$(cd "$LINK" && pwd)${LIBRARY_PATH:+:$LIBRARY_PATH}
    # build-release.sh's smoke check (`--version`) runs the binaries here: the loader
    # finds the wheels' libraries and the stub as libcuda.so.1 (no driver call is made).
    mkdir -p "$LINK/run"
    ln -sf ../libcuda.so "$LINK/run/libcuda.so.1"
    export LD_LIBRARY_PATH=$(cd "$LINK/run" && pwd):$CUDA_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    # Its own target directory: the CPU release binaries in target/release stay as they are.
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
    DIST=${DIST:-dist-cuda}
    CUDA=1 DIST=$DIST scripts/build-release.sh
    du -b "$DIST"/bin/* | awk '{printf "%s: %.1f MiB\n", $2, $1 / 1048576}'
    for bin in copl-server copl-train; do
      echo "$bin links:"
      LD_LIBRARY_PATH= ldd "$DIST/bin/$bin" | awk '{print "  " $1, $2, $3}'
    done
    ;;
  *)
    echo "MODE=$MODE: use check or build" >&2
    exit 2
    ;;
esac
