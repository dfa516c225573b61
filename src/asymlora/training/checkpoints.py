"""Adapter-only training checkpoints, in safetensors and JSON: what ``--resume`` needs, nothing frozen.

A Trainer checkpoint folder ``<out>/checkpoints/checkpoint-<step>/`` holds::

    trainable.safetensors     the parameters with requires_grad (adapter factors, head; every parameter
                              only for full fine-tuning); frozen weights and frozen factors are never
                              written (they come back from the base model and the adapter recipe)
    optimizer.safetensors     the optimiser's per-parameter tensors, keys "state.<index>.<name>"
    optimizer.json            param_groups, per-parameter scalars, the scheduler's state_dict
    rng_state[_<rank>].safetensors + .json   Python, NumPy, torch CPU (and CUDA) generator states
    trainer_state.json        the Trainer's own (step, log history)
    asymlora_mask_state.json  every adapted layer's dropout-mask stream position

No pickle is written or read. On MiniLM (query/value, r=8, B-only) a checkpoint is about 3 × the
adapter's tensor file instead of the 87 MB of a full-model checkpoint; the figures are in
docs/training.md.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asymlora.atomic import atomic_write_bytes, atomic_write_text
from asymlora.run_folder import TRAINABLE_FILE, save_trainable  # noqa: F401  (the one writer of trainable tensors)

OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``{name: parameter}`` for every parameter that requires grad."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: torch.nn.Module, folder: str | os.PathLike) -> None:
    """Copy ``folder/trainable.safetensors`` into the model's trainable parameters (same names, shapes)."""
    path = Path(folder) / TRAINABLE_FILE
    saved = load_tensors(path)
    params = trainable_state(model)
    if set(saved) != set(params):
        missing, extra = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
        raise ValueError(f"{path}: does not match this run's trainable parameters "
                         f"(missing {missing[:3]}, unexpected {extra[:3]}); resume with the same method and rank")
    with torch.no_grad():
        for name, p in params.items():
            if saved[name].shape != p.shape:
                raise ValueError(f"{path}: {name} has shape {tuple(saved[name].shape)}, the run has {tuple(p.shape)}")
            p.copy_(saved[name].to(p.device, p.dtype))


def save_optimizer(optimizer, scheduler, folder: str | os.PathLike) -> None:
    """Optimiser state (tensors to safetensors, the rest to JSON) and the scheduler's state_dict."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    save_tensors(Path(folder) / OPTIMIZER_TENSORS, tensors)
    document = {"param_groups": state["param_groups"], "scalars": scalars,
                "scheduler": scheduler.state_dict() if scheduler is not None else None}
    atomic_write_text(Path(folder) / OPTIMIZER_JSON, json.dumps(document, default=_jsonable) + "\n")


def _jsonable(value):
    if torch.is_tensor(value):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint's JSON")


def load_optimizer(optimizer, scheduler, folder: str | os.PathLike) -> bool:
    """Restore what :func:`save_optimizer` wrote; False if ``folder`` has no such files."""
    folder = Path(folder)
    if not (folder / OPTIMIZER_JSON).is_file():
        return False
    document = json.loads((folder / OPTIMIZER_JSON).read_text(encoding="utf-8"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in load_tensors(folder / OPTIMIZER_TENSORS).items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, entry in document["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": document["param_groups"]})
    if scheduler is not None and document.get("scheduler") is not None:
        scheduler.load_state_dict(document["scheduler"])
    return True


def _rng_name(process_index: int | None) -> str:
    return "rng_state" if process_index is None else f"rng_state_{process_index}"


def save_rng(folder: str | os.PathLike, process_index: int | None = None) -> None:
    """Python, NumPy, torch CPU (and CUDA) generator states, without pickle."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    tensors = {"numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64)),
               "torch_cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.random.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    python_version, python_state, python_gauss = random.getstate()
    document = {"python": [python_version, list(python_state), python_gauss],
                "numpy": {"kind": kind, "position": int(position), "has_gauss": int(has_gauss), "cached": float(cached)}}
    name = _rng_name(process_index)
    save_tensors(Path(folder) / f"{name}.safetensors", tensors)
    atomic_write_text(Path(folder) / f"{name}.json", json.dumps(document) + "\n")


def load_rng(folder: str | os.PathLike, process_index: int | None = None) -> bool:
    """Restore what :func:`save_rng` wrote; False if there is nothing to restore."""
    name = _rng_name(process_index)
    folder = Path(folder)
    if not (folder / f"{name}.json").is_file():
        return False
    document = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    tensors = load_tensors(folder / f"{name}.safetensors")
    version, state, gauss = document["python"]
    random.setstate((version, tuple(state), gauss))
    n = document["numpy"]
    np.random.set_state((n["kind"], tensors["numpy_keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"],
                         n["cached"]))
    torch.random.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.random.set_rng_state_all(cuda)
    return True


class PicklelessTrainerState:
    """Trainer mixin: optimiser, scheduler and RNG states go through :func:`save_optimizer` /
    :func:`save_rng` (safetensors + JSON) instead of ``torch.save`` pickles, and come back through
    :func:`load_optimizer` / :func:`load_rng` (a checkpoint without them falls back to the Trainer's
    own readers). Put it before the Trainer class among the bases."""

    def _save_optimizer_and_scheduler(self, output_dir):
        if self.args.should_save:
            save_optimizer(self.optimizer, self.lr_scheduler, output_dir)

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is not None and not load_optimizer(self.optimizer, self.lr_scheduler, checkpoint):
            super()._load_optimizer_and_scheduler(checkpoint)

    def _process_rank(self) -> int | None:
        return None if self.args.world_size <= 1 else self.args.process_index

    def _save_rng_state(self, output_dir):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        save_rng(output_dir, self._process_rank())

    def _load_rng_state(self, checkpoint):
        if checkpoint is not None and not load_rng(checkpoint, self._process_rank()):
            super()._load_rng_state(checkpoint)
