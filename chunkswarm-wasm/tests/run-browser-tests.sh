#!/usr/bin/env bash
# Runs chunkswarm-wasm's wasm-bindgen-test tests in headless Chromium, then
# the streaming check (run-stream-test.sh: Service Worker playback and seek).
#
#   chunkswarm-wasm/tests/run-browser-tests.sh [extra cargo test args]
#
# Runnable from anywhere on a machine where .ci/install ran (wasm32 target,
# wasm-bindgen-cli at the pinned version, Debian's chromium and
# chromium-driver, iproute2). The tests run inside a network namespace made
# here (`unshare -n`, loopback only): Chromium then gathers 127.0.0.1 host
# candidates and sends nothing to the host's networks. Exits non-zero on any
# failure.
set -euo pipefail

crate_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$crate_dir/.." && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}

fail() {
    echo "run-browser-tests: $*" >&2
    exit 1
}
command -v wasm-bindgen-test-runner >/dev/null || fail "wasm-bindgen-test-runner not found (cargo install wasm-bindgen-cli at the pinned version)"
[ -x "$chromium" ] || fail "no Chromium at $chromium"
[ -x "$CHROMEDRIVER" ] || fail "no chromedriver at $CHROMEDRIVER"
command -v unshare >/dev/null || fail "unshare (util-linux) not found"
command -v ip >/dev/null || fail "ip (iproute2) not found"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Capabilities for chromedriver; the runner adds --headless, --no-sandbox
# and --disable-dev-shm-usage itself.
cat >"$work/webdriver.json" <<JSON
{
  "goog:chromeOptions": {
    "binary": "$chromium",
    "args": [
      "--allow-loopback-in-peer-connection",
      "--use-fake-ui-for-media-stream",
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--user-data-dir=$work/profile"
    ]
  }
}
JSON
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$work/webdriver.json"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-180}
export WASM_BINDGEN_TEST_DRIVER_TIMEOUT=${WASM_BINDGEN_TEST_DRIVER_TIMEOUT:-30}

cd "$root"
# Build first, outside the namespace (the namespace has no network at all):
# the tests, and the tracker that browser_tracker.rs connects to. The tracker
# is built as `cargo test --workspace --all-features` builds it (the same
# packages, features and dev-dependencies, hence `--tests`), so that after the
# test suite nothing here compiles again: `-p chunkswarm-tracker --features
# cli` alone unifies its dependencies' features differently and rebuilds
# about 55 crates.
cargo test -p chunkswarm-wasm --target wasm32-unknown-unknown --tests --no-run "$@"
cargo build --workspace --all-features --tests --bin chunkswarm-tracker
tracker="${CARGO_TARGET_DIR:-$root/target}/debug/chunkswarm-tracker"
# The tracker's media library: a multi-file torrent's files, which
# browser_multi_file.rs downloads from the tracker's HTTP origin (sizes as
# that test expects them; names with spaces; an empty file).
album="$work/media/album"
mkdir -p "$album/cd 1"
head -c 300001 /dev/urandom >"$album/intro.webm"
head -c 700000 /dev/urandom >"$album/cd 1/track one.opus"
: >"$album/cd 1/empty.webm"
head -c 123457 /dev/urandom >"$album/z.mp3"
# Then run inside a fresh network namespace with only loopback up, with the
# tracker and its origin on 127.0.0.1:8000 (free: the namespace is new).
unshare --net -- bash -s "$tracker" "$work" "$@" <<'INNER'
set -euo pipefail
tracker=$1
work=$2
shift 2
ip link set lo up
"$tracker" --listen 127.0.0.1:8000 --media "$work/media" >"$work/tracker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && break
    sleep 0.1
done
cargo test --offline -p chunkswarm-wasm --target wasm32-unknown-unknown --tests "$@"
INNER
"$crate_dir/tests/run-stream-test.sh"
echo "run-browser-tests: all browser tests passed"
