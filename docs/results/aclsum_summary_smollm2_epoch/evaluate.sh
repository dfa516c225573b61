#!/usr/bin/env bash
# ROUGE evaluation of configs/aclsum_summary_smollm2_epoch.yaml on the WHOLE aclsum_summary test split
# (300 examples): the untuned base model, then every training run of the grid as it finishes, in the
# grid's order; greedy decoding, at most 64 new tokens, stop at the end-of-sequence token, prompts up
# to 320 tokens, batches of 8, 1,000 bootstrap resamples, one thread.
# Several workers may run side by side (one per core): each claims an evaluation with an atomic mkdir.
# Usage (from the repository root): evaluate.sh GRID_OUT EVALS [DEADLINE as HH:MM UTC, default 23:59]
#   GRID_OUT is the --out folder of `asymlora reproduce configs/aclsum_summary_smollm2_epoch.yaml`;
#   $ASYMLORA is the command to run (default: asymlora), e.g. "taskset -c 1 asymlora".
set -uo pipefail
grid=$1; evals=$2; deadline=${3:-23:59}
asym=${ASYMLORA:-asymlora}
common=(--task aclsum_summary --split test --beams 1 --max-new-tokens 64 --max-source-length 320
        --batch-size 8 --threads 1)
mkdir -p "$evals"
evaluate() {  # NAME SOURCE-ARGS...: generate + score unless done or claimed by another worker
  local name=$1; shift
  [ -f "$evals/$name/summary.json" ] && return 0
  mkdir "$evals/$name.claim" 2>/dev/null || return 0
  $asym summarise generate "$@" "${common[@]}" --out "$evals/$name" > "$evals/$name.log" 2>&1
  echo "$name rc=$? $(date -u +%H:%M)"
}
evaluate base --model smollm2
for seed in 0 1 2; do
  for row in lora-r2 lora-r6 b_only-r16 a_only-r16; do
    name="$row-s$seed"; run="$grid/runs/aclsum_summary/$name"
    while [ ! -f "$run/metrics.json" ]; do
      [ -d "$evals/$name.claim" ] && continue 2
      [ "$(date -u +%H:%M)" \> "$deadline" ] && exit 0
      sleep 20
    done
    evaluate "$name" --run "$run"
  done
done
