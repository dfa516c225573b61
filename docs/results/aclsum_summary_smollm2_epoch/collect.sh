#!/usr/bin/env bash
# Copy the finished runs' records and their ROUGE evaluations here and rebuild the table.
# Usage (from the repository root): collect.sh GRID_OUT EVALS [DEST, default this folder]
set -euo pipefail
grid=$1; evals=$2; here=${3:-docs/results/aclsum_summary_smollm2_epoch}
asym=${ASYMLORA:-asymlora}
for summary in "$evals"/*/summary.json; do
  name=$(basename "$(dirname "$summary")")
  mkdir -p "$here/rouge/$name"
  cp "$evals/$name"/{summary.json,predictions.jsonl,table.md} "$here/rouge/$name/"
  run="$grid/runs/aclsum_summary/$name"
  if [ -f "$run/metrics.json" ]; then
    mkdir -p "$here/runs/$name"
    cp "$run/metrics.json" "$here/runs/$name/"
  fi
done
cp "$grid/results.jsonl" "$here/results.jsonl"
$asym summarise table "$here/rouge" --out "$here"
