"""Task registry: what a task is (data loader, text columns, metric, the paper's hyperparameters).

A :class:`Task` is pure data plus two callables:

* ``load(data_dir, seed) -> DatasetDict`` with splits ``"train"``, ``"validation"`` and, when the
  source has labelled test data, ``"test"``. Columns: ``text_fields`` (1 or 2 text columns) and
  ``"label"`` (``int`` in ``[0, num_labels)``, or ``float`` for regression, ``num_labels == 1``).
* ``compute_metrics(predictions, labels) -> {name: value}``: ``predictions`` are logits of shape
  ``(n, k)`` (classification; argmax is taken) or ``(n,)`` / ``(n, 1)`` (regression); ``labels``
  ``(n,)``. Values are on the paper's scale (percent, i.e. ×100).

Task modules (``glue``, ``tweets``, ``aclsum_aspect``) call :func:`register` at import time; the
package ``__init__`` imports them all, so ``TASKS`` is complete once ``asymlora.tasks`` is imported.
"""

from __future__ import annotations

import difflib
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import datasets


@dataclass(frozen=True)
class Hyper:
    """The per-task training settings (the paper's for its tasks; see docs/paper.md)."""

    learning_rate: float
    epochs: float
    batch_size: int = 16
    alpha: float = 16.0
    max_length: int = 128
    warmup_ratio: float = 0.06
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Generation:
    """How a generative task decodes at evaluation (beam search) and how long its targets may be."""

    num_beams: int = 1
    max_new_tokens: int = 64
    max_target_length: int = 64
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    min_new_tokens: int = 0

    def __post_init__(self):
        for name, low in (("num_beams", 1), ("max_new_tokens", 1), ("max_target_length", 1),
                          ("no_repeat_ngram_size", 0), ("min_new_tokens", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"generation setting {name} must be an integer >= {low} (got {value!r})")
        if self.min_new_tokens > self.max_new_tokens:
            raise ValueError(f"generation setting min_new_tokens={self.min_new_tokens} exceeds "
                             f"max_new_tokens={self.max_new_tokens}")
        if not isinstance(self.length_penalty, (int, float)) or self.length_penalty != self.length_penalty:
            raise ValueError(f"generation setting length_penalty must be a number (got {self.length_penalty!r})")

    def apply(self, generation_config) -> None:
        """Set these decoding settings on a model's ``generation_config`` (its special tokens stay):
        greedy (``num_beams = 1``) or beam search, no sampling."""
        generation_config.num_beams = self.num_beams
        generation_config.max_new_tokens = self.max_new_tokens
        generation_config.min_new_tokens = self.min_new_tokens
        generation_config.max_length = None
        generation_config.min_length = 0
        generation_config.length_penalty = self.length_penalty
        generation_config.no_repeat_ngram_size = self.no_repeat_ngram_size
        generation_config.early_stopping = self.num_beams > 1
        generation_config.do_sample = False


@dataclass(frozen=True)
class Task:
    """One task: its data, its family (the kind of model and scoring) and the paper's settings.

    ``family`` names a :mod:`asymlora.tasks.families` member. Classification families use
    ``text_fields`` / ``image_field``, ``num_labels`` and ``label_names``; generative families
    (``causal_lm``, ``seq2seq``) use ``pair(row) -> (prompt or source, response or target)`` and
    ``generation``. ``compute_metrics`` takes what the family decodes: logits and labels for
    classification, lists of predicted and reference texts for generation.
    """

    name: str
    text_fields: tuple[str, ...]
    num_labels: int
    metric_names: tuple[str, ...]
    hyper: Hyper
    label_names: tuple[str, ...] | None
    load: Callable[[str | None, int], "datasets.DatasetDict"]
    compute_metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]]
    description: str = ""
    family: str = "sequence_classification"
    pair: Callable[[dict], tuple[str, str]] | None = None
    image_field: str = "image"
    generation: Generation | None = None
    hub_dataset: str | None = None  # the hub data set ``load`` reads when no ``data_dir`` is given

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def main_metric(self) -> str:
        return self.metric_names[0]


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add ``task`` to :data:`TASKS` (names are unique)."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def _did_you_mean(name: str, choices) -> str:
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def get_task(name: str) -> Task:
    """The registered task called ``name``; unknown names raise one ``ValueError`` with a hint."""
    key = str(name).strip().lower()
    if key in TASKS:
        return TASKS[key]
    squashed = {_squash(k): k for k in TASKS}  # "SST-2" -> sst2, "STS-B" -> stsb, "mnli-mm" -> mnli_mm
    if _squash(key) in squashed:
        return TASKS[squashed[_squash(key)]]
    raise ValueError(
        f"unknown task {name!r}{_did_you_mean(key, TASKS)}; known tasks: {', '.join(sorted(TASKS))}"
    )


def tokenize(splits: "datasets.DatasetDict", tokenizer, task: Task, max_length: int) -> "datasets.DatasetDict":
    """Tokenise every split: columns become ``input_ids``, ``attention_mask`` (and ``token_type_ids``
    when the tokenizer makes them) and ``labels``. Truncates to ``max_length``; no padding (the
    Trainer's ``DataCollatorWithPadding`` pads per batch). Sentence pairs are encoded as a pair."""
    fields = task.text_fields

    def encode(batch):
        texts = [batch[f] for f in fields]
        enc = tokenizer(*texts, truncation=True, max_length=max_length)
        labels = batch["label"]
        enc["labels"] = [float(x) for x in labels] if task.is_regression else [int(x) for x in labels]
        return enc

    import datasets

    label_type = datasets.Value("float32") if task.is_regression else datasets.Value("int64")
    out = {}
    for split, ds in splits.items():
        missing = [c for c in (*fields, "label") if c not in ds.column_names]
        if missing:
            raise ValueError(f"split {split!r} of task {task.name!r} lacks column(s) {missing}")
        enc = ds.map(encode, batched=True, remove_columns=list(ds.column_names),
                     desc=f"tokenise {task.name}/{split}")
        out[split] = enc.cast_column("labels", label_type)

    return datasets.DatasetDict(out)


def limit(splits: "datasets.DatasetDict", train_limit: int | None, eval_limit: int | None,
          seed: int) -> "datasets.DatasetDict":
    """Seeded subsample: at most ``train_limit`` rows of ``"train"`` and ``eval_limit`` rows of every
    other split (``None`` or ``<= 0`` keeps everything). The chosen rows depend only on ``seed`` and
    the split's name (not on the other splits), and are kept in their original order."""
    import datasets

    out = {}
    for split, ds in splits.items():
        cap = train_limit if split == "train" else eval_limit
        if cap is not None and 0 < cap < len(ds):
            rng = np.random.default_rng([int(seed), zlib.crc32(split.encode("utf-8"))])
            idx = np.sort(rng.choice(len(ds), size=int(cap), replace=False))
            ds = ds.select(idx.tolist())
        out[split] = ds
    return datasets.DatasetDict(out)
