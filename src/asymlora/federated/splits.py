"""Non-IID client splits: per class, Dirichlet(α) proportions over clients (Hsu et al., 2019).

For each label ``c`` draw ``p_c ~ Dirichlet(α · 1_N)`` and deal that class's examples (shuffled) to
the N clients in proportions ``p_c``. Small α gives each client a few dominant labels; large α tends
to the IID split. Seeded (numpy ``default_rng(seed)``), so every party computes the same split from
``(labels, N, α, seed)`` alone: a deployed client needs only its partition id.

A split where some client gets fewer than ``min_size`` examples is redrawn (``attempts`` times, the
usual practice in FL benchmarks); if none succeeds the data cannot serve that many clients.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from asymlora.errors import UserError


def dirichlet_split(labels: Sequence[int], clients: int, alpha: float, seed: int, min_size: int = 1,
                    attempts: int = 100) -> list[np.ndarray]:
    """Indices of each client's examples.

    Args:
        labels (Sequence[int]): the label of every example (n values).
        clients (int): N >= 1.
        alpha (float): the Dirichlet concentration (> 0).
        seed (int): the split's seed.
        min_size (int): the fewest examples a client may get.
        attempts (int): redraws before giving up.

    Returns:
        list[np.ndarray]: N sorted index arrays, disjoint, covering all n examples.

    Raises:
        UserError: bad ``clients`` / ``alpha``, or no draw gives every client ``min_size`` examples
            (more clients than the data allows).
    """
    labels = np.asarray(labels)
    if clients < 1:
        raise UserError(f"--clients must be >= 1, got {clients}")
    if not alpha > 0:
        raise UserError(f"--alpha must be > 0 (the Dirichlet concentration), got {alpha}")
    if clients * min_size > len(labels):
        raise UserError(f"--clients {clients} needs at least {clients * min_size} training examples "
                        f"({min_size} per client) but there are {len(labels)}; lower --clients or raise "
                        "--train-examples")
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            cuts = (np.cumsum(rng.dirichlet([alpha] * clients)) * len(members)).astype(int)[:-1]
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise UserError(f"--clients {clients} at --alpha {alpha}: no Dirichlet draw in {attempts} gave every client "
                    f"{min_size} examples; lower --clients, raise --alpha or raise --train-examples")


def label_counts(labels: Sequence[int], parts: Sequence[np.ndarray], num_labels: int) -> list[list[int]]:
    """``counts[client][label]``: how many examples of each label each client holds."""
    labels = np.asarray(labels)
    return [np.bincount(labels[p], minlength=num_labels).tolist() for p in parts]
