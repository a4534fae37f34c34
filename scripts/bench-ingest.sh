#!/usr/bin/env bash
# `riskdesk ingest` benchmark: 1,000,000 NDJSON usage events (2,000 customers by external id
# CUST-0 … CUST-1999, 5 meter categories, November 2026 times in order, costs 0.0001–9.9999) into a fresh
# SQLite database (synchronous=FULL), release build. Runs, each on a copy of the same database:
#   1. no rules (the shipped detectors disabled) — the baseline,
#   2. the shipped detectors active (the default configuration),
#   3. `rules20`: 20 partner rules active (window functions, category filters, baseline ratios,
#      new region/SKU; the shipped detectors disabled) — issue 4's "≥ 70 % of the baseline",
# and prints each run's rate and its spend-anomaly pass (scored hours, series, alerts).
# Events come in time order, as a feed does. Needs python3.
# Usage: [RUNS="base detectors rules20"] [KEEP_DB=path] scripts/bench-ingest.sh [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
n="${1:-1000000}"
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
port=18184
RISKDESK_LOG=warn target/release/riskdesk serve --bind 127.0.0.1:$port --database-url "$dir/base.db" --config "$dir/none.toml" >"$dir/out" 2>&1 &
pid=$!
for _ in $(seq 1 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.2; done
token=$(grep '^rdk_' "$dir/out")
TOKEN=$token PORT=$port N=$n OUT="$dir/events.ndjson" python3 - <<'PY'
import http.client, json, os, random
t, port, n = os.environ["TOKEN"], int(os.environ["PORT"]), int(os.environ["N"])
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
call("GET", "/v1/rules")  # installs the shipped detectors
if "rules20" in os.environ.get("RUNS", "base detectors"):
    rules = [
        "spend_in('Virtual Machines', '1h') > 500.0", "spend('24h') > 2000.0",
        "spend('1h') > 300.0 && customer.age_days < 30", "baseline_ratio('1h') > 20.0 && spend('1h') > 50.0",
        "new_region() && events('30d') > 10", "new_sku() && event.cost > 100.0", "distinct_regions('24h') > 5",
        "event.cost > 1000.0", "spend_in('Bandwidth', '1h') > 200.0", "spend_in('Storage', '24h') > 1000.0",
        "events('10m') > 500", "spend('7d') > 20000.0", "event.region == 'brazilsouth' && event.cost > 50.0",
        "customer.country in ['KP', 'IR']", "event.meter_name.contains('A100') && spend('1h') > 100.0",
        "spend('10m') > 200.0", "event.cost > 5.0 && customer.risk_status == 'review'",
        "baseline_ratio('24h') > 10.0 && spend('24h') > 500.0", "event.quantity > 1000.0", "spend('30d') > 100000.0",
    ]
    for k, cond in enumerate(rules):
        # Created disabled; the rules20 run switches them on (and the shipped ones off).
        call("POST", "/v1/rules", {"name": f"bench rule {k}", "scope": "usage", "condition": cond,
             "severity": "medium", "mode": "disabled"})
rng = random.Random(7)
cats = ["Virtual Machines", "Bandwidth", "Storage", "SQL Database", "Networking"]
with open(os.environ["OUT"], "w") as f:
    for i in range(n):
        # A feed arrives in time order: November 1–29, evenly spread.
        secs = i * 29 * 86400 // n
        day, hour, minute = 1 + secs // 86400, secs // 3600 % 24, secs // 60 % 60
        f.write(json.dumps({"type": "usage", "event_id": f"ev-{i}", "customer_external_id": f"CUST-{i % 2000}",
            "time": f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00Z", "meter_category": cats[i % 5],
            "meter_name": "D4s v5", "region": "westeurope", "quantity": 1, "unit": "Hours",
            "cost": f"{rng.randrange(1, 100000) / 10000:.4f}", "currency": "EUR"}) + "\n")
PY
kill $pid; wait $pid 2>/dev/null || true
cp "$dir/base.db" "$dir/detectors.db"
sqlite3_disable() {
  python3 - "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE rules SET mode = 'disabled'"); c.commit()
PY
}
sqlite3_disable "$dir/base.db"
if [[ " ${RUNS:-} " == *" rules20 "* ]]; then
  cp "$dir/base.db" "$dir/rules20.db"
  python3 - "$dir/rules20.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE rules SET mode = 'active' WHERE name LIKE 'bench rule %'"); c.commit()
PY
fi
for run in ${RUNS:-base detectors}; do
  if [ -n "${KEEP_INPUT:-}" ]; then cp "$dir/$run.db" "$dir/$run.db.orig"; fi
  echo "== $run"
  RISKDESK_LOG=warn target/release/riskdesk ingest "$dir/events.ndjson" --as-of 2026-11-30T00:00:00Z \
    --database-url "$dir/$run.db" --config "$dir/none.toml" 2>&1 | grep -E 'records in|spend anomalies'
done
# KEEP_DB=path keeps the baseline database (1M stored events) for other benchmarks.
if [ -n "${KEEP_DB:-}" ]; then cp "$dir/base.db" "$KEEP_DB"; fi
# KEEP_INPUT=dir keeps the events file and the databases as they were before the runs (for
# profiling one run by hand).
if [ -n "${KEEP_INPUT:-}" ]; then
  mkdir -p "$KEEP_INPUT"
  cp "$dir/events.ndjson" "$KEEP_INPUT/"
  for run in ${RUNS:-base detectors}; do cp "$dir/$run.db.orig" "$KEEP_INPUT/$run.db"; done
fi
