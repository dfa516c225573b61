"""Exact combination of adapters that share their frozen factor.

With A frozen and shared, every adapter's delta is linear in its trained factor::

    Σ_i w_i · s B_i A  =  s (Σ_i w_i B_i) A

so the weighted sum of the B's *is* the weighted sum of the deltas, exactly (up to fp32
rounding). The same holds with B frozen and A trained. For LoRA (both trained), or for adapters
whose frozen factors differ, ``Σ w_i B_i A_i ≠ (Σ w_i B_i)(Σ w_i A_i)``: there is no exact
combination in factored form, and :func:`combine` refuses with an error saying so.

"Shared" is decided by the frozen tensors themselves (SHA-256 of their bytes): same recipe gives
the same tensor, and imported (recipe-less) frozen factors combine when they are identical.
Parameters of ``modules_to_save`` (e.g. classifier heads) are combined by the same weighted sum;
that is exact for the weights, but a head is applied to different features, so only the
adapter deltas carry the exactness guarantee.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Sequence

import torch
from torch import nn

from asymlora.adapters.inject import adapted_modules
from asymlora.adapters.adapter_file import AdapterFile, read_adapter
from asymlora.adapters.io import adapter_file, assign_tensors, load_adapter


def adapter_state(adapter) -> AdapterFile:
    """An adapter model, or a saved adapter folder, as an :class:`AdapterFile`."""
    if isinstance(adapter, nn.Module):
        return adapter_file(adapter)
    if isinstance(adapter, (str, os.PathLike)):
        return read_adapter(adapter)
    raise TypeError(f"an adapter must be a model with asymlora adapters or an adapter folder, not {type(adapter).__name__}")


def check_shared_frozen(states: Sequence[AdapterFile], allowed_train: str = "AB") -> None:
    """Raise ValueError unless every adapter has the same modules, shapes, ranks, scalings and
    trained factor, trains one factor only (one of ``allowed_train``), has bit-identical frozen
    factors and the same base model. The message names the first offending adapter and module,
    and what to do."""
    first = states[0].meta
    for index, state in enumerate(states):
        lora = next((name for name, entry in state.meta.modules.items() if entry.trained == "AB"), None)
        if lora is not None:
            raise ValueError(f"adapter {index}: module {lora!r} trains both factors (LoRA): LoRA factors do not "
                             f"combine exactly, since Σ wᵢ Bᵢ Aᵢ ≠ (Σ wᵢ Bᵢ)(Σ wᵢ Aᵢ); only adapters that share "
                             f"a frozen factor do: train them B-only from the same frozen A (method b_only, same "
                             f"adapter seed)")
    for index, state in enumerate(states[1:], start=1):
        meta = state.meta
        if list(meta.modules) != list(first.modules):
            differing = sorted(set(meta.modules) ^ set(first.modules)) or list(meta.modules)
            raise ValueError(f"adapters 0 and {index} adapt different modules (first difference: {differing[0]!r}); "
                             f"merge only adapters with the same targets")
        if sorted(meta.modules_to_save) != sorted(first.modules_to_save):
            raise ValueError(f"adapters 0 and {index} save different modules_to_save parameters")
        check_same_base(first, meta, index)
    for name, entry in first.modules.items():
        if entry.trained not in allowed_train:
            raise ValueError(f"module {name!r} trains {entry.trained}; this needs adapters that train "
                             f"{' or '.join(allowed_train)} only")
        for index, state in enumerate(states[1:], start=1):
            _check_module(name, entry, state.meta.modules[name], index)


def _check_module(name: str, entry, other, index: int) -> None:
    """Raise ValueError unless module ``name`` of adapter ``index`` matches adapter 0's ``entry``."""
    for key in ("shape", "rank", "trained"):
        if getattr(other, key) != getattr(entry, key):
            raise ValueError(f"adapters 0 and {index} differ at module {name!r}: {key} "
                             f"{getattr(entry, key)} vs {getattr(other, key)}; merge only adapters with the same {key}")
    if not math.isclose(other.scaling, entry.scaling, rel_tol=1e-12):
        raise ValueError(f"adapters 0 and {index} differ at module {name!r}: scaling "
                         f"{entry.scaling} vs {other.scaling}; merge only adapters with the same scaling (alpha / r)")
    for factor, frozen in entry.frozen.items():
        theirs = other.frozen[factor]
        if theirs.sha256 != frozen.sha256:
            raise ValueError(
                f"adapters 0 and {index} have different frozen {factor} in module {name!r} "
                f"({frozen.describe()} vs {theirs.describe()}): they do not combine exactly "
                f"(like LoRA factors, a sum of products is not a product of sums); train them from the "
                f"same frozen factor (same init and seed)")


def check_same_base(first, meta, index: int) -> None:
    """Raise ValueError unless adapter ``index``'s base-model fingerprint (target shapes and the
    SHA-256 of the recorded pretrained weights) equals adapter 0's: a delta is only meaningful on
    the base it was trained on. The base's name or path may differ (another copy of the same weights)."""
    mine, theirs = first.base_model, meta.base_model
    for name, hashed in mine.weights.items():
        other = theirs.weights.get(name)
        if other is not None and other != hashed:
            raise ValueError(f"adapters 0 and {index} were trained on different base models (pretrained weight of "
                             f"{name!r} differs); merge only adapters trained on the same base model")
    if mine.modules != theirs.modules:
        raise ValueError(f"adapters 0 and {index} were trained on different base models (target shapes differ); "
                         f"merge only adapters trained on the same base model")


def _result_model(first, base: nn.Module | None) -> nn.Module:
    """A model holding the first adapter's structure, unmerged, ready to receive new tensors."""
    if isinstance(first, nn.Module):
        model = copy.deepcopy(first)
        for module in adapted_modules(model).values():
            module.unmerge()
        return model
    if base is None:
        raise ValueError("adapters given as folders need a base model: combine(adapters, weights, base=model)")
    return load_adapter(base, first)


def weighted_sum(states: Sequence[AdapterFile], weights: Sequence[float], keys) -> dict[str, torch.Tensor]:
    """``{key: Σ_i w_i · tensor_i[key]}``, summed in float64 and cast back to the first's dtype."""
    result = {}
    for key in keys:
        total = sum(float(w) * s.tensors[key].double() for w, s in zip(weights, states))
        result[key] = total.to(states[0].tensors[key].dtype)
    return result


def combine(adapters: Sequence, weights: Sequence[float], base: nn.Module | None = None) -> nn.Module:
    """One adapter whose delta is ``Σ_i weights[i] · delta_i``, exactly.

    With A frozen and shared, ``Σ_i w_i · s B_i A = s (Σ_i w_i B_i) A``: trained factors and
    ``modules_to_save`` parameters become weighted sums. (LoRA adapters do not combine exactly:
    ``Σ w_i B_i A_i ≠ (Σ w_i B_i)(Σ w_i A_i)``.)

    Args:
        adapters (Sequence[nn.Module | str | os.PathLike]): models carrying asymlora adapters, or
            adapter folders (then ``base`` is needed: the first folder is loaded into it). Every
            adapter must train one factor only and share every frozen factor bit for bit.
        weights (Sequence[float]): one finite weight per adapter.
        base (nn.Module | None): a fresh base model, when ``adapters`` are folders.

    Returns:
        nn.Module: a new model (a copy of the first adapter model, unmerged) or ``base`` with the
        combined adapter loaded.

    Raises:
        ValueError: no adapters, a weight count that differs, a weight that is not finite, adapters
            that differ in modules, shapes, ranks, scalings or frozen factors, or LoRA adapters.
        TypeError: an adapter that is neither a model nor a folder.
    """
    adapters = list(adapters)
    weights = [float(w) for w in weights]
    if not adapters:
        raise ValueError("combine needs at least one adapter")
    if len(weights) != len(adapters):
        raise ValueError(f"combine got {len(adapters)} adapters but {len(weights)} weights")
    if not all(math.isfinite(w) for w in weights):
        raise ValueError(f"combine weights must be finite numbers, got {weights}")
    states = [adapter_state(a) for a in adapters]
    check_shared_frozen(states)
    meta = states[0].meta
    combined = weighted_sum(states, weights, meta.trained_keys() + list(meta.modules_to_save))
    model = _result_model(adapters[0], base)
    assign_tensors(model, combined, meta.modules_to_save, {n: e.scaling for n, e in meta.modules.items()})
    return model
