#!/usr/bin/env bash
# POST /v1/signups/assess benchmark with wrk (CONNS connections, 64 by default; 2 threads)
# against the release binary on a fresh SQLite database: a warm-up, then /healthz (baseline)
# and the assessment, same run. Needs `wrk`.
# Usage: [CONNS=64] [WARMUP=5] scripts/bench-assess.sh [SECONDS]
# (RISKDESK_SQLITE_SYNCHRONOUS=normal to compare without fsync)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${NO_BUILD:-}" ] || cargo build --release -q
dir=$(mktemp -d)
secs="${1:-10}"
port=18182
RISKDESK_LOG=warn target/release/riskdesk serve --bind 127.0.0.1:$port --database-url "$dir/bench.db" --config "$dir/none.toml" >"$dir/out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.2; done
token=$(grep '^rdk_' "$dir/out")
{ echo "token = \"$token\""; cat scripts/wrk/assess.lua; } >"$dir/assess.lua"
run() { wrk -t2 -c"${CONNS:-64}" -d"${secs}s" --latency "$@" | grep -E "Requests/sec|Non-2xx|^\s+(50|75|90|99)%"; }
# Warm-up, not measured: a fresh database's first seconds are slower (measured at 2 connections:
# p99 56 ms in the first 6 s, 3 ms in the next runs; the database file and the WAL are still
# growing then, and the caches are cold), and a running server is what the figure describes.
[ "${WARMUP:-5}" = 0 ] || wrk -t2 -c"${CONNS:-64}" -d"${WARMUP:-5}s" -s "$dir/assess.lua" "http://127.0.0.1:$port/" >/dev/null
echo "== GET /healthz"; run "http://127.0.0.1:$port/healthz"
echo "== POST /v1/signups/assess"; run -s "$dir/assess.lua" "http://127.0.0.1:$port/"
