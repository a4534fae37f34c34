#!/usr/bin/env bash
# Rules-over-baseline ratio of `riskdesk ingest`, runs interleaved so the shared machine's drift
# hits both alike. Input: a directory made by
#   RUNS="base rules20" KEEP_INPUT=DIR scripts/bench-ingest.sh
# (events.ndjson, base.db, rules20.db as they were before any ingest).
# Usage: scripts/bench-ingest-ratio.sh DIR [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
src="$1"; pairs="${2:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rate() {
  cp "$src/$1.db" "$work/run.db"; rm -f "$work/run.db-wal" "$work/run.db-shm"
  RISKDESK_LOG=warn target/release/riskdesk ingest "$src/events.ndjson" --as-of 2026-11-30T00:00:00Z \
    --database-url "$work/run.db" --config "$work/none.toml" 2>&1 \
    | sed -n 's/.*records in [0-9.]* s (\([0-9]*\)\/s).*/\1/p'
}
for i in $(seq 1 "$pairs"); do
  b=$(rate base); r=$(rate rules20)
  echo "pair $i: base $b/s, rules20 $r/s, ratio $(python3 -c "print(f'{100*$r/$b:.1f} %')")"
done
