#!/usr/bin/env bash
# The same seed-0 runs and ROUGE evaluations after the running-text response tokenisation fix
# (causal_lm.response_ids), into OUT/runs and OUT/evals. Usage: rerun_fixed.sh OUT METHOD:RANK ...
set -uo pipefail
out=$1; shift
mkdir -p "$out/runs" "$out/evals"
for spec in "$@"; do
  method=${spec%%:*}; rank=${spec##*:}; name="${method}_r${rank}_s0"; run="$out/runs/$name"
  if [ ! -f "$run/metrics.json" ]; then
    mkdir -p "$run"
    /usr/bin/time -f "max_rss_kib %M\nelapsed_s %e" -o "$run.time.txt" \
      python -m asymlora.cli train --task aclsum_summary --model smollm2 --method "$method" --rank "$rank" --seed 0 \
        --targets q_proj,v_proj --max-steps 20 --batch-size 4 --max-length 320 --eval-limit 6 --eval-steps 20 \
        --no-save-checkpoints --threads 1 --out "$run" > "$run.log" 2>&1
    mv "$run.time.txt" "$run/time.txt"
  fi
  python -m asymlora.cli summarise generate --run "$run" --task aclsum_summary --split test --limit 30 --beams 1 \
    --max-new-tokens 64 --max-source-length 320 --batch-size 8 --threads 1 --out "$out/evals/$name" \
    > "$out/evals/$name.log" 2>&1 &
done
wait
