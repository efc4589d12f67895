#!/usr/bin/env bash
# aquatic_ws_load_test (its default request mix, 1,000 connections, over
# TLS as it always connects) against the chunkswarm tracker and against
# aquatic_ws, one after the other, each server pinned to core 0 with one
# worker and the tester to core 1. Prints each server's responses per second
# as the tester measures them, the connections it made, and for the
# chunkswarm tracker its own count of connections and refusals.
#
# The tester's connections each announce into thousands of the 10,000
# torrents, so the chunkswarm tracker runs with its per-address limits and
# its limit of swarms per connection (2,000 by default) lifted; aquatic_ws
# has neither.
#
# Usage (from anywhere): bash benches/aquatic_compare.sh [seconds per run, default 30]
# Installs aquatic_ws and aquatic_ws_load_test with `cargo install` into
# $AQUATIC_ROOT (default ~/.cargo) when missing; needs openssl and taskset.
set -euo pipefail
seconds="${1:-30}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="${AQUATIC_ROOT:-$HOME/.cargo}"
if [ ! -x "$root/bin/aquatic_ws" ] || [ ! -x "$root/bin/aquatic_ws_load_test" ]; then
  cargo install --root "$root" aquatic_ws aquatic_ws_load_test
fi
(cd "$repo" && cargo build --release -q -p chunkswarm-tracker --features cli)
tracker="${CARGO_TARGET_DIR:-$repo/target}/release/chunkswarm-tracker"

# Logs stay in the work directory, printed at the end.
work="$(mktemp -d)"
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
  -subj /CN=localhost 2>/dev/null
port=3917

"$root/bin/aquatic_ws_load_test" -p > load.toml
sed -i "s/^server_address = .*/server_address = \"127.0.0.1:$port\"/;
        s/^num_connections_per_worker = .*/num_connections_per_worker = 1000/;
        s/^duration = .*/duration = $seconds/;
        s/^log_level = .*/log_level = \"error\"/" load.toml

"$root/bin/aquatic_ws" -p > aquatic.toml
sed -i "s/^address = .*/address = \"127.0.0.1:$port\"/;
        s/^enable_tls = .*/enable_tls = true/;
        s|^tls_certificate_path = .*|tls_certificate_path = \"$work/cert.pem\"|;
        s|^tls_private_key_path = .*|tls_private_key_path = \"$work/key.pem\"|" aquatic.toml

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.1; done; }
# The next server binds the same port: wait until the last one let it go.
wait_port_free() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || return 0; sleep 0.1; done; }

# Runs the tester against the server started by "$@"; prints its summary.
measure() {
  local name="$1"; shift
  taskset -c 0 "$@" > "$name.server.log" 2>&1 &
  local server=$!
  wait_port
  taskset -c 1 "$root/bin/aquatic_ws_load_test" -c load.toml > "$name.load.log" 2>&1 || true
  local average opened fell
  average="$(grep -m1 'Average responses per second' "$name.load.log" | awk '{print $NF}' || true)"
  # Connections open at the end as the tester counts them: it opens one every
  # 10 ms while fewer than 1,000 are open, so those still in their handshake
  # when it reached 1,000 come on top (slow handshakes, more of them).
  opened="$(grep 'Active connections' "$name.load.log" | tail -1 | awk '{print $NF}' || true)"
  # Open connections as the tester reports them every few seconds: a fall
  # is connections that closed (a lower bound: new ones may hide some).
  fell="$(grep 'Active connections' "$name.load.log" \
    | awk '{n = $NF; if (NR > 1 && n < prev) fell += prev - n; prev = n} END {print fell + 0}')"
  printf '%-20s responses/s %10s   tester connections: %s, seen closing: %s\n' \
    "$name" "${average:-?}" "${opened:-?}" "$fell"
  if [ "$name" = chunkswarm-tracker ]; then
    curl -sk "https://127.0.0.1:$port/metrics" \
      | grep -E '^chunkswarm_tracker_(connections|connections_total|rejections_total)' \
      | grep -v ' 0$' | sed 's/^/    /'
  fi
  if ! kill "$server" 2>/dev/null; then
    echo "    $name exited early:"; tail -5 "$name.server.log" | sed 's/^/    /'
  fi
  wait "$server" 2>/dev/null || true
  wait_port_free
}

echo "aquatic_ws_load_test: 1,000 connections over TLS, default mix, ${seconds} s, server on core 0"
measure chunkswarm-tracker env RUST_LOG=warn "$tracker" --listen "127.0.0.1:$port" --threads 1 \
  --ip-rate 0 --max-connections-per-ip 100000 --max-swarms-per-connection 100000 --lazy-torrents \
  --tls-cert cert.pem --tls-key key.pem
measure aquatic_ws "$root/bin/aquatic_ws" -c aquatic.toml
echo "logs: $work"
