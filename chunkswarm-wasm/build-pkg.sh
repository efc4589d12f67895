#!/usr/bin/env bash
# Builds the browser package of chunkswarm: the release cdylib for
# wasm32-unknown-unknown, its ES-module bindings (`wasm-bindgen --target web`,
# with TypeScript types) and the streaming helpers of js/, all into OUT_DIR.
#
#   chunkswarm-wasm/build-pkg.sh OUT_DIR
#
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli at exactly the
# version of the `wasm-bindgen` crate in Cargo.lock (`.ci/install` has both).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
out=$1
crate_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$crate_dir/.." && pwd)

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$root/Cargo.lock")
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }') || true
if [ -z "$have" ]; then
    echo "wasm-bindgen not found; install it with: cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
if [ -n "$want" ] && [ "$have" != "$want" ]; then
    echo "wasm-bindgen $have does not match the wasm-bindgen crate $want in Cargo.lock;" >&2
    echo "install it with: cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi

cd "$root"
cargo build --release -p chunkswarm-wasm --target wasm32-unknown-unknown
target_dir=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$out"
wasm-bindgen --target web --out-dir "$out" \
    "$target_dir/wasm32-unknown-unknown/release/chunkswarm_wasm.wasm"
cp "$crate_dir"/js/*.js "$out"/
echo "chunkswarm-wasm package in $out"
