"""The adapter's configuration in the experiment tracker a Trainer reports to (``report_to``).

The Trainer's own integrations log the training loss, every evaluation metric, the
``TrainingArguments`` and the model's ``config``; none of them knows which factor an asymlora (or a
B-only PEFT) adapter freezes. :class:`AdapterConfigReporter` adds that record, once, when training
begins, through the tracker the integration already opened:

==============  ==============================================================================
``wandb``       ``wandb.run.config["asymlora"]`` (a dict; offline mode writes it to the local run)
``mlflow``      run parameters ``asymlora.<field>`` (the active run MLflowCallback started)
``tensorboard`` a text summary ``asymlora/adapter`` (JSON) in the TensorBoardCallback's writer
==============  ==============================================================================

The record (:class:`AdapterRecord`): method, rank, alpha, dropout, the trained and the frozen
factor, the frozen factor's initialiser, the adapter seed, targets and the trainable parameter
count. It is read from the model itself (:meth:`AdapterRecord.of_model`): asymlora adapters, a
PEFT LoRA model (a factor is frozen when none of its ``lora_A`` / ``lora_B`` weights requires
grad), or, for a model with neither, the method name alone.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from torch import nn
from transformers import TrainerCallback

#: ``AdapterConfig.train`` -> the method name of :mod:`asymlora.methods` with default initialisers.
TRAIN_TO_METHOD = {"B": "b_only", "A": "a_only", "AB": "lora"}


@dataclass(frozen=True)
class AdapterRecord:
    """What a tracker is told about the adapter (every field a scalar or a string).

    method          the method name (``b_only``, ``lora``, ``peft_b_only``, ``full``, ...).
    rank            r (0 when the method has none).
    trained_factor  "B", "A", "AB" or "" (no low-rank adapter).
    frozen_factor   "A", "B" or "" (none frozen).
    frozen_init     the frozen factor's initialiser ("orthonormal", ...), "" if none.
    alpha, dropout  the scaling numerator and the adapter's input dropout (0 when unknown).
    seed            the adapter seed (-1 when unknown, e.g. a PEFT model).
    targets         the adapted modules' target description, as text.
    trainable_params  parameters with ``requires_grad``.
    """

    method: str
    rank: int
    trained_factor: str
    frozen_factor: str
    frozen_init: str
    alpha: float
    dropout: float
    seed: int
    targets: str
    trainable_params: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_model(cls, model: nn.Module, method: str | None = None) -> "AdapterRecord":
        """The record of ``model``'s adapter (see the module docstring).

        Args:
            model (nn.Module): an injected model, a ``peft.PeftModel`` or any other model.
            method (str | None): the method name to report (default: from the adapter's trained factor).

        Returns:
            AdapterRecord: the record.
        """
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        for reader in (_asymlora_record, _peft_record):
            record = reader(model, method, trainable)
            if record is not None:
                return record
        return cls(method or "unknown", 0, "", "", "", 0.0, 0.0, -1, "", trainable)


def _asymlora_record(model: nn.Module, method: str | None, trainable: int) -> AdapterRecord | None:
    from asymlora.adapters.inject import adapted_modules, adapter_config

    if not adapted_modules(model):
        return None
    config = adapter_config(model)
    frozen = "".join(f for f in "AB" if f not in config.train)
    frozen_init = {"A": config.init_A, "B": config.init_B}.get(frozen, "")
    return AdapterRecord(method or TRAIN_TO_METHOD[config.train], config.rank, config.train, frozen, frozen_init,
                         config.alpha, config.dropout, config.seed, json.dumps(config.targets), trainable)


def _peft_record(model: nn.Module, method: str | None, trainable: int) -> AdapterRecord | None:
    config = getattr(model, "active_peft_config", None)
    if config is None or not hasattr(config, "r"):
        return None
    grads = {f: [p.requires_grad for n, p in model.named_parameters() if f".lora_{f}." in n] for f in "AB"}
    trained = "".join(f for f in "AB" if any(grads[f]))
    frozen = "".join(f for f in "AB" if grads[f] and not any(grads[f]))
    name = method or ("peft_b_only" if trained == "B" else "peft_lora")
    targets = config.target_modules if isinstance(config.target_modules, str) else sorted(config.target_modules or [])
    return AdapterRecord(name, int(config.r), trained, frozen, "orthonormal" if frozen == "A" else "",
                         float(config.lora_alpha), float(config.lora_dropout or 0.0), -1, json.dumps(targets),
                         trainable)


# ---------------------------------------------------------------------------- one entry per tracker
@dataclass(frozen=True)
class Tracker:
    """How asymlora talks to one ``report_to`` integration.

    write   ``(record, trainer callbacks)``: put the adapter record into the open run.
    local   ``(folder) -> {environment variable: value}``: where the run is written when the user set
            nothing (:func:`local_tracking`).
    attach  ``(trainer callbacks, folder)``: point the integration's callback at ``folder`` (or open
            the run before training, so that the final evaluations after it land in the same run).
    finish  ``(trainer callbacks)``: close the run, so that the next run in the process opens its own.
    """

    write: Callable[[AdapterRecord, list], None]
    local: Callable[[Path], dict] = lambda folder: {}
    attach: Callable[[list, Path], None] = lambda callbacks, folder: None
    finish: Callable[[list], None] = lambda callbacks: None


def _to_wandb(record: AdapterRecord, callbacks: list) -> None:
    import wandb

    if wandb.run is not None:
        wandb.run.config.update({"asymlora": record.to_dict()}, allow_val_change=True)


def _finish_wandb(callbacks: list) -> None:
    import wandb

    if wandb.run is not None:
        wandb.finish()


def _to_mlflow(record: AdapterRecord, callbacks: list) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_params({f"asymlora.{k}": v for k, v in record.to_dict().items()})


def _begin_mlflow(callbacks: list, folder: Path) -> None:
    import mlflow

    if mlflow.active_run() is None:  # MLflowCallback then leaves the run open after training
        if os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        mlflow.start_run()


def _finish_mlflow(callbacks: list) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.end_run()


def _tensorboard_callbacks(callbacks: list) -> list:
    from transformers.integrations import TensorBoardCallback

    return [c for c in callbacks if isinstance(c, TensorBoardCallback)]


def _to_tensorboard(record: AdapterRecord, callbacks: list) -> None:
    for callback in _tensorboard_callbacks(callbacks):
        if callback.tb_writer is not None:
            callback.tb_writer.add_text("asymlora/adapter", json.dumps(record.to_dict(), sort_keys=True))
            callback.tb_writer.flush()


def _attach_tensorboard(callbacks: list, folder: Path) -> None:
    for callback in _tensorboard_callbacks(callbacks):
        if callback.logging_dir is None:  # TENSORBOARD_LOGGING_DIR unset
            callback.logging_dir = str(folder / "tensorboard")


def _finish_tensorboard(callbacks: list) -> None:
    for callback in _tensorboard_callbacks(callbacks):
        if callback.tb_writer is not None:
            callback.tb_writer.close()
            callback.tb_writer = None


#: ``report_to`` name -> :class:`Tracker`. Local defaults: wandb writes its run folder under
#: ``<folder>/wandb`` (online or offline as ``WANDB_MODE`` says), mlflow a file store
#: ``<folder>/mlruns``, tensorboard event files under ``<folder>/tensorboard``.
TRACKERS: dict[str, Tracker] = {
    "wandb": Tracker(_to_wandb, lambda folder: {"WANDB_DIR": str(folder)}, finish=_finish_wandb),
    "mlflow": Tracker(_to_mlflow, lambda folder: {"MLFLOW_TRACKING_URI": (folder / "mlruns").resolve().as_uri(),
                                                  "MLFLOW_ALLOW_FILE_STORE": "true"},
                      attach=_begin_mlflow, finish=_finish_mlflow),
    "tensorboard": Tracker(_to_tensorboard, attach=_attach_tensorboard, finish=_finish_tensorboard),
}


@contextlib.contextmanager
def local_tracking(trainer, folder: str | os.PathLike) -> Iterator[None]:
    """While training and evaluating, write each ``report_to`` tracker's run under ``folder``
    unless the user chose a place (a set environment variable wins); close the runs on exit.

    Args:
        trainer: the Trainer (its ``args.report_to`` and callbacks).
        folder: the run's tracking folder (created).
    """
    names = [n for n in _report_to(trainer.args) if n in TRACKERS] if trainer.is_world_process_zero() else []
    folder = Path(folder)
    chosen = {}
    for name in names:
        folder.mkdir(parents=True, exist_ok=True)
        chosen.update({k: v for k, v in TRACKERS[name].local(folder).items() if k not in os.environ})
    os.environ.update(chosen)
    try:
        for name in names:
            TRACKERS[name].attach(trainer.callback_handler.callbacks, folder)
        yield
    finally:
        for name in names:
            TRACKERS[name].finish(trainer.callback_handler.callbacks)
        for key in chosen:
            os.environ.pop(key, None)


def _report_to(args) -> list[str]:
    value = getattr(args, "report_to", None) or []
    return [value] if isinstance(value, str) else list(value)


class AdapterConfigReporter(TrainerCallback):
    """A callback that writes the adapter's :class:`AdapterRecord` to each tracker in
    ``args.report_to`` (those in :data:`TRACKERS`) when training begins.

    Add it with :func:`report_adapter_config` (it must come after the Trainer's own tracker
    callbacks, which open the run in their ``on_train_begin``).
    """

    def __init__(self, handler, method: str | None = None):
        self.handler, self.method = handler, method

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        names = [n for n in _report_to(args) if n in TRACKERS]
        if not state.is_world_process_zero or model is None or not names:
            return
        record = AdapterRecord.of_model(model, self.method)
        for name in names:
            TRACKERS[name].write(record, list(self.handler.callbacks))


def report_adapter_config(trainer, method: str | None = None):
    """Make ``trainer`` (a ``transformers.Trainer`` or TRL trainer) write its model's adapter record
    to its trackers when training begins.

    Args:
        trainer: the Trainer, built with ``report_to`` set.
        method (str | None): the method name to report (default: read from the adapter).

    Returns:
        AdapterConfigReporter: the callback added.
    """
    callback = AdapterConfigReporter(trainer.callback_handler, method)
    trainer.add_callback(callback)
    return callback
