"""The runner's parts: the run folder (names, metrics.json, trained tensors per kind), the resume stamp
(resolved values beside the identity; old stamps still match), the typed RunRecord's JSON form, the
Trainer arguments (quiet by default, no deprecated spelling) and the one rank rule."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch

from asymlora.adapters.config import is_rank
from asymlora.experiments.grid import Run
from asymlora.methods import get_method
from asymlora.run_folder import (METRICS_FILE, RunName, load_trained_tensors, parse_folder_name, read_metrics,
                                 save_trained, write_metrics)
from asymlora.training import RunRecord, TrainConfig
from asymlora.training.record import EvalPoint
from asymlora.training.resume import (IDENTITY_FILE, checkpoint_matches, identity_as_json, stamp_differences,
                                      stamp_identity)
from asymlora.training.trainer import eval_schedule

#: The keys of metrics.json, in order, as the runner wrote them before RunRecord existed.
RECORD_KEYS = ["task", "family", "model", "method", "label", "kind", "rank", "seed", "adapter_seed", "main_metric",
               "metrics", "selection", "best_eval", "final_eval", "test", "history", "trainable_params",
               "total_params", "trainable_percent", "samples_per_second", "trainer_samples_per_second",
               "train_steps", "train_examples", "eval_examples", "eval_examples_during_training", "test_examples",
               "train_loss", "preprocessing", "peak_memory_bytes", "train_seconds", "adalora_updates", "world_size",
               "threads", "device", "versions", "git_commit", "config", "resolved", "identity", "adapter_bytes",
               "wall_seconds"]


def _config(tmp_path, **options) -> TrainConfig:
    return TrainConfig(task="tweets", model="minilm", method="b_only", out=str(tmp_path), max_steps=4, **options)


def _complete_checkpoint(folder, step: int = 4) -> None:
    checkpoint = folder / "checkpoints" / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    (checkpoint / "asymlora_mask_state.json").write_text("{}")


def test_the_stamp_states_resolved_values_and_they_never_decide_a_resume(tmp_path):
    config = _config(tmp_path)
    used = {"learning_rate": 3e-4, "batch_size": 16, "max_length": 128, "rank": 8}
    stamp_identity(config, tmp_path, used)
    stamp = json.loads((tmp_path / IDENTITY_FILE).read_text())
    assert stamp["learning_rate"] is None and stamp["resolved"] == used  # asked vs. really used
    _complete_checkpoint(tmp_path)
    assert checkpoint_matches(config, tmp_path)
    assert stamp_differences(dataclasses.replace(config, seed=1), tmp_path) == ["seed"]


def test_a_stamp_written_before_the_resolved_section_still_matches(tmp_path):
    config = _config(tmp_path)
    (tmp_path / IDENTITY_FILE).write_text(json.dumps(identity_as_json(config), indent=2) + "\n")  # the old form
    _complete_checkpoint(tmp_path)
    assert checkpoint_matches(config, tmp_path)
    assert stamp_differences(dataclasses.replace(config, learning_rate=1e-3), tmp_path) == ["learning_rate"]


def _record() -> RunRecord:
    point = EvalPoint(2, 0.5, {"accuracy": 50.0})
    values = {name: index for index, name in enumerate(RECORD_KEYS)}
    values.update(best_eval=point, final_eval=EvalPoint(4, 1.0, {"accuracy": 40.0}), history=[point],
                  metrics={"accuracy": 1.0})
    return RunRecord(**{k: v for k, v in values.items() if k not in ("adapter_bytes", "wall_seconds")})


def test_the_run_record_serialises_to_the_old_keys_in_order():
    data = _record().to_dict()
    assert list(data) == RECORD_KEYS
    assert data["best_eval"] == {"step": 2, "epoch": 0.5, "metrics": {"accuracy": 50.0}}
    assert data["history"] == [data["best_eval"]] and data["adapter_bytes"] is None


def test_metrics_json_round_trips_through_the_run_folder(tmp_path):
    write_metrics(tmp_path, _record().to_dict())
    assert list(read_metrics(tmp_path)) == RECORD_KEYS
    assert read_metrics(tmp_path / "elsewhere", missing_ok=True) == {}
    with pytest.raises(FileNotFoundError, match=METRICS_FILE):
        read_metrics(tmp_path / "elsewhere")
    (tmp_path / METRICS_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_metrics(tmp_path)


@pytest.mark.parametrize("kind", ["full", "linear_probe"])
def test_trainable_tensors_come_back_by_kind(tmp_path, kind):
    torch.manual_seed(0)
    trained = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 2))
    trained[0].weight.requires_grad_(False)  # frozen: never written
    size = save_trained(trained, kind, tmp_path / "adapter")
    assert size == (tmp_path / "adapter" / "trainable.safetensors").stat().st_size > 0
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 2))
    loaded = load_trained_tensors(fresh, kind, tmp_path / "adapter")
    assert torch.equal(loaded[1].weight, trained[1].weight) and torch.equal(loaded[0].bias, trained[0].bias)
    assert not torch.equal(loaded[0].weight, trained[0].weight)
    with pytest.raises(ValueError, match="unknown method kind 'lorax'"):
        load_trained_tensors(fresh, "lorax", tmp_path / "adapter")


def test_one_run_identity_names_every_grid_folder():
    run = Run("tweets", "b_only", 8, 0, 3)
    assert isinstance(run, RunName) and run.run_id == "tweets/b_only-r8-s0"
    assert parse_folder_name("b_only-r8-s0") == {"method": "b_only", "rank": 8, "seed": 0}
    assert parse_folder_name("my-run") is None


def test_a_four_step_run_keeps_its_fingerprinted_schedule():
    config = TrainConfig(task="tweets", model="m", method="b_only", max_steps=4)
    assert eval_schedule(config, 1000, 4) == ("steps", 1)  # ceil(4 / evals_per_run=5): part of the identity
    assert eval_schedule(dataclasses.replace(config, eval_steps=2), 1000, 4) == ("steps", 2)
    assert eval_schedule(dataclasses.replace(config, max_steps=None), 10, 30) == ("epoch", None)


def test_trainer_arguments_are_quiet_and_use_the_current_spelling(tmp_path):
    from asymlora.training.config import resolve
    from asymlora.training.trainer import training_arguments
    from asymlora.tasks import Hyper

    config = TrainConfig(task="tweets", model="m", method="b_only", max_steps=4, gradient_checkpointing=True)
    resolved = resolve(config, Hyper(learning_rate=1e-3, epochs=1), ("query",), ("classifier",))
    options = type("Options", (), {"trainer_class": "Trainer", "arguments": {}})()
    assert TrainConfig(task="t", model="m", method="b_only").progress is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        args = training_arguments(config, resolved, options, tmp_path, 100, 4)
    assert args.disable_tqdm and args.activation_checkpointing and args.gradient_checkpointing
    assert args.activation_checkpointing_kwargs == {"use_reentrant": False}
    loud = training_arguments(dataclasses.replace(config, progress=True, gradient_checkpointing=None),
                              resolved, options, tmp_path, 100, 4)
    assert not loud.disable_tqdm and not loud.activation_checkpointing


def test_one_rank_rule_for_the_core_the_method_and_the_command_line():
    assert is_rank(1) and not is_rank(0) and not is_rank(True) and not is_rank(2.0)
    with pytest.raises(ValueError, match="--rank must be an integer >= 1 for method 'b_only'"):
        get_method("b_only").check_rank(0, "--rank")
    get_method("full").check_rank(0)  # rankless: nothing to check
