"""Adapters as files: save a model's adapter to a folder, load one into a base model.

The trained factor is data; a frozen factor drawn by a random initialiser is a recipe (plus the
SHA-256 of the tensor it regenerates); ``svd`` factors and recipe-less frozen factors are stored.
With A frozen (``train="B"``) the tensor file holds ``d_out · r`` numbers per module instead of
LoRA's ``(d_in + d_out) · r``: half for square layers. The format itself is
:mod:`asymlora.adapters.adapter_file`; the base-model check :mod:`asymlora.adapters.fingerprint`;
the merged export :mod:`asymlora.adapters.merged`.

Writes are atomic: the tensor file first, then the config (temporary name, then rename). The
config records the tensor file's SHA-256, so a folder caught between the two writes reads as
corrupt instead of silently mixing two adapters. Only safetensors is ever read.

This module also re-exports the public names of those three modules (``read_adapter``,
``save_merged``, ``fingerprint``, ``tensor_sha256``, …) for callers that import them from here.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from asymlora.adapters.adapter_file import (  # noqa: F401 (re-exported)
    CONFIG_FILE, FORMAT_NAME, FORMAT_VERSION, WEIGHTS_FILE, AdapterFile, AdapterMeta, FrozenFactor, ModuleEntry,
    folder_bytes, read_adapter, read_json, read_safetensors, safetensors_bytes,
)
from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.fingerprint import base_fingerprint, fingerprint, pretrained_weight, tensor_sha256  # noqa: F401
from asymlora.adapters.inject import adapted_modules, adapter_config, find_targets, inject
from asymlora.adapters.linear import AdaptedLinear
from asymlora.adapters.merged import atomic_folder, merged_state_dict, save_merged  # noqa: F401
from asymlora.adapters.recipe import stored_by_default
from asymlora.adapters.sharded import full
from asymlora.atomic import atomic_write_bytes, atomic_write_text

__all__ = [
    "CONFIG_FILE", "FORMAT_NAME", "FORMAT_VERSION", "WEIGHTS_FILE", "AdapterFile", "AdapterMeta", "FrozenFactor",
    "ModuleEntry", "adapter_file", "assign_tensors", "atomic_folder", "fingerprint", "load_adapter",
    "merged_state_dict", "pretrained_weight", "read_adapter", "read_json", "read_safetensors", "safetensors_bytes",
    "save_adapter", "save_merged", "saved_module_parameters", "tensor_sha256",
]


def _suffix_match(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def saved_module_parameters(model: nn.Module, config: AdapterConfig) -> dict[str, torch.Tensor]:
    """``{parameter name: tensor}`` of every ``modules_to_save`` module (e.g. a trained head),
    adapter factors excluded (they are saved as factors)."""
    factor_keys = {f"{name}.{f}" for name in adapted_modules(model) for f in "AB"}
    found: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if name and any(_suffix_match(name, s) for s in config.modules_to_save):
            for pname, parameter in module.named_parameters():
                key = f"{name}.{pname}"
                if key not in factor_keys:
                    found[key] = parameter
    return found


def _frozen_record(name: str, factor: str, module: AdaptedLinear, store_frozen: bool,
                   tensors: dict[str, torch.Tensor]) -> FrozenFactor:
    """Describe one frozen factor, putting it into ``tensors`` when it is stored.

    A factor with a recipe that no longer regenerates it (the buffer was edited) is stored, with a
    warning, rather than described by a recipe that lies.
    """
    buffer = getattr(module, factor).detach()
    recipe = module.recipes.get(factor)
    if recipe is not None:
        recipe = recipe.with_dtype(buffer.dtype)
    stored = store_frozen or recipe is None or stored_by_default(recipe)
    if not stored:
        weight = module.pretrained_weight() if recipe.needs_weight else None
        if not torch.equal(recipe.regenerate(weight), buffer.cpu()):
            warnings.warn(f"frozen factor {name}.{factor} differs from its recipe "
                          f"({recipe.init}, seed {recipe.seed}); storing it in the file")
            stored = True
    if stored:
        tensors[f"{name}.{factor}"] = buffer
    return FrozenFactor(recipe, tensor_sha256(buffer), stored)


def adapter_file(model: nn.Module, store_frozen: bool = False) -> AdapterFile:
    """What :func:`save_adapter` would write for ``model``, without writing it. FSDP2-sharded
    tensors are gathered whole (:func:`asymlora.adapters.sharded.full`: call it on every rank)."""
    config = adapter_config(model)
    modules = adapted_modules(model)
    if not modules:
        raise ValueError("the model has no asymlora adapters (call asymlora.inject first)")
    tensors: dict[str, torch.Tensor] = {}
    entries: dict[str, ModuleEntry] = {}
    for name, module in modules.items():
        for factor in module.train_mode:
            tensors[f"{name}.{factor}"] = full(getattr(module, factor).detach())
        frozen = {f: _frozen_record(name, f, module, store_frozen, tensors) for f in module.frozen_factors}
        entries[name] = ModuleEntry((module.out_features, module.in_features), module.rank, module.scaling,
                                    module.train_mode, frozen)
    saved = saved_module_parameters(model, config)
    for key, parameter in saved.items():
        tensors[key] = full(parameter.detach())
    meta = AdapterMeta(config=config, modules=entries, modules_to_save=sorted(saved),
                       base_model=base_fingerprint(model, list(modules)))
    cpu = {k: v.to("cpu").contiguous() for k, v in tensors.items()}
    frozen = {f"{n}.{f}": getattr(m, f).detach().to("cpu") for n, m in modules.items() for f in m.frozen_factors}
    return AdapterFile(meta, cpu, frozen)


def save_adapter(model: nn.Module, directory: str | os.PathLike, store_frozen: bool = False) -> Path:
    """Write ``model``'s adapter to ``directory`` (created); returns the folder.

    Only trained tensors go into ``adapter.safetensors``, plus the frozen factors that are stored
    (``store_frozen=True``, ``svd`` factors, recipe-less or edited ones); the others are recorded as
    recipe + SHA-256. B-only: ``d_out · r`` numbers per module instead of LoRA's ``(d_in + d_out) · r``.
    Works on merged models (the fingerprint uses the exactly-rebuilt ``W0``). The write is atomic:
    a previous adapter in ``directory`` stays whole until the new one is complete.

    Args:
        model (nn.Module): a model with asymlora adapters (FSDP2-sharded tensors are gathered: call
            it on every rank).
        directory (str | os.PathLike): the adapter folder to write (created, or replaced).
        store_frozen (bool): store every frozen factor as a tensor too, not only its recipe.

    Returns:
        Path: the folder written.

    Raises:
        ValueError: the model has no asymlora adapters.
        NotADirectoryError: ``directory`` exists and is a file.
    """
    state = adapter_file(model, store_frozen=store_frozen)
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    data, text = folder_bytes(state)
    with atomic_folder(folder) as temporary:  # the previous adapter stays whole until the new one is
        (temporary / WEIGHTS_FILE).write_bytes(data)
        (temporary / CONFIG_FILE).write_text(text, encoding="utf-8")
    return folder


def assign_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], modules_to_save=(),
                   scalings: dict[str, float] | None = None) -> None:
    """Put factors (``"<module>.A"`` / ``".B"``) and ``modules_to_save`` parameters into ``model``
    (keeping each tensor's dtype; device follows the module) and set per-module ``scalings``."""
    modules = adapted_modules(model)
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in tensors.items():
            name, _, factor = key.rpartition(".")
            if name not in modules or factor not in ("A", "B"):
                continue
            module = modules[name]
            if module.merged:
                raise ValueError(f"module {name!r} is merged; unmerge before replacing its factors")
            current = getattr(module, factor)
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"tensor {key} has shape {tuple(value.shape)}, the model expects "
                                 f"{tuple(current.shape)}")
            if isinstance(current, nn.Parameter):
                current.data = value.to(current.device).clone()
            else:
                setattr(module, factor, value.to(current.device).clone())
        for name, scaling in (scalings or {}).items():
            modules[name].scaling = float(scaling)
        for key in modules_to_save:
            parameter = parameters.get(key)
            if parameter is None:
                raise ValueError(f"the model has no parameter {key!r} (modules_to_save) for the adapter file")
            value = tensors[key]
            if tuple(value.shape) != tuple(parameter.shape):
                raise ValueError(f"tensor {key} has shape {tuple(value.shape)}, the model expects "
                                 f"{tuple(parameter.shape)}")
            parameter.data = value.to(parameter.device).clone()


def _check_targets(base_model: nn.Module, state: AdapterFile) -> None:
    meta = state.meta
    targets = find_targets(base_model, meta.config)
    recorded = list(meta.modules)
    if set(targets) != set(recorded):
        extra = sorted(set(targets) - set(recorded))
        missing = sorted(set(recorded) - set(targets))
        detail = f"{extra[0]!r} is targeted in the base model but not in the adapter" if extra else \
            f"{missing[0]!r} is in the adapter but not targeted in the base model"
        raise ValueError(f"base model mismatch: {detail}")
    parameters = dict(base_model.named_parameters())
    for key in meta.modules_to_save:
        if not any(key.startswith(f"{name}.") for name in recorded) and (
                key not in parameters or list(parameters[key].shape) != list(state.tensors[key].shape)):
            raise ValueError(f"base model mismatch: the adapter saves {key!r} {list(state.tensors[key].shape)} "
                             f"(modules_to_save) but the base model has no parameter of that name and shape")


def load_adapter(base_model: nn.Module, directory: str | os.PathLike, check_weights: bool = True) -> nn.Module:
    """Inject the adapter saved in ``directory`` into ``base_model`` (in place) and return it.

    Everything is checked before the model is touched: format and version, the tensor file's
    SHA-256, the base model's target modules and shapes, the fingerprint of its pretrained
    weights (skip with ``check_weights=False``), and every frozen factor's SHA-256.

    Args:
        base_model (nn.Module): a fresh base model (without adapters) of the one the adapter was
            trained on.
        directory (str | os.PathLike): a folder written by :func:`save_adapter`.
        check_weights (bool): also check the hashes of the base model's pretrained weights.

    Returns:
        nn.Module: ``base_model`` itself, carrying the adapter.

    Raises:
        FileNotFoundError: the folder or one of its two files is missing.
        NotADirectoryError: ``directory`` is not a folder.
        ValueError: the files are corrupt or of another format or version, the base model does not
            match (targets, shapes, weights), or it already carries asymlora adapters.
    """
    state = read_adapter(directory)
    meta = state.meta
    if any(isinstance(m, AdaptedLinear) for m in base_model.modules()):
        raise ValueError("the base model already has asymlora adapters; load into a fresh base model")
    meta.base_model.check(base_model, check_weights=check_weights)
    _check_targets(base_model, state)
    frozen = state.resolve_frozen(base_model)
    inject(base_model, meta.config)
    for name, module in adapted_modules(base_model).items():
        for factor, record in meta.modules[name].frozen.items():
            recipe = module.recipes.get(factor)
            if record.recipe is None:
                module.recipes.pop(factor, None)
                continue
            theirs = replace(record.recipe, init="svd") if record.recipe.init == "svd_format1" else record.recipe
            if recipe is not None and recipe.with_dtype(frozen[f"{name}.{factor}"].dtype) != theirs:
                raise ValueError(f"adapter file is corrupt: the recipe of {name}.{factor} does not match its config")
            module.recipes[factor] = record.recipe
    assign_tensors(base_model, {**state.tensors, **frozen}, meta.modules_to_save,
                   {name: entry.scaling for name, entry in meta.modules.items()})
    return base_model
