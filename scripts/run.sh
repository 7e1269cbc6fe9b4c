#!/usr/bin/env bash
# Runs Blaze locally: builds the worker (installing what it needs, idempotently)
# and serves it under `wrangler dev` (the real workerd runtime) on
# http://127.0.0.1:8787, with state persisted in .wrangler/state.
# Usage: bash scripts/run.sh   (Ctrl-C stops it)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-worker.sh
port=${BLAZE_PORT:-8787}
echo
echo "Blaze: http://127.0.0.1:$port  (health: /v1/health, WebSocket: ws://127.0.0.1:$port/v1/ws/{collection})"
echo
exec node_modules/.bin/wrangler dev --config crates/blaze-worker/wrangler.toml \
  --ip 127.0.0.1 --port "$port" --persist-to .wrangler/state
