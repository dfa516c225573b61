"""Choose each method's learning rate on validation: the per-method protocol of a learning-rate sweep.

A sweep is the same runs at several learning rates, in one results file or several (one per rate, as
``configs/converged_tweets_lr*.yaml`` write them). An *arm* is one (task, model, method, rank); its
records must differ only in learning rate and seed (their ``identity`` otherwise equal), else the
files do not form a sweep and :func:`choose` says which setting differs.

Per arm, with ``R`` = the learning rates that arm's records hold (its own sweep: arms of one call may be
swept over different rates, e.g. LoRA over 3e-4..3e-3 and B-only over 1e-3..1e-2) and ``S`` = the
selection seeds (given, or by default the seeds that every rate of the arm has):

* ``validation[lr]`` = mean over ``s in S`` of the run's best validation value of the main metric
  (``best_eval.metrics[main_metric]``: the fixed validation subset, never the test split);
* ``chosen`` = argmax over ``lr in R`` of ``validation[lr]``, a tie going to the smaller rate; no
  choice (and the reason) when no seed is at every rate of ``R`` or a selection seed is missing at some rate;
  ``at_edge`` when it is the smallest or largest of two or more rates of ``R`` (the optimum may lie outside
  the sweep); an arm at a single rate gets that rate, marked as not swept;
* ``test[lr]`` = mean (sample std, ddof 1) over every seed at ``lr`` of ``metrics[main_metric]``
  (the test split at the best validation check), with the number of seeds: the reported figure at
  the chosen rate; the other rates' columns are the one-rate protocol read off the same table.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asymlora.atomic import atomic_write_text
from asymlora.evaluation.stats import stat
from asymlora.experiments.report import method_order, recorded_rate, row_label

#: The selection rule, as the JSON states it.
RULE = ("per (task, model, method, rank): validation[lr] = mean over the selection seeds of the best validation "
        "main metric; chosen = argmax over the sweep's rates (a tie to the smaller rate), none when a rate or a "
        "selection seed is missing; test[lr] = mean (sample std) over every seed at lr of the test metric at the "
        "best validation check")

#: Settings that may differ within an arm: what a sweep varies, and the seeds.
VARIED = ("learning_rate", "seed", "adapter_seed")


@dataclass(frozen=True)
class SeedStats:
    """Mean and sample standard deviation (``None`` for one value) of ``values``, one per seed."""

    mean: float
    std: float | None
    seeds: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, by_seed: dict[int, float]) -> "SeedStats":
        seeds = tuple(sorted(by_seed))
        spread = stat(by_seed[s] for s in seeds)
        return cls(spread.mean, spread.std, seeds, spread.values)

    def cell(self, digits: int = 2) -> str:
        std = "-" if self.std is None else f"{self.std:.{digits}f}"
        return f"{self.mean:.{digits}f} ({std}) [{len(self.seeds)}]"


@dataclass
class ArmChoice:
    """One arm's sweep: validation and test per rate, the chosen rate (or why there is none)."""

    task: str
    model: str
    method: str
    rank: int
    label: str
    metric: str
    selection_seeds: tuple[int, ...]
    validation: dict[float, SeedStats] = field(default_factory=dict)
    test: dict[float, SeedStats] = field(default_factory=dict)
    chosen: float | None = None
    reason: str = ""
    at_edge: bool = False  # the chosen rate is the smallest or largest of the arm's rates: the optimum may lie beyond
    rates: tuple[float, ...] = ()  # the rates this arm was trained at (its own sweep)

    @property
    def swept(self) -> bool:
        """Whether the arm has runs at two or more rates (a choice, not a single given rate)."""
        return len(self.rates) > 1


def learning_rate(record: dict) -> float:
    """The rate a run trained with (the resolved one; the config's when an old record lacks it)."""
    value = recorded_rate(record)
    if value is None:
        raise ValueError(f"run {record['run_id']}: its record holds no learning rate (neither 'resolved' nor "
                         "'config'); it cannot be placed in a learning-rate sweep")
    return float(value)


def _latest_per_rate(records: list[dict]) -> list[dict]:
    """One record per (run id, model, rate): run ids repeat across a sweep's rates; the last line wins."""
    kept: OrderedDict = OrderedDict()
    for r in records:
        kept[(r["run_id"], r.get("model"), learning_rate(r))] = r
    return list(kept.values())


def _arms(records: list[dict]) -> "OrderedDict[tuple, list[dict]]":
    """The records grouped by arm, in the report's row order (task, model, registry order, rank)."""
    arms: OrderedDict = OrderedDict()
    for r in sorted(records, key=lambda r: (r["task"], r.get("model", ""), method_order(r["method"]), r["rank"])):
        arms.setdefault((r["task"], r.get("model", ""), r["method"], r["rank"]), []).append(r)
    return arms


def _check_same_settings(arm: tuple, runs: list[dict]) -> None:
    """ValueError unless the runs of an arm differ only in :data:`VARIED`."""
    first = runs[0]
    base = first.get("identity") or {}
    for other in runs[1:]:
        identity = other.get("identity") or {}
        for name in sorted(set(base) | set(identity)):
            if name not in VARIED and base.get(name) != identity.get(name):
                raise ValueError(f"{'/'.join(map(str, arm))}: runs {first['run_id']} and {other['run_id']} differ in "
                                 f"{name} ({base.get(name)!r} vs {identity.get(name)!r}), not only in learning rate "
                                 "and seed; give results of one sweep")


def _choose_arm(arm: tuple, runs: list[dict], seeds: tuple[int, ...] | None) -> ArmChoice:
    task, model, method, rank = arm
    metric = runs[0]["main_metric"]
    at: dict[float, dict[int, dict]] = {}
    for r in runs:
        at.setdefault(learning_rate(r), {})[r["seed"]] = r
    if seeds is None:
        common = set.intersection(*(set(by_seed) for by_seed in at.values()))
        seeds = tuple(sorted(common))
    choice = ArmChoice(task, model, method, rank, row_label(runs[0]), metric, seeds, rates=tuple(sorted(at)))
    for lr in sorted(at):
        choice.test[lr] = SeedStats.of({s: r["metrics"][metric] for s, r in at[lr].items()})
        picked = {s: at[lr][s]["best_eval"]["metrics"][metric] for s in seeds if s in at[lr]}
        if picked:
            choice.validation[lr] = SeedStats.of(picked)
    partial = [lr for lr in at if lr not in choice.validation or choice.validation[lr].seeds != seeds]
    if not seeds:
        choice.reason = "no seed is at every learning rate"
    elif partial:
        choice.reason = f"selection seed(s) missing at learning rate {', '.join(f'{lr:g}' for lr in partial)}"
    else:
        choice.chosen = max(sorted(choice.validation), key=lambda lr: choice.validation[lr].mean)
        choice.at_edge = choice.swept and choice.chosen in (choice.rates[0], choice.rates[-1])
    return choice


def choose(records: list[dict], seeds: tuple[int, ...] | None = None) -> list[ArmChoice]:
    """Every arm's choice (see the module docstring); ValueError on records that are not one sweep."""
    if not records:
        raise ValueError("the results hold no runs")
    for r in records:
        if not (r.get("best_eval") or {}).get("metrics"):
            raise ValueError(f"run {r['run_id']}: no validation evaluation (best_eval) in its record; a rate is "
                             "chosen on validation, so every run of a sweep needs one")
    records = _latest_per_rate(records)
    arms = _arms(records)
    for arm, runs in arms.items():
        _check_same_settings(arm, runs)
    if seeds is not None:
        present = {r["seed"] for r in records}
        absent = sorted(set(seeds) - present)
        if absent:
            raise ValueError(f"selection seed(s) {', '.join(map(str, absent))} are in no run (seeds present: "
                             f"{', '.join(map(str, sorted(present)))})")
    return [_choose_arm(arm, runs, seeds) for arm, runs in arms.items()]


def chosen_runs(records: list[dict], choices: list[ArmChoice]) -> list[dict]:
    """The records of every arm at its chosen rate (all seeds): the per-method protocol as one results file."""
    chosen = {(c.task, c.model, c.method, c.rank): c.chosen for c in choices if c.chosen is not None}
    return [r for r in _latest_per_rate(records)
            if chosen.get((r["task"], r.get("model", ""), r["method"], r["rank"])) == learning_rate(r)]


def to_markdown(choices: list[ArmChoice], command: str = "") -> str:
    """Two tables: validation per rate on the selection seeds (the choice in bold), and test per rate."""
    grid = sorted({lr for c in choices for lr in c.test})
    several = len({(c.task, c.model) for c in choices}) > 1

    def name(c: ArmChoice) -> str:
        return f"{c.task}, {c.model}: {c.label}" if several else c.label

    head = "| method | " + " | ".join(f"lr {lr:g}" for lr in grid) + " | chosen |"
    rule = "|---|" + "---|" * (len(grid) + 1)
    lines = ["# Learning rate chosen per method on validation", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += ["Validation: best check on the fixed validation subset, mean (std) [seeds] over the selection seeds; "
              "the highest wins, a tie goes to the smaller rate.", "", head, rule]
    for c in choices:
        cells = []
        for lr in grid:
            stats = c.validation.get(lr)
            text = stats.cell() if stats else "—"
            cells.append(f"**{text}**" if lr == c.chosen else text)
        chosen = f"{c.chosen:g}" if c.chosen is not None else f"none: {c.reason}"
        chosen += " (edge of the sweep)" if c.at_edge else ""
        chosen += " (one rate: not swept)" if c.chosen is not None and not c.swept else ""
        lines.append(f"| {name(c)} | " + " | ".join(cells) + f" | {chosen} |")
    lines += ["", "Test at the best validation check, mean (std) [seeds] over every seed at that rate; the chosen "
              "rate's cell (bold) is the per-method protocol's result, a column alone is the one-rate protocol.",
              "", head.replace(" chosen |", " chosen: test |"), rule]
    for c in choices:
        cells = [f"**{c.test[lr].cell()}**" if lr == c.chosen else (c.test[lr].cell() if lr in c.test else "—")
                 for lr in grid]
        at_choice = c.test[c.chosen].cell() if c.chosen is not None else "—"
        lines.append(f"| {name(c)} | " + " | ".join(cells) + f" | {at_choice} |")
    metrics = sorted({c.metric for c in choices})
    lines += ["", f"Metric: {', '.join(metrics)}."]
    return "\n".join(lines) + "\n"


def to_json(choices: list[ArmChoice]) -> list[dict]:
    """The choices as JSON-ready dicts (rates as strings in the per-rate maps)."""
    rows = []
    for c in choices:
        row = asdict(c) | {"swept": c.swept}
        row["validation"] = {f"{lr:g}": asdict(s) for lr, s in c.validation.items()}
        row["test"] = {f"{lr:g}": asdict(s) for lr, s in c.test.items()}
        rows.append(row)
    return rows


def write_choice(choices: list[ArmChoice], records: list[dict], folder: Path, command: str = "") -> dict:
    """Write ``lr_choice.md``, ``lr_choice.json`` and ``results.jsonl`` (the runs at each chosen rate, for
    ``asymlora report`` / ``claims``) into ``folder``, each atomically; the markdown and the paths."""
    markdown = to_markdown(choices, command)
    document = {"command": command, "rule": RULE, "arms": to_json(choices)}
    runs = "".join(json.dumps(r, default=str) + "\n" for r in chosen_runs(records, choices))
    files = [atomic_write_text(folder / "lr_choice.md", markdown),
             atomic_write_text(folder / "lr_choice.json", json.dumps(document, indent=2) + "\n"),
             atomic_write_text(folder / "results.jsonl", runs)]
    return {"markdown": markdown, "files": [str(f) for f in files]}
