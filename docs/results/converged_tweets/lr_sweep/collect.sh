#!/usr/bin/env bash
# Gather the per-method learning-rate sweep of the converged tweets grid and rebuild its tables.
# Usage (from the repository root):
#   docs/results/converged_tweets/lr_sweep/collect.sh SWEEP_OUT [SWEEP_OUT ...]
# SWEEP_OUT: an `asymlora reproduce configs/converged_tweets_lr<rate>.yaml --out ...` folder named
# lr<rate> (e.g. runs/lr3e-4); its results.jsonl is copied here as runs_lr<rate>.jsonl (not named
# results.jsonl: one seed per method, so `asymlora claims` reads only the chosen runs below).
# The lr 1e-3 runs are the paper-protocol grid's, ../results.jsonl (collect that one first).
# Writes runs_lr<rate>.jsonl, curves_lr<rate>/ (asymlora curves), choice/ (asymlora choose-lr:
# lr_choice.md/.json and results.jsonl, the runs at each method's chosen rate) and choice/report/.
set -euo pipefail
here=docs/results/converged_tweets/lr_sweep
asym=${ASYMLORA:-asymlora}
for grid in "$@"; do
  name=$(basename "$grid")
  tmp=$(mktemp "$here/runs_$name.jsonl.XXXX")
  cat "$grid/results.jsonl" > "$tmp"
  mv "$tmp" "$here/runs_$name.jsonl"
  $asym curves "$here/runs_$name.jsonl" --out "$here/curves_$name" | tail -1
done
$asym choose-lr docs/results/converged_tweets/results.jsonl "$here"/runs_lr*.jsonl --out "$here/choice" | tail -1
$asym report "$here/choice/results.jsonl" --out "$here/choice/report" \
  --title "Converged tweets, per-method learning rate (chosen on validation)" | tail -1
