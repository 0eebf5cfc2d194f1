#!/usr/bin/env bash
# Requests per second for the job view (`GET /v1/jobs/{id}` of a delivered job, ≈3 KB of
# JSON with its history) and for /health, with wrk (Debian package `wrk`): one server with the
# default SQLite store and a copy of the shipped config whose rate limit is lifted, one short
# economy job run to delivery, then DURATION seconds of wrk per endpoint. Usage:
#   AIPROD_BIN=target/release/aiprod scripts/bench_job_view.sh [THREADS] [CONNECTIONS] [DURATION]
set -euo pipefail
threads=${1:-2}
connections=${2:-32}
duration=${3:-10}
bin=${AIPROD_BIN:-target/release/aiprod}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
home=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$home"
}
trap cleanup EXIT
python3 - "$root/config/v33.json" "$home/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["service"]["rateLimit"] = {"default": {"perMinute": 1e9, "burst": 1e9}, "perKey": {}}
json.dump(c, open(sys.argv[2], "w"))
PY
export AIPROD_HOME="$root" AIPROD_CONFIG="$home/config.json" AIPROD_DATA_DIR="$home/data"
key=$("$bin" keys create bench --role admin 2>/dev/null)
"$bin" serve --bind 127.0.0.1:0 --workers 1 > "$home/serve.out" 2>/dev/null &
pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$home/serve.out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' "$home/serve.out")
body='{"content": "A short teaser for a neighbourhood bakery: fresh bread at dawn, warm light.", "preset": "quick_social", "duration_sec": 5, "tier": "economy", "aspect_ratio": "16:9"}'
id=$(curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' -d "$body" "$base/v1/pipeline/run" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
for _ in $(seq 1 600); do
  state=$(curl -sf -H "Authorization: Bearer $key" "$base/v1/jobs/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  [ "$state" = delivered ] && break
  case "$state" in failed|cancelled) echo "job $id ended $state" >&2; exit 1 ;; esac
  sleep 0.5
done
[ "$state" = delivered ] || { echo "job $id did not deliver" >&2; exit 1; }
bytes=$(curl -sf -H "Authorization: Bearer $key" "$base/v1/jobs/$id" | wc -c)
echo "job view: $bytes bytes of JSON"
echo "== GET /v1/jobs/$id (wrk -t$threads -c$connections -d${duration}s)"
wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -H "Authorization: Bearer $key" "$base/v1/jobs/$id"
echo "== GET /health"
wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -H "Authorization: Bearer $key" "$base/health"
