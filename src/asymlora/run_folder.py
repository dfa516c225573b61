"""A finished run's folder: the one module that knows its files, and how trained tensors are saved and
loaded for every method kind.

Layout of ``<out>`` (written by :func:`asymlora.training.train`)::

    metrics.json        the run's record (:class:`asymlora.training.record.RunRecord`, as JSON)
    run_identity.json   the identity stamp of the checkpoints (:mod:`asymlora.training.resume`)
    adapter/            the trained tensors of the best evaluation, by method kind (:data:`SAVERS`):
    checkpoints/        Trainer checkpoints while running (:mod:`asymlora.training.checkpoints`)
    tracking/           the ``--report-to`` tracker's local run (:mod:`asymlora.training.tracking`)

==============  ==========================================================================
kind            ``adapter/`` and how it is written / read back
==============  ==========================================================================
adapter         asymlora's ``adapter_config.json`` + ``adapter.safetensors`` (the head included
                as ``modules_to_save``): :func:`asymlora.adapters.io.save_adapter` / ``load_adapter``
adalora         PEFT's folder (``adapter_config.json`` + ``adapter_model.safetensors``):
                ``save_pretrained`` / ``peft.PeftModel.from_pretrained``
full            ``trainable.safetensors``: every parameter with ``requires_grad`` by its name;
linear_probe    read back into the same-named parameters (names and shapes must all match)
==============  ==========================================================================

Run folders made by ``asymlora reproduce`` are ``<out>/runs/<task>/<method>-r<rank>-s<seed>``
(:class:`RunName`, the run identity the grid, the evaluations and the analyses share).

Standard library only at import (torch, safetensors, PEFT and the adapter code are imported where
used), so every layer may use it: training writes run folders, evaluation and analysis read them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

#: A run's ``--report-to`` tracker runs: ``<out>/tracking`` (wandb/, tensorboard/, mlruns/).
TRACKING_DIR = "tracking"
#: A grid's run folders: ``<grid out>/runs/<run_id>`` (``asymlora reproduce``).
RUNS_DIR = "runs"
METRICS_FILE = "metrics.json"
TRAINABLE_FILE = "trainable.safetensors"
IDENTITY_FILE = "run_identity.json"
ADAPTER_DIR = "adapter"
CHECKPOINTS_DIR = "checkpoints"
#: asymlora's own adapter config inside ``adapter/`` (kind ``adapter``: the similarity analysis reads these).
ADAPTER_CONFIG = "adapter_config.json"

#: ``<method>-r<rank>-s<seed>``: a run folder's name in the layout of ``asymlora reproduce``.
RUN_NAME = re.compile(r"^(?P<method>.+)-r(?P<rank>\d+)-s(?P<seed>\d+)$")


@dataclass(frozen=True)
class RunName:
    """Which run of a grid: task, method, rank (0 for rankless methods) and data seed.

    This is the identity shared by the grid (:class:`asymlora.experiments.grid.Run` adds the adapter
    seed), the similarity analysis (:class:`asymlora.analysis.similarity.Run` adds the factors) and
    the evaluations of trained runs (:class:`asymlora.evaluation.trained.RunIdentity` adds what
    ``metrics.json`` says and its digest). DomainBed's :class:`~asymlora.experiments.domainbed.records.RunKey`
    is not one: its runs are named by dataset, variant, test environment and two seeds.
    """

    task: str
    method: str
    rank: int
    seed: int

    @property
    def run_id(self) -> str:
        """``<task>/<method>-r<rank>-s<seed>``: the run's folder under ``<out>/runs/`` (:func:`grid_folder`)."""
        return f"{self.task}/{self.folder_name}"

    @property
    def folder_name(self) -> str:
        return f"{self.method}-r{self.rank}-s{self.seed}"


def grid_folder(out, run_id: str) -> Path:
    """The folder of run ``run_id`` in the grid written under ``out``: ``out/runs/<run_id>``."""
    return Path(out) / RUNS_DIR / run_id


def parse_folder_name(name: str) -> dict | None:
    """``{"method", "rank", "seed"}`` of a folder named ``<method>-r<rank>-s<seed>``, else None."""
    match = RUN_NAME.match(name)
    return None if match is None else {"method": match["method"], "rank": int(match["rank"]),
                                       "seed": int(match["seed"])}


# ------------------------------------------------------------------------------ metrics.json
def write_metrics(folder: Path, record: dict) -> Path:
    """Write ``record`` to ``folder/metrics.json`` atomically (indented JSON, non-JSON values as text)."""
    from asymlora.atomic import atomic_write_text

    return atomic_write_text(Path(folder) / METRICS_FILE, json.dumps(record, indent=2, default=str) + "\n")


def read_metrics_bytes(folder: Path) -> tuple[dict, bytes]:
    """``(record, raw bytes)`` of ``folder/metrics.json``.

    Raises:
        FileNotFoundError: the folder has no ``metrics.json`` (not a finished run).
        ValueError: the file is not valid JSON.
    """
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not a finished run (no {METRICS_FILE})")
    raw = path.read_bytes()
    try:
        return json.loads(raw), raw
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({getattr(err, 'msg', err)})") from None


def read_metrics(folder: Path, missing_ok: bool = False) -> dict:
    """The record in ``folder/metrics.json``; ``{}`` when it is absent and ``missing_ok``."""
    if missing_ok and not (Path(folder) / METRICS_FILE).is_file():
        return {}
    return read_metrics_bytes(folder)[0]


# ------------------------------------------------------------------------------ trained tensors by kind
def _save_adapter(model, directory: Path) -> None:
    from asymlora.adapters.io import save_adapter

    save_adapter(model, directory)


def _save_peft(model, directory: Path) -> None:
    model.save_pretrained(str(directory), safe_serialization=True)


def save_trainable(model, folder: str | os.PathLike) -> Path:
    """Write every parameter with ``requires_grad`` to ``folder/trainable.safetensors`` (atomically).

    The one writer of trainable tensors: a full / linear-probe run's ``adapter/`` and every
    training checkpoint (:mod:`asymlora.training.checkpoints`) use it.

    Returns:
        The path written.
    """
    from safetensors.torch import save

    from asymlora.atomic import atomic_write_bytes

    tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    path = Path(folder) / TRAINABLE_FILE
    atomic_write_bytes(path, save(tensors))
    return path


def _save_trainable(model, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    save_trainable(model, directory)


#: kind -> saver(model, adapter folder): writes the run's trained tensors.
SAVERS: dict[str, Callable[[Any, Path], None]] = {
    "adapter": _save_adapter, "adalora": _save_peft, "full": _save_trainable, "linear_probe": _save_trainable,
}


def save_trained(model, method_kind: str, directory: Path) -> int:
    """Replace ``directory`` with the run's trained tensors, written as its method kind does (:data:`SAVERS`).

    Args:
        model: the trained model (a PEFT model for ``adalora``).
        method_kind: ``MethodSpec.kind``.
        directory: the adapter folder, usually ``<out>/adapter``.

    Returns:
        The bytes of the tensor file(s) (``*.safetensors``) written.
    """
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    SAVERS[method_kind](model, directory)
    return sum(f.stat().st_size for f in directory.glob("*.safetensors"))


def _load_adapter(base, folder: Path):
    from asymlora.adapters.io import load_adapter

    return load_adapter(base, folder)


def _load_peft(base, folder: Path):
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(folder))


def _load_trainable(base, folder: Path):
    """Copy ``trainable.safetensors`` into the same-named parameters of ``base``."""
    import torch
    from safetensors.torch import load_file

    path = folder / TRAINABLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {TRAINABLE_FILE}")
    tensors = load_file(str(path))
    parameters = dict(base.named_parameters())
    for name, value in tensors.items():
        target = parameters.get(name)
        if target is None or tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{path}: tensor {name!r} {tuple(value.shape)} has no parameter of that name and shape "
                             "in the base model")
    with torch.no_grad():
        for name, value in tensors.items():
            parameters[name].copy_(value)
    return base


#: kind -> loader(base model, adapter folder) -> model with the run's trained tensors.
LOADERS: dict[str, Callable[[Any, Path], Any]] = {
    "adapter": _load_adapter, "adalora": _load_peft, "full": _load_trainable, "linear_probe": _load_trainable,
}


def load_trained_tensors(base, method_kind: str, directory: Path):
    """Load what :func:`save_trained` wrote in ``directory`` into a freshly built ``base`` model.

    Args:
        base: the base model rebuilt exactly as training built it.
        method_kind: ``MethodSpec.kind`` of the run.
        directory: its adapter folder.

    Returns:
        The model with the run's trained tensors (a PEFT model for ``adalora``).

    Raises:
        ValueError: an unknown kind, or tensors that do not fit ``base``.
        FileNotFoundError: the folder lacks the kind's tensor file.
    """
    loader = LOADERS.get(method_kind)
    if loader is None:
        raise ValueError(f"{Path(directory).parent}: unknown method kind {method_kind!r}; known: {', '.join(LOADERS)}")
    return loader(base, Path(directory))
