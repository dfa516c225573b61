"""A DomainBed sweep: the runs to do (:func:`plan`), doing them (:func:`run_sweep`), and tables.

Runs: every (variant, test environment, hparams seed 0..n_hparams-1, trial seed 0..n_trials-1),
one test environment at a time, as DomainBed's ``sweep.py``. With ``tune: lora`` (the paper's
choice) only LoRA runs the random search; every other variant then runs once per (test environment,
trial) with the hparams seed that training-domain validation picked for LoRA in that (test
environment, trial), so it trains with the very same hyperparameter values. ``tune: each`` searches
every variant separately.

Each run writes ``<out>/<dataset>/<variant>/env{t}_h{h}_t{s}/result.json`` (atomically, when the
run is complete); a run whose file exists is skipped, so an interrupted sweep resumes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from asymlora.atomic import atomic_write_text

from .config import SweepConfig
from .records import RESULT_NAME, RunKey, RunRecord, read_runs
from .selection import TrainingDomainValidation


def search_keys(cfg: SweepConfig, variants) -> list[RunKey]:
    return [RunKey(cfg.dataset, v, t, h, s) for v in variants for t in cfg.test_envs
            for s in range(cfg.n_trials) for h in range(cfg.n_hparams)]


def searched_variants(cfg: SweepConfig) -> list[str]:
    return list(cfg.variants) if cfg.tune == "each" else ["lora"]


def reuse_keys(cfg: SweepConfig, lora_runs: list[RunRecord]) -> tuple[list[RunKey], list[RunKey]]:
    """For ``tune: lora``: the other variants' runs at LoRA's chosen hparams seed; and the
    (variant, test env, trial) whose LoRA search is not finished yet (as keys with hparams seed -1)."""
    keys, waiting = [], []
    for t in cfg.test_envs:
        for s in range(cfg.n_trials):
            group = [r for r in lora_runs if r.key.test_env == t and r.key.trial_seed == s]
            complete = len({r.key.hparams_seed for r in group}) >= cfg.n_hparams
            choice = TrainingDomainValidation.sweep_choice(group) if complete else None
            for v in cfg.variants:
                if v == "lora":
                    continue
                if choice is None:
                    waiting.append(RunKey(cfg.dataset, v, t, -1, s))
                else:
                    keys.append(RunKey(cfg.dataset, v, t, choice.hparams_seed, s))
    return keys, waiting


def result_path(out: Path, key: RunKey) -> Path:
    return Path(out) / key.folder / RESULT_NAME


def run_sweep(cfg: SweepConfig, out: str | Path, log: Callable = print, stop_at: float | None = None) -> dict:
    """Run every missing run of the sweep in order (search first, then reuse); returns counts.
    ``stop_at``: a ``time.time()`` after which no new run starts."""
    import time

    from .driver import train_run

    out = Path(out)
    counts = {"done_before": 0, "ran": 0, "not_started": 0}
    data = None
    if cfg.dataset != "RotatedMNIST":  # content independent of the seed: load once
        from asymlora.tasks.domainbed import get_dataset

        data = get_dataset(cfg.dataset).load(cfg.data_dir, 0)

    def do(keys, source=None):
        for key in keys:
            path = result_path(out, key)
            if path.is_file():
                counts["done_before"] += 1
                continue
            if stop_at is not None and time.time() > stop_at:
                counts["not_started"] += 1
                continue
            record = train_run(key, cfg, data=data, hparams_seed_source=source, log=log)
            atomic_write_text(path, json.dumps(record.to_dict(), indent=1) + "\n")
            counts["ran"] += 1

    do(search_keys(cfg, searched_variants(cfg)))
    if cfg.tune == "lora":
        lora = [r for r in read_runs(out / cfg.dataset / "lora")] if (out / cfg.dataset / "lora").is_dir() else []
        keys, waiting = reuse_keys(cfg, lora)
        do(keys, source="lora")
        counts["not_started"] += len(waiting)
    return counts


def plan_lines(cfg: SweepConfig) -> list[str]:
    """What a sweep will run, one line per group (for ``--dry-run``)."""
    from asymlora.tasks.domainbed import get_dataset

    spec = get_dataset(cfg.dataset)
    searched = searched_variants(cfg)
    envs = ", ".join(f"{t}={spec.environments[t]}" for t in cfg.test_envs)
    lines = [f"dataset {cfg.dataset} (environments {', '.join(spec.environments)}); test environments: {envs}",
             f"model {cfg.model}; rank {cfg.rank}, alpha {cfg.alpha}; steps {cfg.steps or spec.steps}, "
             f"checkpoint every {cfg.checkpoint_freq or spec.checkpoint_freq}; eval subset "
             f"{cfg.eval_examples or 'whole splits'}; holdout {cfg.holdout_fraction}",
             f"random search ({cfg.n_hparams} hparams x {cfg.n_trials} trials x {len(cfg.test_envs)} test envs) "
             f"for: {', '.join(searched)} -> {len(search_keys(cfg, searched))} runs"]
    if cfg.tune == "lora":
        others = [v for v in cfg.variants if v != "lora"]
        lines.append(f"LoRA's chosen hparams reused for: {', '.join(others) or 'none'} -> "
                     f"{len(others) * cfg.n_trials * len(cfg.test_envs)} runs")
    return lines
