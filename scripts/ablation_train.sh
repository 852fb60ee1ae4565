#!/usr/bin/env bash
# Train the rows of the recipe ablation (README "Training recipe"), PARALLEL at a time (default two, one thread each)
# so that every row gets the same share of a 2-core CPU, each for the same training time.
# Usage: scripts/ablation_train.sh DATA OUT MINUTES [ROW...]   (rows: see ROWS below; default all)
# STEPS=N gives every row N steps instead (MINUTES 0): the same images seen by each row, which a time
# budget does not give on a machine whose load changes while the rows run one after another.
# Then: python benchmarks/ablation.py OUT   (exports each row's selected checkpoint and evaluates it).
# On a GPU all rows share the device at once, at larger crops, e.g.
#   PARALLEL=6 CROP=224 BATCH=64 THREADS=2 WORKERS=2 scripts/ablation_train.sh DATA OUT 5.5 ROW...
set -euo pipefail
data=$1 out=$2 minutes=$3
shift 3
python=${PYTHON:-python3}
parallel=${PARALLEL:-2} crop=${CROP:-128} batch=${BATCH:-16} threads=${THREADS:-1} workers=${WORKERS:-1}
val_every=${VAL_EVERY:-100} steps=${STEPS:-0}
declare -A ROWS=(
  [recipe]=""
  [frozen]="--encoder frozen"
  [finetune]="--encoder finetune --bn-stats updated"
  [finetune-bn-frozen]="--encoder finetune --bn-stats frozen"
  [finetune-bn-frozen-slow]="--encoder finetune --bn-stats frozen --encoder-lr-scale 0.1"
  [recipe-seed1]="--seed 1"
  [partial]="--encoder partial"
  [partial-weak-rebalance]="--encoder partial --rebalance 0.8"
  [partial-crop-192]="--encoder partial --crop 192"
  [regression]="--regression-weight 1.0"
  [no-rebalance]="--rebalance 1.0"
  [no-cutouts]="--cutout-probability 0 --min-scale 0.8"
  [no-hint-weight]="--hint-weight 0"
  [seed-ae]="--model seed-ae"
)
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(recipe frozen finetune-bn-frozen partial-weak-rebalance regression no-cutouts)
mkdir -p "$out"
run_row() {
  local row=$1
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=$threads "$python" -m colorit train --data "$data" --out "$out/$row" --minutes "$minutes" --steps "$steps" \
    --crop "$crop" --batch "$batch" --val-every "$val_every" --warmup-steps 50 --workers "$workers" ${ROWS[$row]} \
    >"$out/$row.log" 2>&1
}
for ((i = 0; i < ${#rows[@]}; i += parallel)); do
  for row in "${rows[@]:i:parallel}"; do run_row "$row" & done
  wait
done
