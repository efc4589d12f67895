#!/usr/bin/env bash
# How long a magnet download takes to start once its metadata is in: a
# tracker, a `peer seed` of a 3.5 MiB random file, and a
# `peer fetch 'magnet:?…' --no-web-seed --loopback` of its link (infohash
# and tracker only), all in a network namespace of their own
# (`unshare --net`, with `--map-root-user` when not root). From the
# fetcher's log it prints, per run, the time from "metadata received" to
# the first channel opened after it (none: the download took over the
# fetch's channels), to the first block request, and from there to the
# download's end, plus the fetch's wall time and how many channels it
# opened.
#
# Usage: bash benches/magnet_switch.sh [runs, default 3] [peer binary]
# Builds `peer` and `chunkswarm-tracker` (debug) unless PEER / TRACKER name
# binaries; the peer binary may also be given as the second argument, to
# time another build. Needs unshare (util-linux), ip (iproute2), python3.
set -euo pipefail
runs="${1:-3}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"

if [[ "${MAGNET_SWITCH_INNER:-}" != 1 ]]; then
    peer="${2:-${PEER:-}}"
    tracker="${TRACKER:-}"
    if [[ -z "$peer" ]]; then
        cargo build -p chunkswarm-examples --bin peer
        peer="$target/debug/peer"
    fi
    if [[ -z "$tracker" ]]; then
        cargo build -p chunkswarm-tracker --features cli --bin chunkswarm-tracker
        tracker="$target/debug/chunkswarm-tracker"
    fi
    map=()
    [[ "$(id -u)" == 0 ]] || map=(--map-root-user)
    for run in $(seq "$runs"); do
        echo "run $run:"
        MAGNET_SWITCH_INNER=1 PEER="$peer" TRACKER="$tracker" \
            unshare "${map[@]}" --net -- bash "$0"
    done
    exit 0
fi

# Inside the namespace: only loopback exists.
ip link set lo up
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/media" "$work/out"
head -c 3670016 /dev/urandom >"$work/film.bin"
"$TRACKER" --listen 127.0.0.1:8000 --media "$work/media" >"$work/tracker.log" 2>&1 &
sleep 1
RUST_LOG=warn "$PEER" seed "$work/film.bin" --tracker ws://127.0.0.1:8000/announce \
    --no-web-seed --loopback >"$work/seed.out" 2>"$work/seed.err" &
for _ in $(seq 100); do
    grep -q '^magnet:' "$work/seed.err" 2>/dev/null && break
    sleep 0.1
done
link="$(grep '^magnet:' "$work/seed.err" | head -1 | sed 's/^magnet: //')"
sleep 1
start=$(date +%s.%N)
RUST_LOG='warn,chunkswarm_core::metadata_fetch=info,chunkswarm_core::driver=debug,chunkswarm_core::swarm=trace' \
    "$PEER" fetch "$link" -o "$work/out" --no-web-seed --loopback --json \
    >"$work/fetch.json" 2>"$work/fetch.log"
end=$(date +%s.%N)
cmp -s "$work/film.bin" "$work/out/film.bin" || { echo "  the fetched file differs"; exit 1; }
python3 - "$work/fetch.log" "$start" "$end" <<'PY'
import datetime, re, sys

def stamp(line):
    return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()

lines = [re.sub(r"\x1b\[[0-9;]*m", "", l) for l in open(sys.argv[1])]
lines = [l for l in lines if l[:1].isdigit()]
meta = next(stamp(l) for l in lines if "metadata received" in l)
after = [l for l in lines if stamp(l) >= meta]
channel = next((stamp(l) for l in after if "channel open" in l), None)
request = next(stamp(l) for l in after if "requesting from an idle peer" in l)
done = next((stamp(l) for l in after if "download complete" in l), None)
opened = sum("channel open" in l for l in lines)
print("  metadata received -> first channel opened after it:",
      "none (the fetch's channels carry the download)" if channel is None else f"{channel - meta:.3f} s")
print(f"  metadata received -> first block request: {request - meta:.3f} s")
if done is not None:
    print(f"  first block request -> download complete: {done - request:.3f} s")
print(f"  fetch wall time: {float(sys.argv[3]) - float(sys.argv[2]):.3f} s; channels opened: {opened}")
PY
