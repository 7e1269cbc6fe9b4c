#!/usr/bin/env bash
# Builds the Blaze worker for `wrangler dev` / `wrangler deploy`, offline.
# Installs what it needs, idempotently (a second run reinstalls nothing):
#   - the wasm32-unknown-unknown Rust target;
#   - wrangler, esbuild and binaryen (wasm-opt), pinned in package.json /
#     package-lock.json (npm ci);
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock, and
#     worker-build at the worker version in Cargo.lock, into $BLAZE_TOOLS
#     (default ~/.cache/blaze-tools), so worker-build downloads nothing.
# Output: crates/blaze-worker/build/ (the wasm module and its JS shim), with
# the rules file (blaze.rules, or $BLAZE_RULES_FILE) bundled in.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools=${BLAZE_TOOLS:-$HOME/.cache/blaze-tools}

locked_version() { # the version of crate $1 in Cargo.lock
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

if [ ! -x node_modules/.bin/wrangler ] || [ ! -x node_modules/.bin/esbuild ] ||
   [ ! -x node_modules/.bin/wasm-opt ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

install_tool() { # crate version binary
  if ! "$tools/bin/$3" --version 2>/dev/null | grep -q "$2"; then
    echo "installing $1 $2 into $tools"
    cargo install "$1" --version "=$2" --root "$tools" --force
  fi
}
install_tool wasm-bindgen-cli "$(locked_version wasm-bindgen)" wasm-bindgen
install_tool worker-build "$(locked_version worker)" worker-build

# The access rules bundled into the worker (README, "Access rules"):
# blaze.rules, or the file BLAZE_RULES_FILE names.
rules_file=${BLAZE_RULES_FILE:-blaze.rules}
BLAZE_RULES_FILE=$(realpath -m "$rules_file")
export BLAZE_RULES_FILE
[ -f "$BLAZE_RULES_FILE" ] || echo "warning: no rules file at $BLAZE_RULES_FILE: the worker will serve admin keys only (unless BLAZE_RULES is set)" >&2

export WASM_BINDGEN_BIN="$tools/bin/wasm-bindgen"
export ESBUILD_BIN="$root/node_modules/.bin/esbuild"
cd crates/blaze-worker
# --no-opt: worker-build would download wasm-opt; the pinned one from npm
# (binaryen) optimises the module below instead.
"$tools/bin/worker-build" --release --no-opt

# wasm-opt -O2 (README, "Worker size"); BLAZE_WASM_OPT=0 skips it.
bash "$root/scripts/optimise-wasm.sh" build/index_bg.wasm
