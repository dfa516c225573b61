"""``asymlora bench --sweep``: the same comparison on a sweep of shapes, in one process.

Workloads (:data:`SWEEP`), from a few thousand to a few hundred thousand elements per adapted
module's input:

=====================  ==================================================================  ==========
name                   model, batch × tokens, targets                                       task
=====================  ==================================================================  ==========
``tiny_bert``          random BERT layout ``bert-tiny`` (64 wide, 2 layers), 4 × 32, q/v    classification
``minilm``             packaged all-MiniLM-L6-v2 (384 wide, 6 layers), 16 × 128, q/v        classification
``llama7b_qv``         random ``llama-7b`` layout, 2 layers (4096 wide, MLP 11008), 2 × 64,  classification
                       ``q_proj, v_proj``
``llama7b_all``        the same with every linear layer of the blocks as a target           classification
``smollm2``            packaged SmolLM2-135M (576 wide, 30 layers), 4 × 256, all-linear      causal LM
=====================  ==================================================================  ==========

Each workload runs as one :func:`~asymlora.bench.suite.run_suite` (its configurations' timed steps
interleaved, default B-only, PEFT LoRA and the adapter floor); the sweep adds, once, the mask-path
crossover (:func:`~asymlora.bench.mask_path.measure_crossover`; ``crossover=False`` skips it), and
checks per workload the targets (:data:`SWEEP_TARGETS`): B-only step ≤ 1.00 × PEFT LoRA and
≤ 1.03 × the adapter floor, B-only's adapter-attributable saved activations ≤ 2 % of PEFT LoRA's,
and, where those configurations ran, B-only ≤ 1.03 × B-only without dropout and compiled B-only ≤
eager B-only — each from the one run's figures.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Callable

import torch

from asymlora.bench.suite import SuiteOptions, environment, run_suite

#: The sweep's default configurations: what its targets compare.
SWEEP_CONFIGURATIONS = ("asymlora_b_only", "peft_lora", "adapter_floor")

@dataclass(frozen=True)
class SweepTarget:
    """``figure`` of configuration ``ours`` over the same figure of ``other`` must be ≤ ``limit``.
    ``always``: reported (as not measured) even when a configuration did not run."""

    name: str
    figure: str
    ours: str
    other: str
    limit: float
    always: bool = True


#: Targets per workload.
SWEEP_TARGETS = (
    SweepTarget("B-only step / PEFT LoRA", "step_time_median_s", "asymlora_b_only", "peft_lora", 1.00),
    SweepTarget("B-only step / adapter floor", "step_time_median_s", "asymlora_b_only", "adapter_floor", 1.03),
    SweepTarget("B-only adapter-attributable saved / PEFT LoRA", "adapter_activation_bytes", "asymlora_b_only",
                "peft_lora", 0.02),
    SweepTarget("B-only step / B-only without dropout", "step_time_median_s", "asymlora_b_only",
                "asymlora_b_only_no_dropout", 1.03, always=False),
    SweepTarget("compiled B-only step / eager B-only", "step_time_median_s", "asymlora_b_only_compiled",
                "asymlora_b_only", 1.00, always=False),
    SweepTarget("whole-model compiled B-only step / eager B-only", "step_time_median_s",
                "asymlora_b_only_compiled_model", "asymlora_b_only", 1.00, always=False),
)


@dataclass(frozen=True)
class SweepWorkload:
    """One row of the sweep: what to load and how many steps to time (``--steps`` overrides)."""

    name: str
    model: str | None
    batch: int
    length: int
    layers: int | None = None
    targets: tuple[str, ...] | None = None
    task: str = "classification"
    steps: int = 30
    warmup: int = 3

    def options(self, base: SuiteOptions) -> SuiteOptions:
        return dataclasses.replace(base, model=self.model, batch=self.batch, length=self.length, layers=self.layers,
                                   targets=list(self.targets) if self.targets else None, task=self.task)

    def elements_per_module(self, width: int) -> int:
        return self.batch * self.length * width


def _smollm2() -> str:
    from asymlora.models import smollm2_path

    return str(smollm2_path())


LLAMA_ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

SWEEP: tuple[SweepWorkload, ...] = (
    SweepWorkload("tiny_bert", "bert-tiny", 4, 32, steps=100, warmup=10),
    SweepWorkload("minilm", None, 16, 128, steps=30),
    SweepWorkload("llama7b_qv", "llama-7b", 2, 64, layers=2, targets=("q_proj", "v_proj"), steps=8, warmup=1),
    SweepWorkload("llama7b_all", "llama-7b", 2, 64, layers=2, targets=LLAMA_ALL, steps=8, warmup=1),
    SweepWorkload("smollm2", "smollm2", 4, 256, targets=("all-linear",), task="causal_lm", steps=10, warmup=2),
)


def _resolve_model(workload: SweepWorkload) -> str | None:
    return _smollm2() if workload.model == "smollm2" else workload.model


def check_sweep_targets(document: dict) -> list[dict]:
    """:data:`SWEEP_TARGETS` for one workload's ``bench.json`` document (``met`` None when a figure is missing)."""
    rows = document["configurations"]
    checks = []
    for target in SWEEP_TARGETS:
        ours, theirs, key, limit = rows.get(target.ours), rows.get(target.other), target.figure, target.limit
        if not target.always and not (ours and theirs):
            continue
        value = ours[key] / theirs[key] if ours and theirs and theirs[key] else None
        by_min = None
        if key == "step_time_median_s" and value is not None:
            by_min = ours["step_time_min_s"] / theirs["step_time_min_s"]
        checks.append({"target": target.name, "measured": value, "limit": limit, "unit": "ratio",
                       "met": None if value is None else value <= limit, "measured_by_min_step": by_min})
    return checks


def select_workloads(names: list[str] | None) -> tuple[SweepWorkload, ...]:
    """The workloads named (all of :data:`SWEEP` for None), in the sweep's order.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if not names:
        return SWEEP
    known = {w.name: w for w in SWEEP}
    for name in names:
        if name not in known:
            raise ValueError(f"unknown sweep workload {name!r}; choose from {', '.join(known)}")
    return tuple(w for w in SWEEP if w.name in names)


def workload_options(base: SuiteOptions, workloads: tuple[SweepWorkload, ...] = SWEEP, steps: int | None = None,
                     warmup: int | None = None) -> list[SuiteOptions]:
    """One :class:`SuiteOptions` per workload (validated: ValueError names the first bad one)."""
    from asymlora.bench.suite import validate

    options = []
    for workload in workloads:
        each = dataclasses.replace(workload.options(base), steps=steps or workload.steps,
                                   warmup=workload.warmup if warmup is None else warmup,
                                   memory=False, init=False, mask_path=False)
        try:
            validate(each)
        except ValueError as error:
            raise ValueError(f"sweep workload {workload.name}: {error}") from None
        options.append(each)
    return options


def run_sweep(base: SuiteOptions, workloads: tuple[SweepWorkload, ...] = SWEEP, steps: int | None = None,
              warmup: int | None = None, crossover: bool = True,
              progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run every workload (each one suite, configurations interleaved) and the crossover measurement;
    returns the ``sweep.json`` document. ``steps`` / ``warmup`` override the per-workload defaults."""
    tell = progress or (lambda stage, done, total: None)
    prepared = workload_options(base, workloads, steps, warmup)
    started = time.time()
    torch.set_num_threads(base.threads)
    env = environment(base)
    results = {}
    for index, (workload, options) in enumerate(zip(workloads, prepared)):
        options = dataclasses.replace(options, model=_resolve_model(workload))

        def inner(stage, done, total, name=workload.name):
            tell(f"{name}: {stage}", done, total)

        document = run_suite(options, inner)
        document.pop("targets", None)      # the default suite's targets; the sweep has its own
        document["sweep_targets"] = check_sweep_targets(document)
        results[workload.name] = document
        tell("workloads", index + 1, len(workloads))
    mask = None
    if crossover and base.device == "cpu":
        from asymlora.bench.mask_path import measure_crossover

        tell("mask-path crossover", 0, 1)
        mask = measure_crossover()
    from asymlora.adapters.dropout import MASK_POLICY

    env["load_average_end"] = list(os.getloadavg())
    return {"sweep": {"workloads": [dataclasses.asdict(w) for w in workloads],
                      "configurations": list(base.configurations), "threads": base.threads, "dtype": base.dtype,
                      "rank": base.rank, "alpha": base.alpha, "dropout": base.dropout, "device": base.device,
                      "steps_override": steps, "seconds": time.time() - started,
                      "mask_policy_saved_max_elements": MASK_POLICY.saved_max_elements},
            "results": results, "mask_crossover": mask, "environment": env}
