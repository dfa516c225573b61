"""The v2 dropout mask in one C loop: hash and zero in a single pass, a few microseconds per call.

Eager v2 dropout on the CPU otherwise builds the mask in uint32 numpy (about ten passes over the
input, then a ``masked_fill``) or, from 65,536 elements, in a ``torch.compile``-d loop whose guards
cost about 0.1 ms per call. Small inputs (tiny BERT: 8,192 elements per module) pay those fixed
costs twice per module and step. This module compiles, once per machine, a plain C file (no torch
headers: a C compiler and a second are all it takes) and calls it through :mod:`ctypes`::

    for j in [0, count):  i = low + j   (uint32)
        h = mix32(mix32(i ⊕ k0) ⊕ k1)          (k1 already holds ⊕ ⌊index / 2³²⌋ of the segment)
        dst[j] = 0 if h < t else src[j]

``mix32`` is :func:`~asymlora.adapters.mask_stream.mix32` in ``uint32_t`` (C unsigned arithmetic wraps
modulo 2³² and shifts logically): the bits of the int64 torch form, tested against it
(``tests/test_mask_native.py``). Zeroing copies elements as 2-, 4- or 8-byte integers, so one
loop serves fp16, bf16, fp32 and fp64 (a zero bit pattern is +0.0 in each). A loop of 32-bit lanes
that gcc vectorises (``target_clones`` picks AVX2 where the CPU has it, on x86-64 Linux).

**Build** (:func:`native_library`): the source below, compiled by ``$CC`` (else ``cc``, ``gcc`` or
``clang``) with ``-O3 -shared -fPIC`` into ``<cache>/kernels/mask_native-<digest>.so`` (``<cache>``:
``$ASYMLORA_CACHE`` or ``~/.cache/asymlora``; the digest covers the source, the flags, the compiler
and the machine type), written under a temporary name and renamed, so concurrent processes never
load half a file. No compiler: None, silently (the numpy engine is the documented fallback). A
compiler that fails: one RuntimeWarning, then None for the rest of the process. Same bits every way.

Inside ``torch.compile`` on the CPU the loop is the operator ``asymlora::native_zero``
(:func:`native_zero_op`, with a shape-only fake and its own gradient rule): one opaque graph node
instead of the hash traced as int64 tensor ops, cheaper to trace and to run; no graph break.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from asymlora.adapters.mask_stream import MASK32, MIX_MULTIPLIERS
from asymlora.paths import cache_dir

#: One 32-bit segment of the element index (``⌊i / 2³²⌋`` is constant within it, folded into ``k1``).
SEGMENT = 1 << 32

_CLONES = '__attribute__((target_clones("avx2", "default")))'

SOURCE = """
#include <stdint.h>
#ifndef CLONES
#define CLONES
#endif
static inline uint32_t mix32(uint32_t h) {
    h ^= h >> 16; h *= %(m0)su; h ^= h >> 15; h *= %(m1)su; return h ^ (h >> 16);
}
#define ZERO(NAME, T)                                                                           \\
CLONES void NAME(const T *src, T *dst, uint32_t low, int64_t count, uint32_t k0, uint32_t k1,  \\
                 uint32_t t) {                                                                  \\
    for (int64_t j = 0; j < count; ++j) {                                                       \\
        uint32_t h = mix32(mix32((low + (uint32_t)j) ^ k0) ^ k1);                               \\
        dst[j] = h < t ? (T)0 : src[j];                                                         \\
    }                                                                                           \\
}
ZERO(zero_16, uint16_t)
ZERO(zero_32, uint32_t)
ZERO(zero_64, uint64_t)
CLONES void drop_mask(uint8_t *out, uint32_t low, int64_t count, uint32_t k0, uint32_t k1, uint32_t t) {
    for (int64_t j = 0; j < count; ++j)
        out[j] = mix32(mix32((low + (uint32_t)j) ^ k0) ^ k1) < t;
}
""" % {"m0": hex(MIX_MULTIPLIERS[0]), "m1": hex(MIX_MULTIPLIERS[1])}

#: Element size in bytes -> the C function zeroing elements of that size.
ZERO_FUNCTIONS = {2: "zero_16", 4: "zero_32", 8: "zero_64"}
_ZERO_ARGS = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint32,
              ctypes.c_uint32]
_MASK_ARGS = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32]


def c_compiler() -> str | None:
    """The C compiler to build with: ``$CC`` if set (None if it is not on PATH), else the first of
    ``cc``, ``gcc``, ``clang`` on PATH, else None."""
    if os.environ.get("CC"):
        return shutil.which(os.environ["CC"].split()[0])
    return next((found for name in ("cc", "gcc", "clang") if (found := shutil.which(name))), None)


def build_flags() -> list[str]:
    """``-O3 -shared -fPIC``, plus ``-DCLONES=…`` (AVX2 and default clones) on x86-64 Linux (function
    clones need the ELF loader's ifunc support, which macOS and Windows lack)."""
    flags = ["-O3", "-shared", "-fPIC"]
    if platform.machine().lower() in ("x86_64", "amd64") and sys.platform.startswith("linux"):
        flags.append(f"-DCLONES={_CLONES}")
    return flags


def library_path(compiler: str, flags: list[str]) -> Path:
    """Where the built library is cached: the digest names source, flags, compiler and machine."""
    digest = hashlib.sha256("\0".join([SOURCE, *flags, compiler, platform.machine()]).encode()).hexdigest()[:16]
    return cache_dir() / "kernels" / f"mask_native-{digest}.so"


def build_library(compiler: str, flags: list[str], target: Path) -> Path:
    """Compile :data:`SOURCE` into ``target`` (a temporary name in the same folder, then a rename).

    Raises:
        RuntimeError: the compiler failed (its last lines of output in the message).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        source = Path(scratch) / "mask_native.c"
        source.write_text(SOURCE)
        built = Path(scratch) / target.name
        result = subprocess.run([compiler, *flags, str(source), "-o", str(built)], capture_output=True, text=True)
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise RuntimeError(f"{compiler} exited with {result.returncode}: {tail}")
        os.replace(built, target)
    return target


def _bind(library: ctypes.CDLL) -> ctypes.CDLL:
    for name in ZERO_FUNCTIONS.values():
        getattr(library, name).argtypes, getattr(library, name).restype = _ZERO_ARGS, None
    library.drop_mask.argtypes, library.drop_mask.restype = _MASK_ARGS, None
    return library


@functools.lru_cache(maxsize=1)
def native_library() -> ctypes.CDLL | None:
    """The loaded kernel library, built on first use; None when it cannot be had (see the module docstring)."""
    compiler = c_compiler()
    if compiler is None:
        return None
    flags = build_flags()
    path = library_path(compiler, flags)
    try:
        if not path.exists():
            build_library(compiler, flags, path)
        return _bind(ctypes.CDLL(str(path)))
    except (OSError, RuntimeError, AttributeError) as err:
        warnings.warn(f"building the native dropout-mask kernel failed ({err}); v2 masks are built with numpy "
                      f"instead (same masks, slower); set ASYMLORA_MASK_HASH=numpy to skip the attempt",
                      RuntimeWarning, stacklevel=2)
        return None


def native_available() -> bool:
    """Whether the C kernel is built and loaded (building it now if needed)."""
    return native_library() is not None


def index_segments(start: int, count: int, k1: int):
    """Per 2³²-segment of the indices ``[start, start + count)``: ``(offset into the output, low index
    within the segment, size, the segment's second key k1 ⊕ ⌊i / 2³²⌋)`` (within a segment the hash is
    the 32-bit one of its low indices with that key)."""
    index, end = start, start + count
    while index < end:
        segment, low = divmod(index, SEGMENT)
        size = min(end, (segment + 1) * SEGMENT) - index
        yield index - start, low, size, (k1 ^ segment) & MASK32
        index += size


def native_mask(keys, start: int, count: int, threshold: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``H(i) < threshold`` for ``i`` in ``[start, start + count)``: the bits of
    :func:`~asymlora.adapters.mask_hash.hash_mask_torch`, in C (eager, CPU only).

    Args:
        keys: ``(k0, k1)`` as ints or an int64 tensor ``[k0, k1]``.
        start, count, threshold: as :func:`~asymlora.adapters.mask_hash.hash_mask_torch`.
        device: must be the CPU.

    Returns:
        torch.Tensor: bool, shape (count,).

    Raises:
        ValueError: ``device`` is not the CPU, or the kernel is unavailable (:func:`native_available`).
    """
    library = _library_for(device)
    k0, k1 = key_ints(keys)
    if threshold > MASK32:                   # p within 2⁻³³ of 1: every 32-bit value is below it
        return torch.ones(count, dtype=torch.bool)
    out = np.empty(count, dtype=np.uint8)
    base = out.ctypes.data
    for offset, low, size, key in index_segments(start, count, k1):
        library.drop_mask(base + offset, low, size, k0, key, threshold)
    return torch.from_numpy(out.view(bool))


def native_zero(tensor: torch.Tensor, keys, threshold: int, inplace: bool = False) -> torch.Tensor:
    """``tensor`` with the elements where the v2 hash ``H(i; keys) < threshold`` set to zero.

    Args:
        tensor (torch.Tensor): a CPU floating tensor of 2-, 4- or 8-byte elements (any shape; made
            contiguous first if it is not).
        keys: ``(k0, k1)`` as ints or an int64 tensor ``[k0, k1]``.
        threshold (int): ``round(p · 2³²)``.
        inplace (bool): write into ``tensor`` (when contiguous; it must not need its own gradient).

    Returns:
        torch.Tensor: the zeroed tensor (``tensor`` itself when written in place).

    Raises:
        ValueError: not a CPU tensor, an element size without a kernel, or no kernel.
    """
    library = _library_for(tensor.device)
    function = ZERO_FUNCTIONS.get(tensor.element_size())
    if function is None:
        raise ValueError(f"no native dropout kernel for {tensor.dtype} ({tensor.element_size()}-byte elements)")
    source = tensor if tensor.is_contiguous() else tensor.contiguous()
    target = source if inplace else torch.empty_like(source)
    if threshold > MASK32:
        return target.zero_()
    k0, k1 = key_ints(keys)
    zero, size = getattr(library, function), source.element_size()
    for offset, low, count, key in index_segments(0, source.numel(), k1):
        zero(source.data_ptr() + offset * size, target.data_ptr() + offset * size, low, count, k0, key, threshold)
    if inplace and target is not tensor:
        return tensor.copy_(target)
    return target


def key_ints(keys) -> tuple[int, int]:
    """``(k0, k1)`` as Python ints, from a pair of ints or an int64 tensor ``[k0, k1]``."""
    return tuple(keys.tolist()) if isinstance(keys, torch.Tensor) else (int(keys[0]), int(keys[1]))


def _library_for(device) -> ctypes.CDLL:
    if torch.device(device).type != "cpu":
        raise ValueError(f"the native mask kernel runs on the CPU only, not on {device}")
    library = native_library()
    if library is None:
        raise ValueError("the native mask kernel is unavailable (no C compiler, or its build failed)")
    return library


# ---------------------------------------------------------------------------- inside torch.compile
@torch.library.custom_op("asymlora::native_zero", mutates_args=(), device_types="cpu")
def native_zero_op(tensor: torch.Tensor, keys: torch.Tensor, threshold: int) -> torch.Tensor:
    """:func:`native_zero` as a torch operator, for compiled graphs on the CPU: one opaque node that
    dynamo traces at no cost and inductor calls as is (instead of tracing the hash as int64 ops).

    Args:
        tensor (torch.Tensor): a CPU floating tensor (2-, 4- or 8-byte elements).
        keys (torch.Tensor): int64 ``[k0, k1]``.
        threshold (int): ``round(p · 2³²)``.

    Returns:
        torch.Tensor: a new contiguous tensor, ``tensor`` with the hashed elements zeroed. Its
        gradient is the incoming gradient with the same elements zeroed (the same operator).
    """
    return native_zero(tensor, keys, threshold)


@native_zero_op.register_fake
def _native_zero_shape(tensor: torch.Tensor, keys: torch.Tensor, threshold: int) -> torch.Tensor:
    return torch.empty_like(tensor, memory_format=torch.contiguous_format)


def _native_zero_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[1])
    ctx.threshold = inputs[2]


def _native_zero_backward(ctx, grad: torch.Tensor):
    (keys,) = ctx.saved_tensors
    return native_zero_op(grad, keys, ctx.threshold), None, None


native_zero_op.register_autograd(_native_zero_backward, setup_context=_native_zero_context)
