"""The non-finite-loss guard: it stops a run at the first nan / inf, naming the step, the last good
checkpoint and the fix, and stays silent while everything is finite."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from asymlora.errors import UserError
from asymlora.training.guards import NonFiniteLossCallback, TrainingDiverged


def _model():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)  # frozen tensors are not the guard's business
    return model


def _args(tmp_path, rate=1e-3):
    return SimpleNamespace(learning_rate=rate, output_dir=str(tmp_path / "checkpoints"))


def test_finite_steps_and_logs_pass(tmp_path):
    guard, state = NonFiniteLossCallback(_model()), SimpleNamespace(global_step=3)
    control = object()
    assert guard.on_step_end(_args(tmp_path), state, control) is control
    assert guard.on_log(_args(tmp_path), state, control, logs={"loss": 0.7, "learning_rate": 1e-3}) is control
    assert guard.on_log(_args(tmp_path), state, control, logs={"eval_loss": 0.5}) is control  # no training loss


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_logged_loss_stops_the_run(tmp_path, bad):
    guard = NonFiniteLossCallback(None)
    with pytest.raises(TrainingDiverged) as caught:
        guard.on_log(_args(tmp_path, 0.5), SimpleNamespace(global_step=12), None, logs={"loss": bad})
    message = str(caught.value)
    assert f"training diverged at step 12: the training loss is {bad}" in message
    assert "lower the learning rate (--lr, now 0.5)" in message and "no checkpoint was written yet" in message
    assert isinstance(caught.value, UserError) and "\n" not in message


def test_a_non_finite_trained_tensor_stops_the_run_and_names_the_last_good_checkpoint(tmp_path):
    model = _model()
    for step in (2, 4):
        (tmp_path / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
        (tmp_path / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    guard = NonFiniteLossCallback(model)
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")  # frozen: ignored
    guard.on_step_end(_args(tmp_path), SimpleNamespace(global_step=5), None)
    with torch.no_grad():
        model[1].bias[1] = float("inf")
    with pytest.raises(TrainingDiverged, match=r"step 5: the trained tensor 1\.bias holds nan or inf") as caught:
        guard.on_step_end(_args(tmp_path), SimpleNamespace(global_step=5), None)
    assert str(tmp_path / "checkpoints" / "checkpoint-4") in str(caught.value)


def test_the_guard_stops_a_real_trainer_before_it_saves_the_diverged_state(tmp_path):
    """A real Trainer on a toy regression whose learning rate makes it blow up: training stops with
    TrainingDiverged, and the only checkpoint on disk holds finite tensors."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 1)

        def forward(self, x, labels=None):
            prediction = self.linear(x).squeeze(-1)
            return {"loss": ((prediction - labels) ** 2).mean(), "logits": prediction}

    torch.manual_seed(0)
    data = Dataset.from_dict({"x": (100 * torch.randn(64, 4)).tolist(), "labels": torch.randn(64).tolist()})
    model = Toy()
    args = TrainingArguments(output_dir=str(tmp_path / "checkpoints"), per_device_train_batch_size=8,
                             learning_rate=10.0, lr_scheduler_type="constant", max_steps=40, logging_steps=1,
                             save_strategy="steps", save_steps=1, save_total_limit=1, report_to=[], use_cpu=True,
                             max_grad_norm=0.0, optim="sgd", disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[NonFiniteLossCallback(model)])
    with pytest.raises(TrainingDiverged, match="training diverged at step"):
        trainer.train()
    from safetensors.torch import load_file
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(tmp_path / "checkpoints"))
    assert last is not None
    saved = load_file(f"{last}/model.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in saved.values())
