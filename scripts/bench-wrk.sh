#!/usr/bin/env bash
# GET benchmark with wrk (64 connections, 2 threads), against the release binary on a fresh
# database: /healthz (baseline) then GET /v1/customers/{id}, same run. Needs `wrk` (apt-get
# install wrk). Usage: scripts/bench-wrk.sh [DATABASE_URL] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
dir=$(mktemp -d)
db="${1:-$dir/bench.db}"
secs="${2:-10}"
port=18181
RISKDESK_LOG=warn target/release/riskdesk serve --bind 127.0.0.1:$port --database-url "$db" --config "$dir/none.toml" >"$dir/out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.2; done
token=$(grep '^rdk_' "$dir/out")
id=$(curl -sf -X POST "http://127.0.0.1:$port/v1/customers" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"name":"Bench Ltd","domain":"bench.example","country":"FR","email":"a@bench.example","cloud_instance":"global"}' \
  | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])')
run() { wrk -t2 -c64 -d"${secs}s" --latency "$@" | grep -E 'Requests/sec|^\s+(50|99)%'; }
echo "== GET /healthz"; run "http://127.0.0.1:$port/healthz"
echo "== GET /v1/customers/{id}"; run -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/customers/$id"
