#!/usr/bin/env bash
# Train both bundled models on the same data with the same time budget, side by side on one
# machine, as the committed models were trained (their cards record data, budget and hardware).
# Usage: scripts/train_models.sh DATA OUT MINUTES [CROP] [BATCH]
# On a CPU-only machine run the two `colorit train` commands below one after the other instead.
set -euo pipefail
data=$1 out=$2 minutes=$3 crop=${4:-224} batch=${5:-96}
python=${PYTHON:-python3}
mkdir -p "$out"
for model in default seed-ae; do
  "$python" -m colorit train --data "$data" --out "$out/$model" --model "$model" --minutes "$minutes" \
    --crop "$crop" --batch "$batch" --val-every 250 --warmup-steps 200 --workers 8 >"$out/$model.log" 2>&1 &
done
status=0
for job in $(jobs -p); do wait "$job" || status=$?; done
exit "$status"
