"""Merged export: a plain transformers folder with every adapter folded into its base weight.

:func:`save_merged` merges, takes the state dict with plain-model names (``"<name>.base.weight"``
-> ``"<name>.weight"``, factor keys dropped), restores the model's merge state (unmerge is bit
exact) and writes the folder through :func:`atomic_folder`, so ``from_pretrained`` loads it
without asymlora and a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from asymlora.adapters.inject import adapted_modules
from asymlora.atomic import atomic_folder, recover_folder  # noqa: F401 (re-exported)


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with every adapter folded in and the wrappers removed:
    ``"<name>.base.weight"`` -> ``"<name>.weight"``, factor keys dropped. Plain-model names."""
    modules = adapted_modules(model)
    factor_keys = {f"{name}.{f}" for name in modules for f in "AB"}
    state = {}
    for key, value in model.state_dict().items():
        if key in factor_keys:
            continue
        for name in modules:
            if key.startswith(f"{name}.base."):
                key = f"{name}." + key[len(name) + len(".base."):]
                break
        state[key] = value
    return state


def save_merged(model: nn.Module, directory: str | os.PathLike, **save_kwargs) -> Path:
    """Write a plain transformers folder with the adapter merged in, ``W = W0 + s · B A``
    (``from_pretrained`` loads it without asymlora). The model is left as it was (merged or not;
    unmerge is bit-exact). The write is atomic: a previous folder stays whole until the new one is.

    Args:
        model (nn.Module): a transformers model (with ``save_pretrained``) carrying asymlora adapters.
        directory (str | os.PathLike): the folder to write (created, or replaced).
        **save_kwargs: passed on to ``model.save_pretrained`` (e.g. ``max_shard_size``).

    Returns:
        Path: the folder written.

    Raises:
        ValueError: the model has no ``save_pretrained`` or no asymlora adapters.
    """
    if not hasattr(model, "save_pretrained"):
        raise ValueError(f"save_merged needs a transformers model (has save_pretrained); got {type(model).__name__}")
    modules = adapted_modules(model)
    if not modules:
        raise ValueError("the model has no asymlora adapters (call asymlora.inject first)")
    was_merged = {name: m.merged for name, m in modules.items()}
    for module in modules.values():
        module.merge()
    try:
        state = {k: v.detach().clone() for k, v in merged_state_dict(model).items()}
    finally:
        for name, module in modules.items():
            if not was_merged[name]:
                module.unmerge()
    with atomic_folder(directory) as temporary:
        model.save_pretrained(temporary, state_dict=state, **save_kwargs)
    return Path(directory)

