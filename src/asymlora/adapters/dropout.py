"""Dropout masks that are regenerated from a seed instead of being stored.

The memory-lean backward of a frozen-A adapter (:mod:`asymlora.adapters.linear`) keeps only an
integer seed per call (from the layer's :class:`~asymlora.adapters.mask_stream.MaskStream`) and draws the same mask again in backward. The mask source must therefore
be a pure function of ``(seed, shape, p, device)``, and cheap: it runs twice per adapted module
and step.

* CPU: the DROPPED positions are drawn directly, not a mask. In a Bernoulli(p) sequence the gaps
  between successive drops are geometric, ``G = ⌊ln U / ln(1 − p)⌋`` with ``U ~ U(0, 1]``
  (``P(G ≥ k) = (1 − p)^k``), so :func:`dropped_positions` draws about ``p · n`` uniforms from
  numpy's PCG64 and takes a cumulative sum: Bernoulli(p) per element (exact up to the float32
  grid of U, about 1e-7 in probability), with 20× fewer random numbers than one per element at
  p = 0.05. The dropped elements are then few, so:

  - forward: ``drop(x) Aᵀ = x Aᵀ − D Aᵀ`` where ``D`` holds only the dropped entries of x as a
    sparse CSR matrix (:func:`project_dropped`): no d_in-wide copy of x is made at all;
  - backward: the gradient's dropped entries are zeroed by one scatter (:func:`zero_dropped`).

  On MiniLM's shape (16 × 128 × 384, p = 0.05) drawing the positions takes about 0.13 ms and the
  sparse correction about 0.15 ms, against 0.4 ms to draw one random number per element and
  0.13–0.3 ms to multiply x by a dense mask (2 threads, AMD EPYC).
* CUDA and other devices: a ``torch.Generator`` on that device seeded with the seed (Philox on
  CUDA), ``rand < p``, applied densely with ``masked_fill``.

Either way the survivors are scaled by ``1 / (1 − p)``, so the layer is unbiased.

The above is mask stream ``"v1"`` (:mod:`asymlora.adapters.mask_stream`). Stream ``"v2"`` (the
default) uses :func:`hashed_drop_mask` / :func:`hashed_zero` instead: a pure tensor function of two
integer keys, the same on every device, in eager and compiled code; its mask is regenerated in
backward. Eager CPU calls hash and zero in one C loop (:mod:`asymlora.adapters.mask_native`, about
a tenth of ``F.dropout``'s time); where no C compiler builds it, in uint32 numpy
(:mod:`asymlora.adapters.mask_hash`) or, from 65,536 elements where inductor builds, one compiled
loop (:mod:`asymlora.adapters.mask_fused`), and there eager CPU inputs the size policy sends to
``"saved"`` keep the mask bit-packed (:func:`v2_keeps_mask`; never in a compiled graph). The same
bits as the int64 torch form every way (docs/results/bench/mask_cost/).

**Which path, by size** (:data:`MASK_POLICY`, :func:`mask_path_for`). The regenerated CPU path
has a fixed cost per call (a CSR matrix, a sparse product, a scatter: about 0.3 ms together)
that dominates on small inputs, where a mask is cheap to keep. So the lean layer uses

* ``"saved"`` for CPU inputs of at most ``MASK_POLICY.saved_max_elements`` elements: the mask
  (:func:`drop_mask`, the same mask for the same seed) is applied densely in forward and kept
  **bit-packed** (one bit per element, ``numel / 8`` bytes, :func:`pack_mask`) for backward;
* ``"regenerated"`` above it, and on every other device: only the seed is kept. (The meta
  device, on which the memory planner traces shapes without data, follows the CPU rule.)

The threshold is the crossover measured by ``asymlora bench --sweep`` (the ``mask_crossover``
entry of its JSON; docs/benchmarks.md). Both paths draw the identical mask, so which one ran
never changes a result, only time and the bytes kept.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from asymlora.adapters.mask_fused import fused_zero, fused_zero_applies
from asymlora.adapters.mask_hash import HASH_ENGINES, MASK_HASH, hash_engine_for
from asymlora.adapters.mask_native import ZERO_FUNCTIONS, native_available, native_zero, native_zero_op

_SPARSE_DTYPES = (torch.float32, torch.float64)


@dataclass
class MaskPolicy:
    """When the lean layer keeps a bit-packed mask instead of regenerating it.

    ``saved_max_elements``: largest input (elements of x) that takes the ``"saved"`` path on the
    CPU; ``forced``: ``"saved"`` or ``"regenerated"`` for every call (measurements and tests), or
    None to decide by size.
    """

    saved_max_elements: int = 98_304
    forced: str | None = None


#: The process-wide policy (see the module docstring).
MASK_POLICY = MaskPolicy()
MASK_PATHS = ("saved", "regenerated")


def mask_path_for(numel: int, device: torch.device | str) -> str:
    """``"saved"`` or ``"regenerated"``: the path the lean layer takes for an input of ``numel`` elements."""
    if MASK_POLICY.forced is not None:
        return MASK_POLICY.forced
    if torch.device(device).type in ("cpu", "meta") and numel <= MASK_POLICY.saved_max_elements:
        return "saved"
    return "regenerated"


@contextlib.contextmanager
def forced_mask_path(path: str | None):
    """Force every lean call inside the block onto ``path`` (``"saved"``, ``"regenerated"`` or None)."""
    if path is not None and path not in MASK_PATHS:
        raise ValueError(f"unknown mask path {path!r}; choose one of {', '.join(MASK_PATHS)}")
    previous, MASK_POLICY.forced = MASK_POLICY.forced, path
    try:
        yield
    finally:
        MASK_POLICY.forced = previous


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """A boolean tensor as uint8 bits (``ceil(numel / 8)`` bytes, numpy's bit order)."""
    flat = mask.reshape(-1)
    if flat.device.type == "cpu":
        return torch.from_numpy(np.packbits(flat.numpy()))
    padded = torch.nn.functional.pad(flat.to(torch.uint8), (0, -flat.numel() % 8)).view(-1, 8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=flat.device)
    return (padded * weights).sum(1, dtype=torch.uint8)


def unpack_mask(packed: torch.Tensor, shape: torch.Size | tuple) -> torch.Tensor:
    """The inverse of :func:`pack_mask`: a boolean tensor of ``shape``."""
    count = math.prod(shape)
    if packed.device.type == "cpu":
        return torch.from_numpy(np.unpackbits(packed.numpy(), count=count).view(bool)).view(tuple(shape))
    shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(1) >> shifts) & 1
    return bits.reshape(-1)[:count].bool().view(tuple(shape))


def keep_scale(p: float) -> float:
    """``1 / (1 − p)``: the factor survivors are multiplied by (inverted dropout)."""
    return 1.0 / (1.0 - p)


def dropped_positions(seed: int, count: int, p: float) -> np.ndarray:
    """Sorted flat indices in ``[0, count)``, each index included independently with probability p.

    Geometric gaps from PCG64(seed), computed in float32 (``U`` on a 2⁻²⁴ grid, so each gap law is
    exact to about 1e-7 in probability); the first batch of gaps covers ``count`` except with
    probability below 1e-9, and more are drawn from the same stream if it does not.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"dropout probability must be in (0, 1), got {p}")
    rng = np.random.Generator(np.random.PCG64(seed))
    log_keep = np.float32(math.log1p(-p))
    batch = int(count * p + 6.0 * math.sqrt(count * p * (1.0 - p)) + 16)
    chunks, last = [], -1
    while True:
        ratio = np.log(np.float32(1.0) - rng.random(batch, dtype=np.float32))
        ratio /= log_keep                                   # >= 0, so truncation is the floor
        positions = last + np.cumsum(ratio.astype(np.int64) + 1)
        if positions[-1] >= count:
            chunks.append(positions[: np.searchsorted(positions, count)])
            break
        chunks.append(positions)
        last = int(positions[-1])
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def drop_mask(seed: int, shape: torch.Size | tuple, p: float, device: torch.device | str) -> torch.Tensor:
    """A boolean tensor of ``shape``: True where the element is dropped. Deterministic in ``seed``."""
    device = torch.device(device)
    if device.type == "cpu":
        mask = np.zeros(math.prod(shape), dtype=bool)
        mask[dropped_positions(seed, mask.size, p)] = True
        return torch.from_numpy(mask).view(tuple(shape))
    if device.type == "meta":    # shapes only (memory planning): no values to draw
        return torch.empty(tuple(shape), dtype=torch.bool, device=device)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return torch.rand(shape, generator=generator, device=device) < p


def keep_mask(seed: int, shape: torch.Size | tuple, p: float, device: torch.device | str) -> torch.Tensor:
    """A boolean tensor of ``shape``: True where the element is kept (``~drop_mask``)."""
    return ~drop_mask(seed, shape, p, device)


def _sparse_path(tensor: torch.Tensor) -> bool:
    return tensor.device.type == "cpu" and tensor.dtype in _SPARSE_DTYPES


def project_dropped(x: torch.Tensor, A: torch.Tensor, seed: int, p: float) -> torch.Tensor:
    """``(x with the dropped entries zeroed) Aᵀ``, unscaled. x (n, d_in), A (r, d_in) -> (n, r).

    CPU: ``x Aᵀ − D Aᵀ`` with ``D`` the dropped entries of x as an (n × d_in) CSR matrix (about
    p · n · d_in nonzeros); elsewhere a dense ``masked_fill`` then the product.
    """
    if not _sparse_path(x):
        return torch.nn.functional.linear(x.masked_fill(drop_mask(seed, x.shape, p, x.device), 0), A)
    rows_count, width = x.shape
    positions = dropped_positions(seed, x.numel(), p)
    rows = positions // width                                   # sorted, since positions are
    row_starts = np.searchsorted(rows, np.arange(rows_count + 1))
    flat = torch.from_numpy(positions)
    dropped = _csr(torch.from_numpy(row_starts), torch.from_numpy(positions - rows * width), x.reshape(-1)[flat],
                   (rows_count, width))
    return torch.nn.functional.linear(x, A) - dropped @ A.t()


_CSR_WARNED = False


def _csr(row_starts, columns, values, size) -> torch.Tensor:
    """A CSR matrix. torch warns once per process that CSR support is "beta"; that one warning is
    silenced here, locally (no process-wide filter is installed)."""
    global _CSR_WARNED
    if _CSR_WARNED:
        return torch.sparse_csr_tensor(row_starts, columns, values, size=size, check_invariants=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        matrix = torch.sparse_csr_tensor(row_starts, columns, values, size=size, check_invariants=False)
    _CSR_WARNED = True
    return matrix


def zero_dropped(tensor: torch.Tensor, seed: int, p: float, inplace: bool = False) -> torch.Tensor:
    """``tensor`` with the elements of ``drop_mask(seed, tensor.shape, p)`` set to zero (unscaled).

    CPU: one scatter of zeros at :func:`dropped_positions` (about p · numel writes). Elsewhere
    ``masked_fill``. ``inplace`` overwrites ``tensor`` (which must then not need its own gradient).
    """
    if tensor.device.type != "cpu":
        mask = drop_mask(seed, tensor.shape, p, tensor.device)
        return tensor.masked_fill_(mask, 0) if inplace else tensor.masked_fill(mask, 0)
    target = tensor if inplace and tensor.is_contiguous() else tensor.contiguous().clone()
    target.view(-1)[torch.from_numpy(dropped_positions(seed, target.numel(), p))] = 0
    if inplace and target is not tensor:
        tensor.copy_(target)
        return tensor
    return target


def drop_threshold(p: float) -> int:
    """``round(p · 2³²)``: a 32-bit hash below it drops its element (probability p within 2⁻³³)."""
    return int(round(p * 2**32))


def hashed_drop_mask(keys: torch.Tensor, shape: torch.Size | tuple, p: float,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """The v2 drop mask: True where element ``i`` (row-major) has ``H(i; k0, k1) < round(p · 2³²)``.

    ``H(i) = mix32(mix32((i mod 2³²) ⊕ k0) ⊕ k1 ⊕ ⌊i / 2³²⌋)`` (:func:`~asymlora.adapters.mask_stream.mix32`),
    built by the engine :func:`~asymlora.adapters.mask_hash.hash_engine_for` picks: uint32 numpy in
    eager CPU code (about a third of ``F.dropout``'s time), int64 torch ops elsewhere and inside a
    ``torch.compile`` trace (one fused loop there). Both give the same bits.

    Args:
        keys: int64 ``[k0, k1]``, a tensor or a pair of ints (:meth:`~asymlora.adapters.mask_stream.CounterMaskStream.next_keys`).
        shape (torch.Size | tuple): the mask's shape.
        p (float): the drop probability in (0, 1).
        device: where to build it (default: ``keys``' device).

    Returns:
        torch.Tensor: a bool tensor of ``shape``.
    """
    device = keys.device if device is None else torch.device(device)
    engine = HASH_ENGINES[hash_engine_for(device)]
    return engine(keys, 0, math.prod(shape), drop_threshold(p), device).view(tuple(shape))


def hashed_zero(tensor: torch.Tensor, keys: torch.Tensor, p: float, may_overwrite: bool = False) -> torch.Tensor:
    """``tensor`` with the elements of ``hashed_drop_mask(keys, tensor.shape, p)`` set to zero (unscaled).

    Eager on the CPU, in this order: the native C loop where its kernel builds
    (:func:`~asymlora.adapters.mask_native.native_zero`: hash and zero in one pass); else, from
    ``MASK_FUSION.min_elements`` elements where inductor builds, one compiled loop
    (:func:`~asymlora.adapters.mask_fused.fused_zero`); otherwise, and in every traced or non-CPU
    call, ``masked_fill`` with :func:`hashed_drop_mask`. The same elements are zeroed every way.

    Args:
        tensor (torch.Tensor): any shape.
        keys: int64 ``[k0, k1]``, a tensor or a pair of ints.
        p (float): the drop probability in (0, 1).
        may_overwrite (bool): the caller no longer needs ``tensor`` (and it needs no gradient of
            its own): ``masked_fill`` and the native loop then write into it, while the fused loop
            writes a new tensor anyway (copying back would cost a pass). Always use the returned tensor.

    Returns:
        torch.Tensor: the zeroed tensor (``tensor`` itself or a new one).
    """
    threshold = drop_threshold(p)
    if native_zero_applies(tensor):
        return native_zero(tensor, keys, threshold, inplace=may_overwrite)
    if native_op_applies(tensor, keys):
        return native_zero_op(tensor, keys, threshold).view(tensor.shape)
    if fused_zero_applies(tensor):
        return fused_zero(tensor, keys, threshold)
    mask = hashed_drop_mask(keys, tensor.shape, p, tensor.device)
    return tensor.masked_fill_(mask, 0) if may_overwrite else tensor.masked_fill(mask, 0)


def native_zero_applies(tensor: torch.Tensor) -> bool:
    """Whether :func:`hashed_zero` uses the native C loop for ``tensor`` now: the engine for its
    device is ``"native"`` (eager, CPU, kernel built: :func:`~asymlora.adapters.mask_hash.hash_engine_for`),
    no autograd through it, and 2-, 4- or 8-byte elements."""
    return (not (tensor.requires_grad and torch.is_grad_enabled()) and tensor.element_size() in ZERO_FUNCTIONS
            and hash_engine_for(tensor.device) == "native")


def native_op_applies(tensor: torch.Tensor, keys) -> bool:
    """Whether :func:`hashed_zero` inserts the native loop as one operator into a ``torch.compile``
    graph (:func:`~asymlora.adapters.mask_native.native_zero_op`): inside a trace, on the CPU, keys
    as a tensor, no hash engine forced but ``"native"``, the kernel built, 2/4/8-byte elements. Elsewhere
    in a trace (other devices, another engine forced) the hash is traced as int64 tensor ops."""
    return (torch.compiler.is_compiling() and tensor.device.type == "cpu" and isinstance(keys, torch.Tensor)
            and MASK_HASH.forced in (None, "native") and tensor.element_size() in ZERO_FUNCTIONS
            and _native_built())


@torch.compiler.assume_constant_result
def _native_built() -> bool:
    """:func:`~asymlora.adapters.mask_native.native_available`, evaluated once when traced (a constant of the graph)."""
    return native_available()


def v2_keeps_mask(tensor: torch.Tensor) -> bool:
    """Whether the lean v2 function keeps its mask for backward (bit-packed, :func:`pack_mask`)
    instead of regenerating it: in eager code on inputs the size policy sends to ``"saved"``
    (:func:`mask_path_for`: the CPU, at most ``MASK_POLICY.saved_max_elements`` elements), where
    the numpy hash's fixed cost per call outweighs one bit per element kept — unless the native C
    loop zeroes (:func:`native_zero_applies`: a few microseconds, so regenerating wins at every
    size) and the policy does not force ``"saved"``. Never inside a ``torch.compile`` trace."""
    if torch.compiler.is_compiling() or mask_path_for(tensor.numel(), tensor.device) != "saved":
        return False
    device = "cpu" if tensor.device.type == "meta" else tensor.device   # the planner traces what the CPU does
    return MASK_POLICY.forced == "saved" or hash_engine_for(device) != "native"


def apply_mask(tensor: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    """``tensor ⊙ keep / (1 − p)``: inverted dropout with a given keep-mask (a new tensor)."""
    return torch.where(keep, tensor * keep_scale(p), torch.zeros((), dtype=tensor.dtype, device=tensor.device))

