"""The cost of the regenerated dropout mask at one adapted module, in isolation.

The lean frozen-A path (:class:`asymlora.adapters.linear.FrozenAProjection`) draws the dropout
mask in forward and draws it again in backward. This measures, on a tensor of one module's input
shape (MiniLM: 16 × 128 × 384), the time of one "draw the mask and zero the dropped elements":

* ``now``: the forward's mask work in :func:`asymlora.adapters.dropout.project_dropped`: draw the
  dropped positions (geometric gaps) and subtract their sparse contribution from ``x Aᵀ`` — the
  product ``x Aᵀ`` itself, which runs without dropout too, is subtracted out;
* ``per_element``: one random 16-bit level per element (PCG64 ``random_raw``), compare, one numpy
  product with the boolean mask (the lean path's previous source);
* ``previous``: the first version (``Generator.bytes`` read as uint16, compare,
  ``torch.where(keep, x · scale, 0)``);
* ``bernoulli``: a torch-native regenerated mask (``bernoulli_`` with a seeded generator, then
  ``torch.where``);
* ``peft_dropout``: ``F.dropout`` (what PEFT runs once per forward; it saves its mask instead);

and the whole lean function, forward + backward, with the dropout probability and with 0: their
difference is what the mask costs per module and step.

:func:`measure_crossover` times the lean function with the mask path forced to ``saved`` and to
``regenerated`` over a range of input sizes: the size policy of
:data:`asymlora.adapters.dropout.MASK_POLICY` comes from it.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F

from asymlora.adapters.dropout import project_dropped
from asymlora.adapters.linear import FrozenAProjection


def _previous(x: torch.Tensor, seed: int, p: float) -> torch.Tensor:
    threshold = round(p * 65536)
    raw = np.random.Generator(np.random.PCG64(seed)).bytes(2 * x.numel())
    keep = torch.from_numpy(np.frombuffer(raw, dtype=np.uint16) >= threshold).view(x.shape)
    return torch.where(keep, x * (1 / (1 - threshold / 65536)), torch.zeros((), dtype=x.dtype))


def _per_element(x: torch.Tensor, seed: int, p: float) -> torch.Tensor:
    words = np.random.PCG64(seed).random_raw(-(-x.numel() // 4))
    keep = np.greater_equal(words.view(np.uint16)[: x.numel()], round(p * 65536)).reshape(tuple(x.shape))
    return torch.from_numpy(np.multiply(x.numpy(), keep))


def _sparse_correction(flat: torch.Tensor, a: torch.Tensor, seed: int, p: float) -> torch.Tensor:
    """The mask's share of :func:`project_dropped`: its result minus the plain product."""
    return project_dropped(flat, a, seed, p) - F.linear(flat, a)


def _bernoulli(x: torch.Tensor, seed: int, p: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    keep = torch.empty(x.shape).bernoulli_(1 - p, generator=generator).bool()
    return torch.where(keep, x / (1 - p), torch.zeros((), dtype=x.dtype))


def _median_ms(function, repeats: int) -> dict:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return {"median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times)}


def measure_mask_path(shape=(16, 128, 384), rank: int = 8, p: float = 0.05, repeats: int = 30,
                      seed: int = 0) -> dict:
    """Timings (ms, median and min of ``repeats``) of the mask sources and of the lean function."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator)
    a = torch.linalg.qr(torch.randn(shape[-1], rank, generator=generator))[0].t().contiguous()
    b = torch.randn(shape[-1], rank, generator=generator).requires_grad_(True)
    leaf = x.clone().requires_grad_(True)
    flat = x.reshape(-1, shape[-1])
    grad = torch.randn(shape, generator=generator)

    def lean(probability):
        def run():
            leaf.grad = b.grad = None
            FrozenAProjection.apply(leaf, a, b, 2.0, probability, 1234).backward(grad)
        return run

    result = {"shape": list(shape), "rank": rank, "p": p, "repeats": repeats, "threads": torch.get_num_threads(),
              "draw_and_apply": {
                  "now": _median_ms(lambda: _sparse_correction(flat, a, 7, p), repeats),
                  "per_element": _median_ms(lambda: _per_element(x, 7, p), repeats),
                  "previous": _median_ms(lambda: _previous(x, 7, p), repeats),
                  "bernoulli": _median_ms(lambda: _bernoulli(x, 7, p), repeats),
                  "peft_dropout": _median_ms(lambda: F.dropout(x, p, training=True), repeats)},
              "lean_forward_backward": {
                  "with_dropout": _median_ms(lean(p), repeats),
                  "without_dropout": _median_ms(lean(0.0), repeats)}}
    lean_times = result["lean_forward_backward"]
    lean_times["mask_cost_ms"] = lean_times["with_dropout"]["median_ms"] - lean_times["without_dropout"]["median_ms"]
    return result


#: Inputs the crossover is measured on: (tokens, width) pairs from 512 to 1.5 M elements.
CROSSOVER_SHAPES = ((128, 64), (256, 64), (512, 64), (1024, 64), (256, 384), (512, 128), (2048, 64),
                    (512, 384), (1024, 384), (2048, 384), (4096, 384), (1024, 1536))


def measure_crossover(shapes=CROSSOVER_SHAPES, rank: int = 8, p: float = 0.05, repeats: int = 25,
                      seed: int = 0) -> dict:
    """The lean function, forward + backward, on each (tokens × width) input with the mask path
    forced to ``saved``, to ``regenerated``, and without dropout; the three are interleaved per
    repeat. Returns per-shape medians (ms) and ``crossover_elements``: the smallest input size at
    which ``regenerated`` is at least as fast as ``saved`` and stays so at no fewer than half of
    the larger sizes (a majority rule, because single timings on a busy machine flip), or None."""
    from asymlora.adapters.dropout import forced_mask_path

    generator = torch.Generator().manual_seed(seed)
    rows = []
    for tokens, width in shapes:
        x = torch.randn(tokens, width, generator=generator).requires_grad_(True)
        a = torch.linalg.qr(torch.randn(width, rank, generator=generator))[0].t().contiguous()
        b = torch.randn(width, rank, generator=generator).requires_grad_(True)
        grad = torch.randn(tokens, width, generator=generator)
        times: dict[str, list[float]] = {"saved": [], "regenerated": [], "none": []}

        def once(path):
            with forced_mask_path(None if path == "none" else path):
                x.grad = b.grad = None
                start = time.perf_counter()
                FrozenAProjection.apply(x, a, b, 2.0, 0.0 if path == "none" else p, 99).backward(grad)
                return time.perf_counter() - start

        for path in times:
            once(path)
        for _ in range(repeats):
            for path in times:
                times[path].append(once(path))
        rows.append({"tokens": tokens, "width": width, "elements": tokens * width,
                     **{f"{path}_ms": 1000 * statistics.median(values) for path, values in times.items()}})
    rows.sort(key=lambda row: row["elements"])
    crossover = None
    for index, row in enumerate(rows):
        later = rows[index:]
        if row["regenerated_ms"] <= row["saved_ms"] and \
                2 * sum(r["regenerated_ms"] <= r["saved_ms"] for r in later) >= len(later):
            crossover = row["elements"]
            break
    return {"rank": rank, "p": p, "repeats": repeats, "threads": torch.get_num_threads(), "rows": rows,
            "crossover_elements": crossover}
