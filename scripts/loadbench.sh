#!/usr/bin/env bash
# Load benchmark: builds the worker, then runs Blaze and a bare-broadcast
# Durable Object under `wrangler dev` side by side and prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-worker.sh
cargo run --release -p blaze-tests --bin loadbench
