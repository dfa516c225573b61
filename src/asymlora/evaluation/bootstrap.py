"""Percentile bootstrap confidence intervals of a mean over test examples.

For per-example scores ``x`` (shape ``(n,)``), draw ``B`` resamples of ``n`` indices with
replacement (``numpy.random.default_rng(seed)``), take each resample's mean ``m_b``, and report the
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of ``{m_b}`` (numpy's linear interpolation).
Several score arrays of the same examples share the resampled indices (one draw of ``(B, n)``), so
their intervals are computed on the same resamples. This is the interval summarisation papers
attach to ROUGE (``rouge-score``'s ``BootstrapAggregator`` resamples the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """Mean of the scores and its bootstrap interval ``[low, high]`` at ``level``."""

    mean: float
    low: float
    high: float
    level: float
    resamples: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high}


def bootstrap_means(scores: dict[str, np.ndarray], resamples: int = 1000, level: float = 0.95,
                    seed: int = 0) -> dict[str, Interval]:
    """:class:`Interval` of the mean of every array in ``scores`` (all of the same length ``n``)."""
    if resamples < 1:
        raise ValueError(f"bootstrap resamples must be >= 1 (got {resamples})")
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1) (got {level})")
    lengths = {len(v) for v in scores.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"bootstrap needs non-empty score arrays of one length (got lengths {sorted(lengths)})")
    n = lengths.pop()
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    quantiles = ((1 - level) / 2, (1 + level) / 2)
    out = {}
    for name, values in scores.items():
        values = np.asarray(values, dtype=float)
        means = values[index].mean(axis=1)
        low, high = np.quantile(means, quantiles)
        out[name] = Interval(float(values.mean()), float(low), float(high), level, resamples)
    return out
