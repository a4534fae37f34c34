#!/usr/bin/env bash
# Schema fuzzing: schemathesis (pinned in tests/schemathesis/requirements.txt, installed into a
# virtual environment under target/) runs every check, on positive and negative data, against a
# real riskdesk server over the OpenAPI document it serves. Fails on any failure: a server
# error, an answer that does not match the document, a valid request refused (outside the
# operations tests/schemathesis/schemathesis.toml lists, with why), an invalid one accepted.
#
#   scripts/schemathesis.sh sqlite|postgres [MAX_EXAMPLES]
#
# MAX_EXAMPLES per operation and phase (default 40) bounds the run: about 2 minutes per
# backend on a 2-core machine. PostgreSQL: RISKDESK_TEST_PG_URL (default
# postgres://postgres@127.0.0.1:5432/test); the run uses a schema of its own and drops it.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:?usage: scripts/schemathesis.sh sqlite|postgres [MAX_EXAMPLES]}"
examples="${2:-40}"
root="$PWD"
venv="$root/target/schemathesis-venv"
req="$root/tests/schemathesis/requirements.txt"

if [ ! -x "$venv/bin/st" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
  echo "== installing schemathesis into $venv"
  python3 -m venv "$venv" || {
    echo "python3 -m venv failed: install python3-venv (apt-get install -y python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi

cargo build --quiet -p riskdesk
bin="$root/target/debug/riskdesk"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
schema=""
case "$backend" in
  sqlite) db="$work/riskdesk.db" ;;
  postgres)
    pg="${RISKDESK_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
    schema="t_st_$(date +%s)_$$"
    psql "$pg" -qAt -c "CREATE SCHEMA $schema" >/dev/null
    sep='?'; case "$pg" in *\?*) sep='&' ;; esac
    db="${pg}${sep}options=-c%20search_path%3D${schema}"
    ;;
  *) echo "backend must be sqlite or postgres" >&2; exit 2 ;;
esac

server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "$schema" ] && psql "$pg" -qAt -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

"$bin" --database-url "$db" tenant create fuzz >/dev/null 2>&1
token="$("$bin" --database-url "$db" token create --tenant fuzz --role admin 2>/dev/null)"
"$bin" --database-url "$db" --bind "127.0.0.1:$port" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== schemathesis on $backend (max $examples examples per operation and phase)"
set +e
RISKDESK_TOKEN="$token" SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/tests/schemathesis" \
  "$venv/bin/st" --config-file "$root/tests/schemathesis/schemathesis.toml" \
  run "http://127.0.0.1:$port/openapi.json" \
  --checks all --max-examples "$examples" --workers 2 --seed 1 >"$work/st.out" 2>&1
rc=$?
set -e
sed -n '/SUMMARY/,$p' "$work/st.out"
if [ $rc -ne 0 ]; then
  cat "$work/st.out"
  echo "== server log (last 50 lines)"; tail -50 "$work/server.log"
fi
server_errors="$(grep -c '^\s*- ST100' "$work/st.out" || true)"
echo "schemathesis $backend: $(grep -oE '[0-9]+ generated, [^,]*' "$work/st.out" | head -1); server errors: $server_errors; exit $rc"
exit $rc
