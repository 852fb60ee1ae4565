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
# The tables and the two hint curves run in two streams, each subshell held to one CPU where there are two
# (ColorIt then gives ONNX Runtime one thread): on a 2-core machine that halves the wall time.
pin_to_cpu() {
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then taskset -cp "$1" "$BASHPID" >/dev/null; fi
}
hints=0,2,5,10,50
(
  pin_to_cpu 0
  evaluate --data "$corpus/val/package" --update-cards --json "$results/eval_val.json"
  evaluate --data "$corpus/photo-val/photo-library" --update-cards --json "$results/eval_photo_val.json"
  evaluate --data "$corpus/photo-val/package" --update-cards --json "$results/eval_package_photo_val.json"
  "$python" -m colorit evaluate --data "$corpus/photo-val/photo-library" --model default --quiet --hints "$hints" \
    --no-hint-propagation --json "$results/hints_photo_val_network_only.json"
) &
first=$!
(
  pin_to_cpu 1
  "$python" -m colorit evaluate --data "$corpus/photo-val/photo-library" --model default --quiet --hints "$hints" \
    --json "$results/hints_photo_val.json"
)
wait "$first"
# Nothing derived from the photo library is committed: its results keep the tables and curves, not the
# per-photo rows (which name every validation photo).
for report in eval_photo_val hints_photo_val hints_photo_val_network_only; do
  "$python" -c 'import json, sys; path = sys.argv[1]; report = json.load(open(path)); report.pop("per_image")
open(path, "w").write(json.dumps(report, indent=2) + "\n")' "$results/$report.json"
done
"$python" benchmarks/plot_hint_curve.py "$results/hints_photo_val.json" \
  --network-only "$results/hints_photo_val_network_only.json"
