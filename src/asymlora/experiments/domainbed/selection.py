"""Model selection as DomainBed's ``model_selection.py`` does it.

**Training-domain validation** (``IIDAccuracySelectionMethod``): within a run, the checkpoint with
the highest mean out-split accuracy over the training environments (the first such checkpoint on a
tie: ``max`` keeps the first); its test environment's in-split accuracy is the run's result.
**Oracle** (``OracleSelectionMethod``, test-domain validation): within a run, the *last* checkpoint
(no early stopping); the run's validation score is the test environment's out-split accuracy.
Across the hparam samples of one (dataset, variant, test environment, trial), both pick the run
with the best validation score: DomainBed sorts the runs by it and reverses the list, so on an exact
tie the run listed last (here: the larger hparams seed) wins.

Beside DomainBed's ``val_acc`` / ``test_acc`` each :class:`Choice` keeps the in-domain accuracy at
the chosen checkpoint (mean in-split accuracy over the training environments: what the model was
trained on) and the train-test gap ``in_domain - test_acc`` that the paper reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .records import Checkpoint, RunRecord


@dataclass(frozen=True)
class Choice:
    val_acc: float
    test_acc: float
    in_domain_acc: float
    step: int
    hparams_seed: int

    @property
    def gap(self) -> float:
        return self.in_domain_acc - self.test_acc


def _training_envs(run: RunRecord) -> list[int]:
    return [i for i in range(run.n_envs) if i != run.key.test_env]


def _choice(run: RunRecord, checkpoint: Checkpoint, val_acc: float) -> Choice:
    envs = _training_envs(run)
    in_domain = float(np.mean([checkpoint.acc(i, "in") for i in envs]))
    return Choice(float(val_acc), checkpoint.acc(run.key.test_env, "in"), in_domain, checkpoint.step,
                  run.key.hparams_seed)


class SelectionMethod:
    name = ""
    label = ""

    @classmethod
    def run_choice(cls, run: RunRecord) -> Choice | None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def sweep_choice(cls, runs: Iterable[RunRecord]) -> Choice | None:
        """The chosen run's :class:`Choice` among the hparam samples ``runs`` (one trial, one test
        environment, one variant), or None when no run has a checkpoint."""
        choices = [c for c in (cls.run_choice(r) for r in sorted(runs, key=lambda r: r.key.hparams_seed))
                   if c is not None]
        if not choices:
            return None
        return sorted(choices, key=lambda c: c.val_acc)[::-1][0]


class TrainingDomainValidation(SelectionMethod):
    name = "training-domain validation set"
    label = "training_domain"

    @classmethod
    def run_choice(cls, run: RunRecord) -> Choice | None:
        if not run.checkpoints:
            return None
        envs = _training_envs(run)
        vals = [float(np.mean([c.acc(i, "out") for i in envs])) for c in run.checkpoints]
        best = max(range(len(vals)), key=lambda k: vals[k])
        return _choice(run, run.checkpoints[best], vals[best])


class Oracle(SelectionMethod):
    name = "test-domain validation set (oracle)"
    label = "oracle"

    @classmethod
    def run_choice(cls, run: RunRecord) -> Choice | None:
        if not run.checkpoints:
            return None
        last = max(run.checkpoints, key=lambda c: c.step)
        return _choice(run, last, last.acc(run.key.test_env, "out"))


SELECTIONS = {m.label: m for m in (TrainingDomainValidation, Oracle)}


def get_selection(name: str) -> type[SelectionMethod]:
    if name not in SELECTIONS:
        raise ValueError(f"unknown selection {name!r}; choose {', '.join(SELECTIONS)}")
    return SELECTIONS[name]
