#!/usr/bin/env bash
# Optimises a worker's wasm module in place with wasm-opt -O2, from npm's
# binaryen (pinned in package.json; `npm ci` installs it). -O2 puts speed
# first; -Oz saves only about 2% more. The features are the ones rustc and
# wasm-bindgen emit (exception handling for JS calls that may throw).
# BLAZE_WASM_OPT=0 skips it (to measure the unoptimised module).
#   bash scripts/optimise-wasm.sh <module.wasm>
set -euo pipefail
wasm=$1
[ "${BLAZE_WASM_OPT:-1}" != 0 ] || exit 0
root=$(cd "$(dirname "$0")/.." && pwd)
before=$(wc -c < "$wasm")
"$root/node_modules/.bin/wasm-opt" -O2 \
  --enable-exception-handling --enable-reference-types --enable-bulk-memory \
  --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
  --enable-multivalue "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
echo "wasm-opt -O2: $wasm $before -> $(wc -c < "$wasm") bytes"
