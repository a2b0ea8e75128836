#!/usr/bin/env bash
# Set up a fresh clone: a virtual environment in .venv with lutarterial and its test tools.
# With --system (CI, or a root user who wants browser/PostgreSQL tests), also install
# Debian's chromium and a PostgreSQL server when they are missing, and start PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"

if [ "${1:-}" = "--system" ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  dpkg -s libpango-1.0-0 >/dev/null 2>&1 || need+=(libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)
  if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need+=(postgresql)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} from Debian packages"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # Start the machine's PostgreSQL cluster if one exists and is down; the test fixture
  # starts a private server itself when none answers.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
      if [ "$status" != "online" ]; then
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || true
      fi
    done
  fi
fi
echo "bootstrap complete: .venv ready"
