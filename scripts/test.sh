#!/usr/bin/env bash
# Runs every check and test of the workspace. Installs what it needs first (idempotent).
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: rustfmt, clippy, wasm32-unknown-unknown"
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "blaze-protocol, blaze-core and blaze-auth build for wasm32-unknown-unknown; clippy on the worker's wasm32 code"
cargo build -p blaze-protocol -p blaze-core -p blaze-auth --target wasm32-unknown-unknown
cargo clippy -p blaze-auth --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p blaze-worker --target wasm32-unknown-unknown -- -D warnings

step "build the worker (installs wrangler, esbuild, wasm-bindgen-cli, worker-build if missing)"
bash scripts/build-worker.sh

# That they build and link, in the dev profile the tests share (their
# speed is measured by `cargo bench`, not here; an optimised build of the
# whole workspace took 3.5 minutes of CI).
step "benchmarks compile"
cargo build --workspace --benches

# npm ci in $1 unless its node_modules matches its package-lock.json already.
npm_install() {
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund)
  fi
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0

step "cargo test (unit, property, conformance vectors, architecture invariants, end-to-end under wrangler dev)"
# The worker is built above: an end-to-end test that finds no build fails here instead of skipping.
BLAZE_E2E=require cargo test --workspace 2>&1 | tee -a "$log" || failed=1

step "TypeScript client (clients/typescript): conformance vectors, unit tests, end-to-end under wrangler dev"
npm_install clients/typescript
(cd clients/typescript && npm test) 2>&1 | tee -a "$log" || failed=1

step "Svelte demo (examples/svelte-demo) in Debian's Chromium through playwright-core"
bash examples/svelte-demo/scripts/install-chromium.sh
npm_install examples/svelte-demo
(cd examples/svelte-demo && npm run test:browser) 2>&1 | tee -a "$log" || failed=1

# One closing line with the totals over every test binary and Node test run
# (cargo's doc-test runs print "0 passed"; Node's runner prints "# pass N" /
# "# fail N" / "# cancelled N": a test cancelled, e.g. because its suite's
# setup failed, did not pass, so it counts as failed).
awk -v failed="$failed" '
  /^test result:/ { p += $4; f += $6 }
  /^# pass / { p += $3 }
  /^# fail / { f += $3 }
  /^# cancelled / { f += $3 }
  END { printf "\ntests: %d passed, %d failed\n", p, f; exit (p == 0 || f > 0 || failed) }' "$log"
