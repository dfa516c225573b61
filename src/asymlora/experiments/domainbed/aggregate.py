"""Tables as DomainBed's ``collect_results.py`` makes them, plus the paper's in-domain accuracy and gap.

For each (dataset, variant, test environment) and trial seed, the selection method's sweep choice
(:mod:`.selection`) gives one accuracy. Per test environment the cell is ``100 · mean ± 100 · std /
√n`` over the trials, with the population standard deviation (numpy's ``std``, ``ddof = 0``):
:func:`mean_se`. "Avg" is the mean of the per-environment means, shown only when every environment
has a result. The summary table follows DomainBed's "Averages" table: per trial, the mean over test
environments, then mean ± SE over trials; it does so for the out-of-domain accuracy, the in-domain
accuracy and the gap (in-domain − out-of-domain).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from .records import RunRecord
from .selection import Choice, SelectionMethod


def mean_se(values: Iterable[float]) -> tuple[float, float] | None:
    """``(100 · mean, 100 · std / √n)`` with the population std, or None for no values."""
    data = [float(v) for v in values]
    if not data:
        return None
    return 100.0 * float(np.mean(data)), 100.0 * float(np.std(np.asarray(data) / np.sqrt(len(data))))


def fmt(cell: tuple[float, float] | None) -> str:
    return "X" if cell is None else f"{cell[0]:.1f} ± {cell[1]:.1f}"


@dataclass(frozen=True)
class TrialResult:
    """The selected result of one (dataset, variant, test environment, trial)."""

    dataset: str
    variant: str
    test_env: int
    trial_seed: int
    choice: Choice


def trial_results(runs: Iterable[RunRecord], selection: type[SelectionMethod]) -> list[TrialResult]:
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for run in runs:
        k = run.key
        groups[(k.dataset, k.variant, k.test_env, k.trial_seed)].append(run)
    out = []
    for (dataset, variant, test_env, trial), members in sorted(groups.items()):
        choice = selection.sweep_choice(members)
        if choice is not None:
            out.append(TrialResult(dataset, variant, test_env, trial, choice))
    return out


@dataclass(frozen=True)
class Row:
    """One variant of one dataset: per-environment cells (None = no run) and the summaries."""

    dataset: str
    variant: str
    per_env: tuple  # (mean, se) or None, in environment order
    avg: float | None  # mean of the per-environment means (None unless all are there)
    ood: tuple | None  # DomainBed "Averages": per-trial mean over test envs, then mean ± SE
    in_domain: tuple | None
    gap: tuple | None
    n_trials: tuple  # trials per environment
    hparams_seeds: tuple  # chosen hparams seed per (environment, trial)

    def to_dict(self) -> dict:
        return asdict(self)


def _trial_average(results: list[TrialResult], n_envs: int, value) -> tuple | None:
    by_trial: dict[int, dict[int, float]] = defaultdict(dict)
    for r in results:
        by_trial[r.trial_seed][r.test_env] = value(r.choice)
    complete = [np.mean(list(v.values())) for v in by_trial.values() if len(v) == n_envs]
    return mean_se(complete)


def rows(results: list[TrialResult], dataset: str, variants: Iterable[str], n_envs: int,
         test_envs: Iterable[int] | None = None) -> list[Row]:
    """One :class:`Row` per variant; ``test_envs`` limits the environments tabulated (default all)."""
    envs = list(range(n_envs)) if test_envs is None else list(test_envs)
    out = []
    for variant in variants:
        mine = [r for r in results if r.dataset == dataset and r.variant == variant and r.test_env in envs]
        cells = tuple(mean_se(r.choice.test_acc for r in mine if r.test_env == e) for e in envs)
        avg = None if any(c is None for c in cells) else float(np.mean([c[0] for c in cells]))
        out.append(Row(dataset, variant, cells, avg,
                       _trial_average(mine, len(envs), lambda c: c.test_acc),
                       _trial_average(mine, len(envs), lambda c: c.in_domain_acc),
                       _trial_average(mine, len(envs), lambda c: c.gap),
                       tuple(sum(1 for r in mine if r.test_env == e) for e in envs),
                       tuple((r.test_env, r.trial_seed, r.choice.hparams_seed) for r in mine)))
    return out


def markdown(table: list[Row], env_names: Iterable[str], selection: type[SelectionMethod]) -> str:
    """The per-environment table (DomainBed's layout) and the in-domain / OOD / gap table (the paper's)."""
    env_names = list(env_names)
    lines = [f"Model selection: {selection.name}", "",
             "| method | " + " | ".join(env_names) + " | Avg |", "|---" * (len(env_names) + 2) + "|"]
    for r in table:
        lines.append(f"| {r.variant} | " + " | ".join(fmt(c) for c in r.per_env)
                     + f" | {'X' if r.avg is None else f'{r.avg:.1f}'} |")
    lines += ["", "| method | in-domain | out-of-domain | gap (in − out) | trials per environment |",
              "|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r.variant} | {fmt(r.in_domain)} | {fmt(r.ood)} | {fmt(r.gap)} | "
                     f"{', '.join(str(n) for n in r.n_trials)} |")
    return "\n".join(lines) + "\n"
