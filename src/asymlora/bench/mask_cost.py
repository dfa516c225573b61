"""The cost of the v2 dropout mask at one adapted module, per engine, against ``F.dropout``.

The lean B-only layer (:class:`asymlora.adapters.linear.HashedFrozenAProjection`) builds its v2
mask (:func:`asymlora.adapters.dropout.hashed_drop_mask`) in forward and again in backward. For
each module input shape (tiny BERT: 4 × 32 × 64; MiniLM: 16 × 128 × 384; SmolLM2: 4 × 256 × 576
and 4 × 256 × 1536) this times, interleaved repeat by repeat so that a change of machine load hits
every variant alike:

* ``draw_and_zero``: one "build the mask, zero the dropped elements"
  (:func:`asymlora.adapters.dropout.hashed_zero`) per way of building it (:data:`WAYS`): ``torch``,
  the int64 hash every v2 mask was built with before, ``numpy``, the uint32 hash, ``fused``, the
  compiled loop of :mod:`asymlora.adapters.mask_fused` (from its size threshold; ``numpy`` below),
  ``native``, the C loop of :mod:`asymlora.adapters.mask_native`, and ``auto``, what the layer does by default
  (``auto_path``: the native loop where its kernel builds, else the compiled fused loop of
  :mod:`asymlora.adapters.mask_fused` where that applies, else ``numpy``); ``F.dropout(x, p)``
  (PEFT's per-forward draw); and ``mask_only`` (the bool mask alone) per hash engine;
* ``lean_forward_backward``: the lean function forward + backward with ``p`` per way, and without
  dropout (:class:`~asymlora.adapters.linear.FrozenAProjection` with ``p = 0``: the floor);
  ``mask_overhead_ms`` is each way's median minus the floor's, the mask's cost per module and
  step, and ``ratio`` the with-dropout median over the floor's.

``compile_s`` is the first fused call's time in this process (the one-off compilation; 0 when
fusion does not apply here), ``auto_path`` per shape the path ``auto`` took.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import torch
from torch.nn import functional as F

from asymlora.adapters.dropout import hashed_drop_mask, hashed_zero, native_zero_applies
from asymlora.adapters.linear import FrozenAProjection, HashedFrozenAProjection
from asymlora.adapters.mask_fused import MASK_FUSION, fused_zero_applies, mask_fusion
from asymlora.adapters.mask_hash import HASH_ENGINES, forced_mask_hash
from asymlora.adapters.mask_stream import split_base, stream_keys

#: Module input shapes measured by default (batch × tokens × d_in): tiny BERT's, MiniLM's and SmolLM2's two widths.
MASK_COST_SHAPES = ((4, 32, 64), (16, 128, 384), (4, 256, 576), (4, 256, 1536))
#: The ways of building the mask that are timed: ``{name: (forced hash engine, fused loop on)}``
#: (None: the default rules).
WAYS: dict[str, tuple[str | None, bool | None]] = {"torch": ("torch", False), "numpy": ("numpy", False),
                                                   "fused": ("numpy", True), "native": ("native", False),
                                                   "auto": (None, None)}


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


def _with_engine(way: tuple[str | None, bool | None], run: Callable[[], object]) -> Callable[[], object]:
    engine, fusion = way

    def call():
        with forced_mask_hash(engine), mask_fusion(MASK_FUSION.enabled if fusion is None else fusion):
            return run()
    return call


def _draw_variants(x: torch.Tensor, keys: torch.Tensor, p: float) -> dict[str, Callable[[], object]]:
    variants: dict[str, Callable[[], object]] = {}
    for name, way in WAYS.items():
        variants[f"v2_{name}"] = _with_engine(way, lambda: hashed_zero(x, keys, p))
    for engine in HASH_ENGINES:
        variants[f"v2_{engine}_mask_only"] = _with_engine((engine, None), lambda: hashed_drop_mask(keys, x.shape, p))
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

    return {**{f"v2_{name}": _with_engine(way, hashed) for name, way in WAYS.items()}, "without_dropout": floor}


def measure_shape(shape: tuple[int, ...], rank: int = 8, p: float = 0.05, repeats: int = 30, seed: int = 0) -> dict:
    """Both measurements of the module docstring on one input shape.

    Args:
        shape (tuple[int, ...]): the module input's shape (…, d_in).
        rank (int): the adapter rank r of the lean function.
        p (float): the dropout probability.
        repeats (int): timed repeats per variant.
        seed (int): seed of the input, factors and mask keys.

    Returns:
        dict: ``{"shape", "elements", "fused", "draw_and_zero": {variant: {median_ms, min_ms}},
        "lean_forward_backward": {variant: …, "mask_overhead_ms": {way: ms}, "ratio": {way: x}}}``.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator)
    keys = torch.tensor(stream_keys(*split_base(seed + 2**40), 3), dtype=torch.int64)
    lean = _interleaved(_lean_variants(x, rank, p, keys, generator), repeats)
    floor = lean["without_dropout"]["median_ms"]
    lean["mask_overhead_ms"] = {w: lean[f"v2_{w}"]["median_ms"] - floor for w in WAYS}
    lean["ratio"] = {w: lean[f"v2_{w}"]["median_ms"] / floor for w in WAYS}
    return {"shape": list(shape), "elements": x.numel(), "auto_path": auto_path(x),
            "draw_and_zero": _interleaved(_draw_variants(x, keys, p), repeats), "lean_forward_backward": lean}


def auto_path(tensor: torch.Tensor) -> str:
    """The path :func:`~asymlora.adapters.dropout.hashed_zero` takes for ``tensor`` by default:
    ``"native"``, ``"fused"`` or ``"numpy"``."""
    if native_zero_applies(tensor):
        return "native"
    return "fused" if fused_zero_applies(tensor) else "numpy"


def _first_fused_call_s() -> float:
    """Seconds of one fused zeroing of a tensor of the fusion threshold's size (the compilation,
    on the first call of the process), or 0.0 when fusion does not apply here."""
    tensor = torch.ones(MASK_FUSION.min_elements)
    if not fused_zero_applies(tensor):
        return 0.0
    start = time.perf_counter()
    hashed_zero(tensor, torch.tensor([1, 2]), 0.5)
    return time.perf_counter() - start


def measure_mask_cost(shapes=MASK_COST_SHAPES, rank: int = 8, p: float = 0.05, repeats: int = 30,
                      seed: int = 0) -> dict:
    """:func:`measure_shape` on each shape, with the threads and the load average before and after.

    Returns:
        dict: ``{"rank", "p", "repeats", "threads", "compile_s", "load_average": {"before", "after"},
        "shapes": [...]}``.
    """
    before = os.getloadavg()
    compile_s = _first_fused_call_s()
    rows = [measure_shape(tuple(shape), rank, p, repeats, seed) for shape in shapes]
    return {"rank": rank, "p": p, "repeats": repeats, "threads": torch.get_num_threads(), "compile_s": compile_s,
            "load_average": {"before": list(before), "after": list(os.getloadavg())}, "shapes": rows}


def mask_cost_markdown(document: dict) -> str:
    """The measurement as two markdown tables, one row per shape (medians in ms): draw and zero, and
    the lean function's forward + backward with its overhead over the no-dropout floor."""
    ways = list(WAYS)
    lines = [f"v2 mask per module call, p = {document['p']}, r = {document['rank']}, {document['threads']} thread(s), "
             f"{document['repeats']} interleaved repeats, medians (ms); first fused call (compilation) "
             f"{document['compile_s']:.1f} s; load average {document['load_average']['before'][0]:.2f} → "
             f"{document['load_average']['after'][0]:.2f}.", "",
             "| shape | auto path | " + " | ".join(f"zero: {w}" for w in ways) + " | F.dropout | "
             + " | ".join(f"mask only: {e}" for e in HASH_ENGINES) + " |",
             "|---|---|" + "---:|" * (len(ways) + 1 + len(HASH_ENGINES))]
    for row in document["shapes"]:
        draw = row["draw_and_zero"]
        cells = [draw[f"v2_{w}"] for w in ways] + [draw["peft_dropout"]]
        cells += [draw[f"v2_{e}_mask_only"] for e in HASH_ENGINES]
        lines.append(f"| {' × '.join(map(str, row['shape']))} | {row['auto_path']} | "
                     + " | ".join(f"{c['median_ms']:.2f}" for c in cells) + " |")
    lines += ["", "| shape | " + " | ".join(f"lean: {w}" for w in ways) + " | lean p = 0 | "
              + " | ".join(f"overhead: {w}" for w in ways) + " |", "|---|" + "---:|" * (2 * len(ways) + 1)]
    for row in document["shapes"]:
        lean = row["lean_forward_backward"]
        cells = [f"{lean[f'v2_{w}']['median_ms']:.2f}" for w in ways] + [f"{lean['without_dropout']['median_ms']:.2f}"]
        cells += [f"{lean['mask_overhead_ms'][w]:.2f} ({lean['ratio'][w]:.2f}×)" for w in ways]
        lines.append(f"| {' × '.join(map(str, row['shape']))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
