#!/usr/bin/env bash
# Gather the converged tweets grid into this folder and rebuild every table from the copied files.
# Usage (from the repository root):
#   collect.sh OOD_OUT GRID_OUT [GRID_OUT ...]
# GRID_OUT: an `asymlora reproduce ... --out` folder (results.jsonl + runs/tweets/<run>/metrics.json);
# OOD_OUT: an `asymlora eval ood ... --out` folder whose ood.jsonl scored those runs.
# Writes results.jsonl (every grid's lines), histories/<run>.json (each run's validation curve),
# curves/, report/ (asymlora report), ood/ (OOD_OUT's ood.jsonl, its tables rewritten by asymlora report: nothing rescored).
set -euo pipefail
here=docs/results/converged_tweets
asym=${ASYMLORA:-asymlora}
ood_out=$1; shift
tmp=$(mktemp "$here/results.jsonl.XXXX")
for grid in "$@"; do cat "$grid/results.jsonl" >> "$tmp"; done
mv "$tmp" "$here/results.jsonl"
mkdir -p "$here/histories"
for grid in "$@"; do
  for metrics in "$grid"/runs/tweets/*/metrics.json; do
    run=$(basename "$(dirname "$metrics")")
    python3 - "$metrics" "tweets/$run" "$here/histories/$run.json" <<'EOF'
import json, sys
metrics, run_id, dest = sys.argv[1:]
m = json.load(open(metrics))
json.dump({"run_id": run_id, "history": m["history"], "best_eval": m["best_eval"], "metrics": m["metrics"],
           "git_commit": m["git_commit"]}, open(dest, "w"), indent=1)
EOF
  done
done
$asym curves "$here/histories" --out "$here/curves"
$asym report "$here/results.jsonl" --out "$here/report"
mkdir -p "$here/ood"
cp "$ood_out/ood.jsonl" "$here/ood/ood.jsonl"
$asym report "$here/ood/ood.jsonl" | tail -1
