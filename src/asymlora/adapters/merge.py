"""Merge adapters that share their frozen A into one plain adapter: task arithmetic, TIES, DARE.

With A frozen and shared, adapter ``i``'s delta on a module is ``s B_i A``, linear in ``B_i``. So a
weighted sum of the B's is the weighted sum of the deltas, exactly (negative weights included):

    s (Σ_i w_i B_i) A  =  Σ_i w_i · s B_i A

and TIES / DARE, applied to the B's (the trained factor, ΔB from a zero start), prune and merge
the deltas themselves at a fixed rank r. Nothing is approximated by the factorisation. PEFT's
``add_weighted_adapter`` instead merges A and B separately (``A' = Σ_j σ_j √|w_j s_j| A_j``,
``B' = Σ_i √|w_i s_i| B_i``, σ the sign), so even with identical A its ``linear`` merge is
``(Σ_j σ_j √|w_j s_j|)(Σ_i √|w_i s_i| B_i) A`` rather than ``Σ_i w_i s B_i A``, and weights
``(+1, −1)`` cancel the whole merge (``Σ_j σ_j √… = 0``).

:func:`merge_adapters` reads adapter folders (or models), checks they merge exactly (same targets,
shapes, ranks, scalings, trained factor B or A only, bit-identical frozen factors, same base
model; see :func:`asymlora.adapters.combine.check_shared_frozen`), merges every trained tensor with
a method of :data:`asymlora.adapters.merge_methods.MERGE_METHODS`, and returns an
:class:`~asymlora.adapters.adapter_file.AdapterFile` with the first adapter's metadata (recipes,
hashes, base fingerprint): a plain adapter that ``load_adapter`` loads and ``export_peft`` exports.

Saved heads (``modules_to_save``, e.g. a classifier per task) are not adapter deltas: ``heads="sum"``
takes their weighted sum (the ``linear`` rule; it needs equal shapes), ``heads="drop"`` leaves them
out, so the merged body is used with each task's own head.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Sequence

import torch

from asymlora.adapters.adapter_file import CONFIG_FILE, WEIGHTS_FILE, AdapterFile, AdapterMeta, folder_bytes
from asymlora.adapters.combine import adapter_state, check_shared_frozen, weighted_sum
from asymlora.adapters.merge_methods import MergeMethod, get_merge_method, merge_tensors

#: How saved heads (``modules_to_save``) are treated.
HEAD_RULES = ("sum", "drop")


def check_merge_arguments(count: int, weights: Sequence[float], method: MergeMethod, density: float | None,
                          heads: str) -> None:
    """Raise ValueError for a merge that cannot be done, before any file is read.

    Args:
        count (int): the number of adapters.
        weights (Sequence[float]): one finite weight per adapter.
        method (MergeMethod): the merge method.
        density (float | None): kept fraction, in (0, 1], for pruning methods only.
        heads (str): one of :data:`HEAD_RULES`.
    """
    if count < 1:
        raise ValueError("merge needs at least one adapter")
    if len(weights) != count:
        raise ValueError(f"merge got {count} adapters but {len(weights)} weights; give one weight per adapter "
                         f"(--weights w1,w2,...)")
    if not all(math.isfinite(w) for w in weights):
        raise ValueError(f"merge weights must be finite numbers, got {list(weights)}")
    if density is not None and not method.uses_density:
        raise ValueError(f"--density applies to the pruning methods (ties, dare_linear, dare_ties, magnitude), not to "
                         f"{method.name}; leave it out")
    if density is not None and not 0.0 < density <= 1.0:
        raise ValueError(f"--density must be in (0, 1] (the fraction of B's entries kept), got {density}")
    if heads not in HEAD_RULES:
        raise ValueError(f"heads must be one of {', '.join(HEAD_RULES)}, got {heads!r}")


def _check_heads(states: Sequence[AdapterFile]) -> None:
    """Raise ValueError when saved heads differ in shape (heads of different tasks)."""
    first = states[0]
    for index, state in enumerate(states[1:], start=1):
        for key in first.meta.modules_to_save:
            mine, theirs = tuple(first.tensors[key].shape), tuple(state.tensors[key].shape)
            if mine != theirs:
                raise ValueError(f"adapters 0 and {index} save {key!r} with different shapes ({list(mine)} vs "
                                 f"{list(theirs)}): heads of different tasks do not merge; drop them (heads='drop', "
                                 f"--heads drop) and use the merged body with each task's own head")


def merged_state(states: Sequence[AdapterFile], weights: Sequence[float], method: MergeMethod,
                 density: float | None, seed: int, heads: str) -> AdapterFile:
    """The merged adapter of checked ``states`` (see :func:`merge_adapters`)."""
    first = states[0]
    meta = first.meta
    tensors = {}
    for key in meta.trained_keys():
        tensors[key] = merge_tensors([s.tensors[key] for s in states], weights, method, density, seed, key)
    for name, entry in meta.modules.items():  # stored frozen factors travel with the file
        tensors.update({f"{name}.{f}": first.tensors[f"{name}.{f}"] for f, fr in entry.frozen.items() if fr.stored})
    config = meta.config
    if heads == "sum":
        tensors.update(weighted_sum(states, weights, meta.modules_to_save))
        saved = list(meta.modules_to_save)
    else:
        config, saved = dataclasses.replace(config, modules_to_save=[]), []
    new_meta = AdapterMeta(config=config, modules=dict(meta.modules), modules_to_save=saved,
                           base_model=meta.base_model)
    return AdapterFile(new_meta, {k: v.contiguous() for k, v in tensors.items()}, dict(first.frozen))


def write_adapter_file(state: AdapterFile, directory: str | os.PathLike) -> Path:
    """Write ``state`` as an adapter folder (atomically: the folder is whole or untouched)."""
    from asymlora.adapters.merged import atomic_folder

    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder; choose a folder for the merged adapter")
    data, text = folder_bytes(state)
    with atomic_folder(folder) as temporary:
        (temporary / WEIGHTS_FILE).write_bytes(data)
        (temporary / CONFIG_FILE).write_text(text, encoding="utf-8")
    return folder


def merge_adapters(adapters: Sequence, weights: Sequence[float], method: str = "linear", *,
                   density: float | None = None, seed: int = 0, heads: str = "sum",
                   out: str | os.PathLike | None = None) -> AdapterFile:
    """Merge adapters that share their frozen A into one plain adapter, on ΔB only.

    ``linear`` gives ``s (Σ_i w_i B_i) A = Σ_i w_i · delta_i`` exactly (any signs: task arithmetic and
    forgetting); ``ties``, ``dare_linear`` and ``dare_ties`` prune and merge the B's with the
    published defaults (TIES density 0.2, DARE drop rate 0.9), see
    :mod:`asymlora.adapters.merge_methods`.

    Args:
        adapters (Sequence[str | os.PathLike | nn.Module]): adapter folders or models carrying asymlora
            adapters; all must train B only (or A only), with bit-identical frozen factors, the same
            targets, ranks and scalings, on the same base model.
        weights (Sequence[float]): one finite weight per adapter (negative subtracts).
        method (str): ``linear``, ``ties``, ``dare_linear``, ``dare_ties`` or ``magnitude`` (LoRI-style masks).
        density (float | None): kept fraction in (0, 1] for the pruning methods (default: the method's).
        seed (int): seed of DARE's random masks.
        heads (str): ``"sum"`` (weighted sum of ``modules_to_save``; equal shapes needed) or ``"drop"``.
        out (str | os.PathLike | None): when given, the merged adapter is also written there (atomically).

    Returns:
        AdapterFile: the merged adapter (metadata of the first adapter, merged trained tensors).

    Raises:
        ValueError: a bad method, weight count, weight or density; LoRA adapters (both factors trained);
            adapters that differ in frozen factors, targets, ranks, shapes, scalings or base model; heads
            of different shapes with ``heads="sum"``; a corrupt adapter folder.
        FileNotFoundError: an adapter folder is missing.
        NotADirectoryError: ``out`` is a file.
    """
    adapters = list(adapters)
    weights = [float(w) for w in weights]
    merger = get_merge_method(method)
    check_merge_arguments(len(adapters), weights, merger, density, heads)
    states = [adapter_state(a) for a in adapters]
    check_shared_frozen(states)
    if heads == "sum":
        _check_heads(states)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f"{out} exists and is not a folder; choose a folder for the merged adapter")
    state = merged_state(states, weights, merger, density, seed, heads)
    if out is not None:
        write_adapter_file(state, out)
    return state


def delta_weights(state: AdapterFile) -> dict[str, torch.Tensor]:
    """``{module: s · B A}`` (fp32, d_out × d_in) of an adapter file whose frozen factors are resolved."""
    frozen = state.frozen
    deltas = {}
    for name, entry in state.meta.modules.items():
        factors = {f: (state.tensors.get(f"{name}.{f}") if f in entry.trained else frozen[f"{name}.{f}"])
                   for f in "AB"}
        deltas[name] = entry.scaling * (factors["B"].float() @ factors["A"].float())
    return deltas
