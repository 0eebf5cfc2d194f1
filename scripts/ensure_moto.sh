#!/usr/bin/env bash
# Install an S3-compatible server for the object-storage tests (src/artifacts/s3.rs and
# tests/artifacts.rs): moto's standalone server, from PyPI, pinned, into a gitignored
# virtual environment at .tools/moto. The tests start `moto_server` themselves on a free
# port (AIPROD_TEST_MOTO names another binary). Skips the install when the pinned version is
# already there.
set -euo pipefail
cd "$(dirname "$0")/.."

version=5.1.18
venv=.tools/moto
py=python3

if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -m pip show moto 2>/dev/null | grep -qx "Version: $version"; then
  echo "moto $version is installed ($venv)"
  exit 0
fi
command -v "$py" >/dev/null || { echo "python3 is needed for the S3 test server (apt-get install python3-venv)" >&2; exit 1; }
rm -rf "$venv"
"$py" -m venv "$venv" || { echo "cannot create a virtual environment (apt-get install python3-venv)" >&2; exit 1; }
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$version"
"$venv/bin/moto_server" --help >/dev/null
echo "moto $version installed ($venv)"
