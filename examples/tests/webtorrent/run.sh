#!/usr/bin/env bash
# An unchanged WebTorrent client (npm `webtorrent` 2, the library inside
# WebTorrent's browser builds) and a native chunkswarm `peer` exchange a file
# over WebRTC through the chunkswarm tracker, both ways:
#   1. `peer seed` seeds; WebTorrent fetches and must get the file byte-exact.
#   2. WebTorrent opens the magnet link `peer seed` printed (no `xs`, no web
#      seed): the metadata comes from chunkswarm (BEP 9), then the file.
#   3. WebTorrent seeds a torrent it made; `peer fetch` must complete (it
#      re-verifies every piece on disk before exiting with 0).
#   4. `peer fetch` opens the magnet link of WebTorrent's torrent (no `xs`,
#      no web seed): the metadata comes from WebTorrent (BEP 9), then the
#      file, byte-exact.
#   5. A chunkswarm page (the demo page in headless Chromium, driven over
#      WebDriver by page.mjs) opens the magnet link of a torrent only
#      WebTorrent seeds, pasted into its search box: the metadata comes from
#      WebTorrent (BEP 9), then the file, whose SHA-256 the page reports. The
#      page and WebTorrent meet on the tracker of the `server` example, which
#      serves the page.
# No web seed either way: every byte crosses the peer wire (BEP 3, with the
# BEP 6 and BEP 10 extensions each side speaks).
#
# Everything runs in a fresh network namespace with only loopback. Needs node
# and npm; installs the packages `package-lock.json` pins into a temporary
# directory (or $WEBTORRENT_COMPAT_DIR) with `npm ci`.
# As with the tracker's compatibility script, `webrtc-polyfill`'s native
# engine is pointed at `@roamhq/wrtc`, which ships its binary in an npm
# package: the WebRTC engine changes, the WebTorrent code does not.
# `uint8-util` is held at 2.2.5 for webtorrent itself: 2.3's `arr2hex` no
# longer takes the hex strings that webtorrent 2.8 passes it, and every
# `client.add` throws.
#
# Usage (as root, from anywhere): bash examples/tests/webtorrent/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
# A scratch folder of our own is deleted on exit; one given is kept.
if [ -n "${WEBTORRENT_COMPAT_DIR:-}" ]; then
  work="$WEBTORRENT_COMPAT_DIR"
else
  work="$(mktemp -d)"
  # A process of the run may still be writing as it exits: try again.
  trap 'rm -rf "$work" 2>/dev/null || { sleep 1; rm -rf "$work"; }' EXIT
fi
cp "$here/package.json" "$here/package-lock.json" "$here/client.mjs" "$here/page.mjs" "$work/"
if [ ! -d "$work/node_modules/webtorrent" ]; then
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
fi
cat > "$work/node_modules/webrtc-polyfill/index.js" <<'SHIM'
import wrtc from '@roamhq/wrtc'
export const { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate } = wrtc
export default wrtc
SHIM
# Debug builds, which the test suite has already built: the same packages,
# features and dev-dependencies as `cargo test --workspace --all-features`
# (hence `--tests`), so that nothing compiles again (with `-p` and `--features
# chunkswarm-tracker/cli` alone, dependencies' features unify differently and
# about 50 crates, the WebRTC stack among them, were rebuilt).
(cd "$repo" && cargo build -q --workspace --all-features --tests --bin chunkswarm-tracker --bin peer --bin server)
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target/debug"
# The page's wasm package, built where the browser tests build theirs (so
# after them only wasm-bindgen runs again).
CARGO_TARGET_DIR="$target/chunkswarm-demo/cargo" bash "$repo/chunkswarm-wasm/build-pkg.sh" "$work/pkg" >/dev/null

unshare -n bash -s "$bin" "$work" <<'INNER'
set -euo pipefail
ip link set lo up
bin="$1"; work="$2"; cd "$work"
announce=ws://127.0.0.1:18000/announce
RUST_LOG=warn "$bin/chunkswarm-tracker" --listen 127.0.0.1:18000 </dev/null &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18000) 2>/dev/null && break; sleep 0.1; done
rm -rf one two three && mkdir -p one two three

echo "1. chunkswarm seeds, WebTorrent fetches"
head -c 12582917 /dev/urandom > one/source.bin
"$bin/peer" seed one/source.bin --tracker "$announce" --piece-length 262144 --no-web-seed \
  --loopback --duration 150 > one/seed.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s one/source.bin.torrent ] && break; sleep 0.1; done
# (node's WebRTC binding may crash on exit after printing: the report decides.)
timeout 80 node client.mjs fetch one/source.bin.torrent one/out 70 > one/fetch.json || true
cat one/fetch.json
want=$(sha256sum one/source.bin | cut -d' ' -f1)
node -e '
  const r = require(process.argv[1])
  const ok = r.done && r.sha256 === process.argv[2] && r.peers >= 1
  console.log(ok ? "1. ok: byte-exact from chunkswarm" : "1. FAILED")
  process.exit(ok ? 0 : 1)
' "$work/one/fetch.json" "$want"

echo "2. chunkswarm seeds, WebTorrent opens its magnet link"
magnet=$(sed -n 's/^magnet: //p' one/seed.log)
case "$magnet" in magnet:*xt=urn:btih:*) ;; *) echo "2. FAILED: no magnet link in the seeder's log"; exit 1 ;; esac
timeout 80 node client.mjs fetch "$magnet" one/out-magnet 70 > one/magnet.json || true
cat one/magnet.json
node -e '
  const r = require(process.argv[1])
  const ok = r.done && r.sha256 === process.argv[2] && r.peers >= 1
  console.log(ok ? "2. ok: metadata and file from chunkswarm" : "2. FAILED")
  process.exit(ok ? 0 : 1)
' "$work/one/magnet.json" "$want"

echo "3. WebTorrent seeds, chunkswarm fetches"
head -c 9437203 /dev/urandom > two/source.bin
node client.mjs seed two/source.bin "$announce" two/source.torrent 80 > two/seed.json &
pids+=($!)
for _ in $(seq 100); do [ -s two/source.torrent ] && break; sleep 0.1; done
timeout 70 "$bin/peer" fetch two/source.torrent -o two/out.bin --tracker "$announce" \
  --no-web-seed --loopback --timeout 60 --json > two/fetch.json
cat two/fetch.json
cmp two/source.bin two/out.bin
echo "3. ok: byte-exact from WebTorrent"

echo "4. WebTorrent seeds, chunkswarm opens its magnet link"
magnet=$(cat two/source.torrent.magnet)
case "$magnet" in magnet:*xt=urn:btih:*) ;; *) echo "4. FAILED: no magnet link from WebTorrent"; exit 1 ;; esac
case "$magnet" in *xs=*) echo "4. FAILED: the link names its .torrent"; exit 1 ;; esac
timeout 70 "$bin/peer" fetch "$magnet" -o two/out-magnet.bin --no-web-seed --loopback \
  --timeout 60 --json > two/magnet.json
cat two/magnet.json
cmp two/source.bin two/out-magnet.bin
echo "4. ok: metadata and file from WebTorrent"

echo "5. WebTorrent seeds, a chunkswarm page opens its magnet link"
started=$SECONDS
server=127.0.0.1:18080
RUST_LOG=warn "$bin/server" --addr "$server" --pkg "$work/pkg" </dev/null > three/server.log 2>&1 &
pids+=($!)
"${CHROMEDRIVER:-/usr/bin/chromedriver}" --port=9515 </dev/null > three/chromedriver.log 2>&1 &
pids+=($!)
head -c 7340039 /dev/urandom > three/source.bin
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done
node client.mjs seed three/source.bin "ws://$server/announce" three/source.torrent 150 > three/seed.json &
pids+=($!)
for _ in $(seq 100); do [ -s three/source.torrent ] && break; sleep 0.1; done
magnet=$(cat three/source.torrent.magnet)
case "$magnet" in magnet:*xt=urn:btih:*) ;; *) echo "5. FAILED: no magnet link from WebTorrent"; exit 1 ;; esac
case "$magnet" in *xs=*|*ws=*) echo "5. FAILED: the link names its .torrent or a web seed"; exit 1 ;; esac
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/9515) 2>/dev/null && break; sleep 0.1; done
# The page downloads from peers only (`webseed=off`; the torrent has no web seed anyway).
timeout 120 node page.mjs http://127.0.0.1:9515 "http://$server/?webseed=off" "$magnet" 100 three/page.log \
  > three/page.json || true
node -e '
  const r = require(process.argv[1])
  const s = r.stats || {}
  console.log(JSON.stringify({ done: r.done, sha256: r.sha256, error: r.error, timedOut: r.timedOut, name: r.name,
    length: r.length, p2pBytes: s.p2pBytes, httpBytes: s.httpBytes, peers: r.peers }))
  const ok = r.done && r.sha256 === process.argv[2] && !r.error && s.p2pBytes >= r.length && !s.httpBytes
  console.log(ok ? "5. ok: metadata and file from WebTorrent, in the page" : "5. FAILED")
  process.exit(ok ? 0 : 1)
' "$work/three/page.json" "$(sha256sum three/source.bin | cut -d' ' -f1)" \
  || { echo "--- the page's log:"; cat three/page.log; echo "--- the server's log:"; tail -n 40 three/server.log; exit 1; }
echo "5. took $((SECONDS - started)) s"
echo "webtorrent peer wire compatibility: ok"
INNER
