"""Sharded training on 2 CPU processes (gloo) equals one process.

1. FSDP2 directly: ``fully_shard`` on every decoder layer and the model (tests/fsdp_fully_shard.py
   under ``torch.distributed.run``), a tiny random Llama with B-only adapters on q_proj, v_proj and
   down_proj, 4 AdamW steps on one global batch of 8 × 16 tokens split by rows. The trained B
   factors are sharded DTensors (half the rows on each rank); the frozen A factors stay plain
   buffers, full-size on each rank, with no gradient and outside the optimiser.
2. ``accelerate launch --config_file configs/accelerate/fsdp2_cpu_2proc.yaml`` of ``asymlora train``
   (the command users know). accelerate 1.15 only switches to FSDP for accelerator devices
   (``AcceleratorState``: the FSDP branch is taken for MULTI_GPU, MULTI_XPU, … but not MULTI_CPU),
   so on the CPU the same command trains as DDP, unsharded: the probe (tests/fsdp_probe.py)
   records accelerate's distributed type (MULTI_CPU), the wrapper (DistributedDataParallel) and
   that each rank holds every trained parameter whole; the test asserts exactly that (and says so
   if accelerate ever starts sharding on the CPU), and that the two processes train the same B as
   one process.

Tolerance as in tests/test_ddp.py: trained tensors to 1e-4 absolute (sums in another order,
amplified a little by Adam).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_ddp import TOLERANCE, free_port, run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")


def _fully_shard(out: Path, processes: int, cwd: Path) -> None:
    script = str(HERE / "fsdp_fully_shard.py")
    if processes == 1:
        run([sys.executable, script, str(out)], cwd)
    else:
        run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port",
             str(free_port()), script, str(out)], cwd)


def test_fully_shard_on_two_cpu_processes_matches_one_and_keeps_frozen_factors_as_buffers(tmp_path):
    _fully_shard(tmp_path / "one", 1, tmp_path)
    _fully_shard(tmp_path / "two", 2, tmp_path)
    one = load_file(tmp_path / "one" / "trained.safetensors")
    two = load_file(tmp_path / "two" / "trained.safetensors")
    assert one.keys() == two.keys() and all(k.endswith(".B") for k in one) and len(one) == 6
    assert max(t.abs().max().item() for t in one.values()) > 10 * TOLERANCE      # B moved from zero
    for key in one:
        assert two[key].shape == one[key].shape
        assert torch.allclose(one[key], two[key], atol=TOLERANCE, rtol=0), key
    single = json.loads((tmp_path / "one" / "rank0.json").read_text())
    ranks = [json.loads((tmp_path / "two" / f"rank{k}.json").read_text()) for k in range(2)]
    # equal token counts per rank: the mean of the two half-batch losses is the full batch's loss
    mean = [(a + b) / 2 for a, b in zip(ranks[0]["losses"], ranks[1]["losses"])]
    assert mean == pytest.approx(single["losses"], abs=1e-5)
    for report in ranks:
        assert report["world_size"] == 2
        assert report["sharded_trainable"] == report["trainable"] == sorted(one)
        for name, shape in report["local_shapes"].items():
            assert shape[0] * 2 == one[name].shape[0] and shape[1] == one[name].shape[1]   # half the rows each
        assert report["frozen_factor_types"] == ["Tensor"] and len(report["frozen_factors"]) == 6
        assert all(shape[0] == 4 for shape in report["frozen_factor_shapes"].values())     # full r x d_in
        assert report["frozen_factor_grads"] == [] and report["frozen_factors_in_optimizer"] == []
        assert report["optimizer_state_count"] == len(report["trainable"])
    # save_adapter on the sharded model (called on every rank: the gather is collective) writes the
    # whole B's, equal to the single process's, and the file loads on an unsharded model
    from asymlora.adapters.io import read_adapter
    for rank in range(2):
        saved = read_adapter(tmp_path / "two" / f"adapter_rank{rank}")
        assert saved.tensors.keys() == one.keys()
        for key in one:
            assert torch.allclose(saved.tensors[key], one[key], atol=TOLERANCE, rtol=0), key
    assert read_adapter(tmp_path / "one" / "adapter_rank0").meta.base_model == saved.meta.base_model


def test_accelerate_launch_with_the_fsdp_config_on_cpu_trains_unsharded_ddp_matching_one_process(tmp_path):
    """On the CPU the FSDP config does NOT shard: accelerate runs the two processes as DDP, each
    holding every trained tensor whole; the trained B's equal one process's."""
    common = ["train", "--task", "tweets", "--model", "tiny-llama", "--method", "b_only", "--rank", "4", "--dropout", "0",
              "--max-steps", "4", "--train-limit", "64", "--eval-limit", "32", "--max-length", "24", "--learning-rate", "1e-2",
              "--eval-steps", "4", "--threads", "1", "--no-save-checkpoints"]
    probe = str(HERE / "fsdp_probe.py")
    config = str(ROOT / "configs" / "accelerate" / "fsdp2_cpu_2proc.yaml")
    accelerate = [sys.executable, "-m", "accelerate.commands.launch"]
    env_probe = {"FSDP_PROBE_DIR": str(tmp_path / "probe")}
    run([sys.executable, "-m", "asymlora.cli", *common, "--batch-size", "8", "--out", str(tmp_path / "one")], tmp_path)
    _run_env([*accelerate, "--config_file", config, "--main_process_port", str(free_port()), probe, *common,
              "--batch-size", "4", "--out", str(tmp_path / "two")], tmp_path, env_probe)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2 and one["train_steps"] == two["train_steps"] == 4
    a = load_file(tmp_path / "one" / "adapter" / "adapter.safetensors")
    b = load_file(tmp_path / "two" / "adapter" / "adapter.safetensors")
    assert a.keys() == b.keys() and not any(k.endswith(".A") for k in a)          # A is a recipe, not stored
    assert max(t.abs().max().item() for k, t in a.items() if k.endswith(".B")) > 10 * TOLERANCE
    for key in a:
        assert torch.allclose(a[key], b[key], atol=TOLERANCE, rtol=0), key
    for rank in range(2):
        report = json.loads((tmp_path / "probe" / f"rank{rank}.json").read_text())
        assert report["world_size"] == 2 and report["frozen_factor_types"] == ["Tensor"]
        assert report["frozen_factor_grads"] == [] and report["frozen_factors_in_optimizer"] == []
        assert all(n.endswith(".B") or n.startswith("score.") for n in report["trainable_params"])
        assert report["sharded_params"] == [] and report["distributed_type"] == "MULTI_CPU", (
            "accelerate now shards on the CPU: update docs/benchmarks.md (sharded training) and this test")
        assert report["wrapper_class"] == "DistributedDataParallel"                    # data parallel...
        assert report["trainable_local_shapes"] == {n: list(t.shape) for n, t in a.items()}  # ...each rank whole


def _run_env(command: list[str], cwd: Path, extra: dict) -> None:
    import os

    environment = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", **extra)
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
