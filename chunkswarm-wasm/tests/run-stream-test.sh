#!/usr/bin/env bash
# End-to-end check of the streaming glue (js/stream.js + js/chunkswarm-sw.js)
# in headless Chromium: a page adds a torrent whose web seed trickles a
# 12-second WebM clip, plays it through the Service Worker, seeks, and
# compares the downloaded bytes with the clip. Passes only if playback
# started before the download completed, playback went on after the seek,
# and the bytes match. The page runs inside a network namespace made here
# (loopback only). Needs python3, Chromium and chromedriver.
#
#   chunkswarm-wasm/tests/run-stream-test.sh
set -euo pipefail

crate_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$crate_dir/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
command -v wasm-bindgen >/dev/null || { echo "run-stream-test: wasm-bindgen not found" >&2; exit 1; }
# `--tests` as in run-browser-tests.sh's build: the same features, so the
# library built there is reused rather than built again.
cargo build -p chunkswarm-wasm --target wasm32-unknown-unknown --lib --tests
wasm-bindgen --target web --out-dir "$work/pkg" \
    "${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/debug/chunkswarm_wasm.wasm"
cp "$crate_dir"/js/*.js "$work/pkg/"

stream_dir="$crate_dir/tests/stream"
unshare --net -- bash -s "$stream_dir" "$work" <<'INNER'
set -euo pipefail
stream_dir=$1
work=$2
ip link set lo up
python3 "$stream_dir/serve.py" "$work/pkg" "$work/port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "run-stream-test: the server did not start" >&2; exit 1; }
python3 "$stream_dir/drive.py" "http://127.0.0.1:$(cat "$work/port")/" "$work/profile"
INNER
echo "run-stream-test: streaming playback passed"
