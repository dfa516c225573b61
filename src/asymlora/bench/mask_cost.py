"""The cost of the v2 dropout mask at one adapted module, per engine, against ``F.dropout``.

The lean B-only layer (:class:`asymlora.adapters.linear.HashedFrozenAProjection`) builds its v2
mask (:func:`asymlora.adapters.dropout.hashed_drop_mask`) in forward and again in backward. For
each module input shape (tiny BERT: 4 × 32 × 64; MiniLM: 16 × 128 × 384; SmolLM2: 4 × 256 × 576
and 4 × 256 × 1536) this times, interleaved repeat by repeat so that a change of machine load hits
every variant alike:

* ``draw_and_zero``: one "build the mask, zero the dropped elements" (``x.masked_fill(m, 0)``) with
  each hash engine (:data:`asymlora.adapters.mask_hash.HASH_ENGINES`: ``torch``, the int64 form
  every v2 mask was built with before, and ``numpy``, the uint32 form), and ``F.dropout(x, p)``
  (PEFT's per-forward draw), plus ``mask_only`` (the bool mask alone) per engine;
* ``lean_forward_backward``: the lean function forward + backward with ``p`` per engine, and
  without dropout (:class:`~asymlora.adapters.linear.FrozenAProjection` with ``p = 0``: the floor);
  ``mask_overhead_ms`` is each engine's median minus the floor's, the mask's cost per module and
  step, and ``ratio`` the with-dropout median over the floor's.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import torch
from torch.nn import functional as F

from asymlora.adapters.dropout import hashed_drop_mask
from asymlora.adapters.linear import FrozenAProjection, HashedFrozenAProjection
from asymlora.adapters.mask_hash import HASH_ENGINES, forced_mask_hash
from asymlora.adapters.mask_stream import split_base, stream_keys

#: Module input shapes measured by default (batch × tokens × d_in): tiny BERT's, MiniLM's and SmolLM2's two widths.
MASK_COST_SHAPES = ((4, 32, 64), (16, 128, 384), (4, 256, 576), (4, 256, 1536))


def _interleaved(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Median and min (ms) of each variant, run once each per repeat after one untimed call."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():
        run()
    for _ in range(repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: {"median_ms": 1000 * statistics.median(t), "min_ms": 1000 * min(t)} for name, t in times.items()}


def _with_engine(engine: str, run: Callable[[], object]) -> Callable[[], object]:
    def call():
        with forced_mask_hash(engine):
            return run()
    return call


def _draw_variants(x: torch.Tensor, keys: torch.Tensor, p: float) -> dict[str, Callable[[], object]]:
    variants: dict[str, Callable[[], object]] = {}
    for engine in HASH_ENGINES:
        variants[f"v2_{engine}"] = _with_engine(engine, lambda: x.masked_fill(hashed_drop_mask(keys, x.shape, p), 0))
        variants[f"v2_{engine}_mask_only"] = _with_engine(engine, lambda: hashed_drop_mask(keys, x.shape, p))
    variants["peft_dropout"] = lambda: F.dropout(x, p, training=True)
    return variants


def _lean_variants(x: torch.Tensor, rank: int, p: float, keys: torch.Tensor,
                   generator: torch.Generator) -> dict[str, Callable[[], object]]:
    width = x.shape[-1]
    a = torch.linalg.qr(torch.randn(width, rank, generator=generator))[0].t().contiguous()
    b = torch.randn(width, rank, generator=generator).requires_grad_(True)
    leaf = x.clone().requires_grad_(True)
    grad = torch.randn(x.shape, generator=generator)

    def hashed():
        leaf.grad = b.grad = None
        HashedFrozenAProjection.apply(leaf, a, b, 2.0, p, keys).backward(grad)

    def floor():
        leaf.grad = b.grad = None
        FrozenAProjection.apply(leaf, a, b, 2.0, 0.0, 0).backward(grad)

    return {**{f"v2_{engine}": _with_engine(engine, hashed) for engine in HASH_ENGINES}, "without_dropout": floor}


def measure_shape(shape: tuple[int, ...], rank: int = 8, p: float = 0.05, repeats: int = 30, seed: int = 0) -> dict:
    """Both measurements of the module docstring on one input shape.

    Args:
        shape (tuple[int, ...]): the module input's shape (…, d_in).
        rank (int): the adapter rank r of the lean function.
        p (float): the dropout probability.
        repeats (int): timed repeats per variant.
        seed (int): seed of the input, factors and mask keys.

    Returns:
        dict: ``{"shape", "elements", "draw_and_zero": {variant: {median_ms, min_ms}},
        "lean_forward_backward": {variant: …, "mask_overhead_ms": {engine: ms}, "ratio": {engine: x}}}``.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator)
    keys = torch.tensor(stream_keys(*split_base(seed + 2**40), 3), dtype=torch.int64)
    lean = _interleaved(_lean_variants(x, rank, p, keys, generator), repeats)
    floor = lean["without_dropout"]["median_ms"]
    lean["mask_overhead_ms"] = {e: lean[f"v2_{e}"]["median_ms"] - floor for e in HASH_ENGINES}
    lean["ratio"] = {e: lean[f"v2_{e}"]["median_ms"] / floor for e in HASH_ENGINES}
    return {"shape": list(shape), "elements": x.numel(), "draw_and_zero": _interleaved(_draw_variants(x, keys, p), repeats),
            "lean_forward_backward": lean}


def measure_mask_cost(shapes=MASK_COST_SHAPES, rank: int = 8, p: float = 0.05, repeats: int = 30,
                      seed: int = 0) -> dict:
    """:func:`measure_shape` on each shape, with the threads and the load average before and after.

    Returns:
        dict: ``{"rank", "p", "repeats", "threads", "load_average": {"before", "after"}, "shapes": [...]}``.
    """
    before = os.getloadavg()
    rows = [measure_shape(tuple(shape), rank, p, repeats, seed) for shape in shapes]
    return {"rank": rank, "p": p, "repeats": repeats, "threads": torch.get_num_threads(),
            "load_average": {"before": list(before), "after": list(os.getloadavg())}, "shapes": rows}


def mask_cost_markdown(document: dict) -> str:
    """The measurement as a markdown table (one row per shape; medians in ms)."""
    lines = [f"v2 mask cost per module call, p = {document['p']}, r = {document['rank']}, "
             f"{document['threads']} thread(s), {document['repeats']} interleaved repeats, medians (ms).", "",
             "| shape | torch (before) | numpy (now) | F.dropout | lean fwd+bwd torch | lean numpy | lean p=0 | "
             "overhead torch | overhead numpy |", "|---|---|---|---|---|---|---|---|---|"]
    for row in document["shapes"]:
        draw, lean = row["draw_and_zero"], row["lean_forward_backward"]
        cells = [draw["v2_torch"], draw["v2_numpy"], draw["peft_dropout"], lean["v2_torch"], lean["v2_numpy"],
                 lean["without_dropout"]]
        lines.append(f"| {' × '.join(map(str, row['shape']))} | "
                     + " | ".join(f"{c['median_ms']:.2f}" for c in cells)
                     + f" | {lean['mask_overhead_ms']['torch']:.2f} ({lean['ratio']['torch']:.2f}×) | "
                       f"{lean['mask_overhead_ms']['numpy']:.2f} ({lean['ratio']['numpy']:.2f}×) |")
    return "\n".join(lines) + "\n"
