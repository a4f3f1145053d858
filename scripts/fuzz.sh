#!/usr/bin/env bash
# Fuzzing (issue #10): libFuzzer through cargo-fuzz on the JSONL readers
# (dataset_load), the checkpoint readers (checkpoint_load) and the onboarding input
# (onboarding); targets in fuzz/fuzz_targets/, corpus kept in fuzz/corpus/<target>/.
# cargo-fuzz needs nightly features; this machine has only stable, so RUSTC_BOOTSTRAP=1
# unlocks them. Not part of CI (minutes per target); findings: fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET=120] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."
EACH=${1:-120}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(dataset_load checkpoint_load onboarding)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Seeds, once: a small valid data set and the checkpoint GCF makes of it, so the fuzzer
# starts from inputs that get past the first check.
seed() {
  local dir=fuzz/corpus
  [ -s "$dir/checkpoint_load/valid" ] && return 0
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/data" "$dir/dataset_load" "$dir/checkpoint_load" "$dir/onboarding"
  for i in 0 1 2 3; do
    echo "{\"id\":\"r$i\",\"prompt\":\"p$((i / 2))\",\"response\":\"answer $i\"}"
  done >"$tmp/data/responses.jsonl"
  {
    echo '{"user":"a","chosen":"r0","rejected":"r1","split":"train"}'
    echo '{"user":"a","chosen":"r2","rejected":"r3","split":"train"}'
    echo '{"user":"b","chosen":"r1","rejected":"r0","split":"train","controversial":true}'
    echo '{"user":"b","chosen":"r3","rejected":"r2","split":"val"}'
    echo '{"user":"c","chosen":"r0","rejected":"r1","split":"test"}'
  } >"$tmp/data/annotations.jsonl"
  printf '%s\n' '{"user":"a","group":"x"}' '{"user":"b","weights":[0.5,1]}' \
    '{"user":"c","unseen":true}' >"$tmp/data/users.jsonl"
  { cat "$tmp/data/responses.jsonl"; printf '\xff'; cat "$tmp/data/annotations.jsonl"
    printf '\xff'; cat "$tmp/data/users.jsonl"; } >"$dir/dataset_load/valid"
  # The build `make test` makes (the same packages and flags: nothing is rebuilt).
  env -u RUSTC_BOOTSTRAP cargo build -q --workspace --bins
  ./target/debug/copl-train gcf --data "$tmp/data" --out "$tmp/ckpt" --dim 2 --layers 1 \
    --epochs 1 --batch-size 100 >/dev/null
  local first=1
  for f in manifest.json ids.json catalogue.jsonl graph.safetensors survey.safetensors gcf.safetensors; do
    [ $first = 1 ] || printf '\xff\xfe'
    first=0
    cat "$tmp/ckpt/$f"
  done >"$dir/checkpoint_load/valid"
  rm -rf "$tmp"
}
seed

for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== $t: $EACH s"
  cargo fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$EACH" -max_len=16384 \
    -rss_limit_mb=4096 -print_final_stats=1 2>&1 | grep -E "^#|Done|stat::|ERROR|panicked|SUMMARY" | tail -12
  # Keep the corpus small: only inputs that add coverage.
  cargo fuzz cmin -O "$t" "fuzz/corpus/$t" >/dev/null 2>&1 || true
done
