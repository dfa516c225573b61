"""The v2 dropout-mask hash, built by one of three engines with bit-identical results.

Element ``i`` (row-major index of the flat input) of a v2 mask with keys ``(k0, k1)`` and
threshold ``t = round(p · 2³²)`` is dropped iff::

    H(i) = mix32(mix32((i mod 2³²) ⊕ k0) ⊕ k1 ⊕ ⌊i / 2³²⌋) < t

(:func:`~asymlora.adapters.mask_stream.mix32`: xorshift-multiply modulo 2³²). Three engines compute
it (:data:`HASH_ENGINES`):

* ``"torch"``: int64 torch ops, in place on one int64 buffer (every product below 2⁶³, masked
  back to 32 bits). Runs on every device and is what ``torch.compile`` traces (an outer compiled
  model keeps its single graph). In eager mode on the CPU it is slow: about 24 elementwise
  kernels over ``numel`` int64 values, 3–5× ``F.dropout``'s time.
* ``"numpy"``: the same arithmetic on ``uint32`` numpy arrays (eager, CPU only). Unsigned 32-bit
  arithmetic wraps modulo 2³² and ``>>`` is a logical shift, which is exactly what the ``& MASK32``
  steps of the int64 form compute, so the bits are the same by construction (and tested against
  the int64 engine, ``tests/test_mask_hash.py``). Half the bytes per element and about 10 passes
  instead of 24: about 3× faster than ``F.dropout`` on MiniLM's and SmolLM2's module shapes
  (docs/results/bench/mask_cost/). Indices past 2³² are handled segment by segment: within a
  segment ``⌊i / 2³²⌋`` is a constant folded into ``k1``.
* ``"native"``: one C loop (:mod:`asymlora.adapters.mask_native`, compiled once per machine and
  called through ctypes; eager, CPU only): one pass, a few microseconds of fixed cost, and its
  zeroing form (:func:`~asymlora.adapters.mask_native.native_zero`) hashes and zeroes in the same
  pass: about a tenth of ``F.dropout``'s time.

:func:`hash_engine_for` picks ``"native"`` for eager CPU calls where its kernel builds (``"numpy"``
where it does not) and ``"torch"`` everywhere else (other devices, the meta device, inside a
``torch.compile`` trace); :data:`MASK_HASH` (or the environment variable
``ASYMLORA_MASK_HASH=torch|numpy|native``) forces one, for measurements and tests.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from asymlora.adapters.mask_native import SEGMENT, index_segments, key_ints, native_available, native_mask
from asymlora.adapters.mask_stream import MASK32, MIX_MULTIPLIERS, mix32_

#: ``(keys, start, count, threshold, device) -> flat bool mask of H(start … start+count−1) < threshold``.
HashEngine = Callable[[torch.Tensor, int, int, int, torch.device], torch.Tensor]
_NP_MULTIPLIERS = tuple(np.uint32(m) for m in MIX_MULTIPLIERS)


def hash_mask_torch(keys: torch.Tensor, start: int, count: int, threshold: int, device: torch.device) -> torch.Tensor:
    """``H(i) < threshold`` for ``i`` in ``[start, start + count)``, in int64 torch ops (traceable).

    Args:
        keys: the call's 32-bit keys ``[k0, k1]``, an int64 tensor or a pair of ints.
        start (int): the first element index (0 for a whole mask).
        count (int): how many elements.
        threshold (int): ``round(p · 2³²)``.
        device (torch.device): where to build it.

    Returns:
        torch.Tensor: bool, shape (count,).
    """
    h = torch.arange(start, start + count, dtype=torch.int64, device=device)
    high = h >> 32 if start + count > SEGMENT else None
    if high is not None:
        h.bitwise_and_(MASK32)
    mix32_(h.bitwise_xor_(keys[0]))
    h.bitwise_xor_(keys[1])
    if high is not None:
        h.bitwise_xor_(high)
    return mix32_(h) < threshold


def _mix32_uint32_(h: np.ndarray) -> np.ndarray:
    """:func:`~asymlora.adapters.mask_stream.mix32` in place on a uint32 array (wrapping products)."""
    h ^= h >> 16
    h *= _NP_MULTIPLIERS[0]
    h ^= h >> 15
    h *= _NP_MULTIPLIERS[1]
    h ^= h >> 16
    return h


def _segment_uint32(k0: int, k1: int, low: int, count: int, threshold: int) -> np.ndarray:
    """The mask of ``count`` indices of one segment, starting at offset ``low`` (< 2³²) in it;
    ``k1`` already holds the segment number (``k1 ⊕ ⌊i / 2³²⌋``)."""
    if threshold > MASK32:                  # p within 2⁻³³ of 1: every 32-bit value is below it
        return np.ones(count, dtype=bool)
    h = np.arange(low, low + count, dtype=np.uint32)
    h ^= np.uint32(k0)
    _mix32_uint32_(h)
    h ^= np.uint32(k1)
    return _mix32_uint32_(h) < np.uint32(threshold)


def hash_mask_numpy(keys: torch.Tensor, start: int, count: int, threshold: int, device: torch.device) -> torch.Tensor:
    """:func:`hash_mask_torch`'s bits, computed in uint32 numpy (eager, CPU only).

    Args:
        keys: ``[k0, k1]``, an int64 CPU tensor or a pair of ints.
        start, count, threshold: as :func:`hash_mask_torch`.
        device (torch.device): must be the CPU.

    Returns:
        torch.Tensor: bool, shape (count,), sharing memory with a numpy array.

    Raises:
        ValueError: ``device`` is not the CPU.
    """
    if torch.device(device).type != "cpu":
        raise ValueError(f"the numpy mask hash runs on the CPU only, not on {device}")
    k0, k1 = key_ints(keys)
    pieces = [_segment_uint32(k0, key, low, size, threshold) for _, low, size, key in index_segments(start, count, k1)]
    if len(pieces) == 1:
        return torch.from_numpy(pieces[0])
    return torch.from_numpy(np.concatenate(pieces) if pieces else np.zeros(0, dtype=bool))


#: The engines of the v2 hash, by name (same bits; see the module docstring).
HASH_ENGINES: dict[str, HashEngine] = {"torch": hash_mask_torch, "numpy": hash_mask_numpy, "native": native_mask}


def engine_from_environment(value: str | None = None) -> str | None:
    """The engine ``ASYMLORA_MASK_HASH`` forces (``value`` instead when given): None for unset or ``auto``.

    Raises:
        ValueError: a name that is not ``auto`` nor a key of :data:`HASH_ENGINES`.
    """
    value = (os.environ.get("ASYMLORA_MASK_HASH", "") if value is None else value).strip()
    if value in ("", "auto"):
        return None
    if value not in HASH_ENGINES:
        raise ValueError(f"ASYMLORA_MASK_HASH={value!r}: choose auto, {', '.join(HASH_ENGINES)}")
    return value


@dataclass
class MaskHash:
    """Which engine builds v2 masks: ``forced`` names one for every call, None picks by device
    (:func:`hash_engine_for`)."""

    forced: str | None = None


#: The process-wide choice, from ``ASYMLORA_MASK_HASH`` at import (see :class:`MaskHash`).
MASK_HASH = MaskHash(engine_from_environment())


@contextlib.contextmanager
def forced_mask_hash(name: str | None):
    """Build every v2 mask inside the block with engine ``name`` (None: by device).

    Raises:
        ValueError: an unknown engine.
    """
    name = engine_from_environment(name or "auto")
    previous, MASK_HASH.forced = MASK_HASH.forced, name
    try:
        yield
    finally:
        MASK_HASH.forced = previous


def hash_engine_for(device: torch.device | str) -> str:
    """The engine for a mask on ``device`` now: the forced one, else ``"torch"`` inside a
    ``torch.compile`` trace or off the CPU, else ``"native"`` where its C kernel builds
    (:func:`~asymlora.adapters.mask_native.native_available`), else ``"numpy"``.

    Args:
        device (torch.device | str): where the mask is needed.

    Returns:
        str: a key of :data:`HASH_ENGINES`.
    """
    if torch.compiler.is_compiling() or torch.device(device).type != "cpu":
        return "torch"
    return MASK_HASH.forced or ("native" if native_available() else "numpy")
