#!/usr/bin/env bash
# Builds the binaries the container image ships — copl-server, copl (the CLI, also the
# image's HEALTHCHECK) and copl-train — and stages them, stripped, in $DIST/bin.
# The Dockerfile's build stage runs exactly this script; `make test` runs it too
# (scripts/docker-build-check.sh), so the image's build steps are exercised without a
# container engine.
#
#   scripts/build-release.sh              CPU build into dist/
#   CUDA=1 scripts/build-release.sh       the `cuda` feature (needs the CUDA toolkit: nvcc)
#   DIST=/out PROFILE=release scripts/build-release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
PROFILE=${PROFILE:-release}
features=()
if [ "${CUDA:-0}" = 1 ]; then
  features=(--features copl-server/cuda,copl-trainer/cuda)
fi
# The same package set as every other release build here (one feature resolution, so
# the builds share target/ instead of rebuilding each other's dependencies).
cargo build --locked --profile "$PROFILE" -p copl-server -p copl-cli -p copl-trainer "${features[@]}"
dir=${CARGO_TARGET_DIR:-target}/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
mkdir -p "$DIST/bin"
for bin in copl-server copl copl-train; do
  install -m 0755 "$dir/$bin" "$DIST/bin/$bin"
  if command -v strip >/dev/null; then strip "$DIST/bin/$bin"; fi
done
# Smoke check: the staged binaries start (what the image's entrypoint and probe run).
"$DIST/bin/copl-server" --version
"$DIST/bin/copl" --version
"$DIST/bin/copl-train" --version
du -sh "$DIST/bin"
