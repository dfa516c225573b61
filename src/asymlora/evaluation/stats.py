"""Mean and spread over seeds, as every table and claim of this project states them.

``std`` is the sample standard deviation (ddof = 1; ``None`` for fewer than two values). The
pooled standard deviation of two groups is ``sqrt((s_x² + s_y²) / 2)`` (equal weights, the usual
choice for groups of equal size such as 3 seeds each). The standard error of a difference of two
means is ``sqrt(s_x² / n_x + s_y² / n_y)``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Stat:
    """``mean`` and ``std`` of ``values`` (``None`` where undefined)."""

    mean: float | None
    std: float | None
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    def text(self, digits: int = 2) -> str:
        """``"62.60 (1.06)"``, ``"62.60"`` for one value, ``"—"`` for none."""
        if self.mean is None:
            return "—"
        return f"{self.mean:.{digits}f}" + (f" ({self.std:.{digits}f})" if self.std is not None else "")


def stat(values) -> Stat:
    """:class:`Stat` of the finite numbers in ``values``."""
    kept = tuple(float(v) for v in values if v is not None and math.isfinite(float(v)))
    if not kept:
        return Stat(None, None, ())
    return Stat(statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else None, kept)


def from_summary(summary: dict) -> Stat:
    """A saved ``{"mean", "std", "values"}`` summary (as the reports write it) as a :class:`Stat`, its
    numbers as written (nothing recomputed)."""
    return Stat(summary.get("mean"), summary.get("std"), tuple(summary.get("values") or ()))


def pooled_std(x: Stat, y: Stat) -> float | None:
    """``sqrt((s_x² + s_y²) / 2)``; ``None`` unless both groups have a standard deviation."""
    if x.std is None or y.std is None:
        return None
    return math.sqrt((x.std ** 2 + y.std ** 2) / 2)


def difference_se(x: Stat, y: Stat) -> float | None:
    """Standard error of ``mean(x) − mean(y)``: ``sqrt(s_x² / n_x + s_y² / n_y)``; ``None`` unless both
    groups have a standard deviation."""
    if x.std is None or y.std is None:
        return None
    return math.sqrt(x.std ** 2 / x.n + y.std ** 2 / y.n)
