#!/usr/bin/env bash
# Jobs per minute with N `aiprod worker` processes on one PostgreSQL: a scratch database, an
# API node with no workers, N workers, JOBS short economy jobs (5 s, quick_social), timed from
# the first submission to the last delivery. Usage:
#   AIPROD_BIN=target/release/aiprod scripts/bench_workers.sh WORKERS [JOBS]
# PostgreSQL at AIPROD_TEST_PG_URL (default: the local server scripts/ensure_postgres.sh provides).
set -euo pipefail
workers=${1:?usage: bench_workers.sh WORKERS [JOBS]}
jobs=${2:-12}
bin=${AIPROD_BIN:-target/release/aiprod}
admin=${AIPROD_TEST_PG_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
db="aiprod_bench_$$"
home=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$home"
}
trap cleanup EXIT
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
export AIPROD_STORE_URL="${admin%/*}/$db" AIPROD_DATA_DIR="$home/data"
key=$("$bin" keys create bench --role admin 2>/dev/null)
"$bin" serve --bind 127.0.0.1:0 --workers 0 > "$home/serve.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 100); do grep -q "listening on" "$home/serve.out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' "$home/serve.out")
for i in $(seq 1 "$workers"); do
  "$bin" worker --concurrency 1 > /dev/null 2>&1 &
  pids+=($!)
done
start=$(date +%s.%N)
ids=()
for i in $(seq 1 "$jobs"); do
  body="{\"content\": \"A short teaser number $i for a neighbourhood bakery: fresh bread at dawn, warm light.\", \"preset\": \"quick_social\", \"duration_sec\": 5, \"tier\": \"economy\", \"aspect_ratio\": \"16:9\"}"
  ids+=("$(curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' -d "$body" "$base/v1/pipeline/run" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')")
done
while :; do
  done_count=0
  for id in "${ids[@]}"; do
    state=$(curl -sf -H "Authorization: Bearer $key" "$base/v1/jobs/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    case "$state" in
      delivered) done_count=$((done_count + 1)) ;;
      awaiting_review) curl -sf -o /dev/null -H "Authorization: Bearer $key" -H 'content-type: application/json' -d '{}' "$base/v1/jobs/$id/approve" || true ;;
      failed|cancelled) echo "job $id ended $state" >&2; exit 1 ;;
    esac
  done
  [ "$done_count" -eq "$jobs" ] && break
  sleep 0.5
done
end=$(date +%s.%N)
python3 -c "s=$end-$start; print(f'{$workers} worker(s): {$jobs} jobs in {s:.1f} s = {$jobs*60/s:.1f} jobs/min')"
