#!/usr/bin/env bash
# Runs Blaze locally: builds the worker (installing what it needs, idempotently)
# and serves it under `wrangler dev` (the real workerd runtime) on
# http://127.0.0.1:8787, with state persisted in .wrangler/state; builds the
# TypeScript client and serves the Svelte demo on http://127.0.0.1:5173.
# The worker runs with the local development identity (README, "Identity"):
# HS256 tokens signed with a well-known development secret (issuer
# blaze-dev, audience blaze) and the admin key blaze-dev-admin-key, passed as
# --var, never written into wrangler.toml. Not for production. The access
# rules are blaze.rules (or the file BLAZE_RULES_FILE names), compiled
# natively and bundled into the worker when it is built (a file that does not
# compile stops the build with its errors).
# Usage: bash scripts/run.sh   (Ctrl-C stops both)
#        BLAZE_NO_DEMO=1 bash scripts/run.sh   (the worker only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-worker.sh
port=${BLAZE_PORT:-8787}
demo_port=${BLAZE_DEMO_PORT:-5173}

# The local development identity; the same values are in the demo's
# src/lib/dev-tokens.js and are the defaults of `blaze token`. The access
# rules are the project's blaze.rules, bundled by build-worker.sh (README,
# "Access rules").
dev_identity=(
  --var "BLAZE_HS256_SECRET:blaze-dev-secret-not-for-production"
  --var "BLAZE_ADMIN_KEYS:blaze-dev-admin-key"
  --var 'BLAZE_AUTH:{"hs256":{"issuer":"blaze-dev","audience":"blaze"}}'
)

banner() {
  echo
  echo "Blaze: http://127.0.0.1:$port  (health: /v1/health, WebSocket: ws://127.0.0.1:$port/v1/ws/{collection})"
  echo "Identity (development only): admin key blaze-dev-admin-key; a user's token for an hour:"
  echo "  cargo run -q -p blaze-cli -- token --uid alice [--claims '{\"role\":\"admin\"}']"
  echo "  e.g. BLAZE_TOKEN=\$(cargo run -q -p blaze-cli -- token --uid alice) cargo run -q -p blaze-cli -- query todos --where 'owner == alice'"
  echo "Access rules: blaze.rules (private todos, a board for signed-in users; everything else is denied but to the admin key)"
}

# npm ci in $1 unless its node_modules matches its package-lock.json already.
npm_install() {
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund)
  fi
}

if [ -n "${BLAZE_NO_DEMO:-}" ]; then
  banner
  echo
  exec node_modules/.bin/wrangler dev --config crates/blaze-worker/wrangler.toml \
    --ip 127.0.0.1 --port "$port" --persist-to .wrangler/state "${dev_identity[@]}"
fi

npm_install clients/typescript
(cd clients/typescript && npm run build --silent)
npm_install examples/svelte-demo

# Both servers run in this script's process group; stopping the script stops both.
trap 'trap - EXIT INT TERM; kill 0 2>/dev/null' EXIT INT TERM
node_modules/.bin/wrangler dev --config crates/blaze-worker/wrangler.toml \
  --ip 127.0.0.1 --port "$port" --persist-to .wrangler/state "${dev_identity[@]}" &
(cd examples/svelte-demo && VITE_BLAZE_URL="http://127.0.0.1:$port" \
  node_modules/.bin/vite --host 127.0.0.1 --port "$demo_port" --strictPort --clearScreen false) &
for _ in $(seq 240); do
  curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null || { echo "wrangler dev did not start" >&2; exit 1; }
banner
echo "Demo:  http://127.0.0.1:$demo_port/   <- open this in two windows, signed in as two users"
echo
wait
