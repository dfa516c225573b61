"""A spec's grid of runs (tasks × methods × ranks × seeds) and its sharding across jobs.

Rankless methods (``full``, ``linear_probe``) run once per task and seed with ``rank = 0``.
Extra ``runs: [{method, rank}]`` pairs from the spec are added after the product (duplicates
dropped). The order is deterministic: task, then seed, then (method, rank) in spec order — so a grid cut short
has whole replicates (every method on seed 0 first).

``--shard i/n`` (``i`` in ``0 .. n-1``, e.g. ``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``)
keeps run number ``j`` of the ordered grid when ``j % n == i``: the shards are disjoint, cover
the grid, and differ in size by at most one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asymlora.experiments.spec import Spec
from asymlora.run_folder import RunName


@dataclass(frozen=True)
class Run(RunName):
    """One run of the grid: the shared run identity (:class:`asymlora.run_folder.RunName`:
    task, method, rank, seed; ``run_id`` is ``<task>/<method>-r<rank>-s<seed>``, its folder under
    ``<out>/runs/``) and the seed of its adapter's factors."""

    adapter_seed: int


def method_ranks(spec: Spec) -> list[tuple[str, int]]:
    from asymlora.methods import get_method

    pairs: list[tuple[str, int]] = []
    for method in spec.methods:
        ranks = spec.ranks if get_method(method).uses_rank else [0]
        pairs += [(method, r) for r in ranks]
    for extra in spec.runs:
        rank = extra.get("rank")
        if not get_method(extra["method"]).uses_rank:
            ranks = [0]
        else:
            ranks = spec.ranks if rank is None else (list(rank) if isinstance(rank, list) else [rank])
        pairs += [(extra["method"], r) for r in ranks]
    seen, ordered = set(), []
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            ordered.append(pair)
    return ordered


def expand(spec: Spec, seeds: list[int] | None = None) -> list[Run]:
    """Every run of the spec in a fixed order (``seeds`` overrides the spec's seeds)."""
    seeds = list(spec.seeds if seeds is None else seeds)
    return [Run(task, method, rank, seed, seed if spec.adapter_seeds == "per_seed" else 0)
            for task in spec.tasks for seed in seeds for method, rank in method_ranks(spec)]


def seeds_for(spec: Spec, count: int | None) -> list[int]:
    """The first ``count`` seeds of the spec, continued with consecutive integers if it lists fewer."""
    if count is None:
        return list(spec.seeds)
    if count < 1:
        raise ValueError(f"--seeds must be >= 1 (got {count})")
    seeds = list(spec.seeds[:count])
    nxt = max(spec.seeds) + 1
    while len(seeds) < count:
        seeds.append(nxt)
        nxt += 1
    return seeds


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; None stays None."""
    if text is None or text == "":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"--shard must look like i/n, e.g. 0/4 (got {text!r})")
    i, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


def shard(runs: list[Run], part: tuple[int, int] | None) -> list[Run]:
    """The runs of shard ``i`` of ``n`` (round robin over the ordered grid)."""
    if part is None:
        return list(runs)
    i, n = part
    return [run for j, run in enumerate(runs) if j % n == i]
