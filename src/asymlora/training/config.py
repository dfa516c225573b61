"""TrainConfig: everything one fine-tuning run needs, and how it resolves against the task's defaults.

A field left at ``None`` takes the paper's setting for the task (:class:`asymlora.tasks.Hyper`,
docs/paper.md §3) or the model's default adapter targets; anything set overrides it.
``seed`` drives the data order, the classification head's initialisation and dropout;
``adapter_seed`` (default: ``seed``) draws the adapter's factors, so several runs can share one
frozen initialisation (``adapter_seeds: same`` in an experiment config).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from asymlora.adapters.config import closest
from asymlora.adapters.mask_stream import mask_stream_identity


@dataclass
class TrainConfig:
    task: str
    model: str
    method: str
    rank: int = 8
    seed: int = 0
    adapter_seed: int | None = None
    out: str = "runs/train"
    data_dir: str | None = None
    max_steps: int | None = None
    epochs: float | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    max_length: int | None = None
    train_limit: int | None = None
    eval_limit: int | None = None
    alpha: float | None = None
    alpha_ratio: float | None = None  # alpha = alpha_ratio · rank when alpha is not given (the paper's 2·rank)
    bf16: bool | None = None  # bfloat16 mixed precision (GPUs)
    gradient_checkpointing: bool | None = None  # recompute activations in backward (the lean frozen-A path stays exact)
    dropout: float = 0.05  # on by default: the frozen-A backward then saves no input-wide copy
    targets: Any = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    eval_steps: int | None = None
    evals_per_run: int = 5
    evals_per_epoch: int | None = None  # evaluate this many times per epoch (epoch-based runs; overrides the per-epoch default)
    grad_accum: int = 1
    eval_batch_size: int | None = None
    report_to: str = "none"
    resume: bool = False
    keep_checkpoints: bool = False
    save_checkpoints: bool = True
    threads: int | None = None
    logging_steps: int | None = None
    progress: bool = False  # Trainer progress bars and per-step log lines (quiet by default; --verbose)
    compile: bool = False  # torch.compile the model (inductor); not in the identity: the same maths, faster
    mask_stream: str | None = None  # dropout-mask version (adapters.mask_stream.MASK_STREAMS); None: the default, v2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(f"unknown training option {key!r}{closest(key, known)}")
        return cls(**data)


#: Fields that change what a run computes (not where it writes or how it reports).
IDENTITY_FIELDS = ("task", "model", "method", "rank", "seed", "adapter_seed", "data_dir", "max_steps", "epochs",
                   "learning_rate", "batch_size", "max_length", "train_limit", "eval_limit", "alpha", "dropout",
                   "targets", "warmup_ratio", "weight_decay", "eval_steps", "evals_per_run", "grad_accum")
#: Identity fields added later: left out of the identity while unset, so runs recorded before they
#: existed keep their fingerprint.
OPTIONAL_IDENTITY_FIELDS = ("alpha_ratio", "bf16", "evals_per_epoch")


def identity(config: "TrainConfig") -> dict:
    """The fields that change what a run computes (its fingerprint's input).

    The dropout-mask version joins only when it draws masks other than the legacy ones
    (:func:`~asymlora.adapters.mask_stream.mask_stream_identity`: dropout > 0 and not ``"v1"``),
    so runs without dropout keep the fingerprint they always had.
    """
    data = config.to_dict()
    out = {k: data[k] for k in IDENTITY_FIELDS}
    out.update({k: data[k] for k in OPTIONAL_IDENTITY_FIELDS if data[k] is not None})
    out.update(mask_stream_identity(float(config.dropout or 0.0), config.mask_stream))
    return out


@dataclass
class Resolved:
    """The numbers a run actually uses, after task defaults and overrides."""

    learning_rate: float
    epochs: float
    batch_size: int
    max_length: int
    alpha: float
    warmup_ratio: float
    weight_decay: float
    targets: Any
    adapter_seed: int
    head_modules: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve(config: TrainConfig, hyper, default_targets, head_modules) -> Resolved:
    """Merge ``config`` over the task's ``hyper`` and the model's defaults; validate the numbers."""
    pick = lambda value, default: default if value is None else value  # noqa: E731
    resolved = Resolved(
        learning_rate=float(pick(config.learning_rate, hyper.learning_rate)),
        epochs=float(pick(config.epochs, hyper.epochs)),
        batch_size=int(pick(config.batch_size, hyper.batch_size)),
        max_length=int(pick(config.max_length, hyper.max_length)),
        alpha=float(pick(config.alpha, hyper.alpha if config.alpha_ratio is None
                         else config.alpha_ratio * max(int(config.rank), 1))),
        warmup_ratio=float(pick(config.warmup_ratio, hyper.warmup_ratio)),
        weight_decay=float(pick(config.weight_decay, hyper.weight_decay)),
        targets=pick(config.targets, list(default_targets) if not isinstance(default_targets, str)
                     else default_targets),
        adapter_seed=int(pick(config.adapter_seed, config.seed)),
        head_modules=[head_modules] if isinstance(head_modules, str) else list(head_modules or []),
    )
    checks = [("learning_rate", resolved.learning_rate > 0 and math.isfinite(resolved.learning_rate), "a finite > 0"),
              ("epochs", resolved.epochs > 0, "> 0"), ("batch_size", resolved.batch_size >= 1, ">= 1"),
              ("max_length", resolved.max_length >= 4, ">= 4"), ("alpha", resolved.alpha > 0, "> 0"),
              ("warmup_ratio", 0 <= resolved.warmup_ratio < 1, "in [0, 1)"),
              ("weight_decay", resolved.weight_decay >= 0, ">= 0")]
    for name, ok, allowed in checks:
        if not ok:
            raise ValueError(f"training option {name}={getattr(resolved, name)!r} is out of range; it must be {allowed}")
    if config.max_steps is not None and config.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1 (got {config.max_steps}); leave it out to train by epochs")
    if config.grad_accum < 1:
        raise ValueError(f"--grad-accum must be >= 1 (got {config.grad_accum})")
    if not 0 <= config.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1) (got {config.dropout})")
    return resolved
