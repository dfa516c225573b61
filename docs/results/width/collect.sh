#!/usr/bin/env bash
# Gather the width comparison's runs (MiniLM and MPNet on the tweets, a quarter epoch) and rebuild what is
# computed from them.
# Usage (from the repository root):
#   docs/results/width/collect.sh [RUN_OUT ...]
# RUN_OUT: a folder named <model>_lr<rate> (model minilm or mpnet) holding the results.jsonl of
# `asymlora reproduce configs/width_tweets_<model>_lr<rate>[_seeds].yaml --out RUN_OUT`, or sub-folders that
# each hold one (one process per run, as on the device); every results.jsonl found under it is merged into
# <model>/runs_lr<rate>.jsonl (whole or not at all), with its curves (<model>/curves_lr<rate>/).
# Then, from every committed rate file of each model: <model>/choice/ (asymlora choose-lr, the rate chosen on
# seed 0's validation), results.jsonl (both models' runs at their chosen rates: the choices' results.jsonl
# merged, then removed, so that `asymlora claims`, which reads every results.jsonl, counts each run once), gaps/ (asymlora report --against b_only: LoRA − B-only and A-only − B-only per model with
# pooled std, and how they move from MiniLM to MPNet) and the pages computed from them (asymlora evidence).
set -euo pipefail
here=docs/results/width
asym=${ASYMLORA:-asymlora}
merge() {  # merge DEST SRC...: concatenate, then rename into place
  local dest=$1 tmp
  shift
  tmp=$(mktemp "$dest.XXXX")
  cat "$@" > "$tmp"
  mv "$tmp" "$dest"
}
for grid in "$@"; do
  name=$(basename "$grid")
  model=${name%%_lr*}
  case "$model" in
    minilm|mpnet) ;;
    *) echo "collect.sh: $grid is not named minilm_lr<rate> or mpnet_lr<rate>" >&2; exit 2 ;;
  esac
  mapfile -t found < <(find "$grid" -name results.jsonl -not -path "*/runs/*" | sort)
  if [ "${#found[@]}" = 0 ]; then echo "collect.sh: no results.jsonl under $grid" >&2; exit 2; fi
  mkdir -p "$here/$model"
  dest=$here/$model/runs_${name#"$model"_}.jsonl
  merge "$dest" "${found[@]}"
  $asym curves "$dest" --out "$here/$model/curves_${name#"$model"_}" | tail -1
done
chosen=()
for model in minilm mpnet; do
  ls "$here/$model"/runs_lr*.jsonl > /dev/null 2>&1 || continue
  $asym choose-lr "$here/$model"/runs_lr*.jsonl --seed 0 --out "$here/$model/choice" | tail -1
  chosen+=("$here/$model/choice/results.jsonl")
done
merge "$here/results.jsonl" "${chosen[@]}"
rm "${chosen[@]}"
$asym report "$here/results.jsonl" --against b_only --out "$here/gaps" | tail -1
$asym evidence --out docs/evidence.md | tail -1
