#!/usr/bin/env bash
# Make the console's browser tests runnable (CI): Debian's `chromium` and PyPI's `playwright` (its
# driver only; no `playwright install`, no browser download: the tests launch /usr/bin/chromium).
#
#   bash scripts/ci-browser.sh        (idempotent: a second run installs nothing; needs .venv: make setup)
#
# Then: .venv/bin/pytest -q -m slow tests/console/test_browser.py
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
t0=$(date +%s)
if [ ! -x "$BIN/python" ]; then
  echo "ci-browser: no .venv here; run make setup first" >&2
  exit 1
fi
if [ -x /usr/bin/chromium ]; then
  echo "ci-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "ci-browser: installing Debian's chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
if "$BIN/python" -c "import playwright.sync_api" 2>/dev/null; then
  echo "ci-browser: playwright already installed"
else
  echo "ci-browser: installing playwright (the driver; the browser is Debian's)"
  "$BIN/pip" install -q "playwright>=1.40"
fi
echo "ci-browser: ready in $(( $(date +%s) - t0 )) s"
