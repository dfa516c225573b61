#!/usr/bin/env bash
# Gather the budget frontier's runs and rebuild everything computed from them.
# Usage (from the repository root):
#   docs/results/converged_tweets/frontier/collect.sh [RUN_OUT ...]
# RUN_OUT: an `asymlora reproduce configs/frontier_tweets_lr<rate>[_seeds].yaml --out ...` folder named
# lr<rate> (seed 0 and, later, seeds 1-2 go to the same folder); its results.jsonl is copied here as
# runs_lr<rate>.jsonl (not results.jsonl: `asymlora claims` reads only the chosen runs) with its curves.
# A folder named probe_lr<rate> (the linear probe's or another protocol-2 arm's extra rate,
# configs/converged_tweets_lr<rate>*.yaml) goes to ../lr_sweep/runs_lr<rate>.jsonl instead.
# Then, from every committed rate file: ../lr_sweep/choice_wide/ (asymlora choose-lr: each arm's rate)
# and the pages computed from it (asymlora evidence: docs/evidence.md, the claims table, docs/choosing.md, the README's paragraph).
# choice_wide/results.jsonl (the runs at each arm's chosen rate: protocol 2 as one results file, read by
# `asymlora claims`, `asymlora demo`) is kept, and the frontier report of those runs is written (report/).
set -euo pipefail
here=docs/results/converged_tweets/frontier
sweep=docs/results/converged_tweets/lr_sweep
asym=${ASYMLORA:-asymlora}
copy() {  # copy SRC DEST: whole or not at all
  local tmp
  tmp=$(mktemp "$2.XXXX")
  cat "$1" > "$tmp"
  mv "$tmp" "$2"
}
for grid in "$@"; do
  name=$(basename "$grid")
  case "$name" in
    probe_lr*) dest=$sweep/runs_${name#probe_}.jsonl; curves=$sweep/curves_${name#probe_} ;;
    lr*) dest=$here/runs_$name.jsonl; curves=$here/curves_$name ;;
    *) echo "collect.sh: $grid is not named lr<rate> or probe_lr<rate>" >&2; exit 2 ;;
  esac
  copy "$grid/results.jsonl" "$dest"
  $asym curves "$dest" --out "$curves" | tail -1
done
$asym choose-lr docs/results/converged_tweets/results.jsonl "$sweep"/runs_lr*.jsonl "$here"/runs_lr*.jsonl \
  --out "$sweep/choice_wide" | tail -1
$asym report "$sweep/choice_wide/results.jsonl" --frontier "$here/frontier_memory.json" --out "$here/report" \
  | tail -1
$asym evidence --out docs/evidence.md | tail -1
