#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine (Debian's Chromium for the browser
# tests, a virtual environment with the training and test extras) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[train,test]'
exec .venv/bin/python -m pytest "$@"
