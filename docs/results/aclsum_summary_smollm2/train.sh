#!/usr/bin/env bash
# Embedded summarisation run (docs/summarisation.md): SmolLM2-135M on ACLSum as an instruction task,
# adapters on q_proj,v_proj, 20 optimiser steps of 4 examples (80 of the 300 training examples),
# max length 320 tokens, lr 5e-4, alpha 16, one CPU thread per run.
# Usage: train.sh OUT   -- a worker: takes the next unclaimed run of the seed-major list (mkdir OUT/<run>.claim
# is the lock), so several workers can share the list. Peak memory (max RSS of the training process) comes
# from GNU time (-f %M, KiB) into OUT/<run>/time.txt.
set -uo pipefail
out=$1
for seed in 0 1 2; do
  for spec in lora:2 b_only:16 a_only:16; do
    method=${spec%%:*}; rank=${spec##*:}
    run="$out/${method}_r${rank}_s${seed}"
    mkdir "$run.claim" 2>/dev/null || continue
    mkdir -p "$run"
    /usr/bin/time -f "max_rss_kib %M\nelapsed_s %e" -o "$run.time.txt" \
      python -m asymlora.cli train --task aclsum_summary --model smollm2 --method "$method" --rank "$rank" \
        --seed "$seed" --targets q_proj,v_proj --max-steps 20 --batch-size 4 --max-length 320 \
        --eval-limit 6 --eval-steps 20 --no-save-checkpoints --threads 1 --out "$run" > "$run.log" 2>&1
    mv "$run.time.txt" "$run/time.txt"
  done
done
