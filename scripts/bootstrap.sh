#!/usr/bin/env bash
# Set up a fresh clone so that the README's second command (the test suite) passes:
#   1. the system packages the tests need beyond Python - Chromium (browser tests), fonts and
#      Pango (WeasyPrint PDFs), poppler-utils (rendered-PDF checks), the PostgreSQL server
#      binaries (PostgreSQL tests), python3-venv;
#      run as root with apt they are installed; otherwise the exact install line is printed and
#      the script stops (exit 1) before changing anything;
#   2. a virtual environment in .venv with lutarterial and its test tools.
# Options:
#   --system       CI: as above, using sudo when not root, and start the machine's PostgreSQL cluster
#   --check        only report which system packages are missing (exit 1 if any), install nothing
#   --python-only  skip the system packages (only the virtual environment; browser/PostgreSQL
#                  tests will then fail or need the binaries installed later)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MODE=${1:-}
case "$MODE" in ""|--system|--check|--python-only) ;; *) echo "usage: $0 [--system|--check|--python-only]" >&2; exit 2;; esac

# --- 1. system packages (Debian/Ubuntu names) -------------------------------------------------
have_pkg() { command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
missing=()
if [ "$MODE" != "--python-only" ]; then
  "$PY" -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
  { [ -f "${CHROMIUM:-/usr/bin/chromium}" ] && [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; } || missing+=(chromium)
  if ! have_pkg libpango-1.0-0 && ! ldconfig -p 2>/dev/null | grep -q "libpango-1.0.so"; then
    missing+=(libpango-1.0-0 libpangoft2-1.0-0)
  fi
  if ! have_pkg fonts-dejavu-core && ! { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list 2>/dev/null | head -1)" ]; }; then
    missing+=(fonts-dejavu-core)
  fi
  command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)  # rendered-PDF test (pdftoppm, pdftotext)
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
fi

if [ "$MODE" = "--check" ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing system packages: ${missing[*]}"
    echo "install them with: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  echo "system packages: all present"
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    if [ "$MODE" = "--system" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
  fi
  if [ "$SUDO" = "none" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "The test suite needs these system packages, which are missing: ${missing[*]}" >&2
    echo "Install them (as root), then run this script again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    echo "(on a system without apt, install the equivalents: Chromium at /usr/bin/chromium, Pango, poppler," >&2
    echo " a TrueType font, the PostgreSQL server binaries; or run '$0 --python-only' to set up" >&2
    echo " only the Python environment)" >&2
    exit 1
  fi
  echo "installing ${missing[*]} from the distribution's packages"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- 2. the Python environment -----------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev,sbml]"  # sbml: the documented `pbpk sbml` export

if [ "$MODE" = "--system" ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
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
echo "bootstrap complete: .venv ready (activate it with: . .venv/bin/activate)"
