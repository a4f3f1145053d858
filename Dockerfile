# CoPL-serve container: copl-server (entrypoint), copl (CLI and HEALTHCHECK), copl-train.
#
#   docker build -t copl-serve .                          CPU image (debian-slim runtime)
#   docker build --build-arg VARIANT=cuda -t copl-serve:cuda .   CUDA image (`cuda` feature)
#   docker build --build-arg VARIANT=cuda --build-arg CUDA_COMPUTE_CAP=80 …  for an A100
#     (CUDA_COMPUTE_CAP: the GPUs' compute capability without the dot; default 90, H100 /
#     H200. candle's kernel build cannot ask a GPU inside `docker build`, so it is given.)
#
#   docker run -p 50051:50051 -p 9100:9100 \
#     -v $PWD/runs/demo/ckpt:/checkpoint:ro -v $PWD/backbones:/backbones:ro \
#     -v copl-users:/data -e COPL_BACKBONE=/backbones/minilm copl-serve
#
# The build steps are scripts/build-release.sh (CPU) and scripts/build-cuda.sh MODE=build
# (CUDA), which run outside Docker too (make test runs the first, and checks the second's
# code with `cargo check`).
# docs/operations.md: configuration, probes, volumes.

ARG VARIANT=cpu
ARG RUST_VERSION=1.95.0
# The runtime's CUDA: the release the binaries were compiled and linked with
# (scripts/cuda-requirements.txt and cuda-link-requirements.txt pin nvcc and the
# libraries at 13.0).
ARG CUDA_VERSION=13.0.0

# ---- build stages: one per variant, chosen by VARIANT ----
FROM rust:${RUST_VERSION}-bookworm AS build-cpu
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    DIST=/dist scripts/build-release.sh

# The CUDA build is scripts/build-cuda.sh, as here: nvcc 13.0, its headers and the
# libraries to link from PyPI (pinned, hash-checked), no CUDA image needed to build.
FROM rust:${RUST_VERSION}-bookworm AS build-cuda
ARG CUDA_COMPUTE_CAP=90
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP} MODE=build DIST=/dist scripts/build-cuda.sh

FROM build-${VARIANT} AS build

# ---- runtime stages ----
FROM debian:bookworm-slim AS runtime-cpu
# cudart, cuBLAS, cuRAND and NVRTC of the runtime image; libcuda comes from the host's
# driver (the NVIDIA container toolkit mounts it).
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04 AS runtime-cuda

FROM runtime-${VARIANT}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 copl \
 && useradd --system --uid 10001 --gid copl --home-dir /data --shell /usr/sbin/nologin copl \
 && mkdir -p /checkpoint /backbones /data \
 && chown copl:copl /data
COPY --from=build /dist/bin/ /usr/local/bin/
USER 10001:10001
# /checkpoint: the trained checkpoint (read-only); /backbones: backbone directories
# (read-only); /data: the embedded user store (writable, persistent).
VOLUME ["/checkpoint", "/backbones", "/data"]
ENV COPL_CHECKPOINT=/checkpoint \
    COPL_DATA_DIR=/data \
    COPL_LISTEN=0.0.0.0:50051 \
    COPL_METRICS_LISTEN=0.0.0.0:9100 \
    COPL_LOG_FORMAT=json
EXPOSE 50051 9100
# Loading and warming takes a while: the start period covers it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD ["copl", "--addr", "http://127.0.0.1:50051", "--timeout", "2", "health"]
ENTRYPOINT ["copl-server"]
