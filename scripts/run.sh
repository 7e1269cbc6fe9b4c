#!/usr/bin/env bash
# Runs Blaze locally: builds the worker (installing what it needs, idempotently)
# and serves it under `wrangler dev` (the real workerd runtime) on
# http://127.0.0.1:8787, with state persisted in .wrangler/state; builds the
# TypeScript client and serves the Svelte demo on http://127.0.0.1:5173.
# Usage: bash scripts/run.sh   (Ctrl-C stops both)
#        BLAZE_NO_DEMO=1 bash scripts/run.sh   (the worker only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-worker.sh
port=${BLAZE_PORT:-8787}
demo_port=${BLAZE_DEMO_PORT:-5173}

# npm ci in $1 unless its node_modules matches its package-lock.json already.
npm_install() {
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund)
  fi
}

if [ -n "${BLAZE_NO_DEMO:-}" ]; then
  echo
  echo "Blaze: http://127.0.0.1:$port  (health: /v1/health, WebSocket: ws://127.0.0.1:$port/v1/ws/{collection})"
  echo
  exec node_modules/.bin/wrangler dev --config crates/blaze-worker/wrangler.toml \
    --ip 127.0.0.1 --port "$port" --persist-to .wrangler/state
fi

npm_install clients/typescript
(cd clients/typescript && npm run build --silent)
npm_install examples/svelte-demo

# Both servers run in this script's process group; stopping the script stops both.
trap 'trap - EXIT INT TERM; kill 0 2>/dev/null' EXIT INT TERM
node_modules/.bin/wrangler dev --config crates/blaze-worker/wrangler.toml \
  --ip 127.0.0.1 --port "$port" --persist-to .wrangler/state &
(cd examples/svelte-demo && VITE_BLAZE_URL="http://127.0.0.1:$port" \
  node_modules/.bin/vite --host 127.0.0.1 --port "$demo_port" --strictPort --clearScreen false) &
for _ in $(seq 240); do
  curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null || { echo "wrangler dev did not start" >&2; exit 1; }
echo
echo "Blaze: http://127.0.0.1:$port  (health: /v1/health, WebSocket: ws://127.0.0.1:$port/v1/ws/{collection})"
echo "Demo:  http://127.0.0.1:$demo_port/   <- open this, in two windows"
echo
wait
