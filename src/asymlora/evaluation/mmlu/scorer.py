"""Batched log-likelihood scoring of token sequences that share a prefix, reusing its KV cache.

A :class:`Probe` is one model input ``x`` (token ids, length ``n``) with readouts: a readout sums
``log p(x_{t+1} = y_t | x_{≤t})`` over its positions ``t`` (``y_t`` = the target token at ``t``).
Letter scoring reads one position (the last) for four targets; continuation scoring reads the
positions of the continuation tokens.

Prefix reuse. All probes of a subject (and shot count) start with the tokens of its few-shot
prefix — up to tokenisation at the boundary (byte-level BPE merges the prefix's trailing
``"\\n\\n"`` differently when text follows), so the reused length is
``L = min over probes of lcp(prefix tokens, probe tokens)``, capped so that every read position
is ``≥ L``. The causal model's keys/values at positions ``< L`` depend only on tokens ``< L``, so
the cache of one forward over ``x_{<L}`` serves every probe: each batch forwards only the
suffixes ``x_{L:}`` (right-padded; padding lies after every real token, so causal attention never
sees it) at positions ``L, L+1, …`` over the expanded cache. Probes marked as not sharing the
prefix (left-truncated ones) are scored without it. Identical probes are forwarded once.
Only the read positions go through the LM head (``logits_to_keep``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable

import torch


@dataclass(frozen=True)
class Readout:
    """``key`` -> Σ_t log p(targets[t] at positions[t])."""

    key: Hashable
    positions: tuple[int, ...]
    targets: tuple[int, ...]


@dataclass
class Probe:
    """One model input; ``shares_prefix`` is False for inputs that were left-truncated."""

    tokens: tuple[int, ...]
    readouts: list[Readout] = field(default_factory=list)
    shares_prefix: bool = True


@dataclass
class ScoreStats:
    """Token accounting: ``forwarded`` real tokens through the model (prefixes counted once per
    reuse), ``padded`` = forwarded + padding, ``calls`` = model forwards, ``prefix`` = tokens served
    from a cache (summed over probes)."""

    forwarded: int = 0
    padded: int = 0
    calls: int = 0
    prefix: int = 0

    def add(self, other: "ScoreStats") -> None:
        for name in ("forwarded", "padded", "calls", "prefix"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def shared_length(prefix: tuple[int, ...], probes: list[Probe]) -> int:
    """The reusable prefix length ``L`` for ``probes`` (see module docstring)."""
    if not probes or not prefix:
        return 0
    length = min(common_prefix(prefix, p.tokens) for p in probes)
    first_read = min(min(r.positions) for p in probes for r in p.readouts)
    return max(0, min(length, first_read))


def _expanded_cache(model, prefix_cache, batch: int):
    """A fresh ``DynamicCache`` holding the prefix keys/values repeated ``batch`` times (views)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    for index, layer in enumerate(prefix_cache.layers):
        cache.update(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1), index)
    return cache


@torch.no_grad()
def _score_batch(model, probes: list[Probe], start: int, prefix_cache, pad_id: int,
                 scores: dict, stats: ScoreStats) -> None:
    """Forward ``tokens[start:]`` of each probe (over ``prefix_cache`` when ``start > 0``)."""
    device = next(model.parameters()).device
    suffixes = [p.tokens[start:] for p in probes]
    width = max(len(s) for s in suffixes)
    ids = torch.full((len(probes), width), pad_id, dtype=torch.long, device=device)
    for row, suffix in enumerate(suffixes):
        ids[row, : len(suffix)] = torch.tensor(suffix, dtype=torch.long)
    keep = sorted({t - start for p in probes for r in p.readouts for t in r.positions})
    column = {t: i for i, t in enumerate(keep)}
    kwargs = {}
    if start:
        kwargs["cache"] = _expanded_cache(model, prefix_cache, len(probes))
        kwargs["position_ids"] = torch.arange(start, start + width, device=device).expand(len(probes), -1)
    out = model(input_ids=ids, use_cache=bool(start), logits_to_keep=torch.tensor(keep, device=device), **kwargs)
    logprobs = torch.log_softmax(out.logits.float(), dim=-1)  # (batch, len(keep), vocab)
    for row, probe in enumerate(probes):
        for readout in probe.readouts:
            cols = torch.tensor([column[t - start] for t in readout.positions], device=device)
            targets = torch.tensor(readout.targets, device=device)
            scores[readout.key] = float(logprobs[row, cols, targets].sum())
    stats.forwarded += sum(len(s) for s in suffixes)
    stats.padded += ids.numel()
    stats.calls += 1
    stats.prefix += start * len(probes)


def score_probes(model, probes: list[Probe], prefix: tuple[int, ...] = (), reuse: bool = True,
                 batch_size: int = 8, pad_id: int = 0,
                 progress: Callable[[int], None] | None = None) -> tuple[dict, ScoreStats]:
    """``{readout key: summed log-probability}`` for every readout of ``probes``, and the stats.

    With ``reuse`` the probes sharing ``L`` tokens with ``prefix`` are forwarded over one cached
    forward of ``prefix[:L]``; the rest (and everything when ``reuse`` is off) from scratch.
    ``progress(n)`` is called after each batch with the number of probes done in it.
    """
    merged: dict[tuple[int, ...], Probe] = {}
    for probe in probes:  # identical inputs are forwarded once
        entry = merged.setdefault(probe.tokens, Probe(probe.tokens, [], probe.shares_prefix))
        entry.readouts.extend(probe.readouts)
        entry.shares_prefix = entry.shares_prefix and probe.shares_prefix
    unique = list(merged.values())
    stats, scores = ScoreStats(), {}
    plans: list[tuple[int, list[Probe]]] = []
    if reuse and prefix:
        sharing = [p for p in unique if p.shares_prefix]
        length = shared_length(prefix, sharing)
        plans = [(length, sharing), (0, [p for p in unique if not p.shares_prefix])]
    else:
        plans = [(0, unique)]
    for start, group in plans:
        if not group:
            continue
        cache = None
        if start:
            device = next(model.parameters()).device
            with torch.no_grad():
                cache = model(input_ids=torch.tensor([prefix[:start]], device=device), use_cache=True,
                              logits_to_keep=1).cache
            stats.forwarded += start
            stats.padded += start
            stats.calls += 1
        group = sorted(group, key=lambda p: -len(p.tokens))  # similar lengths share a batch: little padding
        for i in range(0, len(group), batch_size):
            _score_batch(model, group[i: i + batch_size], start, cache, pad_id, scores, stats)
            if progress is not None:
                progress(len(group[i: i + batch_size]))
    return scores, stats
