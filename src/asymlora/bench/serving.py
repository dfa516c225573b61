"""Serving many B-only adapters in one batch: asymlora's shared-A serving against PEFT.

One batch of ``rows`` sequences of ``length`` tokens, row ``i`` using adapter ``i mod n``, through
a causal LM with ``n`` adapters of rank ``r`` on the same targets, logits kept for the last
position only (a prefill, as a server computes before generating). Four ways, timed interleaved
in one process (the order rotates every round, so machine noise hits all alike):

==================  =========================================================================
``asymlora_serve``  :func:`asymlora.serve`: one forward, ``A x`` once per module for the whole
                    batch, each row's own ``B`` gathered (``bmm``)
``peft_mixed``      PEFT LoRA with ``n`` named adapters, one forward with ``adapter_names=`` (per
                    module, per adapter present: the rows' sub-batch through its own A and B)
``per_adapter``     one asymlora B-only model, one forward per adapter over that adapter's rows
                    (the adapter's ``B`` copied in before each)
``base``            the frozen model without adapters: the floor no adapter method can beat
==================  =========================================================================

Every adapter shares the frozen ``A`` (same recipe and seed, as B-only adapters trained from one
init do) and has its own random ``B ~ N(0, 0.02²)``; the PEFT adapters hold the same ``A`` and
``B``, so all three adapter ways compute the same function: the largest logit difference to
``asymlora_serve`` is reported (for ``base`` it is the adapters' own effect, which must not be 0).
Speed is ``rows · length / s`` (median over rounds); the "adapter cost" of a way is its time minus
``base``'s. Memory, per way: ``held_bytes`` (the model's parameters and buffers, plus for
``per_adapter`` the ``n`` adapters' ``B`` kept outside it), and, in a fresh process that loads one
copy of the model and builds the way from the saved adapter folders, the resident set after the
build and the peak resident set (``VmHWM``) of one forward, reset after the build (Linux
``clear_refs``) so that loading does not count.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from asymlora.bench.report import _fmt

WAYS = ("asymlora_serve", "peft_mixed", "per_adapter", "base")
REFERENCE = "peft_mixed"
B_STD = 0.02


@dataclass
class ServingOptions:
    """What the serving benchmark runs (see the module docstring)."""

    model: str = "smollm2"
    adapters: int = 8
    rows: int = 16
    length: int = 128
    rank: int = 8
    alpha: float = 16.0
    targets: list[str] = field(default_factory=lambda: ["all-linear"])
    threads: int = 2
    rounds: int = 5
    warmup: int = 1
    seed: int = 0
    memory: bool = True

    def check(self) -> None:
        """Raise ValueError on the first bad field (before anything is loaded)."""
        for name in ("adapters", "rows", "length", "rank", "threads", "rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"serving benchmark: {name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"serving benchmark: warmup must be >= 0, got {self.warmup}")
        if self.rows < self.adapters:
            raise ValueError(f"serving benchmark: {self.rows} rows cannot mix {self.adapters} adapters "
                             f"(need rows >= adapters)")


@dataclass
class Setup:
    """The models of every way, the batch and the per-row adapter index."""

    models: dict[str, nn.Module]
    call: dict[str, Callable[[], torch.Tensor]]
    index: torch.Tensor
    description: str
    targets: list[str]
    held_outside: dict[str, int] = field(default_factory=dict)   # bytes a way needs outside its model


def _load_base(options: ServingOptions):
    """``(causal LM in eval mode, token batch, description, resolved target names)``."""
    from asymlora.bench.workload import load_model, make_stream_batch, resolve_targets

    base, tokenizer, description = load_model(options.model, layers=None, seed=options.seed, task="causal_lm")
    batch = make_stream_batch(tokenizer, options.rows, options.length, base.config.vocab_size, options.seed)
    return base.eval(), batch, description, resolve_targets(base, options.targets, None)


def _adapter_tensors(options: ServingOptions, shapes: dict[str, tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
    """``n`` dicts ``{module: B (d_out, r)}`` drawn from ``N(0, B_STD²)`` with a fixed seed."""
    generator = torch.Generator().manual_seed(options.seed + 1)
    return [{name: torch.randn(d_out, options.rank, generator=generator) * B_STD for name, (d_out, _) in shapes.items()}
            for _ in range(options.adapters)]


def write_adapters(options: ServingOptions, base: nn.Module, targets: list[str], folder: Path) -> list[Path]:
    """Save ``n`` B-only adapters over one frozen A (recipe and seed shared, ``B`` from
    :func:`_adapter_tensors`) into ``folder/adapter-<k>``; ``base`` is not modified."""
    import copy

    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import adapted_modules, inject
    from asymlora.adapters.io import save_adapter

    config = AdapterConfig(rank=options.rank, alpha=options.alpha, dropout=0.0, train="B", targets=targets,
                           seed=options.seed)
    model = inject(copy.deepcopy(base), config)
    modules = adapted_modules(model)
    bs = _adapter_tensors(options, {name: (m.B.shape[0], m.A.shape[1]) for name, m in modules.items()})
    paths = []
    for k, tensors in enumerate(bs):
        with torch.no_grad():
            for name, module in modules.items():
                module.B.copy_(tensors[name])
        paths.append(save_adapter(model, str(Path(folder) / f"adapter-{k}")))
    return paths


def build(options: ServingOptions, folders: list[Path], ways=WAYS, loaded: tuple | None = None) -> Setup:
    """Build the requested ways from the adapter ``folders`` (:func:`write_adapters`) on one loaded
    base model: the last way built takes the loaded model itself, every earlier one a copy, so a
    single way holds exactly one copy of the model (what its fresh-process memory must see).
    ``loaded``: :func:`_load_base`'s result when the caller has it already (else loaded here)."""
    import copy

    from asymlora.adapters.io import load_adapter, read_adapter
    from asymlora.adapters.inject import adapted_modules
    from asymlora.adapters.serving import adapter_rows, serve

    base, batch, description, targets = loaded or _load_base(options)
    order = [w for w in WAYS if w in ways]

    def take(way: str) -> nn.Module:
        return base if way == order[-1] else copy.deepcopy(base)

    files = [read_adapter(folder) for folder in folders]
    index = torch.arange(options.rows) % options.adapters
    inputs = {"input_ids": batch["input_ids"], "logits_to_keep": 1}   # unpadded rows: no attention mask
    models: dict[str, nn.Module] = {}
    call: dict[str, Callable[[], torch.Tensor]] = {}
    held_outside: dict[str, int] = {}

    if "asymlora_serve" in order:
        served = serve(folders, base=take("asymlora_serve"))

        def run_served() -> torch.Tensor:
            with adapter_rows(served, index):
                return served(**inputs).logits
        models["asymlora_serve"], call["asymlora_serve"] = served, run_served

    if "per_adapter" in order:
        single = load_adapter(take("per_adapter"), folders[0]).eval()
        modules = adapted_modules(single)

        def run_each() -> torch.Tensor:
            out = None
            for k in range(options.adapters):
                rows = (index == k).nonzero().flatten()
                with torch.no_grad():
                    for name, module in modules.items():
                        module.B.copy_(files[k].tensors[f"{name}.B"])
                part = single(**{**inputs, "input_ids": inputs["input_ids"][rows]}).logits
                if out is None:
                    out = part.new_empty((options.rows, *part.shape[1:]))
                out[rows] = part
            return out
        models["per_adapter"], call["per_adapter"] = single, run_each
        held_outside["per_adapter"] = sum(t.nbytes for f in files for t in f.tensors.values())

    if "peft_mixed" in order:
        frozen_a = files[0].resolve_frozen()
        bs = [{key[: -len(".B")]: t for key, t in f.tensors.items() if key.endswith(".B")} for f in files]
        peft_model = _peft_mixed(take("peft_mixed"), options, targets,
                                 {key[: -len(".A")]: t for key, t in frozen_a.items()}, bs)
        names = [f"adapter{int(k)}" for k in index]
        models["peft_mixed"] = peft_model
        call["peft_mixed"] = lambda: peft_model(**inputs, adapter_names=names).logits

    if "base" in order:
        models["base"], call["base"] = base, lambda: base(**inputs).logits
    return Setup(models, call, index, description, targets, held_outside)


def _peft_mixed(model: nn.Module, options: ServingOptions, targets: list[str], frozen_a: dict, bs: list) -> nn.Module:
    """A PEFT model with ``n`` LoRA adapters ``adapter{k}``: A = asymlora's frozen A, B = ``bs[k]``."""
    import warnings

    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type="CAUSAL_LM", r=options.rank, lora_alpha=options.alpha, lora_dropout=0.0,
                        target_modules=list(targets))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(model, config, adapter_name="adapter0")
        for k in range(1, options.adapters):
            peft_model.add_adapter(f"adapter{k}", config)
    with torch.no_grad():
        for name, layer in peft_model.base_model.model.named_modules():
            if name not in frozen_a:
                continue
            for k in range(options.adapters):
                layer.lora_A[f"adapter{k}"].weight.copy_(frozen_a[name])
                layer.lora_B[f"adapter{k}"].weight.copy_(bs[k][name])
    return peft_model.eval()


def _time(function: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        function()
    return time.perf_counter() - start


def run_serving(options: ServingOptions, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The benchmark's document: per way the median seconds, tokens/s, ratio to PEFT's mixed
    batch, adapter cost over the base, largest logit difference, peak memory."""
    options.check()
    torch.set_num_threads(options.threads)
    with tempfile.TemporaryDirectory() as folder:
        loaded = _load_base(options)
        folders = write_adapters(options, loaded[0], loaded[3], Path(folder))
        setup = build(options, folders, loaded=loaded)
        del loaded
        document = _timed(options, setup, progress)
        if options.memory:
            for way in setup.call:
                document["results"][way].update(_memory_in_subprocess(options, way, folders))
    return document


def _timed(options: ServingOptions, setup: Setup, progress: Callable[[str, int, int], None] | None) -> dict:
    """Check that the ways agree, then time them interleaved (see the module docstring)."""
    ways = list(setup.call)
    with torch.inference_mode():
        reference = setup.call["asymlora_serve"]().float()
        difference = {w: float((setup.call[w]().float() - reference).abs().max()) for w in ways}
    for _ in range(options.warmup):
        for way in ways:
            _time(setup.call[way])
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    for round_index in range(options.rounds):
        shift = round_index % len(ways)
        for way in ways[shift:] + ways[:shift]:
            seconds[way].append(_time(setup.call[way]))
        if progress:
            progress("serving", round_index + 1, options.rounds)
    tokens = options.rows * options.length
    median = {w: statistics.median(s) for w, s in seconds.items()}
    results = {}
    for way in ways:
        cost = median[way] - median["base"]
        reference_cost = median[REFERENCE] - median["base"]
        results[way] = {
            "seconds": seconds[way], "median_seconds": median[way], "tokens_per_second": tokens / median[way],
            "speedup_vs_peft_mixed": median[REFERENCE] / median[way],
            "adapter_seconds": cost if way != "base" else 0.0,
            "adapter_cost_ratio_vs_peft_mixed": (cost / reference_cost) if way != "base" and reference_cost > 0
            else None,
            "max_logit_difference": difference[way],   # base: the adapters' own effect (must be > 0)
            "held_bytes": _held_bytes(setup.models[way]) + setup.held_outside.get(way, 0),
        }
    return {"serving": {**asdict(options), "targets_resolved": setup.targets, "model_description": setup.description},
            "results": results, "environment": _environment(), "target_speedup": 1.5}


def _held_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer the model holds (shared storage counted once)."""
    seen, total = set(), 0
    for tensor in [*model.parameters(), *model.buffers()]:
        key = tensor.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += tensor.untyped_storage().nbytes()
    return total


def _environment() -> dict:
    import os

    return {"torch": torch.__version__, "machine": platform.machine(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _memory_in_subprocess(options: ServingOptions, way: str, folders: list[Path]) -> dict:
    from asymlora.bench.memory import measure_in_subprocess

    return measure_in_subprocess({"options": asdict(options), "way": way, "folders": [str(f) for f in folders]},
                                 module="asymlora.bench.serving")


def _measure(spec: dict) -> dict:
    import gc

    from asymlora.measure import peak_rss_bytes, reset_peak_rss, rss_bytes

    options = ServingOptions(**spec["options"])
    torch.set_num_threads(options.threads)
    setup = build(options, [Path(f) for f in spec["folders"]], ways=(spec["way"],))
    gc.collect()
    loaded = rss_bytes()
    reset = reset_peak_rss()
    with torch.inference_mode():
        setup.call[spec["way"]]()
    peak = peak_rss_bytes()
    return {"peak_rss_bytes": peak, "rss_after_build_bytes": loaded, "forward_rss_increase_bytes": peak - loaded,
            "peak_reset_after_build": reset}


def serving_markdown(document: dict) -> str:
    """The serving table: one row per way, ratios against PEFT's mixed batch."""
    s, results, env = document["serving"], document["results"], document["environment"]
    mib = 2 ** 20
    lines = [f"Serving {s['adapters']} B-only adapters (r={s['rank']}, targets {','.join(s['targets'])}) on "
             f"{s['model']}: {s['rows']} rows × {s['length']} tokens, row i uses adapter i mod {s['adapters']}, "
             f"last-position logits; median of {s['rounds']} interleaved rounds, {s['threads']} threads.", "",
             "| way | median s | tokens/s | speed-up vs PEFT mixed | adapter cost (s over base) | "
             "adapter cost / PEFT's | max abs Δ logit | held (MiB) | peak RSS (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for way in WAYS:
        if way not in results:
            continue
        r = results[way]
        ratio = r["adapter_cost_ratio_vs_peft_mixed"]
        peak = r.get("peak_rss_bytes")
        lines.append(f"| {way} | {r['median_seconds']:.3f} | {r['tokens_per_second']:.0f} | "
                     f"{r['speedup_vs_peft_mixed']:.2f}× | {r['adapter_seconds']:.3f} | "
                     f"{_fmt(ratio, '.2f')} | "
                     f"{_fmt(r['max_logit_difference'], '.1e')} | "
                     f"{r['held_bytes'] / mib:.1f} | {_fmt(None if peak is None else peak / mib, '.0f')} |")
    speed = results["asymlora_serve"]["speedup_vs_peft_mixed"]
    ceiling = results[REFERENCE]["median_seconds"] / results["base"]["median_seconds"] if "base" in results else math.nan
    lines += ["", f"Target: asymlora_serve ≥ {document['target_speedup']}× PEFT's mixed batch; measured "
                  f"{speed:.2f}× ({'met' if speed >= document['target_speedup'] else 'missed'}). "
                  f"Ceiling (PEFT mixed / the base model without adapters): {ceiling:.2f}×.",
              f"Machine: {env['machine']}, {env['cpu_count']} logical cores, torch {env['torch']}, "
              f"load average {env['load_average']}."]
    return "\n".join(lines) + "\n"


def write_serving_report(document: dict, out: Path) -> dict:
    """Write ``serving.json`` and ``serving.md`` into ``out`` (atomically); returns their paths."""
    from asymlora.bench.report import write_documents

    return write_documents(document, out, "serving", serving_markdown)


if __name__ == "__main__":
    print(json.dumps(_measure(json.loads(sys.argv[1]))))
