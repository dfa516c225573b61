"""Load a finished training run back into a model: :func:`load_trained`.

A run folder (written by :func:`asymlora.training.runner.train`) holds ``metrics.json`` (the run's
record: task, model, method, kind, rank, seed, config, resolved settings, metrics) and
``adapter/``, whose content depends on the method's kind:

==============  ==========================================================================
kind            ``adapter/`` and how it is loaded (:data:`LOADERS`)
==============  ==========================================================================
adapter         asymlora's ``adapter_config.json`` + ``adapter.safetensors`` (the classifier
                head included as ``modules_to_save``): :func:`asymlora.adapters.io.load_adapter`
adalora         PEFT's folder (``adapter_config.json`` + ``adapter_model.safetensors``):
                ``peft.PeftModel.from_pretrained``
full            ``trainable.safetensors``: every trained parameter by its name in the model;
linear_probe    copied into the same-named parameters (names and shapes must all match)
==============  ==========================================================================

The base model is rebuilt exactly as training built it:
``load_for_sequence_classification(model, task.num_labels, seed)``; its fresh head is then
overwritten by the run's trained head.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

METRICS_FILE = "metrics.json"
ADAPTER_DIR = "adapter"


@dataclass(frozen=True)
class RunIdentity:
    """Which run: ``run_id`` is ``<task>/<folder name>`` (the layout of ``asymlora reproduce``);
    ``digest`` is the SHA-256 (16 hex digits) of its ``metrics.json``, so a retrained run gets a
    new digest."""

    run_id: str
    task: str
    model: str
    method: str
    label: str
    kind: str
    rank: int
    seed: int
    digest: str

    def identity(self) -> dict:
        """The :class:`RunIdentity` fields as keyword arguments (for records that extend it)."""
        return {f.name: getattr(self, f.name) for f in fields(RunIdentity)}


@dataclass(frozen=True)
class RunInfo(RunIdentity):
    """What evaluation needs to know about one finished run (read from its ``metrics.json``);
    ``max_length`` and ``data_dir`` are the ones the run trained with."""

    folder: Path
    max_length: int
    data_dir: str | None
    metrics: dict[str, float]


def read_run(folder: str | Path) -> RunInfo:
    """The :class:`RunInfo` of the run in ``folder``; a folder that is not a finished run raises
    FileNotFoundError / ValueError naming what is missing."""
    folder = Path(folder)
    path = folder / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not a finished run (no {METRICS_FILE})")
    raw = path.read_bytes()
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg})") from None
    missing = [k for k in ("task", "model", "method", "kind", "seed", "metrics") if k not in record]
    if missing:
        raise ValueError(f"{path}: not a run record (missing {missing})")
    if not (folder / ADAPTER_DIR).is_dir():
        raise FileNotFoundError(f"{folder}: the run has no {ADAPTER_DIR}/ folder (its trained tensors)")
    config = record.get("config") or {}
    resolved = record.get("resolved") or {}
    max_length = resolved.get("max_length") or config.get("max_length") or 128
    return RunInfo(folder=folder, run_id=f"{record['task']}/{folder.name}", task=record["task"],
                   model=str(record["model"]), method=record["method"], label=record.get("label", record["method"]),
                   kind=record["kind"], rank=int(record.get("rank") or 0), seed=int(record["seed"]),
                   max_length=int(max_length), data_dir=config.get("data_dir"),
                   metrics={k: float(v) for k, v in record["metrics"].items()},
                   digest=hashlib.sha256(raw).hexdigest()[:16])


# ------------------------------------------------------------------------------ finding runs
def folders_of_records(records: list[dict], results_path: str | Path) -> list[Path]:
    """Run folders of the records of a ``results.jsonl`` at ``results_path``:
    ``<its folder>/runs/<run_id>`` (the layout of ``asymlora reproduce``), else the record's
    ``config.out``; a record with neither raises FileNotFoundError."""
    results_path = Path(results_path)
    folders: list[Path] = []
    for record in records:
        candidates = [results_path.parent / "runs" / record["run_id"]]
        out = (record.get("config") or {}).get("out")
        if out:
            candidates.append(Path(out))
        found = next((c for c in candidates if (c / METRICS_FILE).is_file()), None)
        if found is None:
            raise FileNotFoundError(f"{results_path}: run {record['run_id']!r} has no folder with {METRICS_FILE} "
                                    f"(looked in {', '.join(str(c) for c in candidates)})")
        if found not in folders:
            folders.append(found)
    return folders


def find_runs(folder: str | Path) -> list[Path]:
    """Run folders under ``folder``: itself if it is a run, else every folder below it with
    ``metrics.json`` and ``adapter/``, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if (folder / METRICS_FILE).is_file():
        return [folder]
    found = sorted(p.parent for p in folder.rglob(METRICS_FILE) if (p.parent / ADAPTER_DIR).is_dir())
    if not found:
        raise FileNotFoundError(f"{folder}: no run folders (metrics.json + adapter/) under it")
    return found


# ------------------------------------------------------------------------------ loaders by kind
def _load_adapter(base, folder: Path):
    from asymlora.adapters.io import load_adapter

    return load_adapter(base, folder)


def _load_adalora(base, folder: Path):
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(folder))


def _load_trainable(base, folder: Path):
    """Copy ``trainable.safetensors`` into the same-named parameters of ``base``."""
    import torch
    from safetensors.torch import load_file

    path = folder / "trainable.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no trainable.safetensors")
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
    "adapter": _load_adapter, "adalora": _load_adalora, "full": _load_trainable, "linear_probe": _load_trainable,
}


@dataclass
class TrainedModel:
    """A run's model (eval mode, on ``device``), its tokenizer and its :class:`RunInfo`."""

    model: Any
    tokenizer: Any
    info: RunInfo


def load_trained(run: str | Path | RunInfo, device: str = "cpu") -> TrainedModel:
    """Rebuild the base model of ``run`` and load its trained tensors (by kind, :data:`LOADERS`)."""
    from asymlora.models import load_for_sequence_classification, load_tokenizer
    from asymlora.tasks import get_task

    info = run if isinstance(run, RunInfo) else read_run(run)
    loader = LOADERS.get(info.kind)
    if loader is None:
        raise ValueError(f"{info.folder}: unknown method kind {info.kind!r}; known: {', '.join(LOADERS)}")
    task = get_task(info.task)
    base = load_for_sequence_classification(info.model, task.num_labels, seed=info.seed)
    model = loader(base, info.folder / ADAPTER_DIR)
    return TrainedModel(model=model.to(device).eval(), tokenizer=load_tokenizer(info.model), info=info)
