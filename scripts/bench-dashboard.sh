#!/usr/bin/env bash
# Dashboard server time with a session cookie, against the release binary on a fresh SQLite
# database holding N customers and N open cases (default 10,000 each) in one tenant: wrk on
# the case queue, the customer list and a case workspace, and — same run, as the baseline —
# the API's own case list (GET /v1/cases). Prints wrk's latency percentiles (50/75/90/99 %).
# Usage: [N=10000] [CONNS=4] scripts/bench-dashboard.sh [SECONDS]
# Needs wrk and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${NO_BUILD:-}" ] || cargo build --release -q
dir=$(mktemp -d)
secs="${1:-10}"
n="${N:-10000}"
port=18183
bin=target/release/riskdesk
RISKDESK_LOG=warn $bin serve --bind 127.0.0.1:$port --database-url "$dir/bench.db" --config "$dir/none.toml" >"$dir/out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.2; done
token=$(grep '^rdk_' "$dir/out")
base="http://127.0.0.1:$port"
echo "== loading $n customers and $n cases"
python3 - "$base" "$token" "$n" <<'PY'
import json, sys, time, urllib.request, concurrent.futures as cf
base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(method, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())
t0 = time.time()
def customer(i):
    return call("POST", "/v1/customers", {"name": f"Customer {i:05d}", "domain": f"c{i}.example.com",
        "country": "FR", "email": f"billing@c{i}.example.com", "locale": "fr-FR", "cloud_instance": "global"})["id"]
with cf.ThreadPoolExecutor(8) as ex:
    ids = list(ex.map(customer, range(n)))
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
for k in range(0, n, 1000):
    batch = [{"type": "activity", "event_id": f"fraud-{c}", "customer_id": c, "time": now,
              "operation": "provider_fraud_notification", "actor": "partner-center",
              "status": "succeeded", "properties": {}} for c in ids[k:k + 1000]]
    call("POST", "/v1/events", batch)
print(f"   loaded in {time.time() - t0:.1f} s")
PY
echo "bench-password-1234" | $bin user create --database-url "$dir/bench.db" --config "$dir/none.toml" \
  --email bench@example.com --name Bench --role analyst --password-stdin 2>/dev/null
cookie=$(curl -s -D - -o /dev/null -H "Sec-Fetch-Site: same-origin" \
  --data-urlencode "email=bench@example.com" --data-urlencode "password=bench-password-1234" \
  "$base/ui/login" | sed -n 's/^set-cookie: \(__Host-riskdesk_session=[^;]*\).*/\1/ip')
case_id=$(curl -s -H "Authorization: Bearer $token" "$base/v1/cases?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
cases_total=$(curl -s -H "Authorization: Bearer $token" "$base/v1/cases?limit=500" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["items"]), "on the first page")')
echo "   cases: $cases_total"
run() { wrk -t2 -c"${CONNS:-4}" -d"${secs}s" --latency "$@" | grep -E "Requests/sec|Non-2xx|^\s+(50|75|90|99)%"; }
wrk -t2 -c"${CONNS:-4}" -d3s -H "Cookie: $cookie" "$base/ui/cases" >/dev/null
echo "== GET /v1/cases (API, baseline)"; run -H "Authorization: Bearer $token" "$base/v1/cases"
echo "== GET /ui/cases (queue)"; run -H "Cookie: $cookie" "$base/ui/cases"
echo "== GET /ui/customers (customer list)"; run -H "Cookie: $cookie" "$base/ui/customers"
echo "== GET /ui/cases/{id} (workspace)"; run -H "Cookie: $cookie" "$base/ui/cases/$case_id"
echo "== GET /ui/ (home)"; run -H "Cookie: $cookie" "$base/ui/"
