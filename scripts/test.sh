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

step "blaze-protocol and blaze-core build for wasm32-unknown-unknown"
cargo build -p blaze-protocol -p blaze-core --target wasm32-unknown-unknown

step "cargo test (unit, property, conformance vectors, architecture invariants)"
cargo test --workspace

step "benchmarks compile"
cargo bench --workspace --no-run
