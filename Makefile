# The two commands of the README:
#   make demo   runs the main job on the embedded default (today: a synthetic benchmark,
#               generated and validated; training and serving join as their issues land)
#   make test   runs every check CI runs: format, lints, build, all tests
.PHONY: demo test fmt clippy build

DEMO_DIR ?= runs/demo

demo:
	cargo build --release -p copl-trainer
	./target/release/copl-train synth --preset ufp4 --sampling avg --users 2000 --unseen-users 40 --seed 0 --out $(DEMO_DIR)/data
	./target/release/copl-train check --data $(DEMO_DIR)/data

test: fmt clippy build
	cargo test --workspace

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# The end-to-end tests in tests/ run the real binaries: build them first.
build:
	cargo build --workspace --bins
