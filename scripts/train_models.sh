#!/usr/bin/env bash
# Train both bundled models on the same data with the same time budget, side by side on one
# machine, as the committed models were trained (their cards record data, recipe, budget and hardware).
# Usage: scripts/train_models.sh DATA OUT MINUTES [CROP] [BATCH] [VAL_EVERY]
# On a 2-core CPU: OMP_NUM_THREADS=1 scripts/train_models.sh DATA OUT 45 128 16 100
# (one thread each, so that neither model gets more of the machine than the other).
set -euo pipefail
data=$1 out=$2 minutes=$3 crop=${4:-224} batch=${5:-96} val_every=${6:-250}
python=${PYTHON:-python3}
mkdir -p "$out"
for model in default seed-ae; do
  "$python" -m colorit train --data "$data" --out "$out/$model" --model "$model" --minutes "$minutes" \
    --crop "$crop" --batch "$batch" --val-every "$val_every" --warmup-steps 100 --workers 2 >"$out/$model.log" 2>&1 &
done
status=0
for job in $(jobs -p); do wait "$job" || status=$?; done
exit "$status"
