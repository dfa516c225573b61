"""A DomainBed sweep as data: :class:`SweepConfig`, read from YAML or built from CLI options.

YAML keys (all but ``dataset`` and ``model`` optional)::

    name: domainbed_rotated_mnist
    dataset: RotatedMNIST            # asymlora.tasks.domainbed.DATASETS
    data_dir: null                   # folder holding the dataset (image-folder datasets need it)
    model: runs/domainbed/vit-fashion   # registry name, local ViT folder or hub id
    variants: [lora, b_only, a_only, b_only_2r, linear_probe, full]
    rank: 8                          # adapters' rank; b_only_2r uses 2 x rank
    alpha: 16
    test_envs: all                   # or a list: names (strings) or indices (integers)
    n_hparams: 20                    # hparams seeds 0 .. n-1 (0 = the defaults)
    n_trials: 3                      # trial seeds 0 .. n-1
    tune: lora                       # lora: search on LoRA, reuse its choice; each: search every variant
    space: paper                     # paper (lr 10^U(-5,-3.5)) or small_images (DomainBed's 10^U(-4.5,-2.5))
    steps: 5001                      # default: the dataset's
    checkpoint_freq: 100             # default: the dataset's
    eval_examples: null              # fixed per-split evaluation subset size (null = whole split)
    holdout_fraction: 0.2
    threads: null

Variants (:data:`VARIANTS`): a method of :mod:`asymlora.methods` at a rank relative to ``rank``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from asymlora.adapters.config import closest


@dataclass(frozen=True)
class Variant:
    name: str
    method: str
    rank_factor: int  # rank = rank_factor * config.rank (0: rankless)


VARIANTS = {v.name: v for v in (
    Variant("lora", "lora", 1), Variant("b_only", "b_only", 1), Variant("a_only", "a_only", 1),
    Variant("b_only_2r", "b_only", 2), Variant("linear_probe", "linear_probe", 0), Variant("full", "full", 0))}
TUNING = ("lora", "each")


@dataclass(frozen=True)
class SweepConfig:
    dataset: str
    model: str
    name: str = "domainbed"
    description: str = ""
    data_dir: str | None = None
    variants: tuple[str, ...] = ("lora", "b_only", "a_only", "b_only_2r", "linear_probe", "full")
    rank: int = 8
    alpha: float = 16.0
    test_envs: tuple = ("all",)
    n_hparams: int = 20
    n_trials: int = 3
    tune: str = "lora"
    space: str = "paper"
    steps: int | None = None
    checkpoint_freq: int | None = None
    eval_examples: int | None = None
    holdout_fraction: float = 0.2
    threads: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_config(cfg: SweepConfig) -> SweepConfig:
    """Check every field (ValueError, one line, naming it); resolve ``test_envs`` to indices."""
    from asymlora.tasks.domainbed import get_dataset

    spec = get_dataset(cfg.dataset)
    for name in ("n_trials", "n_hparams", "rank"):
        value = getattr(cfg, name)
        if not _is_int(value) or value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1 (got {value!r})")
    for name in ("steps", "checkpoint_freq", "eval_examples", "threads"):
        value = getattr(cfg, name)
        if value is not None and (not _is_int(value) or value < 1):
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1 (got {value!r}); leave it out for the default")
    if not 0.0 < float(cfg.holdout_fraction) < 1.0:
        raise ValueError(f"--holdout-fraction must be in (0, 1) (got {cfg.holdout_fraction})")
    if float(cfg.alpha) <= 0:
        raise ValueError(f"alpha must be > 0 (got {cfg.alpha})")
    if cfg.tune not in TUNING:
        raise ValueError(f"--tune must be one of {', '.join(TUNING)} (got {cfg.tune!r})")
    from .protocol import get_space

    get_space(cfg.space)
    if not cfg.variants:
        raise ValueError("no variants to run")
    for v in cfg.variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}{closest(v, list(VARIANTS))}; known: {', '.join(VARIANTS)}")
    if cfg.tune == "lora" and "lora" not in cfg.variants:
        raise ValueError("--tune lora reuses LoRA's hyperparameters, so the variants must include lora")
    if spec.needs_data_dir and cfg.data_dir is None:
        raise ValueError(f"{spec.name} needs --data-dir (a folder in DomainBed's layout)")
    envs = []
    for item in cfg.test_envs:
        if item == "all":
            envs += list(range(len(spec.environments)))
        elif isinstance(item, str) and item in spec.environments:  # a name first ("75" in RotatedMNIST)
            envs.append(spec.environments.index(item))
        elif isinstance(item, str) and item.isdigit() and int(item) < len(spec.environments):
            envs.append(int(item))
        elif _is_int(item) and 0 <= item < len(spec.environments):
            envs.append(item)
        else:
            raise ValueError(f"test environment {item} does not exist in {spec.name}; its environments are "
                             + ", ".join(f"{i}={n}" for i, n in enumerate(spec.environments)))
    if len(spec.environments) < 2:
        raise ValueError(f"{spec.name} has fewer than two environments")
    return dataclasses.replace(cfg, test_envs=tuple(sorted(set(envs))))


def read_config(path: str | Path, **overrides) -> SweepConfig:
    """A :class:`SweepConfig` from YAML, then ``overrides`` (non-None values), validated."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of keys")
    known = [f.name for f in dataclasses.fields(SweepConfig)]
    for key in data:
        if key not in known:
            raise ValueError(f"{path}: unknown key {key!r}{closest(key, known)}")
    for key in ("dataset", "model"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("variants", "test_envs"):
        if key in data:
            value = data[key]
            data[key] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return validate_config(SweepConfig(**data))
