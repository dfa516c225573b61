#!/usr/bin/env bash
# Gather the per-method learning-rate sweep of the converged tweets grid and rebuild its tables.
# Usage (from the repository root):
#   docs/results/converged_tweets/lr_sweep/collect.sh SWEEP_OUT [SWEEP_OUT ...]
# SWEEP_OUT: an `asymlora reproduce configs/converged_tweets_lr<rate>.yaml --out ...` folder named
# lr<rate> (e.g. runs/lr3e-4); its results.jsonl is copied here as runs_lr<rate>.jsonl (not named
# results.jsonl: one seed per method, so `asymlora claims` reads only the chosen runs below).
# The lr 1e-3 runs are the paper-protocol grid's, ../results.jsonl (collect that one first).
# Writes runs_lr<rate>.jsonl, curves_lr<rate>/ (asymlora curves) and choice/ (asymlora choose-lr over the
# first sweep's files, 1e-3, 3e-3 and 3e-4: lr_choice.md/.json; its results.jsonl is removed: the runs at each arm's chosen rate over every rate,
# the frontier's included, are ../lr_sweep/choice_wide/results.jsonl, written by ../frontier/collect.sh).
# With OOD_OUT set (an `asymlora eval ood ... --out` folder that scored chosen runs at rates other than 1e-3):
# ood/ood.jsonl = those lines + the 1e-3 lines of ../ood/ood.jsonl for the methods that chose 1e-3, and
# its tables (asymlora report ood/ood.jsonl: nothing rescored).
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
# choice/ is the record of the first sweep, over its three rates only (1e-3, 3e-4, 3e-3); the wider sweeps'
# choice over every rate is choice_wide/ (../frontier/collect.sh)
$asym choose-lr docs/results/converged_tweets/results.jsonl "$here/runs_lr3e-3.jsonl" "$here/runs_lr3e-4.jsonl" \
  --out "$here/choice" | tail -1
rm -f "$here/choice/results.jsonl"  # protocol 2's runs file is choice_wide/ (../frontier/collect.sh): every rate
if [ -n "${OOD_OUT:-}" ]; then
  mkdir -p "$here/ood"
  python3 - "$here/choice/lr_choice.json" docs/results/converged_tweets/ood/ood.jsonl "$OOD_OUT/ood.jsonl" \
      "$here/ood/ood.jsonl" <<'PY'
import json, os, sys
choice, at_one_rate, at_chosen, dest = sys.argv[1:]
chose_1e3 = {(a["method"], a["rank"]) for a in json.load(open(choice))["arms"] if a["chosen"] == 0.001}
lines = [l for l in open(at_one_rate) if (json.loads(l)["method"], json.loads(l)["rank"]) in chose_1e3]
lines += list(open(at_chosen))
with open(dest + ".tmp", "w") as out:
    out.writelines(lines)
os.replace(dest + ".tmp", dest)
PY
  $asym report "$here/ood/ood.jsonl" | tail -1
fi
