#!/usr/bin/env bash
# The API against its own OpenAPI document: a bounded schemathesis run with every check
# (`--checks all`: no server errors, answers that fit the documented status codes, headers and
# schemas, data the schema allows is accepted, data it forbids is refused, …) against
# `aiprod serve`, the debug binary the test build made. Any failure fails the script.
#
# schemathesis is pinned and installed into a gitignored virtual environment (.venv/) the
# first time. The server gets a fresh data directory, one admin key, no workers (jobs stay
# queued: the run exercises the API, not rendering) and rate limits high enough that the run
# is not throttled into 429s; everything else is the shipped config/v33.json.
#
# Environment: AIPROD_BIN (default $CARGO_TARGET_DIR/debug/aiprod, else target/debug/aiprod),
# ST_MAX_EXAMPLES (default 30), ST_SEED (default 1: the same cases on every run; set another
# to explore), ST_TIME_LIMIT_SEC (default 180: the run is cut off and fails past it).
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
bin="${AIPROD_BIN:-${CARGO_TARGET_DIR:-target}/debug/aiprod}"
venv=".venv/schemathesis-$version"
max_examples="${ST_MAX_EXAMPLES:-30}"
seed="${ST_SEED:-1}"
limit="${ST_TIME_LIMIT_SEC:-180}"

[ -x "$bin" ] || { echo "schemathesis: no aiprod binary at $bin (run cargo test --workspace --no-run first)" >&2; exit 1; }

if ! "$venv/bin/st" --version 2>/dev/null | grep -qF "$version"; then
  echo "schemathesis: installing schemathesis==$version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "schemathesis: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$venv/bin/python" - config/v33.json "$work/config.json" "$work/logs" <<'PY'
import json, sys
src, dst, logs = sys.argv[1:]
c = json.load(open(src))
c["service"]["workers"] = 0
c["service"]["maxQueuedJobs"] = 100000
c["service"]["rateLimit"]["default"] = {"perMinute": 1000000, "burst": 100000}
c["service"]["failedAuthPerMinute"] = 1000000
c["logging"]["dir"] = logs
json.dump(c, open(dst, "w"), indent=2)
PY
export AIPROD_CONFIG="$work/config.json" AIPROD_DATA_DIR="$work/data"
unset AIPROD_BIND AIPROD_STORE_URL
key=$("$bin" keys create schemathesis --role admin 2>/dev/null)
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --bind "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  "$venv/bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$base/docs/openapi.json" \
    2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "schemathesis: the server exited" >&2; cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done

echo "schemathesis $version: $base, --checks all --max-examples $max_examples --seed $seed (limit ${limit}s)"
start=$(date +%s)
status=0
PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
timeout "$limit" "$venv/bin/st" run "$base/docs/openapi.json" \
  -H "Authorization: Bearer $key" \
  --checks all --max-examples "$max_examples" --seed "$seed" --workers 2 \
  --no-color || status=$?
echo "schemathesis: finished in $(( $(date +%s) - start )) s, exit status $status"
if [ "$status" = 124 ]; then
  echo "schemathesis: cut off after ${limit}s (ST_TIME_LIMIT_SEC)" >&2
fi
if [ "$status" != 0 ]; then
  echo "--- server log (last 15 lines) ---" >&2
  tail -n 15 "$work/serve.log" | cut -c1-300 >&2
fi
exit "$status"
