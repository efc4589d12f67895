#!/usr/bin/env bash
# Two unchanged WebTorrent tracker clients (npm `bittorrent-tracker`, the
# library inside WebTorrent) announce to the chunkswarm tracker in separate
# processes, exchange an offer and an answer through it, and scrape it.
# Everything runs in a fresh network namespace with only loopback, so WebRTC
# can reach nothing else.
#
# Usage (as root, from anywhere): bash chunkswarm-tracker/tests/webtorrent/run.sh [--cluster]
# With --cluster, two tracker nodes share a redis-server (cluster mode) and
# each client announces to a different node: the offer and the answer cross
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
work="${WEBTORRENT_COMPAT_DIR:-$(mktemp -d)}"
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
(cd "$repo" && cargo build -q -p chunkswarm-tracker --bin chunkswarm-tracker)
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
  second=18001
else
  redis=()
  second=18000
fi
for port in $(printf '%s\n' 18000 "$second" | sort -u); do
  RUST_LOG=warn "$tracker" --listen 127.0.0.1:$port "${redis[@]}" </dev/null &
  pids+=($!)
  wait_port $port
done
# Cluster nodes join within a heartbeat.
if [ "$cluster" = 1 ]; then sleep 1; fi
cd "$work"
timeout 30 node peer.mjs ws://127.0.0.1:18000/announce a 9000 > a.json &
a_pid=$!
sleep 1
timeout 30 node peer.mjs ws://127.0.0.1:$second/announce b 8000 > b.json
wait $a_pid
cat a.json b.json
node -e '
  const a = require("./a.json"), b = require("./b.json")
  const ok = a.peers >= 1 && b.peers >= 1 && a.updates >= 1 && b.updates >= 1 &&
    b.incomplete === 2 && a.scrape !== null && b.scrape !== null &&
    a.warnings.length === 0 && b.warnings.length === 0
  console.log(ok ? "webtorrent compatibility: ok" : "webtorrent compatibility: FAILED")
  process.exit(ok ? 0 : 1)
'
INNER
