"""The multi-domain data records of the DomainBed protocol.

A DomainBed dataset is a list of *environments* (domains) that share one label set. Each
:class:`Environment` holds its labels and a way to produce its images by index (PIL images, any
size and mode; the ViT image processor resizes and normalises them later). Nothing is split here:
the in / out split is the protocol's (:mod:`asymlora.experiments.domainbed.protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Environment:
    """One domain: ``labels`` (int64, shape ``(N,)``) and ``images(indices) -> list[PIL.Image]``."""

    name: str
    labels: np.ndarray
    images: Callable[[Sequence[int]], list]

    def __len__(self) -> int:
        return int(len(self.labels))


@dataclass(frozen=True)
class MultiDomainData:
    """A dataset of several environments with one class list (``classes[y]`` names label ``y``)."""

    name: str
    environments: tuple[Environment, ...]
    classes: tuple[str, ...]

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.environments)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered DomainBed dataset: its environment names (in DomainBed's order), the default
    sizing (steps, checkpoint frequency) and ``load(data_dir, seed) -> MultiDomainData``.

    ``seed`` is the run's ``--seed`` (DomainBed shuffles MNIST with the global torch seed, which
    its ``train.py`` sets from ``--seed`` before building the dataset)."""

    name: str
    environments: tuple[str, ...]
    load: Callable[[str | None, int], MultiDomainData]
    steps: int = 5001
    checkpoint_freq: int = 100
    description: str = ""
    needs_data_dir: bool = False


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in DATASETS:
        raise ValueError(f"DomainBed dataset {spec.name!r} is already registered")
    DATASETS[spec.name] = spec
    return spec


def get_dataset(name: str) -> DatasetSpec:
    """The registered dataset ``name`` (ValueError naming the known ones otherwise)."""
    if name not in DATASETS:
        raise ValueError(f"unknown DomainBed dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def array_images(images: np.ndarray) -> Callable[[Sequence[int]], list]:
    """``images``: uint8 ``(N, H, W)`` grey -> a function returning PIL ``L`` images by index."""
    from PIL import Image

    def get(indices: Sequence[int]) -> list:
        return [Image.fromarray(images[int(i)], mode="L") for i in indices]

    return get
