"""The v2 mask built and applied in one compiled loop: ``tensor`` with its dropped elements zeroed.

Eager v2 dropout zeroes the dropped elements of an input (forward) and of its gradient (backward)
with ``masked_fill(hashed_drop_mask(…), 0)``: the hash's passes, a bool mask, then the fill. On
the CPU, when inductor can build (:func:`asymlora.adapters.compiled.compile_problem`: a C++
compiler), :func:`fused_zero` does all of it in one loop compiled by ``torch.compile(dynamic=True)``
(one compilation per process and dtype, whatever the shape: a few seconds, paid at the first call
that takes this path)::

    h = uint32(i) ⊕ k0;  h = mix32(h) ⊕ k1;  h = mix32(h);  out[i] = 0 if h < t else tensor[i]

in ``torch.uint32`` arithmetic: C++ unsigned arithmetic wraps modulo 2³² and shifts logically, so
the bits are those of the int64 form (:func:`asymlora.adapters.mask_hash.hash_mask_torch`), tested
in ``tests/test_mask_fused.py``. Indices stop below 2³² here (the ``⌊i / 2³²⌋`` term is 0).

:func:`fused_zero_applies` decides, in the order of :data:`FUSED_RULES`: never inside an outer
``torch.compile`` trace (the outer graph traces the plain tensor code and keeps no break); only
on the CPU; never where autograd would have to differentiate through it (the lean B-only function
calls it with grad off, in its own forward and backward, and the tensor is passed detached, so
one graph serves both and no backward is compiled); only where the hash engine is ``"numpy"``
(:func:`~asymlora.adapters.mask_hash.hash_engine_for`: where the native C loop of
:mod:`asymlora.adapters.mask_native` does not build, or with ``ASYMLORA_MASK_HASH=numpy``, the
default before that loop existed); only when :data:`MASK_FUSION` is on
(``ASYMLORA_MASK_COMPILE=0`` turns it off); only from ``MASK_FUSION.min_elements`` elements
(below, the numpy engine's few microseconds win and small test models never compile) and below
2³² elements; and only where inductor can build.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from asymlora.adapters.mask_hash import HASH_ENGINES, hash_engine_for
from asymlora.adapters.mask_stream import MIX_MULTIPLIERS


#: Values of ``ASYMLORA_MASK_COMPILE`` that turn the fused loop off.
OFF_WORDS = ("0", "off", "false", "no")


def fusion_from_environment(value: str | None = None) -> bool:
    """Whether ``ASYMLORA_MASK_COMPILE`` (``value`` instead when given) leaves the fused loop on:
    unset or anything but :data:`OFF_WORDS` (any case) is on."""
    value = os.environ.get("ASYMLORA_MASK_COMPILE", "1") if value is None else value
    return value.strip().lower() not in OFF_WORDS


@dataclass
class MaskFusion:
    """Whether eager CPU v2 dropout uses :func:`fused_zero`: ``enabled``, from ``min_elements`` elements on."""

    enabled: bool = True
    min_elements: int = 65_536


#: The process-wide switch, from ``ASYMLORA_MASK_COMPILE`` at import (see :class:`MaskFusion`).
MASK_FUSION = MaskFusion(enabled=fusion_from_environment())


@contextlib.contextmanager
def mask_fusion(enabled: bool, min_elements: int | None = None):
    """Turn :func:`fused_zero` on or off inside the block (and optionally its size threshold)."""
    previous = (MASK_FUSION.enabled, MASK_FUSION.min_elements)
    MASK_FUSION.enabled = enabled
    MASK_FUSION.min_elements = previous[1] if min_elements is None else min_elements
    try:
        yield
    finally:
        MASK_FUSION.enabled, MASK_FUSION.min_elements = previous


def _mix32_uint32(h: torch.Tensor) -> torch.Tensor:
    h = h ^ (h >> 16)
    h = h * MIX_MULTIPLIERS[0]
    h = h ^ (h >> 15)
    h = h * MIX_MULTIPLIERS[1]
    return h ^ (h >> 16)


def zero_hashed(flat: torch.Tensor, keys: torch.Tensor, threshold: int) -> torch.Tensor:
    """``flat`` (1-D, fewer than 2³² elements) with element ``i`` zeroed where the v2 hash
    ``H(i; keys) < threshold`` (``keys`` uint32 ``[k0, k1]``): the function :func:`fused_zero`
    compiles (plain torch ops; compiled only: eager torch has no uint32 shift kernel)."""
    h = torch.arange(flat.numel(), dtype=torch.int64, device=flat.device).to(torch.uint32) ^ keys[0]
    h = _mix32_uint32(_mix32_uint32(h) ^ keys[1])
    return flat.masked_fill(h.to(torch.int64) < threshold, 0)


@functools.lru_cache(maxsize=1)
def _compiled() -> Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]:
    return torch.compile(zero_hashed, dynamic=True)


@functools.lru_cache(maxsize=None)
def _inductor_builds(device_type: str) -> bool:
    from asymlora.adapters.compiled import compile_problem

    return compile_problem(device_type) is None


#: The conditions of :func:`fused_zero_applies`, in order: ``(name, check(tensor) -> bool)``.
FUSED_RULES: tuple[tuple[str, Callable[[torch.Tensor], bool]], ...] = (
    ("eager", lambda tensor: not torch.compiler.is_compiling()),
    ("cpu", lambda tensor: tensor.device.type == "cpu"),
    ("no autograd through it", lambda tensor: not (tensor.requires_grad and torch.is_grad_enabled())),
    ("numpy engine", lambda tensor: hash_engine_for(tensor.device) == "numpy"),
    ("switched on", lambda tensor: MASK_FUSION.enabled),
    ("large enough", lambda tensor: MASK_FUSION.min_elements <= tensor.numel() < 2**32),
    ("inductor builds", lambda tensor: _inductor_builds(tensor.device.type)),
)


def fused_zero_applies(tensor: torch.Tensor) -> bool:
    """Whether :func:`fused_zero` zeroes ``tensor``'s dropped elements now (:data:`FUSED_RULES`)."""
    return all(check(tensor) for _, check in FUSED_RULES)


def fused_zero(tensor: torch.Tensor, keys: torch.Tensor, threshold: int) -> torch.Tensor:
    """:func:`zero_hashed` on ``tensor`` flattened, compiled once per process and dtype
    (``dynamic=True`` and always 1-D: no recompilation per shape or number of dimensions).

    Args:
        tensor (torch.Tensor): a CPU tensor with fewer than 2³² elements.
        keys: int64 ``[k0, k1]``, a tensor or a pair of ints.
        threshold (int): ``round(p · 2³²)``.

    Returns:
        torch.Tensor: a new tensor of ``tensor``'s shape and dtype. Should compiling fail after all
        (inductor's build, not only its compiler, can break), a warning says so, fusion is turned
        off for the process and the mask comes from the hash engines (the same elements zeroed).
    """
    try:
        keys = torch.as_tensor(keys, dtype=torch.int64).to(torch.uint32)
        return _compiled()(tensor.detach().reshape(-1), keys, threshold).view(tensor.shape)
    except Exception as err:    # inductor failed to build after all: turn fusion off, same bits without it
        MASK_FUSION.enabled = False
        warnings.warn(f"compiling the dropout mask failed ({type(err).__name__}: {str(err)[:200]}); v2 masks are "
                      f"built without torch.compile from now on (same masks, slower); set ASYMLORA_MASK_COMPILE=0 "
                      f"to skip the attempt", RuntimeWarning, stacklevel=2)
        mask = HASH_ENGINES[hash_engine_for(tensor.device)](keys, 0, tensor.numel(), threshold, tensor.device)
        return tensor.masked_fill(mask.view(tensor.shape), 0)
