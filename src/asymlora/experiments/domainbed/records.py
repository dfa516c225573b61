"""Typed records of DomainBed runs: what a run is (:class:`RunKey`), what each checkpoint measured
(:class:`Checkpoint`) and a whole run (:class:`RunRecord`), with their JSON form.

A checkpoint's accuracies use DomainBed's names: ``env{i}_in_acc`` and ``env{i}_out_acc`` for every
environment ``i`` (the test environment included), fractions in [0, 1].
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True, order=True)
class RunKey:
    """One run of a sweep: dataset, method variant, the (single) test environment, seeds.

    Not the grid's run identity (:class:`asymlora.run_folder.RunName`: task, method, rank, seed):
    a DomainBed run is named by what DomainBed's protocol varies (the held-out environment, a
    hyper-parameter draw and a trial seed), and its folder layout is DomainBed's, not ``runs/<task>/``."""

    dataset: str
    variant: str
    test_env: int
    hparams_seed: int
    trial_seed: int

    @property
    def folder(self) -> str:
        return f"{self.dataset}/{self.variant}/env{self.test_env}_h{self.hparams_seed}_t{self.trial_seed}"


@dataclass(frozen=True)
class Checkpoint:
    """The evaluation at one step: ``accs[f"env{i}_{in|out}_acc"]`` and the mean training loss since
    the previous checkpoint."""

    step: int
    accs: dict
    loss: float = float("nan")

    def acc(self, env: int, part: str) -> float:
        return float(self.accs[f"env{env}_{part}_acc"])


@dataclass(frozen=True)
class RunRecord:
    """A whole DomainBed run (``result.json``): its key, its hyper-parameters and every checkpoint's
    accuracies. Not :class:`asymlora.training.record.RunRecord` (one fine-tuning run's ``metrics.json``)."""

    key: RunKey
    n_envs: int
    hparams: dict
    checkpoints: tuple[Checkpoint, ...]
    info: dict = field(default_factory=dict)  # seed, sizes, timing, trainable parameters, ...

    def to_dict(self) -> dict:
        return {"key": asdict(self.key), "n_envs": self.n_envs, "hparams": self.hparams,
                "checkpoints": [asdict(c) for c in self.checkpoints], "info": self.info}

    @classmethod
    def from_dict(cls, data: dict) -> "RunRecord":
        return cls(RunKey(**data["key"]), int(data["n_envs"]), dict(data["hparams"]),
                   tuple(Checkpoint(int(c["step"]), dict(c["accs"]), float(c.get("loss", float("nan"))))
                         for c in data["checkpoints"]), dict(data.get("info", {})))


RESULT_NAME = "result.json"


def read_runs(root: str | Path) -> list[RunRecord]:
    """Every finished run (``**/result.json``) under ``root``, sorted by key."""
    root = Path(root)
    runs = []
    for path in sorted(root.rglob(RESULT_NAME)):
        try:
            runs.append(RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a DomainBed run record ({type(err).__name__}: {err})") from None
    return sorted(runs, key=lambda r: r.key)
