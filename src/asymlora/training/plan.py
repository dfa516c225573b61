"""Validate and resolve one run before anything is loaded: :func:`validate` -> :class:`Plan`.

Every run-level check lives here: names (task, method, model), the rank (through the method's own
rule, :meth:`asymlora.methods.MethodSpec.check_rank`), limits and counts, the ``--report-to``
integration, whether the model and the data can be reached, the task/model pairing, and the numbers
after the task's defaults are filled in (:func:`asymlora.training.config.resolve`). The adapter's own
fields (alpha, dropout, targets) are checked by :class:`asymlora.adapters.config.AdapterConfig`,
which validates itself; :func:`validate` builds one so they fail here, before loading.
"""

from __future__ import annotations

import torch

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asymlora.training.config import Resolved, TrainConfig, resolve

if TYPE_CHECKING:  # pragma: no cover
    from asymlora.methods import MethodSpec
    from asymlora.models import ModelRef
    from asymlora.tasks import Task, TaskFamily


@dataclass(frozen=True)
class Plan:
    """What a run will do, decided from its :class:`TrainConfig` before any data or model is loaded."""

    task: "Task"
    family: "TaskFamily"
    method: "MethodSpec"
    ref: "ModelRef"
    rank: int  # 0 for rankless methods (full, linear_probe)
    resolved: Resolved

    def used(self) -> dict:
        """What the run really uses: the resolved numbers (``Resolved.to_dict()``) and its rank."""
        return {**self.resolved.to_dict(), "rank": self.rank}


#: ``--report-to`` integrations and the package each needs.
REPORTERS = {"wandb": "wandb", "tensorboard": "tensorboard", "mlflow": "mlflow", "comet_ml": "comet_ml",
             "clearml": "clearml", "trackio": "trackio"}

#: Optional counts that, when given, must be >= 1 (``None`` means "no limit" / "the default").
_POSITIVE_OR_NONE = ("train_limit", "eval_limit", "eval_steps", "eval_batch_size", "logging_steps")


def check_report_to(name: str) -> None:
    """Refuse an unknown ``--report-to`` integration or one whose package is not installed.

    Raises:
        ValueError: one line naming the fix.
    """
    import importlib.util

    if name not in REPORTERS:
        raise ValueError(f"--report-to {name!r} is not supported; choose none, {', '.join(REPORTERS)}")
    if importlib.util.find_spec(REPORTERS[name]) is None:
        raise ValueError(f"--report-to {name} needs the '{REPORTERS[name]}' package: pip install {REPORTERS[name]}")


def check_counts(config: TrainConfig) -> None:
    """Threads, limits, evaluation counts: each >= 1 when given.

    Raises:
        ValueError: one line naming the option.
    """
    if config.threads is not None and config.threads < 1:
        raise ValueError(f"--threads must be >= 1 (got {config.threads})")
    for name in _POSITIVE_OR_NONE:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1 (got {value}); leave it out for no limit")
    if config.evals_per_run < 1:
        raise ValueError(f"evals_per_run must be >= 1 (got {config.evals_per_run})")
    if config.evals_per_epoch is not None and config.evals_per_epoch < 1:
        raise ValueError(f"evals_per_epoch must be >= 1 (got {config.evals_per_epoch})")


def check_reachable_sources(config: TrainConfig, task, ref) -> None:
    """Fail now when the model or the data needs the hub and the hub is switched off.

    Raises:
        ValueError / FileNotFoundError: one line with the fix (a local folder, ``--data-dir``).
    """
    from asymlora.models import check_reachable, hub_hint, hub_offline

    check_reachable(ref)
    if task.hub_dataset and config.data_dir is None and hub_offline():
        raise ValueError(f"{hub_hint(f'task {task.name!r} ({task.hub_dataset})')}: pass a local copy with "
                         "--data-dir (see docs/tasks.md for the layout)")


def validate(config: TrainConfig, check_sources: bool = True) -> Plan:
    """Check every argument and resolve names and numbers; loads nothing.

    Args:
        config: the run asked for.
        check_sources: also fail when the model or data needs the hub and the hub is switched off.

    Returns:
        The :class:`Plan`.

    Raises:
        ValueError: bad input, one line naming the option.
        FileNotFoundError: a model folder that is not there.
    """
    from asymlora.methods import get_method
    from asymlora.models import resolve_model
    from asymlora.tasks import get_family, get_task

    task = get_task(config.task)
    family = get_family(task.family)
    spec = get_method(config.method)
    ref = resolve_model(config.model)
    spec.check_rank(config.rank, "--rank")
    check_counts(config)
    if check_sources:
        check_reachable_sources(config, task, ref)
    if config.report_to not in (None, "", "none"):
        check_report_to(config.report_to)
    if config.compile:
        from asymlora.adapters.compiled import require_compile

        require_compile("cuda" if torch.cuda.is_available() else "cpu", "or drop --compile")
    family.check_model(ref, task)  # e.g. a seq2seq task asked of a decoder-only model
    head = family.head_modules(ref, task)
    if spec.kind == "linear_probe" and not head:
        raise ValueError(f"linear_probe trains only a task head, and task {task.name!r} ({family.name}) has none")
    resolved = resolve(config, task.hyper, ref.default_targets, head)
    if spec.kind == "adapter":  # the adapter's own settings (alpha, dropout, targets) fail here, not after loading
        spec.adapter_config(config.rank, resolved.alpha, config.dropout, resolved.targets, resolved.adapter_seed,
                            resolved.head_modules, config.mask_stream)
    return Plan(task, family, spec, ref, int(config.rank) if spec.uses_rank else 0, resolved)
