#!/usr/bin/env bash
# ROUGE evaluation of the embedded run: the untuned base model, then every finished training run under
# RUNS as it appears (seed-major order), on the first LIMIT test examples of aclsum_summary, greedy
# decoding, at most 64 new tokens, prompts up to 320 tokens, 1,000 bootstrap resamples.
# Usage: evaluate.sh RUNS EVALS LIMIT [DEADLINE as HH:MM UTC, default 10:05]
set -uo pipefail
runs=$1; evals=$2; limit=$3; deadline=${4:-10:05}
common=(--task aclsum_summary --split test --limit "$limit" --beams 1 --max-new-tokens 64 --max-source-length 320
        --batch-size 8 --threads 1)
[ -f "$evals/base_s0/summary.json" ] || \
  python -m asymlora.cli summarise generate --model smollm2 "${common[@]}" --out "$evals/base_s0" > "$evals/base_s0.log" 2>&1
order=(); for s in 0 1 2; do for m in lora_r2 b_only_r16 a_only_r16; do order+=("${m}_s$s"); done; done
for name in "${order[@]}"; do
  while [ ! -f "$runs/$name/metrics.json" ]; do
    [ "$(date -u +%H:%M)" \> "$deadline" ] && exit 0
    sleep 20
  done
  [ -f "$evals/$name/summary.json" ] || \
    python -m asymlora.cli summarise generate --run "$runs/$name" "${common[@]}" --out "$evals/$name" > "$evals/$name.log" 2>&1
done
