#!/usr/bin/env bash
# Browser tests: Debian's Chromium (never a browser download from a test tool) and the
# Playwright Python package that drives it. Idempotent; the tests skip if Chromium is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; then
    echo "browser-deps: could not install chromium; browser tests will be skipped" >&2
  fi
fi
# `make test` installs the dev extras (playwright among them) into a new venv; an existing venv
# made before playwright was pinned gets it here.
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "import playwright" 2>/dev/null; then
  .venv/bin/pip install --quiet "playwright==1.65.2"
fi
