#!/usr/bin/env bash
# Load benchmark: builds the worker, then runs Blaze and a bare-broadcast
# Durable Object under `wrangler dev` side by side and prints the figures.
#
#   bash scripts/loadbench.sh            latency, fan-out and saturation
#   bash scripts/loadbench.sh memory     the worker's memory under 4,000 distinct listeners (cold, then warmed)
#   bash scripts/loadbench.sh all        both
#   bash scripts/loadbench.sh writes     the write path alone, three rounds
#   bash scripts/loadbench.sh connect    connection setup with and without a credential (with BLAZE_BASELINE, also on that build)
#   bash scripts/loadbench.sh rules      the demo's access rules beside open rules (same build)
#   bash scripts/loadbench.sh files      files (spec 15) beside a bare R2 Worker: throughput, first byte, memory
#
# BLAZE_BASELINE=<git rev> also builds that revision's worker (in a temporary
# `git worktree` under /tmp, with its own CARGO_TARGET_DIR there, both removed
# at the end) and runs every round against it too, printing this build's
# figures as ratios to the baseline's as well as to the floor's.
# BLAZE_BENCH_ROUNDS=<n> (default 3): rounds per figure, whose median is shown.
# BLAZE_BENCH_MEMORY_CAP_MB=<n> (default 2048): the memory mode stops opening
# listeners once the worker is that far above idle.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/build-worker.sh

if [ -n "${BLAZE_BASELINE:-}" ]; then
  rev=$(git rev-parse --short "$BLAZE_BASELINE^{commit}")
  scratch=$(mktemp -d /tmp/blaze-baseline-XXXXXX)
  cleanup() {
    git -C "$root" worktree remove --force "$scratch/tree" 2>/dev/null || true
    git -C "$root" worktree prune
    rm -rf "$scratch"
  }
  trap cleanup EXIT
  git worktree add --detach "$scratch/tree" "$rev" >/dev/null
  # The baseline is built with the tools build-worker.sh pinned for this tree,
  # so its Cargo.lock must name the same wasm-bindgen and worker versions.
  locked_version() { # crate lockfile
    awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$2"
  }
  for crate in wasm-bindgen worker; do
    if [ "$(locked_version $crate Cargo.lock)" != "$(locked_version $crate "$scratch/tree/Cargo.lock")" ]; then
      echo "baseline $rev locks another $crate than this tree; build it with its own scripts/build-worker.sh" >&2
      exit 1
    fi
  done
  tools=${BLAZE_TOOLS:-$HOME/.cache/blaze-tools}
  echo "building the baseline worker ($rev) in $scratch"
  (
    cd "$scratch/tree/crates/blaze-worker"
    CARGO_TARGET_DIR="$scratch/target" WASM_BINDGEN_BIN="$tools/bin/wasm-bindgen" \
      ESBUILD_BIN="$root/node_modules/.bin/esbuild" "$tools/bin/worker-build" --release --no-opt
  )
  # Optimised as this build is, so the rounds compare the code, not wasm-opt.
  bash scripts/optimise-wasm.sh "$scratch/tree/crates/blaze-worker/build/index_bg.wasm"
  rm -rf "$scratch/target" # only the build output under the worktree is needed
  export BLAZE_BASELINE_CONFIG="$scratch/tree/crates/blaze-worker/wrangler.toml"
  export BLAZE_BASELINE_LABEL="$rev"
fi

cargo run --release -p blaze-tests --bin loadbench -- "$@"
