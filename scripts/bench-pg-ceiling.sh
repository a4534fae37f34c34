#!/usr/bin/env bash
# What PostgreSQL itself allows for `POST /v1/invoices` on this machine, measured with pgbench
# (a C client with no HTTP, no JSON and no application code), against riskdesk's own schema.
#
# Each transaction does what one invoice does in riskdesk on PostgreSQL (read off the server log
# with log_statement=all, 2026-12-07): `BEGIN; SELECT pg_advisory_xact_lock(<customer>)`, one
# statement that inserts the invoice if the tenant has the customer, moves the audit lane's head,
# inserts the audit entry and reads the customer with its prepaid balances, then `COMMIT` — three
# round trips. Variants:
#   invoice     the above, one invoice per transaction (riskdesk's shape);
#   group4      four invoices per transaction, each in its own SAVEPOINT (a group commit);
#   nosync      one invoice per transaction with `SET LOCAL synchronous_commit = off` (for
#               reference only: riskdesk never acknowledges before the commit is durable);
#   bare        the invoice INSERT alone, one per transaction, no lock, audit or read (a floor).
# Prints invoices/s per variant and connection (TCP with libpq's default sslmode, and the Unix
# socket). Usage:
#   scripts/bench-pg-ceiling.sh [seconds per run, default 10] [clients, default 16: riskdesk's pool]
# Needs pgbench (Debian's postgresql-client) and a release build of riskdesk (for its migrations):
#   cargo build --release -p riskdesk
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CLIENTS=${2:-16}
HOST=${PGHOST_TCP:-127.0.0.1}
SOCKET=${PGHOST_SOCKET:-/var/run/postgresql}
DB=riskdesk_ceiling
BIN=${RISKDESK_BIN:-target/release/riskdesk}
command -v pgbench >/dev/null || { echo "pgbench is missing: apt-get install -y postgresql-client" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN is missing: cargo build --release -p riskdesk" >&2; exit 1; }

DIR=$(mktemp -d)
trap 'rm -rf "$DIR"; psql -q -h "$HOST" -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB"' EXIT
psql -q -h "$HOST" -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
RISKDESK_LOG=error "$BIN" --config /dev/null --database-url "postgres://postgres@$HOST:5432/$DB" migrate >/dev/null
RISKDESK_LOG=error "$BIN" --config /dev/null --database-url "postgres://postgres@$HOST:5432/$DB" tenant create ceiling >/dev/null
TENANT=$(psql -h "$HOST" -U postgres -d $DB -Atc "SELECT id FROM tenants WHERE slug = 'ceiling'")
# 100 customers, as in the HTTP bench; customer k has the id 00000000-0000-0000-0000-<k>.
psql -q -h "$HOST" -U postgres -d $DB -c "
  INSERT INTO customers (id, tenant_id, name, domain, country, email, locale, cloud_instance,
                         created_at, updated_at)
  SELECT ('00000000-0000-0000-0000-' || lpad(k::text, 12, '0'))::uuid, '$TENANT',
         'Customer ' || k, 'c' || k || '.example', 'DE', 'billing@c' || k || '.example', 'de-DE',
         'global', 0, 0
  FROM generate_series(1, 100) k"

AFTER='{"id": "x","customer_id": "x","number": "x","issue_day": 20758,"due_day": 20788,"currency": "EUR","total_minor": 12050,"lines_json": "[{\"description\": \"Azure plan usage\",\"amount\": \"120.50\"}]","subscription_ids_json": "[]","open_minor": 12050,"settled_at": null,"disputed": false,"dispute_reason": null,"next_check_day": -2147483648,"created_at": 1796688641787982,"updated_at": 1796688641787982}'
H=3f1568e0c6918c0f8d6fbaf4fdd125faa3afc32a1612f4860b6afb146bb07008
INSERT_INVOICE="INSERT INTO invoices (tenant_id, id, customer_id, number, issue_day, due_day, currency, total_minor, lines_json, subscription_ids_json, open_minor, settled_at, disputed, dispute_reason, next_check_day, created_at, updated_at)"
# The id of the customer whose number is in pgbench variable $1.
customer() { echo "('00000000-0000-0000-0000-' || lpad(:$1::text, 12, '0'))::uuid"; }
# The invoice's values for the customer in variable $1.
invoice_values() { echo "'$TENANT', gen_random_uuid(), $(customer "$1"), gen_random_uuid()::text, 20758, 20788, 'EUR', 12050, '[{\"description\": \"Azure plan usage\", \"amount\": \"120.50\"}]', '[]', 12050, NULL, 0, NULL, -2147483648, 1796688641787982, 1796688641787982"; }
# (A space after each colon in the JSON: pgbench would read `:"name"` as a variable.)
# One invoice: the advisory lock, then the one statement riskdesk sends (its audit head is moved
# by seq + 1 here instead of riskdesk's compare-and-set on the head this process knows).
invoice() {  # $1: the pgbench variable holding the customer's number
  cat <<SQL
SELECT pg_advisory_xact_lock(hashtextextended('billing|$TENANT|' || :$1::text, 0));
WITH written AS ($INSERT_INVOICE SELECT $(invoice_values "$1") WHERE EXISTS (SELECT 1 FROM customers WHERE tenant_id = '$TENANT' AND id = $(customer "$1"))), h AS (UPDATE audit_heads SET seq = seq + 1, hash = '$H' WHERE tenant_id = '$TENANT' AND lane = (:client_id)::int % 32 RETURNING seq), entry AS (INSERT INTO audit_log (tenant_id, lane, seq, at, actor_kind, actor_name, actor_role, action, entity_type, entity_id, before_json, after_json, reason, note, prev_hash, hash) SELECT '$TENANT', (:client_id)::int % 32, h.seq, 1796688641787982, 'token', 'initial-admin', 'admin', 'invoice.create', 'invoice', gen_random_uuid()::text, NULL, '$AFTER', NULL, NULL, '$H', '$H' FROM h RETURNING seq) SELECT r.*, (SELECT seq FROM entry) AS appended_seq_ FROM (SELECT c.*, w.currency AS wallet_currency, w.minor AS wallet_minor FROM (SELECT id, tenant_id, external_id, name, domain, country, email, phone, locale, cloud_instance, created_at, updated_at, credit_limit_minor, credit_currency, prepayment_required, admin_access, risk_status, signup_id, verified_at, first_payment_at, admin_access_granted_at, purchases_blocked FROM customers WHERE tenant_id = '$TENANT' AND id = $(customer "$1")) c LEFT JOIN (SELECT currency, CAST(SUM(amount_minor) AS BIGINT) AS minor FROM wallet_entries WHERE tenant_id = '$TENANT' AND customer_id = $(customer "$1") GROUP BY currency) w ON 1 = 1 ORDER BY w.currency) r;
SQL
}
{ echo '\set c random(1, 100)'; echo 'BEGIN;'; invoice c; echo 'COMMIT;'; } > "$DIR/invoice.sql"
{ echo '\set c random(1, 100)'; echo 'BEGIN;'; echo 'SET LOCAL synchronous_commit = off;'; invoice c; echo 'COMMIT;'; } > "$DIR/nosync.sql"
# Four customers in ascending order (c, c + 25, …): a group taking its customers' locks in any
# order deadlocks with another group (measured: most groups failed).
{
  echo '\set c1 random(1, 25)'
  echo '\set c2 :c1 + 25'
  echo '\set c3 :c1 + 50'
  echo '\set c4 :c1 + 75'
  echo 'BEGIN;'
  for k in 1 2 3 4; do echo 'SAVEPOINT u;'; invoice c$k; echo 'RELEASE u;'; done
  echo 'COMMIT;'
} > "$DIR/group4.sql"
cat > "$DIR/bare.sql" <<SQL
\set c random(1, 100)
$INSERT_INVOICE VALUES ($(invoice_values c));
SQL

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(psql -h "$HOST" -U postgres -d $DB -Atc 'SELECT version()' | cut -d, -f1); $(date -u +%FT%TZ)"
echo "pgbench: $CLIENTS clients, 2 threads, $SECS s per run, prepared statements"
printf '%-8s %-28s %12s %10s\n' variant connection invoices/s 'avg ms'
for v in invoice group4 nosync bare; do
  per=1; [ $v = group4 ] && per=4
  for conn in "tcp $HOST" "socket $SOCKET"; do
    set -- $conn
    out=$(pgbench -n -h "$2" -U postgres -c "$CLIENTS" -j 2 -T "$SECS" -M prepared -f "$DIR/$v.sql" $DB 2>&1) || { echo "$out" >&2; exit 1; }
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
    printf '%-8s %-28s %12.0f %10s\n' $v "$1 ($2)" "$(awk -v t="$tps" -v p="$per" 'BEGIN { print t * p }')" "$lat"
  done
done
