"""Fixed, seeded, stratified splits for corpora that ship without one."""

from __future__ import annotations

import numpy as np


def stratified_split(labels, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Split row indices ``0..n-1`` into named parts, class by class.

    For every class ``c`` with ``n_c`` rows (shuffled by ``numpy.random.default_rng([seed, c])``),
    part ``k`` gets ``round(n_c · fractions[k])`` rows, the last part gets the rest, so the class
    proportions of every part match the corpus to within one row per class. Parts are disjoint,
    cover every row, and each is returned sorted (original order). Depends only on ``labels``,
    ``fractions`` and ``seed`` — never on a training run's seed.
    """
    labels = np.asarray(labels)
    names = list(fractions)
    total = sum(fractions.values())
    if not names or total <= 0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"invalid split fractions {fractions}")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.random.default_rng([int(seed), int(c)]).permutation(len(idx))]
        start = 0
        for i, k in enumerate(names):
            stop = len(idx) if i == len(names) - 1 else start + int(round(len(idx) * fractions[k] / total))
            parts[k].append(idx[start:stop])
            start = stop
    return {k: np.sort(np.concatenate(v)) if v else np.zeros(0, dtype=np.int64) for k, v in parts.items()}
