"""The DomainBed protocol's seeding, splitting and random search, as DomainBed's own code does it.

* :func:`seed_hash` (DomainBed ``lib/misc.seed_hash``): ``int(md5(str(args)).hexdigest(), 16) mod 2³¹``,
  where ``str(args)`` is the Python tuple's text, e.g. ``"(0, 'lr')"``.
* :func:`split_keys` (``misc.split_dataset``): the keys ``0..N-1`` shuffled by
  ``numpy.random.RandomState(seed).shuffle``; the first ``n`` are the first part, the rest the second.
  ``train.py`` calls it per environment ``i`` as ``out, in = split(env, int(len(env) · holdout),
  seed_hash(trial_seed, i))``: the split depends on the trial seed and the environment index only,
  never on the hyperparameters (:func:`in_out_split`).
* Random search (``hparams_registry``): every hyperparameter ``name`` is drawn from its own stream
  ``RandomState(seed_hash(random_seed, name))``, so adding a hyperparameter never changes the others'
  draws. ``hparams_seed == 0`` means the defaults; otherwise ``random_seed =
  seed_hash(hparams_seed, trial_seed)`` (:func:`trial_hparams`).

The search space is the paper's (:data:`PAPER_SPACE`): ``lr = 10^U(-5, -3.5)`` (log-uniform in
[1e-5, 10^-3.5]; DomainBed's own range for large images), adapter ``dropout = U(0.01, 0.25)``,
``batch_size = 8`` (fixed). Defaults (hparams seed 0): lr 5e-5 (DomainBed's large-image default),
dropout 0.1 and batch 8 (ours: the paper states no default). Weight decay stays 0 (not searched).
:data:`SMALL_IMAGES_SPACE` swaps in DomainBed's own lr range for its small-image datasets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np


def seed_hash(*args) -> int:
    """A seed in ``[0, 2³¹)`` from the MD5 of ``str(args)`` (DomainBed's ``misc.seed_hash``)."""
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2 ** 31)


def split_keys(n_items: int, n_first: int, seed: int) -> tuple[list[int], list[int]]:
    """DomainBed's ``split_dataset`` on indices: ``(first n_first keys, the rest)`` of a shuffle."""
    if not 0 <= n_first <= n_items:
        raise ValueError(f"cannot take {n_first} of {n_items} items")
    keys = list(range(n_items))
    np.random.RandomState(seed).shuffle(keys)
    return keys[:n_first], keys[n_first:]


@dataclass(frozen=True)
class EnvSplit:
    """One environment's split: ``in_keys`` (trained on unless it is a test environment; 1 − holdout)
    and ``out_keys`` (held out: ``int(N · holdout)`` items)."""

    env: int
    in_keys: tuple[int, ...]
    out_keys: tuple[int, ...]


def in_out_split(env_sizes: list[int], trial_seed: int, holdout_fraction: float = 0.2) -> list[EnvSplit]:
    """Every environment's in / out split, seeded by ``seed_hash(trial_seed, env_index)``."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"--holdout-fraction must be in (0, 1) (got {holdout_fraction})")
    splits = []
    for i, size in enumerate(env_sizes):
        out, in_ = split_keys(size, int(size * holdout_fraction), seed_hash(trial_seed, i))
        splits.append(EnvSplit(i, tuple(in_), tuple(out)))
    return splits


@dataclass(frozen=True)
class HParam:
    """A hyperparameter: its default and ``sample(RandomState) -> value``."""

    name: str
    default: object
    sample: Callable[[np.random.RandomState], object]


PAPER_SPACE: tuple[HParam, ...] = (
    HParam("lr", 5e-5, lambda r: float(10 ** r.uniform(-5, -3.5))),
    HParam("dropout", 0.1, lambda r: float(r.uniform(0.01, 0.25))),
    HParam("batch_size", 8, lambda r: 8),
)


#: DomainBed's lr for its small-image datasets (RotatedMNIST, ColoredMNIST): default 1e-3, random
#: ``10^U(-4.5, -2.5)``; dropout and batch as the paper's. For small models trained few steps.
SMALL_IMAGES_SPACE: tuple[HParam, ...] = (
    HParam("lr", 1e-3, lambda r: float(10 ** r.uniform(-4.5, -2.5))),
) + PAPER_SPACE[1:]

SPACES = {"paper": PAPER_SPACE, "small_images": SMALL_IMAGES_SPACE}


def get_space(name: str) -> tuple[HParam, ...]:
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; choose {', '.join(SPACES)}")
    return SPACES[name]


def draw_hparams(random_seed: int, space: tuple[HParam, ...] = PAPER_SPACE) -> dict[str, tuple[object, object]]:
    """``{name: (default, random draw)}``, each draw from ``RandomState(seed_hash(random_seed, name))``."""
    names = [h.name for h in space]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate hyperparameter names in {names}")
    return {h.name: (h.default, h.sample(np.random.RandomState(seed_hash(random_seed, h.name)))) for h in space}


def default_hparams(space: tuple[HParam, ...] = PAPER_SPACE) -> dict[str, object]:
    return {name: pair[0] for name, pair in draw_hparams(0, space).items()}


def random_hparams(random_seed: int, space: tuple[HParam, ...] = PAPER_SPACE) -> dict[str, object]:
    return {name: pair[1] for name, pair in draw_hparams(random_seed, space).items()}


def trial_hparams(hparams_seed: int, trial_seed: int, space: tuple[HParam, ...] = PAPER_SPACE) -> dict[str, object]:
    """DomainBed ``train.py``: defaults for hparams seed 0, else ``random_hparams(seed_hash(hparams_seed,
    trial_seed))``."""
    if hparams_seed < 0 or trial_seed < 0:
        raise ValueError(f"seeds must be >= 0 (got hparams seed {hparams_seed}, trial seed {trial_seed})")
    if hparams_seed == 0:
        return default_hparams(space)
    return random_hparams(seed_hash(hparams_seed, trial_seed), space)
