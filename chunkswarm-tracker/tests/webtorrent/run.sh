#!/usr/bin/env bash
# Three unchanged WebTorrent tracker clients (npm `bittorrent-tracker`, the
# library inside WebTorrent) announce to the chunkswarm tracker in separate
# processes, one after the other, each get an offer or an answer from both
# others through it, and scrape it: three leechers.
# Everything runs in a fresh network namespace with only loopback, so WebRTC
# can reach nothing else.
#
# Usage (as root, from anywhere): bash chunkswarm-tracker/tests/webtorrent/run.sh [--cluster]
# With --cluster, three tracker nodes share a redis-server (cluster mode) and
# each client announces to a different node: every offer and answer crosses
# nodes through Redis, and the counts are the cluster's.
# Needs node and npm. Installs into a temporary directory (or
# $WEBTORRENT_COMPAT_DIR) the packages pinned by the peer wire check's lockfile
# (examples/tests/webtorrent), whose webtorrent brings bittorrent-tracker 11.
# `webrtc-polyfill`'s native engine (node-datachannel)
# only builds from source with cmake, so its entry point is pointed at
# `@roamhq/wrtc`, which ships its binary in an npm package: the WebRTC engine
# changes, the tracker client code does not.
set -euo pipefail
cluster=0
if [ "${1:-}" = "--cluster" ]; then cluster=1; fi
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
# A scratch folder of our own is deleted on exit; one given is kept.
if [ -n "${WEBTORRENT_COMPAT_DIR:-}" ]; then
  work="$WEBTORRENT_COMPAT_DIR"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
npm_dir="$repo/examples/tests/webtorrent"
cp "$npm_dir/package.json" "$npm_dir/package-lock.json" "$work/"
if [ ! -d "$work/node_modules/bittorrent-tracker" ]; then
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
fi
cat > "$work/node_modules/webrtc-polyfill/index.js" <<'SHIM'
import wrtc from '@roamhq/wrtc'
export const { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate } = wrtc
export default wrtc
SHIM
cp "$here/peer.mjs" "$work/"
# Built as `cargo test --workspace --all-features` builds it (same packages,
# features and dev-dependencies), so that after the test suite nothing
# compiles again.
(cd "$repo" && cargo build -q --workspace --all-features --tests --bin chunkswarm-tracker)
tracker="${CARGO_TARGET_DIR:-$repo/target}/debug/chunkswarm-tracker"

unshare -n bash -s "$tracker" "$work" "$cluster" <<'INNER'
set -uo pipefail
ip link set lo up
tracker="$1"; work="$2"; cluster="$3"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
wait_port() { for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }
if [ "$cluster" = 1 ]; then
  redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  pids+=($!)
  wait_port 16379
  redis=(--redis redis://127.0.0.1:16379/)
  ports=(18000 18001 18002)
else
  redis=()
  ports=(18000 18000 18000)
fi
for port in $(printf '%s\n' "${ports[@]}" | sort -u); do
  RUST_LOG=warn "$tracker" --listen 127.0.0.1:$port "${redis[@]}" </dev/null &
  pids+=($!)
  wait_port $port
done
# Cluster nodes join within a heartbeat.
if [ "$cluster" = 1 ]; then sleep 1; fi
cd "$work"
# a, b and c start a second apart and stop together; each scrapes halfway,
# once all three have announced.
timeout 30 node peer.mjs "ws://127.0.0.1:${ports[0]}/announce" a 10000 > a.json &
a_pid=$!
sleep 1
timeout 30 node peer.mjs "ws://127.0.0.1:${ports[1]}/announce" b 9000 > b.json &
b_pid=$!
sleep 1
timeout 30 node peer.mjs "ws://127.0.0.1:${ports[2]}/announce" c 8000 > c.json
wait $a_pid $b_pid
cat a.json b.json c.json
node -e '
  const all = ["a", "b", "c"].map((role) => require("./" + role + ".json"))
  const failed = []
  for (const seen of all) {
    const others = all.filter((o) => o !== seen).map((o) => (o.role + o.role).repeat(20))
    const missing = others.filter((id) => !seen.peerIds.includes(id))
    if (missing.length) failed.push(seen.role + " got no offer or answer from " + missing.join(", "))
    if (seen.updates < 1) failed.push(seen.role + " got no announce reply")
    if (seen.warnings.length) failed.push(seen.role + " warned: " + seen.warnings.join("; "))
    const s = seen.scrape
    if (!s || s.complete !== 0 || s.incomplete !== 3) failed.push(seen.role + " scraped " + JSON.stringify(s))
  }
  if (all[2].incomplete !== 3) failed.push("c announced into " + all[2].incomplete + " leechers")
  failed.forEach((f) => console.log("  " + f))
  console.log(failed.length ? "webtorrent compatibility: FAILED" : "webtorrent compatibility: ok")
  process.exit(failed.length ? 1 : 0)
'
INNER
