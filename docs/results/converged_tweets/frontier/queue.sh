#!/usr/bin/env bash
# One core's queue of grid runs, as the frontier, probe and width runs were made (one process per core).
# Usage (from the repository root; CODE is a clean worktree of the commit the runs use):
#   RUNS=/work/gridruns CODE=/work/grid docs/results/converged_tweets/frontier/queue.sh CORE &
# It reads $RUNS/core<CORE>.q, one line per step, "CONFIG OUT [SHARD]" (configs/CONFIG.yaml of the checkout
# it is started from, so that configs added after CODE's commit can be queued; into $RUNS/OUT,
# `--shard SHARD` when given), in order; lines appended while it runs are picked up, a line "stop" ends it.
# Each step is `asymlora reproduce` pinned to CORE with one torch thread (`reproduce` skips finished runs and
# resumes from checkpoints, so a killed queue is restarted with the same file). Log: $RUNS/q<CORE>.log, with
# the UTC start and end of every step.
set -u
core=${1:?usage: queue.sh CORE}
runs=${RUNS:?set RUNS, the folder of the run outputs and queues}
code=${CODE:?set CODE, a clean worktree of the commit the runs use}
asym=${ASYMLORA:-asymlora}
queue=$runs/core$core.q
log=$runs/q$core.log
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$code/src
step=0
while true; do
  line=$(sed -n "$((step + 1))p" "$queue" 2>/dev/null)
  if [ -z "$line" ]; then sleep 30; continue; fi
  step=$((step + 1))
  if [ "$line" = stop ]; then echo "$(date -u +%FT%TZ) stop" >> "$log"; exit 0; fi
  read -r config out shard <<< "$line"
  echo "$(date -u +%FT%TZ) start $line" >> "$log"
  taskset -c "$core" "$asym" reproduce "configs/$config.yaml" --out "$runs/$out" ${shard:+--shard "$shard"} \
    >> "$log" 2>&1
  echo "$(date -u +%FT%TZ) end rc=$? $line" >> "$log"
done
