#!/usr/bin/env bash
# Make sure a PostgreSQL answers where the tests look for one (AIPROD_TEST_PG_URL, default
# postgres://postgres:postgres@127.0.0.1:5432/postgres): the store suite and the scale-out test
# run against it. If nothing answers on 127.0.0.1:5432, install Debian's PostgreSQL, start its
# cluster and give the `postgres` role the password the default URL uses.
set -euo pipefail

answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if answers; then
  echo "PostgreSQL answers on 127.0.0.1:5432"
  exit 0
fi
if [ -n "${AIPROD_TEST_PG_URL:-}" ]; then
  echo "AIPROD_TEST_PG_URL is set; not installing a local PostgreSQL" >&2
  exit 0
fi

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
if ! command -v pg_ctlcluster >/dev/null; then
  echo "installing postgresql"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends postgresql
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
$sudo_cmd pg_ctlcluster "$version" main start || true
for _ in $(seq 1 30); do answers && break; sleep 1; done
answers || { echo "PostgreSQL did not start" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
else
  sudo -u postgres psql -q -c "ALTER USER postgres PASSWORD 'postgres'"
fi
echo "PostgreSQL started on 127.0.0.1:5432"
