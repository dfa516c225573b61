#!/usr/bin/env bash
# Copy finished runs' records and their ROUGE evaluations here and rebuild the table.
# Usage (from the repository root): collect.sh RUNS EVALS [DEST, default this folder]
set -euo pipefail
runs=$1; evals=$2; here=${3:-docs/results/aclsum_summary_smollm2}
for summary in "$evals"/*/summary.json; do
  name=$(basename "$(dirname "$summary")")
  mkdir -p "$here/rouge/$name"
  cp "$evals/$name"/{summary.json,predictions.jsonl,table.md} "$here/rouge/$name/"
  if [ -f "$runs/$name/metrics.json" ]; then
    mkdir -p "$here/runs/$name"
    cp "$runs/$name/metrics.json" "$here/runs/$name/"
    [ -f "$runs/$name/time.txt" ] && cp "$runs/$name/time.txt" "$here/runs/$name/"
  fi
done
python -m asymlora.cli summarise table "$here/rouge" --out "$here"
