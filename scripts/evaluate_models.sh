#!/usr/bin/env bash
# Every number the README and the model cards give about colour quality, from the bundled models:
# the val, photo-val (the photo library's, from repositories never trained on) and package photo-val
# tables (written into the cards), and the hint curve on photo-val with and without the bilateral
# propagation (benchmarks/results/hint_curve.json, docs/hint_curve.png).
# Usage: scripts/evaluate_models.sh CORPUS [EXTRA.onnx ...]   (a corpus made by `colorit corpus build
# --photos ...`; EXTRA models, e.g. the default before a retraining, are evaluated beside the bundled ones
# but their cards are left alone)
set -euo pipefail
corpus=$1
shift
extra=("$@")
python=${PYTHON:-python3}
results=benchmarks/results
bundled=(default seed-ae)
evaluate() {
  "$python" -m colorit evaluate --quiet --model "${bundled[@]}" "${extra[@]}" "$@"
}
evaluate --data "$corpus/val/package" --update-cards --json "$results/eval_val.json"
evaluate --data "$corpus/photo-val/photo-library" --update-cards --json "$results/eval_photo_val.json"
evaluate --data "$corpus/photo-val/package" --update-cards --json "$results/eval_package_photo_val.json"
hints=0,1,2,5,10,20,50
"$python" -m colorit evaluate --data "$corpus/photo-val/photo-library" --model default --quiet --hints "$hints" \
  --json "$results/hints_photo_val.json"
"$python" -m colorit evaluate --data "$corpus/photo-val/photo-library" --model default --quiet --hints "$hints" \
  --no-hint-propagation --json "$results/hints_photo_val_network_only.json"
"$python" benchmarks/plot_hint_curve.py "$results/hints_photo_val.json" \
  --network-only "$results/hints_photo_val_network_only.json"
