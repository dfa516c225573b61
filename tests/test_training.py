"""training/: config resolution, callbacks (AdaLoRA really reallocates every step, best-eval restore)."""

from __future__ import annotations

import json
import types

import pytest
import torch

from asymlora.tasks import Hyper
from asymlora.training import BestEvalCallback, ThroughputCallback, TrainConfig, resolve, train
from asymlora.training import env


def test_resolve_takes_task_defaults_and_overrides():
    hyper = Hyper(learning_rate=3e-4, epochs=20)
    r = resolve(TrainConfig(task="rte", model="m", method="b_only", seed=4), hyper, ("query", "value"), ("classifier",))
    assert (r.learning_rate, r.epochs, r.batch_size, r.max_length, r.alpha) == (3e-4, 20.0, 16, 128, 16.0)
    assert r.targets == ["query", "value"] and r.adapter_seed == 4 and r.head_modules == ["classifier"]
    r = resolve(TrainConfig(task="rte", model="m", method="b_only", learning_rate=1e-3, batch_size=4,
                            adapter_seed=0, targets="all-linear"), hyper, ("query",), "classifier")
    assert (r.learning_rate, r.batch_size, r.adapter_seed, r.targets) == (1e-3, 4, 0, "all-linear")
    with pytest.raises(ValueError, match="learning_rate"):
        resolve(TrainConfig(task="rte", model="m", method="b_only", learning_rate=-1.0), hyper, (), ())
    with pytest.raises(ValueError, match="unknown training option 'max_step'.*max_steps"):
        TrainConfig.from_dict({"task": "rte", "model": "m", "method": "lora", "max_step": 3})


def test_threads_are_split_between_local_processes(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        import os
        cores = len(os.sched_getaffinity(0))
        assert env.set_threads() == max(1, cores // 2)
        assert env.set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_best_eval_callback_restores_the_best_trainable_tensors():
    model = torch.nn.Linear(2, 1)
    model.bias.requires_grad_(False)
    cb = BestEvalCallback(model, "eval_accuracy")
    state = types.SimpleNamespace(global_step=0, epoch=0.0)
    for step, (value, weight) in enumerate([(50.0, 1.0), (70.0, 2.0), (60.0, 3.0)], 1):
        with torch.no_grad():
            model.weight.fill_(weight)
        state.global_step, state.epoch = step, float(step)
        cb.on_evaluate(None, state, None, metrics={"eval_accuracy": value, "eval_loss": 0.1})
    cb.on_evaluate(None, state, None, metrics={"test_accuracy": 99.0})  # not a validation evaluation
    assert [h["step"] for h in cb.history] == [1, 2, 3] and cb.best["step"] == 2
    assert cb.restore_best() and torch.all(model.weight == 2.0)
    assert set(cb.best_state) == {"weight"}  # only trainable tensors are kept


def test_throughput_callback_times_steps_only():
    cb = ThroughputCallback()
    assert cb.samples_per_second is None
    cb.on_step_begin(None, None, None)
    cb.on_step_end(None, None, None)
    cb.on_step_end(None, None, None)  # an end without a begin is ignored
    cb.samples = 16
    assert cb.steps == 1 and cb.samples_per_second > 0


def test_adalora_update_and_allocate_is_called_every_step(tmp_path, monkeypatch):
    from peft.tuners.adalora import AdaLoraModel

    calls = []
    original = AdaLoraModel.update_and_allocate

    def spy(self, global_step):
        calls.append(global_step)
        return original(self, global_step)

    monkeypatch.setattr(AdaLoraModel, "update_and_allocate", spy)
    record = train(TrainConfig(task="tweets", model="tiny-bert", method="adalora", rank=2, max_steps=6, batch_size=8,
                               train_limit=48, eval_limit=16, max_length=24, evals_per_run=1, out=str(tmp_path),
                               progress=False))
    assert calls == list(range(6)) and record["adalora_updates"] == 6 == record["train_steps"]
    # the final budget was applied: PEFT records the per-module ranks it allocated
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["total_step"] == 6 and config["target_r"] == 2 and config["init_r"] == 3
    assert config["rank_pattern"], "AdaLoRA never fixed its final rank allocation"
    assert record["adapter_bytes"] == sum(f.stat().st_size for f in (tmp_path / "adapter").glob("*.safetensors"))


def test_an_epoch_sized_run_evaluates_evals_per_epoch_times_per_epoch(tmp_path):
    """48 examples in batches of 8: 6 steps an epoch; 3 evaluations an epoch -> steps 2, 4, 6 (and
    8, 10, 12 in the second epoch). Without the option, an epoch-sized run evaluates once an epoch
    and ``evals_per_run`` does not apply."""
    common = dict(task="tweets", model="tiny-bert", method="b_only", rank=2, batch_size=8, train_limit=48,
                  eval_limit=16, max_length=24, progress=False, save_checkpoints=False)
    record = train(TrainConfig(**common, epochs=2, evals_per_epoch=3, out=str(tmp_path / "three")))
    assert [h["step"] for h in record["history"]] == [2, 4, 6, 8, 10, 12]
    assert record["identity"]["evals_per_epoch"] == 3
    plain = train(TrainConfig(**common, epochs=2, evals_per_run=8, out=str(tmp_path / "plain")))
    assert [h["step"] for h in plain["history"]] == [6, 12] and "evals_per_epoch" not in plain["identity"]
    with pytest.raises(ValueError, match="evals_per_epoch must be >= 1"):
        train(TrainConfig(**common, epochs=1, evals_per_epoch=0, out=str(tmp_path / "bad")))
