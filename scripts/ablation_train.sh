#!/usr/bin/env bash
# Train the rows of the recipe ablation (README "Training recipe"), two at a time with one thread each
# so that every row gets the same share of a 2-core CPU, each for the same training time.
# Usage: scripts/ablation_train.sh DATA OUT MINUTES [ROW...]   (rows: see ROWS below; default all)
# Then: python benchmarks/ablation.py OUT   (exports each row's selected checkpoint and evaluates it).
set -euo pipefail
data=$1 out=$2 minutes=$3
shift 3
python=${PYTHON:-python3}
declare -A ROWS=(
  [recipe]=""
  [finetune]="--encoder finetune --bn-stats updated"
  [finetune-bn-frozen]="--encoder finetune --bn-stats frozen"
  [partial]="--encoder partial"
  [regression]="--regression-weight 1.0"
  [no-rebalance]="--rebalance 1.0"
  [no-cutouts]="--cutout-probability 0 --min-scale 0.8"
  [no-hint-weight]="--hint-weight 0"
  [seed-ae]="--model seed-ae"
)
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(recipe finetune partial regression no-rebalance no-cutouts)
mkdir -p "$out"
run_row() {
  local row=$1
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 "$python" -m colorit train --data "$data" --out "$out/$row" --minutes "$minutes" \
    --crop 128 --batch 16 --val-every 100 --warmup-steps 50 --workers 1 ${ROWS[$row]} >"$out/$row.log" 2>&1
}
for ((i = 0; i < ${#rows[@]}; i += 2)); do
  run_row "${rows[i]}" &
  [ $((i + 1)) -lt ${#rows[@]} ] && run_row "${rows[i + 1]}" &
  wait
done
