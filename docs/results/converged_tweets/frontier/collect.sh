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
# and the pages computed from it (asymlora evidence: docs/evidence.md, docs/claims.md, docs/choosing.md).
# With FINAL=1 (every arm has its 3 seeds at its chosen rate) it also keeps choice_wide/results.jsonl,
# the runs at the chosen rates, and writes the frontier report of those runs (report/); before that the
# runs file is removed, so that `asymlora claims` does not read a half-seeded protocol beside ../choice/;
# the frontier of the arms' runs so far is written to preliminary/ first.
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
if [ "${FINAL:-0}" = 1 ]; then
  $asym report "$sweep/choice_wide/results.jsonl" --frontier "$here/frontier_memory.json" --out "$here/report" \
    | tail -1
else
  # the preliminary frontier: every arm at its chosen rate with the seeds it has so far (the page says which
  # arms are short of seeds); then the runs file goes, so that claims read only ../lr_sweep/choice/
  $asym report "$sweep/choice_wide/results.jsonl" --frontier "$here/frontier_memory.json" --out "$here/preliminary" \
    | tail -1
  rm -f "$sweep/choice_wide/results.jsonl"
fi
$asym evidence --out docs/evidence.md | tail -1
