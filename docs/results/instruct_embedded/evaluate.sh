#!/bin/bash
# MMLU for the base model and each instruction-tuned adapter of configs/instruct_embedded.yaml, on the packaged
# test set: all 57 subjects, --limit 4 (packaged questions 5-8 of each subject: 228 questions; 0-4 are the shot
# pool), formats cloze and harness, 0 and 5 shots, 1 thread. Then the side-by-side table.
#   bash docs/results/instruct_embedded/evaluate.sh RUNS_DIR EVALS_DIR
# RUNS_DIR: the --out of `asymlora reproduce configs/instruct_embedded.yaml`; EVALS_DIR: where the evaluations go.
set -euo pipefail
RUNS=$1/runs/sharegpt
OUT=$2
evaluate() {   # label, adapter folder or ""
  for fmt in cloze harness; do for k in 0 5; do
    dest=$OUT/$1/${fmt}_${k}shot
    [ -f "$dest/summary.json" ] && continue
    extra=(); [ -n "$2" ] && extra=(--adapter "$2")
    asymlora eval mmlu --model smollm2 "${extra[@]}" --format $fmt --shots $k --limit 4 --threads 1 --out "$dest"
  done; done
}
evaluate base ""
for run in lora-r32-s0 b_only-r32-s0 a_only-r32-s0 b_only-r64-s0; do
  evaluate "$run" "$RUNS/$run/adapter"
done
asymlora eval mmlu-table "$OUT" --reference base --order base,lora-r32-s0,b_only-r32-s0,a_only-r32-s0,b_only-r64-s0
