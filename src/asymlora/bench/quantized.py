"""Quantized bases (``asymlora bench quantized``): peak training memory and step time of PEFT LoRA
(QLoRA on a quantized base) and asymlora B-only on an fp32, 8-bit and 4-bit base, and the
validation loss of B-only after the same training on a 4-bit and an fp32 base.

**Rows.** Each ``(bits, configuration)`` row runs in its own fresh Python process
(``python -m asymlora.bench.quantized ROW_JSON``): load the base (:func:`asymlora.models.quantized.
load_quantized_causal_lm`), build the configuration (:mod:`asymlora.bench.configs`), lower the
peak RSS to the current RSS (:func:`asymlora.measure.reset_peak_rss`: the loader's own transient
peak is not training memory), run ``warmup`` + ``steps`` AdamW steps on one causal-LM batch of real
tweets (``batch × length`` tokens), then read the peak RSS: **peak training memory** = weights +
adapter + gradients + optimiser + activations, as the planner predicts it. Rows run one after
another, not interleaved (each needs its own model in its own process), so step times carry the
machine's drift between rows.

**The allocator.** A peak RSS counts what glibc's ``malloc`` keeps of freed memory as well as live
tensors. By default glibc serves allocations under a threshold that grows with the largest block
freed so far (up to 32 MiB) from its heap, and a heap keeps its freed chunks until the top is free:
on SmolLM2 4 × 256 the freed-but-kept heap at the peak measured 0.03–1.25 GiB depending on the
configuration, and one B-only row read 3079 MiB once and 3684 MiB the next time
(docs/results/quantized/peak_anatomy/). ``mmap_threshold`` (default 64 KiB, exported to the row's
process as glibc's ``MALLOC_MMAP_THRESHOLD_``) fixes the threshold: every block from 64 KiB up,
every activation here, is mapped on its own and returned when freed, so the peak RSS is the live
memory plus the runtime. ``mmap_threshold=0`` leaves glibc's default (the rows before this option).

**Quality.** B-only on the same base loaded in ``bits`` bits, trained ``steps`` steps on the ShareGPT
training pairs (Alpaca template, loss on the response, batch × max length, AdamW lr 2e-4, the pairs in
their stored order), then the mean token loss over every ShareGPT validation pair.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field

QUANTIZED_CONFIGURATIONS = ("peft_lora", "asymlora_b_only")


@dataclass
class RowSpec:
    """One row: a base in ``bits`` bits (``backend``) and one configuration, trained on one batch."""

    model: str = "smollm2"
    bits: int = 32
    backend: str = "bitsandbytes"
    configuration: str = "asymlora_b_only"
    batch: int = 4
    length: int = 256
    rank: int = 32
    alpha: float = 64.0
    dropout: float = 0.05
    targets: list[str] = field(default_factory=lambda: ["all-linear"])
    steps: int = 3
    warmup: int = 1
    threads: int = 2
    seed: int = 0
    mmap_threshold: int = 65536     # glibc MALLOC_MMAP_THRESHOLD_ of the row's process; 0: glibc's default


def _settings(spec: RowSpec):
    from asymlora.bench.configs import Settings

    return Settings(rank=spec.rank, alpha=spec.alpha, dropout=spec.dropout, targets=list(spec.targets), head=None,
                    seed=spec.seed)


def measure_row(spec: RowSpec) -> dict:
    """Load, build, train ``spec`` in this process; returns its figures (see the module docstring).

    Returns:
        dict: the spec, ``step_time_median_s`` … (:func:`asymlora.bench.step.summarise`),
        ``peak_training_rss_bytes``, ``rss_after_build_bytes``, ``load_s``, ``trainable_params``.
    """
    import torch

    from asymlora.bench.configs import build
    from asymlora.bench.step import Trainer, summarise
    from asymlora.bench.workload import make_stream_batch
    from asymlora.measure import peak_rss_bytes, reset_peak_rss, rss_bytes
    from asymlora.models import load_tokenizer, resolve_targets
    from asymlora.models.quantized import load_quantized_causal_lm

    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    start = time.perf_counter()
    model = load_quantized_causal_lm(spec.model, spec.bits, spec.backend)
    loaded = time.perf_counter() - start
    settings = _settings(spec)
    settings.targets = resolve_targets(model, settings.targets, None)   # all-linear -> the blocks' suffixes
    built = build(spec.configuration, model, settings)
    batch = make_stream_batch(load_tokenizer(spec.model), spec.batch, spec.length, model.config.vocab_size, spec.seed)
    trainer = Trainer(built, batch, lr=2e-4)
    after_build = rss_bytes()
    reset = reset_peak_rss()
    for _ in range(spec.warmup):
        trainer.timed_step(record=False)
    for _ in range(spec.steps):
        trainer.timed_step()
    return {**asdict(spec), **summarise(trainer.times), "peak_training_rss_bytes": peak_rss_bytes(),
            "peak_reset": reset, "rss_after_build_bytes": after_build, "load_s": loaded,
            "trainable_params": sum(p.numel() for p in built.trainable)}


def row_in_subprocess(spec: RowSpec, timeout: float = 3600.0) -> dict:
    """:func:`measure_row` in a fresh interpreter (nothing another row allocated can inflate its peak)."""
    import os
    import subprocess

    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    if spec.mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(spec.mmap_threshold)
    done = subprocess.run([sys.executable, "-m", "asymlora.bench.quantized", json.dumps(asdict(spec))],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"row {spec.bits}-bit {spec.configuration} failed: {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_rows(specs: list[RowSpec], progress=print) -> list[dict]:
    """Every row, one fresh process each, in order."""
    rows = []
    for spec in specs:
        progress(f"row: {spec.bits}-bit {spec.backend} {spec.configuration}")
        rows.append(row_in_subprocess(spec))
        progress(f"  step {rows[-1]['step_time_median_s']:.2f} s, peak {rows[-1]['peak_training_rss_bytes'] / 2**20:.0f} MiB")
    return rows


if __name__ == "__main__":
    print(json.dumps(measure_row(RowSpec(**json.loads(sys.argv[1])))))
