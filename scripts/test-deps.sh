#!/usr/bin/env bash
# What the tests need beside Rust, installed once (idempotent; `make test` runs it):
# - redis-server, for the shared user store's two-replica test (Debian's package);
# - .venv-client, grpcio and pytest from PyPI for the Python client's test
#   (scripts/python-client.sh venv).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  if command -v apt-get >/dev/null; then
    echo "test-deps: installing redis-server (Debian package)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
    # The package starts a system service; the tests run their own servers.
    $SUDO service redis-server stop >/dev/null 2>&1 || true
  else
    echo "test-deps: install redis-server (e.g. brew install redis), then rerun" >&2
    exit 1
  fi
fi
scripts/python-client.sh venv
