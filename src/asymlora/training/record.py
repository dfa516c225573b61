"""The record of one finished run (:class:`RunRecord`), as ``metrics.json`` and every results line hold it.

:meth:`RunRecord.to_dict` gives exactly the JSON keys, in the same order, that the record had when it
was a plain dict, so committed ``metrics.json`` and ``results.jsonl`` files read the same way.
Evaluations are :class:`EvalPoint` (``{"step", "epoch", "metrics"}`` in JSON; metric names without
their ``eval_`` / ``test_`` / ``full_`` prefix).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class EvalPoint:
    """One evaluation: the optimiser step and epoch it followed, and the task's metrics."""

    step: int
    epoch: float | None
    metrics: dict[str, float]

    def to_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "metrics": self.metrics}


def task_metrics(metrics: dict, prefix: str, names) -> dict[str, float]:
    """The Trainer's ``{prefix}_{name}: value`` entries for the task's metric ``names``, unprefixed.

    Args:
        metrics: what ``Trainer.evaluate`` returned (``eval_accuracy``, ``eval_loss``, ...).
        prefix: ``"eval"``, ``"test"`` or ``"full"``.
        names: the task's metric names; anything else (loss, runtime) is dropped.
    """
    names = set(names)
    return {k[len(prefix) + 1:]: float(v) for k, v in metrics.items()
            if k.startswith(prefix + "_") and k[len(prefix) + 1:] in names}


@dataclass
class RunRecord:
    """What one run did and measured. Fields in the order of the JSON record.

    ``metrics`` is the headline (see ``selection``: ``test@best-validation``,
    ``full-validation@best-validation-subset`` or ``best-validation``); ``total_params`` counts the
    base model with its head (the denominator of ``trainable_percent``); ``samples_per_second``
    times the training steps only, ``trainer_samples_per_second`` is the Trainer's (evaluation
    included); ``preprocessing`` is what the family had to cut or skip; ``config`` the TrainConfig,
    ``resolved`` the numbers used, ``identity`` the fingerprint's input. ``adapter_bytes`` is None
    on processes other than the main one.
    """

    task: str
    family: str
    model: str
    method: str
    label: str
    kind: str
    rank: int
    seed: int
    adapter_seed: int
    main_metric: str
    metrics: dict[str, float]
    selection: str
    best_eval: EvalPoint
    final_eval: EvalPoint
    test: dict[str, float] | None
    history: list[EvalPoint]
    trainable_params: int
    total_params: int
    trainable_percent: float
    samples_per_second: float | None
    trainer_samples_per_second: float | None
    train_steps: int
    train_examples: int
    eval_examples: int
    eval_examples_during_training: int
    test_examples: int
    train_loss: float
    preprocessing: Any
    peak_memory_bytes: int | None
    train_seconds: float
    adalora_updates: int | None
    world_size: int
    threads: int | None
    device: str
    versions: dict
    git_commit: str | None
    config: dict
    resolved: dict
    identity: dict
    adapter_bytes: int | None = None
    wall_seconds: float | None = None

    def to_dict(self) -> dict:
        """The JSON form (the keys and order of ``metrics.json``)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, EvalPoint):
                value = value.to_dict()
            elif f.name == "history":
                value = [point.to_dict() for point in value]
            out[f.name] = value
        return out
