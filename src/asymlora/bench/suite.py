"""One benchmark suite: every configuration in one process, timed steps interleaved.

Order of work (:func:`run_suite`):

1. load the workload once (model template and batch); each configuration gets a copy whose
   frozen body shares the template's weights (only the head and the adapters are its own);
2. warm-up steps, then ``steps`` timed rounds, configurations interleaved
   (a, b, c, …, a, b, c, …) so that drift of the machine hits all of them alike;
3. bytes saved for backward (:mod:`asymlora.bench.saved`), trainable parameters, checkpoint bytes;
4. peak memory, one fresh subprocess per configuration (:mod:`asymlora.bench.memory`);
5. frozen-factor initialisation time, QR against full SVD (:mod:`asymlora.bench.init_timing`);
6. the dropout-mask path at one module in isolation (:mod:`asymlora.bench.mask_path`, CPU).

Every figure is also given as a ratio to ``peft_lora`` measured in the same run, and the issue's
targets for ``asymlora_b_only`` are checked and reported (never asserted).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from asymlora.bench.configs import DEFAULT_SUITE, ORDER, REFERENCE, Settings, build
from asymlora.bench.saved import count_saved
from asymlora.bench.step import Trainer, summarise
from asymlora.bench.workload import make_workload

MIB = 1 << 20

#: Figures compared with the reference configuration (smaller is better for all of them except samples/s).
RATIO_KEYS = ("step_time_median_s", "samples_per_s", "saved_activation_bytes", "adapter_activation_bytes",
              "peak_rss_bytes", "checkpoint_bytes", "trainable_params")


@dataclass
class SuiteOptions:
    """Everything a suite depends on (``asymlora bench`` flags)."""

    model: str | None = None          # folder, hub id or layout name; None = packaged MiniLM
    batch: int = 16
    length: int = 128
    labels: int = 3
    layers: int | None = None
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    targets: list[str] | None = None
    dtype: str = "float32"
    device: str = "cpu"
    threads: int = 2
    steps: int = 10
    warmup: int = 2
    memory: bool = True
    memory_steps: int = 2
    init: bool = True
    svd: bool = True
    mask_path: bool = True
    configurations: list[str] = field(default_factory=lambda: list(DEFAULT_SUITE))
    seed: int = 0
    task: str = "classification"      # or "causal_lm"

    def workload_kwargs(self) -> dict:
        return {"model": self.model, "batch": self.batch, "length": self.length, "labels": self.labels,
                "layers": self.layers, "dtype": self.dtype, "device": self.device, "targets": self.targets,
                "seed": self.seed, "task": self.task}



def _package_version() -> str:
    """asymlora's version from the installed package's metadata (nothing below the CLI imports the
    package face ``asymlora/__init__.py``)."""
    from importlib import metadata

    try:
        return metadata.version("asymlora")
    except metadata.PackageNotFoundError:
        return "unknown"

def validate(options: SuiteOptions) -> None:
    """Raise ValueError naming the first bad option."""
    from asymlora.bench.configs import USER_NAMES

    unknown = [c for c in options.configurations if c not in ORDER]
    if unknown:
        raise ValueError(f"unknown configuration {unknown[0]!r}; known: {', '.join(USER_NAMES)}")
    for name, flag in (("batch", "batch-size"), ("length", "max-length"), ("rank", "rank"), ("threads", "threads"),
                       ("steps", "steps")):
        if getattr(options, name) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(options, name)}")
    if options.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {options.warmup}")
    if options.task == "causal_lm" and "head_only" in options.configurations:
        raise ValueError("configuration head_only needs a task head; drop it for --task causal_lm")
    if not 0.0 <= options.dropout < 1.0:
        raise ValueError(f"--dropout must be in [0, 1), got {options.dropout}")
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {options.device!r} requested but CUDA is not available")
    if not options.device.startswith(("cpu", "cuda")):
        raise ValueError(f"device must be cpu or cuda[:N], got {options.device!r}")


def environment(options: SuiteOptions) -> dict:
    """Versions, CPU, threads and load: what the figures depend on."""
    import numpy
    import peft
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as stream:
            names = [line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "numpy": numpy.__version__, "asymlora": _package_version(),
            "platform": platform.platform(), "cpu": cpu, "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "device": options.device,
            "load_average_start": list(os.getloadavg())}
    if options.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(options.device))
    return info


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_suite(options: SuiteOptions, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run the suite and return the ``bench.json`` document (nothing is written here).

    ``progress(stage, done, total)`` is called as work advances.
    """
    validate(options)
    tell = progress or (lambda stage, done, total: None)
    torch.set_num_threads(options.threads)
    started = time.time()
    env = environment(options)
    tell("loading model", 0, 1)
    workload = make_workload(**options.workload_kwargs())
    settings = Settings(rank=options.rank, alpha=options.alpha, dropout=options.dropout,
                        targets=list(workload.targets), head=workload.head, seed=options.seed)
    names = list(options.configurations)
    trainers: dict[str, Trainer] = {}
    for name in names:
        torch.manual_seed(options.seed)
        trainers[name] = Trainer(build(name, workload.fresh_model(), settings), workload.batch)

    rounds = options.warmup + options.steps
    total = rounds * len(names)
    for round_index in range(rounds):
        for position, name in enumerate(names):
            tell("timing steps", round_index * len(names) + position, total)
            trainers[name].timed_step(record=round_index >= options.warmup)
    tell("timing steps", total, total)

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="asymlora-bench-") as scratch:
        for index, name in enumerate(names):
            tell("saved bytes and checkpoints", index, len(names))
            trainer = trainers[name]
            built = trainer.built

            def forward_backward():
                built.model.zero_grad(set_to_none=True)
                built.model(**workload.batch).loss.backward()

            saved = count_saved(built.model, forward_backward, built.adapter_modules, built.excluded)
            folder = Path(scratch) / name
            weights_file = built.save(folder)
            head_params = sum(p.numel() for p in built.model.get_submodule(
                _head_path(built.model, workload.head)).parameters() if p.requires_grad) if workload.head else 0
            entry = summarise(trainer.times)
            entry["samples_per_s"] = options.batch / entry["step_time_median_s"]
            entry["step_times_s"] = list(trainer.times)
            entry.update(saved.as_dict())
            entry["checkpoint_bytes"] = weights_file.stat().st_size
            entry["checkpoint_file"] = weights_file.name
            entry["checkpoint_folder_bytes"] = _folder_bytes(folder)
            entry["trainable_params"] = sum(p.numel() for p in built.trainable)
            entry["adapter_modules"] = len(built.adapter_modules)
            entry["trainable_head_params"] = head_params
            entry["peak_rss_bytes"] = None
            results[name] = entry
    del trainers

    if options.memory:
        for index, name in enumerate(names):
            tell("peak memory (fresh process each)", index, len(names))
            spec = {"workload": options.workload_kwargs(), "settings": dataclasses.asdict(settings), "config": name,
                    "threads": options.threads, "steps": options.memory_steps}
            measured = _measure_memory(spec)
            results[name].update(measured)
        tell("peak memory (fresh process each)", len(names), len(names))

    init = None
    if options.init:
        from asymlora.bench.init_timing import init_timings

        tell("frozen-factor init (QR vs SVD)", 0, 1)
        init = init_timings(svd=options.svd)

    mask = None
    if options.mask_path and options.device == "cpu":
        from asymlora.bench.mask_path import measure_mask_path

        tell("dropout-mask path at one module", 0, 1)
        width = getattr(workload.template.config, "hidden_size", None) or 384
        mask = measure_mask_path((options.batch, options.length, width), options.rank, options.dropout or 0.05)

    _add_ratios(results)
    env["load_average_end"] = list(os.getloadavg())
    document = {
        "suite": {"workload": workload.description, "task": workload.task, "head": workload.head,
                  "targets": workload.targets,
                  "batch": options.batch, "length": options.length, "labels": options.labels, "rank": options.rank,
                  "alpha": options.alpha, "dropout": options.dropout, "dtype": options.dtype,
                  "device": options.device, "threads": options.threads, "steps": options.steps,
                  "warmup": options.warmup, "optimizer": "AdamW(lr=1e-4)", "interleaved": True,
                  "configurations": names, "reference": REFERENCE, "seconds": None},
        "configurations": results,
        "init_timing": init,
        "mask_path": mask,
        "environment": env,
    }
    document["targets"] = check_targets(document)
    document["suite"]["seconds"] = time.time() - started
    return document


def _measure_memory(spec: dict) -> dict:
    from asymlora.bench.memory import measure_in_subprocess

    return measure_in_subprocess(spec)


def _head_path(model: torch.nn.Module, head: str) -> str:
    """The trained copy of the head: PEFT wraps it (``…classifier.modules_to_save.default``)."""
    for name, _ in model.named_modules():
        if name == head or name.endswith("." + head):
            return name
    raise ValueError(f"head {head!r} not found")


def _add_ratios(results: dict) -> None:
    reference = results.get(REFERENCE)
    for entry in results.values():
        ratios = {}
        for key in RATIO_KEYS:
            mine = entry.get(key)
            theirs = reference.get(key) if reference else None
            ratios[key] = (mine / theirs) if (mine is not None and theirs) else None
        entry["ratios_to_peft_lora"] = ratios


def check_targets(document: dict) -> list[dict]:
    """The issue's targets for ``asymlora_b_only``, each with its measured value and whether it is met.

    The targets were set for the default workload (MiniLM, 16 × 128, r = 8, dropout 0.05);
    on another workload they are reported for information.
    """
    rows = document["configurations"]
    ours, peft_lora, floor = rows.get("asymlora_b_only"), rows.get("peft_lora"), rows.get("adapter_floor")
    checks = []

    def add(name, value, limit, unit, by_min=None):
        checks.append({"target": name, "measured": value, "limit": limit, "unit": unit,
                       "met": None if value is None else value <= limit, "measured_by_min_step": by_min})

    if ours:
        add("B-only adapter-attributable saved activations", ours["adapter_activation_bytes"] / MIB, 1.0, "MiB")
        if peft_lora:
            add("B-only saved activations / PEFT LoRA", ours["saved_activation_bytes"] /
                peft_lora["saved_activation_bytes"], 0.87, "ratio")
            add("B-only step time / PEFT LoRA", ours["step_time_median_s"] / peft_lora["step_time_median_s"],
                0.97, "ratio", ours["step_time_min_s"] / peft_lora["step_time_min_s"])
            add("B-only checkpoint / PEFT LoRA", ours["checkpoint_bytes"] / peft_lora["checkpoint_bytes"], 0.51,
                "ratio")
        if floor:
            add("B-only step time / adapter floor", ours["step_time_median_s"] / floor["step_time_median_s"],
                1.02, "ratio", ours["step_time_min_s"] / floor["step_time_min_s"])
    init = document.get("init_timing")
    if init:
        add(f"frozen-factor init, QR, {init['shape'][0]}x{init['shape'][1]} r={init['rank']}",
            init["qr_s"] * 1000, 10.0, "ms")
    return checks
