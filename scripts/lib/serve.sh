# Sourced by the scripts that run a local copl-server (demo.sh, serve-benchmark.sh,
# overload-soak.sh, gpu-check.sh). Sets BIN and builds the release binaries there (the
# one package set every script uses, so nothing is rebuilt between them) — unless the
# caller set BIN to binaries of its own (gpu-check.sh: carried ones, no cargo there).
SERVER=""
if [ -z "${BIN:-}" ]; then
  BIN=./target/release
  cargo build --release -q -p copl-server -p copl-cli -p copl-trainer -p copl-report
fi

# start_server CKPT PORT DATA_DIR LOG: copl-server in the background (SERVER = its pid,
# COPL_ADDR exported for `copl`), returning once it reports SERVING; exits with its log
# if it dies first. `COPL_…` variables set by the caller reach the server, and
# SERVER_CONFIG (a TOML file) its --config.
start_server() {
  local ckpt=$1 port=$2 data=$3 log=$4
  "$BIN/copl-server" --checkpoint "$ckpt" --listen "127.0.0.1:$port" --metrics-listen "" \
    --data-dir "$data" ${SERVER_CONFIG:+--config "$SERVER_CONFIG"} >"$log" 2>&1 &
  SERVER=$!
  export COPL_ADDR="http://127.0.0.1:$port"
  for _ in $(seq 1 600); do
    "$BIN/copl" health >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.5
  done
  "$BIN/copl" health
}

# seen_users CKPT N: the first N seen users of a checkpoint, comma-separated.
seen_users() {
  grep -o '"[^"]*"' "$1/ids.json" | sed -n "2,$(($2 + 1))p" | tr -d '"' | paste -sd, -
}

# with_scoring_key DIR: a new API key (KEY) and a server configuration that accepts it
# (SERVER_CONFIG, DIR/server.toml: the key's sha256 digest as `auth.scoring_keys_sha256`).
with_scoring_key() {
  "$BIN/copl" keygen >"$1/key"
  KEY=$(awk '/^key:/ {print $2}' "$1/key")
  printf '[auth]\nscoring_keys_sha256 = ["%s"]\n' "$(awk '/^sha256:/ {print $2}' "$1/key")" \
    >"$1/server.toml"
  SERVER_CONFIG="$1/server.toml"
}
