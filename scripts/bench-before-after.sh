#!/usr/bin/env bash
# Two builds' benchmarks, interleaved (old, new, old, new, …) so that the shared machine's drift
# hits both alike: the HTTP load bench, the response bench (alert → case → notifications), the
# collections bench (dunning over a book) and `riskdesk ingest` with and without 20 rules.
#
# OLD and NEW are directories, each holding one build's bench executables `http`, `response`,
# `collections` (from `cargo bench -p riskdesk --no-run`, renamed) and its `riskdesk` binary
# (`cargo build --release -p riskdesk`). The HTTP bench starts the binary its build compiled in
# (target/release/riskdesk), so this script puts each side's binary there before its run and
# restores the one it found.
# INGEST is a directory made by `RUNS="base rules20" KEEP_INPUT=DIR scripts/bench-ingest.sh`.
#
# Usage: scripts/bench-before-after.sh OLD NEW INGEST [PAIRS]
# Environment: BENCH_SECONDS (HTTP phases, default 5), RISKDESK_BENCH_SAMPLES (response,
# default 2000), RISKDESK_BENCH_CUSTOMERS (collections, default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
old="$1"; new="$2"; ingest="$3"; pairs="${4:-2}"
export BENCH_SECONDS="${BENCH_SECONDS:-5}"
export RISKDESK_BENCH_SAMPLES="${RISKDESK_BENCH_SAMPLES:-2000}"
export RISKDESK_BENCH_CUSTOMERS="${RISKDESK_BENCH_CUSTOMERS:-20000}"
bin=target/release/riskdesk
work=$(mktemp -d)
[ -e "$bin" ] && cp "$bin" "$work/found"
trap '[ -e "$work/found" ] && cp "$work/found" "$bin"; rm -rf "$work"' EXIT

ingest_run() { # BINARY DB → "events seconds"
  cp "$ingest/$2.db" "$work/run.db"; rm -f "$work/run.db-wal" "$work/run.db-shm"
  RISKDESK_LOG=warn "$1" ingest "$ingest/events.ndjson" --as-of 2026-11-30T00:00:00Z \
    --database-url "$work/run.db" --config "$work/none.toml" 2>&1 \
    | python3 -c '
import re, sys
n, secs = re.search(r"(\d+) records in ([0-9.]+) s", sys.stdin.read()).groups()
print(n, secs)'
}

for i in $(seq 1 "$pairs"); do
  for side in old new; do
    dir=$old; [ "$side" = new ] && dir=$new
    cp "$dir/riskdesk" "$bin"
    echo "== pair $i, $side: http"
    "$dir/http" 2>&1 | grep -E '%$' || true
    echo "== pair $i, $side: response"
    "$dir/response" 2>&1 | grep -vE '^\s*$' | tail -4
    echo "== pair $i, $side: collections"
    "$dir/collections" 2>&1 | grep -E 'dunning run for one day|aging report as of [0-9]|exposure of one' || true
    for db in base rules20; do
      read -r n s <<<"$(ingest_run "$dir/riskdesk" "$db")"
      python3 -c "print(f'== pair $i, $side: ingest $db {$n/$s:,.0f} events/s ({$s} s)')"
    done
  done
done
