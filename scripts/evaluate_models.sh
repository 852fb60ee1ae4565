#!/usr/bin/env bash
# Every number the README and the model cards give about colour quality, from the bundled models:
# the validation and photo-validation tables (written into the cards), and the hint curve on
# photo-val with and without the bilateral propagation (benchmarks/results/hint_curve.json, docs/hint_curve.png).
# Usage: scripts/evaluate_models.sh CORPUS   (a folder made by `colorit corpus build`)
set -euo pipefail
corpus=$1
python=${PYTHON:-python3}
results=benchmarks/results
"$python" -m colorit evaluate --data "$corpus/val" --quiet --update-cards --json "$results/eval_val.json"
"$python" -m colorit evaluate --data "$corpus/photo-val" --quiet --update-cards --json "$results/eval_photo_val.json"
hints=0,1,2,5,10,20,50
"$python" -m colorit evaluate --data "$corpus/photo-val" --model default --quiet --hints "$hints" \
  --json "$results/hints_photo_val.json"
"$python" -m colorit evaluate --data "$corpus/photo-val" --model default --quiet --hints "$hints" \
  --no-hint-propagation --json "$results/hints_photo_val_network_only.json"
"$python" benchmarks/plot_hint_curve.py "$results/hints_photo_val.json" \
  --network-only "$results/hints_photo_val_network_only.json"
