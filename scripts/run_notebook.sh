#!/usr/bin/env bash
# Re-execute notebooks/tour.ipynb from a clean kernel and save its outputs in place (no timing
# metadata, so that a rerun changes the file only where an output changed).
# Needs the notebook extra: pip install -e '.[notebook]'.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" -m jupyter nbconvert --to notebook --execute --inplace \
  --ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False notebooks/tour.ipynb
