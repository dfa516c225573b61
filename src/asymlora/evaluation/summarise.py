"""Summarisation evaluation: generate summaries of a split, score them with ROUGE over every
example, attach bootstrap 95% intervals, and keep every prediction.

Data flow::

    load_subject(task, model= | run=)  -> Subject: the model (a base model, or a finished run's
                                          base + its trained tensors), tokenizer, task, family
    select(task, split, limit)         -> Examples: the first ``limit`` rows of the split, in order
                                          (a fixed subset, the same for every model)
    summarise(subject, examples, generation, options) -> Summaries
        family.generate(...)           -> texts, generated tokens per example, sources cut
        rouge_per_example(...)         -> F-measures ×100, shape (n,) per ROUGE type
        bootstrap_means(...)           -> Interval per type (shared resamples)
    summary_document(...)              -> the record of ``summary.json``
    write_outputs(folder, ...)         -> predictions.jsonl, summary.json, table.md (atomic writes)

Costs recorded: generated tokens per second (all examples' new tokens / wall time of generation)
and peak memory (:func:`asymlora.measure.peak_memory_bytes`; CUDA: the peak allocation during
generation; CPU: the process's peak resident set, which includes loading the model). A trained run
adds its training samples per second (from its ``metrics.json``) and, when its folder has
``time.txt`` from GNU ``time -f %M``, the peak resident memory of the training process.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asymlora.evaluation.bootstrap import Interval, bootstrap_means
from asymlora.measure import MIB, peak_memory_bytes, reset_cuda_peak
from asymlora.tasks.rouge import ROUGE_TYPES, rouge_per_example

GENERATIVE_FAMILIES = ("seq2seq", "causal_lm")


@dataclass(frozen=True)
class SummariseOptions:
    """How to evaluate: split, subset, batch, input length (None: the run's / task's), bootstrap."""

    split: str = "test"
    limit: int | None = None
    batch_size: int = 8
    max_source_length: int | None = None
    bootstrap: int = 1000
    level: float = 0.95
    seed: int = 0
    snippet: int = 200

    def __post_init__(self):
        for name, low in (("batch_size", 1), ("bootstrap", 1), ("snippet", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low} (got {getattr(self, name)})")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 (got {self.limit})")
        if self.max_source_length is not None and self.max_source_length < 1:
            raise ValueError(f"max_source_length must be >= 1 (got {self.max_source_length})")


@dataclass
class Subject:
    """What is evaluated: ``label`` (``"base"`` or the run's method), ``about`` (the run's facts)."""

    model: Any
    tokenizer: Any
    task: Any
    family: Any
    label: str
    max_length: int
    about: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Examples:
    ids: list[str]
    sources: list[str]
    references: list[str]
    split: str
    split_size: int


@dataclass
class Summaries:
    """Predictions of one evaluation, their ROUGE per example and overall, and the cost."""

    examples: Examples
    predictions: list[str]
    scores: dict[str, np.ndarray]
    intervals: dict[str, Interval]
    new_tokens: list[int]
    sources_cut: int
    seconds: float
    peak_memory_mib: float
    generation: dict


def generative_task(name: str):
    """``(task, family)``; a task whose family does not generate text raises ValueError."""
    from asymlora.tasks import get_family, get_task

    task = get_task(name)
    if task.family not in GENERATIVE_FAMILIES or task.generation is None:
        raise ValueError(f"task {task.name!r} is not a summarisation task (family {task.family}); "
                         f"use one with family {' or '.join(GENERATIVE_FAMILIES)}")
    return task, get_family(task.family)


def load_subject(task_name: str | None = None, model: str | None = None, run: str | Path | None = None,
                 device: str = "cpu", seed: int = 0) -> Subject:
    """A base ``model`` for ``task_name``, or a finished ``run`` (its task unless ``task_name``);
    exactly one of the two. Architecture problems are refused before any weight is loaded."""
    from asymlora.models import load_tokenizer, resolve_model

    if (model is None) == (run is None):
        raise ValueError("give exactly one of --model (a base model) and --run (a finished training run)")
    if run is not None:
        from asymlora.evaluation.trained import ADAPTER_DIR, LOADERS, read_run

        info = read_run(run)
        task, family = generative_task(task_name or info.task)
        ref = resolve_model(info.model)
        family.check_model(ref, task)
        if info.kind not in LOADERS:
            raise ValueError(f"{info.folder}: unknown method kind {info.kind!r}")
        record = json.loads((info.folder / "metrics.json").read_text(encoding="utf-8"))
        lm = LOADERS[info.kind](family.load_model(ref, task, info.seed), info.folder / ADAPTER_DIR)
        about = {"run": str(info.folder), "model": info.model, "method": info.method, "rank": info.rank,
                 "seed": info.seed, "trainable_params": record.get("trainable_params"),
                 "total_params": record.get("total_params"), "trainable_percent": record.get("trainable_percent"),
                 "train_steps": record.get("train_steps"), "train_samples_per_second": record.get("samples_per_second"),
                 "train_peak_rss_mib": _train_peak_mib(info.folder, record), "digest": info.digest,
                 "data_dir": info.data_dir}
        label, max_length = info.method, info.max_length
    else:
        task, family = generative_task(task_name or "")
        ref = resolve_model(model)
        family.check_model(ref, task)
        lm = family.load_model(ref, task, seed)
        about = {"model": model, "method": "base", "rank": 0, "seed": seed, "trainable_params": 0,
                 "trainable_percent": 0.0}
        label, max_length = "base", task.hyper.max_length
    return Subject(lm.to(device).eval(), load_tokenizer(ref), task, family, label, int(max_length), about)


def _train_peak_mib(folder: Path, record: dict) -> float | None:
    """The training run's peak memory in MiB: ``time.txt``'s peak RSS (GNU time around the training
    process) when the run has one, else the runner's own ``peak_memory_bytes`` from ``metrics.json``
    (the process's peak RSS at the end of the run on a CPU, CUDA's peak allocation on a GPU; a
    ``reproduce`` process trains its runs in turn, so for all but its first run this is the peak of
    the runs so far, an upper bound)."""
    measured = _time_file_rss(folder / "time.txt")
    if measured is not None:
        return measured
    peak = record.get("peak_memory_bytes")
    return None if peak is None else float(peak) / 2**20


def _time_file_rss(path: Path) -> float | None:
    """Peak RSS in MiB from a ``time.txt`` holding ``max_rss_kib N`` (None when absent)."""
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("max_rss_kib"):
            return float(line.split()[1]) / 1024
    return None


def select(task, split: str, limit: int | None, data_dir: str | None = None) -> Examples:
    """The first ``limit`` rows (all when None) of ``split``, with ids, sources and references."""
    data = task.load(data_dir, 0)
    if split not in data:
        raise ValueError(f"task {task.name!r} has no {split!r} split (has {', '.join(data)})")
    rows = data[split]
    if len(rows) == 0:
        raise ValueError(f"task {task.name!r}: the {split} split is empty")
    chosen = rows.select(range(min(len(rows), limit or len(rows))))
    ids, sources, references = [], [], []
    for i, row in enumerate(chosen):
        source, reference = task.pair(row)
        ids.append(str(row.get("id", f"{split}-{i}")))
        sources.append(source)
        references.append(str(reference).strip())
    return Examples(ids, sources, references, split, len(rows))


def source_length(subject: Subject, generation, options: SummariseOptions) -> int:
    """Tokens of source a model reads: the option, else the run's length (a causal LM keeps room
    for ``max_new_tokens`` inside it)."""
    if options.max_source_length is not None:
        return options.max_source_length
    if subject.family.name == "causal_lm":
        return max(1, subject.max_length - generation.max_new_tokens)
    return subject.max_length


def peak_memory_mib(device: str) -> float:
    """:func:`asymlora.measure.peak_memory_bytes` of ``device`` in MiB (CUDA's peak allocation, else
    the process's peak RSS)."""
    return peak_memory_bytes(device) / MIB


def summarise(subject: Subject, examples: Examples, generation, options: SummariseOptions,
              device: str = "cpu") -> Summaries:
    """Generate, score and bootstrap (see the module docstring)."""
    import torch

    length = source_length(subject, generation, options)
    reset_cuda_peak(device)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        made = subject.family.generate(subject.model, subject.tokenizer, examples.sources, generation, length,
                                       options.batch_size)
    seconds = time.perf_counter() - started
    scores = rouge_per_example(made.texts, examples.references)
    intervals = bootstrap_means(scores, options.bootstrap, options.level, options.seed)
    settings = {**dataclasses.asdict(generation), "max_source_length": length, "batch_size": options.batch_size}
    return Summaries(examples, made.texts, scores, intervals, made.new_tokens, made.sources_cut, seconds,
                     peak_memory_mib(device), settings)


def summary_document(result: Summaries, subject: Subject, options: SummariseOptions, extra: dict) -> dict:
    """The ``summary.json`` record: what was evaluated, ROUGE with intervals, the cost."""
    tokens = int(sum(result.new_tokens))
    return {
        "task": subject.task.name, "family": subject.family.name, "label": subject.label, **subject.about,
        "split": result.examples.split, "examples": len(result.predictions),
        "split_size": result.examples.split_size, "whole_split": len(result.predictions) == result.examples.split_size,
        "rouge": {name: result.intervals[name].to_dict() for name in ROUGE_TYPES},
        "confidence": {"level": options.level, "bootstrap_resamples": options.bootstrap, "seed": options.seed},
        "generation": result.generation, "sources_cut": result.sources_cut,
        "empty_predictions": sum(not text.strip() for text in result.predictions),
        "generated_tokens": tokens, "mean_generated_tokens": tokens / max(len(result.new_tokens), 1),
        "generation_seconds": result.seconds, "generated_tokens_per_second": tokens / max(result.seconds, 1e-9),
        "peak_memory_mib": result.peak_memory_mib, **extra,
    }


def prediction_records(result: Summaries, snippet: int) -> list[dict]:
    """One record per example: id, the start of the source, reference, prediction and its ROUGE."""
    records = []
    for i, ident in enumerate(result.examples.ids):
        source = result.examples.sources[i]
        records.append({"id": ident, "source": source[:snippet] + ("…" if len(source) > snippet else ""),
                        "reference": result.examples.references[i], "prediction": result.predictions[i],
                        "generated_tokens": result.new_tokens[i],
                        **{name: round(float(result.scores[name][i]), 4) for name in ROUGE_TYPES}})
    return records


def one_row_markdown(document: dict) -> str:
    """A one-row ROUGE table with intervals, for ``table.md`` beside one evaluation."""
    head = "| model | examples | " + " | ".join(ROUGE_TYPES) + " | tokens/s | peak MiB |"
    cells = [f"{document['rouge'][n]['mean']:.2f} [{document['rouge'][n]['low']:.2f}, "
             f"{document['rouge'][n]['high']:.2f}]" for n in ROUGE_TYPES]
    name = f"{document['label']}" + (f" r={document['rank']}" if document.get("rank") else "")
    return "\n".join([head, "|" + "---|" * (len(ROUGE_TYPES) + 4),
                      f"| {name} | {document['examples']} | " + " | ".join(cells) +
                      f" | {document['generated_tokens_per_second']:.1f} | {document['peak_memory_mib']:.0f} |"]) + "\n"


def write_outputs(folder: Path, result: Summaries, document: dict, snippet: int = 200) -> list[Path]:
    """Write ``predictions.jsonl``, ``summary.json`` and ``table.md`` under ``folder`` (each atomically;
    summary.json last, so its presence means the evaluation is complete)."""
    from asymlora.atomic import atomic_write_text

    folder = Path(folder)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in prediction_records(result, snippet))
    paths = [atomic_write_text(folder / "predictions.jsonl", lines),
             atomic_write_text(folder / "table.md", one_row_markdown(document))]
    paths.append(atomic_write_text(folder / "summary.json", json.dumps(document, indent=2, default=str) + "\n"))
    return paths
