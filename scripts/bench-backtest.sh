#!/usr/bin/env bash
# Backtest benchmark: one usage rule over the events of a database made by
# `KEEP_DB=path scripts/bench-ingest.sh` (1M events by default), through the API.
# Usage: scripts/bench-backtest.sh DB_PATH
set -euo pipefail
cd "$(dirname "$0")/.."
db="$1"
cargo build --release -q
dir=$(mktemp -d)
cp "$db" "$dir/bt.db"
port=18185
RISKDESK_LOG=warn target/release/riskdesk token create --tenant default --role admin --database-url "$dir/bt.db" --config "$dir/none.toml" >"$dir/token"
RISKDESK_LOG=warn target/release/riskdesk serve --bind 127.0.0.1:$port --database-url "$dir/bt.db" --config "$dir/none.toml" >"$dir/out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.2; done
TOKEN=$(tail -1 "$dir/token") PORT=$port python3 - <<'PY'
import http.client, json, os
t, port = os.environ["TOKEN"], int(os.environ["PORT"])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
def call(method, path, body=None):
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Authorization": "Bearer " + t, "Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    assert r.status < 300, (r.status, data)
    return json.loads(data) if data else None
rule = call("POST", "/v1/rules", {"name": "bench", "scope": "usage", "severity": "low",
            "condition": "spend(\"1h\") > 50.0", "mode": "shadow"})
for run in range(3):
    r = call("POST", f"/v1/rules/{rule['id']}/backtest", {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"})
    ms = max(r["elapsed_ms"], 1)
    print(f"backtest: {r['events_scanned']} events scanned, {r['events_evaluated']} evaluated, {r['hits']} hits in {ms} ms = {r['events_scanned'] * 1000 // ms} events/s")
PY
