"""Determinism on CPU: the same config and seed give bit-identical adapter files and metrics; another
seed gives another frozen factor (docs/determinism.md says what breaks bit-exactness on GPUs)."""

from __future__ import annotations

import json

from helpers import run_cli

ARGS = ["train", "--task", "tweets", "--model", "tiny-bert", "--method", "b_only", "--rank", "2", "--dropout", "0.1",
        "--max-steps", "4", "--eval-steps", "2", "--train-limit", "48", "--eval-limit", "32", "--max-length", "32",
        "--batch-size", "8"]
#: What a run computes (metrics.json keys); timings, versions and paths are left out.
COMPUTED = ("metrics", "best_eval", "final_eval", "test", "history", "train_loss", "trainable_params", "adapter_bytes")


def _train(tmp_path, capsys, name: str, seed: int) -> tuple[dict, bytes, dict]:
    out = tmp_path / name
    code, _, err = run_cli([*ARGS, "--seed", str(seed), "--out", str(out)], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    return {k: metrics[k] for k in COMPUTED}, (out / "adapter" / "adapter.safetensors").read_bytes(), config


def test_same_seed_is_bit_identical_and_another_seed_draws_another_frozen_factor(tmp_path, capsys):
    first_metrics, first_tensors, first_config = _train(tmp_path, capsys, "first", 0)
    again_metrics, again_tensors, again_config = _train(tmp_path, capsys, "again", 0)
    assert again_tensors == first_tensors                      # the adapter file, byte for byte
    assert again_config == first_config                        # recipes, hashes, fingerprint
    assert again_metrics == first_metrics                      # every metric and loss, exactly
    assert first_metrics["train_loss"] > 0 and len(first_metrics["history"]) == 2

    _, other_tensors, other_config = _train(tmp_path, capsys, "other", 1)
    frozen = lambda config: {n: m["frozen"]["A"]["sha256"] for n, m in config["modules"].items()}  # noqa: E731
    assert len(frozen(first_config)) == 4
    assert all(frozen(other_config)[n] != sha for n, sha in frozen(first_config).items())
    assert other_tensors != first_tensors


def test_the_tensor_file_bytes_do_not_depend_on_the_metadata_order(tmp_path):
    """safetensors serialises ``__metadata__`` from a hash map (order varies between calls); the
    adapter writer sorts it, so the same tensors always give the same bytes, and they still load."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load

    from asymlora.adapters.adapter_file import safetensors_bytes

    tensors = {"m.B": torch.arange(6.0).reshape(3, 2), "head.weight": torch.ones(5, dtype=torch.float16)}
    metadata = {"format": "pt", "asymlora_format": "2", "z": "last", "a": "first"}
    outputs = {safetensors_bytes(tensors, metadata=metadata) for _ in range(20)}
    assert len(outputs) == 1
    data = outputs.pop()
    assert all(torch.equal(load(data)[k], v) for k, v in tensors.items())
    path = tmp_path / "t.safetensors"
    path.write_bytes(data)
    with safe_open(str(path), "pt") as opened:
        assert opened.metadata() == metadata


def test_the_evaluation_schedule_does_not_change_the_training_trajectory(tmp_path, capsys):
    """Evaluating draws nothing from the training's random streams: a run evaluated every 2 steps and
    the same run evaluated only at its last step train alike (hidden dropout, adapter dropout, data
    order), so their last evaluations and training losses are equal to the bit."""
    often, _, _ = _train(tmp_path, capsys, "often", 0)  # ARGS: --eval-steps 2 of --max-steps 4
    out = tmp_path / "once"
    args = [*ARGS, "--seed", "0", "--out", str(out)]
    args[args.index("--eval-steps") + 1] = "4"
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    once = json.loads((out / "metrics.json").read_text())
    assert [h["step"] for h in often["history"]] == [2, 4] and [h["step"] for h in once["history"]] == [4]
    assert once["history"][-1]["metrics"] == often["history"][-1]["metrics"]
    assert once["train_loss"] == often["train_loss"]
