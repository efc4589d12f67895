#!/usr/bin/env bash
# aquatic_ws_load_test (its default request mix, 1,000 connections, over
# TLS as it always connects) against the chunkswarm tracker and against
# aquatic_ws, one after the other, each server pinned to core 0 (the
# chunkswarm tracker with one worker; aquatic_ws with its defaults, one
# socket worker and one swarm worker, both threads on that core) and the
# tester to core 1. For each server it prints:
# - responses/s as the tester measures them once its 1,000 connections are
#   open, the connections it opened, and how many it saw closing;
# - the CPU the server and the tester used over the measured window, as a
#   share of their one core: a tester at 100% is the limit of the figure,
#   not the server (on a shared machine neither may get its whole core);
# - TLS handshake time under load: a curl on the side connects once a
#   second (median and slowest), and the SYNs the kernel dropped because
#   the server's listen queue was full (each costs the client 1 to 15 s);
# - for the chunkswarm tracker, its own count of connections and refusals.
#
# The tester's connections each announce into thousands of the 10,000
# torrents, so the chunkswarm tracker runs with its per-address limits and
# its limit of swarms per connection (2,000 by default) lifted; aquatic_ws
# has neither. aquatic_ws's configuration is its own defaults (printed by
# `aquatic_ws -p`) with TLS on and the address set.
#
# The tester on its one core saturates first: when it is at 100% it stops
# opening connections (its timer to open the next one hardly runs), and a
# run may never reach 1,000 connections, so it would never start measuring.
# The tester is then stopped after the run's time plus two minutes, and
# the figure printed is the mean of its 5-second reports after the first,
# marked "(never reached 1,000 connections: N)".
#
# As root, the runs happen in a network namespace of their own (`unshare
# -n`): its own loopback, ports and TCP counters.
#
# Usage (from anywhere): bash benches/aquatic_compare.sh [seconds per run, default 30]
# CHUNKSWARM_TRACKER=path runs that tracker binary instead of building this
# checkout's (to compare two builds, run them alternately).
# Installs aquatic_ws and aquatic_ws_load_test with `cargo install` into
# $AQUATIC_ROOT (default ~/.cargo) when missing; needs openssl, curl and taskset.
set -euo pipefail
seconds="${1:-30}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="${AQUATIC_ROOT:-$HOME/.cargo}"
if [ -z "${AQUATIC_COMPARE_NETNS:-}" ]; then
  if [ ! -x "$root/bin/aquatic_ws" ] || [ ! -x "$root/bin/aquatic_ws_load_test" ]; then
    cargo install --root "$root" aquatic_ws aquatic_ws_load_test
  fi
  if [ -z "${CHUNKSWARM_TRACKER:-}" ]; then
    (cd "$repo" && cargo build --release -q -p chunkswarm-tracker --features cli)
  fi
  if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
    exec env AQUATIC_COMPARE_NETNS=1 unshare -n bash "$0" "$@"
  fi
else
  ip link set lo up
fi
tracker="${CHUNKSWARM_TRACKER:-${CARGO_TARGET_DIR:-$repo/target}/release/chunkswarm-tracker}"

# Logs stay in the work directory, printed at the end.
work="$(mktemp -d)"
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
  -subj /CN=localhost 2>/dev/null

"$root/bin/aquatic_ws_load_test" -p > load.toml
sed -i "s/^num_connections_per_worker = .*/num_connections_per_worker = 1000/;
        s/^duration = .*/duration = $seconds/;
        s/^log_level = .*/log_level = \"error\"/" load.toml

# Each server on a port of its own: a port the last server left in
# TIME_WAIT cannot be bound again by aquatic_ws.
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }

# CPU seconds (user + system) a process used so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Runs the tester against the server started by "$@" on port $2; prints its summary.
measure() {
  local name="$1" port="$2"; shift 2
  sed "s/^server_address = .*/server_address = \"127.0.0.1:$port\"/" load.toml > "$name.load.toml"
  local overflows_before
  overflows_before="$(nstat -asz TcpExtListenOverflows 2>/dev/null | awk '/ListenOverflows/ {print $2}')"
  taskset -c 0 "$@" > "$name.server.log" 2>&1 &
  local server=$!
  wait_port "$port"
  taskset -c 1 timeout $((seconds + 120)) "$root/bin/aquatic_ws_load_test" -c "$name.load.toml" \
    > "$name.load.log" 2>&1 &
  local tester=$!
  # Handshake time as a client sees it while the tester runs.
  (
    sleep 2
    while kill -0 "$tester" 2>/dev/null; do
      curl -sk -o /dev/null --max-time 30 -w '%{time_appconnect}\n' "https://127.0.0.1:$port/" || true
      sleep 1
    done
  ) > "$name.handshakes" 2>/dev/null &
  local prober=$!
  # CPU of the server and the tester (the child of `timeout`), each second.
  local load_pid=""
  while kill -0 "$tester" 2>/dev/null; do
    [ -n "$load_pid" ] || load_pid="$(pgrep -P "$tester" | head -1 || true)"
    echo "$(date +%s.%N) $(cpu_seconds "$server") $(cpu_seconds "${load_pid:-0}")" >> "$name.cpu"
    sleep 1
  done
  wait "$tester" 2>/dev/null || true
  wait "$prober" 2>/dev/null || true

  local average opened fell peak
  average="$(grep -m1 'Average responses per second' "$name.load.log" | awk '{print $NF}' || true)"
  # Connections open at the end as the tester counts them: it opens one every
  # 10 ms while fewer than 1,000 are open, so those still in their handshake
  # when it reached 1,000 come on top.
  opened="$(grep 'Active connections' "$name.load.log" | tail -1 | awk '{print $NF}' || true)"
  # Open connections as the tester reports them every few seconds: a fall
  # is connections that closed (a lower bound: new ones may hide some).
  fell="$(grep 'Active connections' "$name.load.log" \
    | awk '{n = $NF; if (NR > 1 && n < prev) fell += prev - n; prev = n} END {print fell + 0}')"
  if [ -z "$average" ]; then
    peak="$(grep 'Active connections' "$name.load.log" | awk '$NF > m {m = $NF} END {print m + 0}')"
    average="$(grep 'Responses in' "$name.load.log" | awk 'NR > 1 {s += $3; n++} END {if (n) printf "%.2f", s / n}')"
    average="${average:-?} (never reached 1,000 connections: $peak)"
  fi
  printf '%-20s responses/s %10s   tester connections: %s, seen closing: %s\n' \
    "$name" "${average:-?}" "${opened:-?}" "$fell"
  # Over the tester's measured window: its last $seconds seconds (the last
  # sample is taken after it exited, so its own CPU ends one line earlier).
  awk -v secs="$seconds" '{t[NR] = $1; s[NR] = $2; l[NR] = $3} END {
      last = NR - 1; first = last
      while (first > 1 && t[last] - t[first] < secs) first--
      span = t[last] - t[first]
      if (span > 0) printf "%-20s CPU over the last %.0f s: server %.0f%% of its core, tester %.0f%% of its core\n", "", span, 100 * (s[last] - s[first]) / span, 100 * (l[last] - l[first]) / span
      if (s[last] > s[first] && rate + 0 > 0) printf "%-20s responses per second of server CPU: %.0f\n", "", rate * span / (s[last] - s[first])
    }' rate="${average%% *}" "$name.cpu"
  local overflows_after
  overflows_after="$(nstat -asz TcpExtListenOverflows 2>/dev/null | awk '/ListenOverflows/ {print $2}')"
  sort -g "$name.handshakes" | awk -v name="" -v dropped="$(( ${overflows_after:-0} - ${overflows_before:-0} ))" '
    {t[NR] = $1} END {
      if (NR) printf "%-20s TLS handshake under load: median %.3f s, slowest %.3f s (%d probes); SYNs dropped, listen queue full: %d\n", name, t[int((NR + 1) / 2)], t[NR], NR, dropped
    }'
  if [ "$name" = chunkswarm-tracker ]; then
    curl -sk "https://127.0.0.1:$port/metrics" \
      | grep -E '^chunkswarm_tracker_(connections|connections_total|rejections_total)' \
      | grep -v ' 0$' | sed 's/^/    /'
  fi
  if ! kill "$server" 2>/dev/null; then
    echo "    $name exited early:"; tail -5 "$name.server.log" | sed 's/^/    /'
  fi
  wait "$server" 2>/dev/null || true
}

"$root/bin/aquatic_ws" -p > aquatic.toml
sed -i "s/^address = .*/address = \"127.0.0.1:3918\"/;
        s/^enable_tls = .*/enable_tls = true/;
        s|^tls_certificate_path = .*|tls_certificate_path = \"$work/cert.pem\"|;
        s|^tls_private_key_path = .*|tls_private_key_path = \"$work/key.pem\"|" aquatic.toml

echo "aquatic_ws_load_test: 1,000 connections over TLS, default mix, ${seconds} s, server on core 0, tester on core 1"
measure chunkswarm-tracker 3917 env RUST_LOG=warn "$tracker" --listen 127.0.0.1:3917 --threads 1 \
  --ip-rate 0 --max-connections-per-ip 100000 --max-swarms-per-connection 100000 --lazy-torrents \
  --tls-cert cert.pem --tls-key key.pem
measure aquatic_ws 3918 "$root/bin/aquatic_ws" -c aquatic.toml
echo "logs: $work"
