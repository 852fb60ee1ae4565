#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine (Debian's Chromium for the browser
# tests, a virtual environment with the training, test, notebook, ray and video extras) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[train,test,notebook,ray,video]'
# Lint, format and type checks first: they take seconds and fail for reasons the tests would not show.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy colorit
exec .venv/bin/python -m pytest "$@"
