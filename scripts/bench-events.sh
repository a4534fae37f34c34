#!/usr/bin/env bash
# POST /v1/events benchmark with wrk (8 connections, 2 threads, batches of 1,000 usage events)
# against the release binary on a fresh SQLite database holding 2,000 customers (external ids
# CUST-0 … CUST-1999), the shipped detectors disabled (RULES=on keeps them). Needs `wrk` and
# `python3`. Usage: scripts/bench-events.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
dir=$(mktemp -d)
secs="${1:-10}"
port=18183
RISKDESK_LOG=warn target/release/riskdesk serve --bind 127.0.0.1:$port --database-url "$dir/bench.db" --config "$dir/none.toml" >"$dir/out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.2; done
token=$(grep '^rdk_' "$dir/out")
TOKEN=$token PORT=$port RULES=${RULES:-off} python3 - <<'PY'
import http.client, json, os
t, port = os.environ["TOKEN"], int(os.environ["PORT"])
c = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=None):
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Authorization": "Bearer " + t, "Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    assert r.status < 300, (r.status, data)
    return json.loads(data) if data else None
for i in range(2000):
    call("POST", "/v1/customers", {"name": f"Cust {i}", "domain": f"c{i}.example.com", "country": "FR",
        "email": f"a@c{i}.example.com", "cloud_instance": "global", "external_id": f"CUST-{i}"})
if os.environ["RULES"] != "on":
    for r in call("GET", "/v1/rules"):
        call("PUT", f"/v1/rules/{r['id']}", {k: r[k] for k in ("name", "scope", "condition", "severity", "cooldown_seconds")} | {"mode": "disabled"})
PY
{ echo "token = \"$token\""; cat scripts/wrk/events.lua; } >"$dir/events.lua"
echo "== GET /healthz"; wrk -t2 -c8 -d"${secs}s" "http://127.0.0.1:$port/healthz" | grep -E 'Requests/sec'
echo "== POST /v1/events (1,000 events per request)"; wrk -t2 -c8 -d"${secs}s" --latency -s "$dir/events.lua" "http://127.0.0.1:$port/" | grep -E 'Requests/sec|Non-2xx|^\s+(50|99)%'
