#!/usr/bin/env bash
# Rules-over-baseline ratio of `riskdesk ingest`, runs interleaved so the shared machine's drift
# hits both alike. Input: a directory made by
#   RUNS="base rules20" KEEP_INPUT=DIR scripts/bench-ingest.sh
# (events.ndjson, base.db, rules20.db as they were before any ingest).
# Prints per pair: the ingest rates (events durable), their ratio, and the strict ratio: the
# rules20 run's time including the spend-anomaly pass that `ingest` runs at its end, against
# the baseline's ingest time without it.
# Usage: scripts/bench-ingest-ratio.sh DIR [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
src="$1"; pairs="${2:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
  cp "$src/$1.db" "$work/run.db"; rm -f "$work/run.db-wal" "$work/run.db-shm"
  RISKDESK_LOG=warn target/release/riskdesk ingest "$src/events.ndjson" --as-of 2026-11-30T00:00:00Z \
    --database-url "$work/run.db" --config "$work/none.toml" 2>&1 \
    | python3 -c '
import re, sys
t = sys.stdin.read()
n, secs = re.search(r"(\d+) records in ([0-9.]+) s", t).groups()
a = re.search(r"scored in ([0-9.]+) s", t)
print(n, secs, a.group(1) if a else "0")'
}
for i in $(seq 1 "$pairs"); do
  read -r n bs ba <<<"$(run base)"
  read -r _ rs ra <<<"$(run rules20)"
  python3 -c "
n, bs, rs, ra = $n, $bs, $rs, $ra
print(f'pair $i: base {n/bs:,.0f}/s, rules20 {n/rs:,.0f}/s, ratio {100*bs/rs:.1f} %; rules20 with its anomaly pass ({ra} s) {n/(rs+ra):,.0f}/s, strict ratio {100*bs/(rs+ra):.1f} %')"
done
