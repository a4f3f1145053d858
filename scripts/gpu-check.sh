#!/usr/bin/env bash
# Issue #14's GPU check: one command on a lent H100/H200, results in a directory.
#
#   scripts/gpu-check.sh --prepare      here (no GPU): the CUDA binaries (scripts/build-cuda.sh
#                                       MODE=build) and the tiny BERT and Gemma checkpoints
#                                       with their CPU F32 scores, into gpu-check/ (carry it)
#   scripts/gpu-check.sh OUT            there: every part below on cuda:0, ≤ 8 min
#   scripts/gpu-check.sh OUT --dry-run  here: every part on the CPU at tiny sizes with the
#                                       debug binaries (make test runs it, ≈ 1 min)
#
# Parts (each writes OUT/<part>.json or .txt; OUT/summary.md holds the tables):
#   (a) correctness: each checkpoint scored on the device in F32 and in BF16 (copl-bench
#       scores) held to its CPU F32 scores within 1e-3 and 10 % of the largest |score|,
#       and a mixed batch (users, lengths) giving each row what it gets alone. The only
#       part that fails the run.
#   (b) speed: the served forward (copl-bench forward, BF16) beside PyTorch + transformers
#       eager BF16 (and torch.compile at Gemma-2B 64 × 512) on MiniLM-, Gemma-3-270M- and
#       Gemma-2B-shaped models with random weights made there (scripts/gpu/backbone.py).
#   (c) server: copl-server --device cuda:0 on the tiny BERT checkpoint, copl bench at
#       concurrency 1, 64, 256.
#   (d) training: copl-train mole --device cuda:0 on the tiny Gemma (pairs/s), copl-train
#       gcf --device cuda:0 at d = 512 on a generated 10 000-user graph (s/epoch).
# A part that fails or runs out of its time is recorded and the next one runs.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=run
OUT=
for arg in "$@"; do
  case $arg in
    --dry-run) MODE=dry ;;
    --prepare) MODE=prepare ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) OUT=$arg ;;
  esac
done
PAYLOAD=gpu-check

# make_checkpoints DIR BIN PY: tiny-bert and tiny-gemma backbones, data, GCF, a MoLE
# checkpoint each, and their CPU F32 scores (DIR/<family>/cpu-scores.json).
make_checkpoints() {
  local dir=$1 bin=$2 py=$3
  for family in bert gemma; do
    local d=$dir/$family
    rm -rf "$d" && mkdir -p "$d"
    "$py" scripts/gpu/backbone.py --shape "tiny-$family" --out "$d/bb" >/dev/null 2>&1
    "$bin/copl-train" synth --preset ufp2 --users 60 --unseen-users 2 --seed 1 --out "$d/data" >/dev/null
    "$bin/copl-train" gcf --data "$d/data" --out "$d/ckpt" --dim 8 --layers 1 --epochs 5 \
      --batch-size 10000 --lr 1e-2 --json >/dev/null
    "$bin/copl-train" mole --data "$d/data" --ckpt "$d/ckpt" --backbone "$d/bb" --steps 4 \
      --batch-pairs 4 --eval-every 4 --val-pairs 8 --test-pairs 8 --max-tokens 96 --lr 1e-2 \
      --json >/dev/null
    "$bin/copl-bench" scores --ckpt "$d/ckpt" --backbone "$d/bb" --device cpu --dtype f32 \
      --rows 32 --json >"$d/cpu-scores.json"
  done
}

if [ "$MODE" = prepare ]; then
  # The CUDA binaries, stripped (≈ 65 MiB each: candle's kernels as PTX for every op and
  # dtype), then xz-compressed into one archive (≈ 4:1) so that they and the checkpoints
  # fit the 64 MiB a device call carries.
  rm -rf "$PAYLOAD" && mkdir -p "$PAYLOAD"
  MODE=build DIST=$PAYLOAD/stage scripts/build-cuda.sh
  install -m 0755 target/cuda/release/copl-bench "$PAYLOAD/stage/bin/copl-bench"
  strip "$PAYLOAD/stage/bin/copl-bench"
  XZ_OPT="-6 -T2" tar -C "$PAYLOAD/stage/bin" -cJf "$PAYLOAD/bin.tar.xz" .
  rm -rf "$PAYLOAD/stage"
  cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
  make_checkpoints "$PAYLOAD/ckpt" target/release .venv-client/bin/python
  du -sh "$PAYLOAD/bin.tar.xz" "$PAYLOAD/ckpt" "$PAYLOAD"
  exit 0
fi

[ -n "$OUT" ] || { echo "usage: scripts/gpu-check.sh OUT [--dry-run] | --prepare" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# Models, data and binaries live outside OUT (a device call sends OUT back).
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ "$MODE" = dry ]; then
  BIN=target/debug
  PY=${PY:-.venv-client/bin/python}
  # F32 speed rows here (the CPU's BF16 kernels are slow in both; BF16 is part (a)'s).
  DEVICE=cpu TORCH_DEVICE=cpu SPEED_DTYPE=f32
  # No torch.compile here: inductor compiles C++ on the CPU for minutes.
  SHAPES=(tiny-bert tiny-gemma tiny-gemma1) BATCHES=1,2 TOKENS=16,32 COMPILE_SHAPE=
  LEVELS="1 4" SECONDS_PER_LEVEL=1 GCF_USERS=200 GCF_DIM=16 MOLE_STEPS=2
  CKPTS=$OUT/ckpt
  make_checkpoints "$CKPTS" "$BIN" "$PY"
else
  BIN=$WORK/bin
  PY=${PY:-python3}
  [ -f "$PAYLOAD/bin.tar.xz" ] || { echo "no $PAYLOAD/bin.tar.xz: run scripts/gpu-check.sh --prepare here and carry $PAYLOAD" >&2; exit 2; }
  mkdir -p "$BIN"
  "$PY" -m tarfile -e "$PAYLOAD/bin.tar.xz" "$BIN"
  DEVICE=cuda:0 TORCH_DEVICE=cuda SPEED_DTYPE=bf16
  SHAPES=(minilm gemma3-270m gemma-2b) BATCHES=1,16,64 TOKENS=128,512 COMPILE_SHAPE=gemma-2b
  LEVELS="1 64 256" SECONDS_PER_LEVEL=5 GCF_USERS=10000 GCF_DIM=512 MOLE_STEPS=20
  CKPTS=$PAYLOAD/ckpt
  chmod +x "$BIN"/*
  # The CUDA libraries the binaries link: the PyTorch venv's nvidia wheels, the toolkit's.
  libs=$("$PY" -c 'import glob, os, nvidia; print(":".join(sorted({os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(d + "/**/lib*.so*", recursive=True)})))' 2>/dev/null || true)
  export LD_LIBRARY_PATH=$libs:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$OUT/gpu.txt" || true
fi
export RUST_LOG=${RUST_LOG:-warn}
# An error's message, not a stack trace, ends a failed part's log (with RUST_BACKTRACE=1
# in the environment the tail shown was the trace's last frames, the cause above them).
export RUST_BACKTRACE=0
: >"$OUT/parts.txt"
# The limits are the H200's (≤ 8 min in all); the dry run shares 2 cores with whatever
# else runs here (its speed parts took 22–52 s against 90 beside an experiment, and the
# machine's speed drifts 2×): there a limit is 4× as long, so only a hang fails it.
SCALE=$([ "$MODE" = dry ] && echo 4 || echo 1)
# part NAME SECONDS FUNCTION ARGS…: runs a part (a function of this script, in a child
# bash under a time limit), records "NAME ok|failed (rc) N s"; a failure's log is kept in
# OUT/NAME.log and its first error line and last lines go to stderr.
part() {
  local name=$1 limit=$(($2 * SCALE))
  shift 2
  local started=$SECONDS rc=0
  timeout "$limit" bash -c '"$@"' part "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  if [ $rc = 0 ]; then echo "$name ok $((SECONDS - started)) s" >>"$OUT/parts.txt"; return; fi
  local why="rc $rc"
  [ $rc = 124 ] && why="timed out after $limit s"
  echo "$name failed ($why) $((SECONDS - started)) s" >>"$OUT/parts.txt"
  {
    echo "gpu-check: part $name failed ($why); its log: $OUT/$name.log"
    grep -m1 -E '^Error|panicked|Traceback|error:' "$OUT/$name.log" || true
    tail -5 "$OUT/$name.log"
  } >&2
}

# (a) correctness.
correctness() {
  set -euo pipefail
  for family in bert gemma; do
    local d=$CKPTS/$family
    # F32 on the device against the CPU's F32: the kernels, within 1e-3 of the largest
    # |score| (candle's CUDA GEMMs do not use TF32 unless asked).
    "$BIN/copl-bench" scores --ckpt "$d/ckpt" --backbone "$d/bb" --device "$DEVICE" --dtype f32 \
      --rows 32 --expect "$d/cpu-scores.json" --tolerance 1e-3 --json >"$OUT/correctness-$family-f32.json"
    # BF16, what a GPU serves in: within copl-bench's default 10 % (the CPU's own BF16
    # differs by up to 3 % on these tiny random checkpoints).
    "$BIN/copl-bench" scores --ckpt "$d/ckpt" --backbone "$d/bb" --device "$DEVICE" --dtype bf16 \
      --rows 32 --expect "$d/cpu-scores.json" --json >"$OUT/correctness-$family.json"
  done
}

# (b) speed: ours, then PyTorch, per shape, on the same machine in turn.
speed() {
  set -euo pipefail
  local shape=$1 dir=$WORK/$1
  "$PY" scripts/gpu/backbone.py --shape "$shape" --out "$dir" --device "$TORCH_DEVICE" \
    --dtype "$SPEED_DTYPE"
  "$BIN/copl-bench" forward --backbone "$dir" --device "$DEVICE" --dtype "$SPEED_DTYPE" --paths reference \
    --batches "$BATCHES" --tokens "$TOKENS" --repeats 3 --variants backbone,mole_mixed_users \
    --json >"$OUT/speed-$shape-copl.json"
  "$PY" scripts/bench_forward_torch.py --backbone "$dir" --device "$TORCH_DEVICE" --dtype "$SPEED_DTYPE" \
    --batches "$BATCHES" --tokens "$TOKENS" --repeats 3 --variants backbone,mole_mixed_users \
    --json >"$OUT/speed-$shape-torch.json"
  if [ "$shape" = "$COMPILE_SHAPE" ]; then
    "$PY" scripts/bench_forward_torch.py --backbone "$dir" --device "$TORCH_DEVICE" --dtype bf16 \
      --batches "${BATCHES##*,}" --tokens "${TOKENS##*,}" --lengths fixed --repeats 3 \
      --variants mole_mixed_users --compile \
      --json >"$OUT/speed-$shape-torch-compile.json"
  fi
  rm -rf "$dir"
}

# (c) server.
server() {
  set -euo pipefail
  BIN=$1
  source scripts/lib/serve.sh
  local data=$WORK/server-data
  mkdir -p "$data"
  COPL_DEVICE=$DEVICE start_server "$CKPTS/bert/ckpt" 50091 "$data" "$OUT/server.log"
  # shellcheck disable=SC2064 # SERVER is set now
  trap "kill $SERVER 2>/dev/null || true" RETURN
  local users
  users=$(seen_users "$CKPTS/bert/ckpt" 8)
  for c in $LEVELS; do
    "$BIN/copl" bench --concurrency "$c" --duration "$SECONDS_PER_LEVEL" --users "$users" --json \
      >"$OUT/server-c$c.json"
  done
}

# (d) training.
training() {
  set -euo pipefail
  "$BIN/copl-train" mole --data "$CKPTS/gemma/data" --ckpt "$CKPTS/gemma/ckpt" \
    --backbone "$CKPTS/gemma/bb" --out "$WORK/mole-gpu" --device "$DEVICE" --steps "$MOLE_STEPS" \
    --batch-pairs 16 --eval-every "$MOLE_STEPS" --val-pairs 8 --test-pairs 8 --max-tokens 96 \
    --json >"$OUT/training-mole.json"
  "$BIN/copl-train" synth --preset ufp4 --users "$GCF_USERS" --seed 0 --out "$WORK/gcf-data" >/dev/null
  "$BIN/copl-train" gcf --data "$WORK/gcf-data" --out "$WORK/gcf-gpu" --device "$DEVICE" \
    --dim "$GCF_DIM" --epochs 2 --batch-size 1024 --json >"$OUT/training-gcf.json"
}

export BIN PY DEVICE TORCH_DEVICE SPEED_DTYPE MODE CKPTS OUT WORK BATCHES TOKENS COMPILE_SHAPE LEVELS \
  SECONDS_PER_LEVEL GCF_USERS GCF_DIM MOLE_STEPS
export -f correctness speed server training
# Limits: ≤ 8 min in all on the H200 (the device gives one command 10).
part correctness 60 correctness
for shape in "${SHAPES[@]}"; do
  part "speed-$shape" "$([ "$shape" = gemma-2b ] && echo 210 || echo 90)" speed "$shape"
done
part server 60 server "$BIN"
part training 90 training
"$PY" scripts/gpu/summary.py "$OUT" | tee "$OUT/summary.md"
grep -q "^correctness ok" "$OUT/parts.txt"
# The dry run (make test) holds every part to running.
if [ "$MODE" = dry ] && grep -q failed "$OUT/parts.txt"; then exit 1; fi
