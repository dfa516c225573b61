"""The task-family protocol: everything that depends on the KIND of task, so the runner needs none.

A family answers, for one kind of task (sequence classification, causal LM, seq2seq, image
classification):

* which model class to load (:meth:`TaskFamily.load_model`) and which modules are its fresh head
  (:meth:`TaskFamily.head_modules`: trained in full beside the adapters);
* how a split becomes model inputs (:meth:`TaskFamily.preprocess`) and how examples are batched
  (:meth:`TaskFamily.collator`);
* the loss policy: ``token_level_loss`` is True when the loss is a mean over tokens, so the Trainer
  must pass ``num_items_in_batch`` (correct gradient accumulation and DDP); False for per-example
  losses, where that scaling would be wrong (see :mod:`asymlora.training.runner`);
* how predictions are scored (:meth:`TaskFamily.metrics_fn`), which Trainer class and arguments
  evaluation needs (:meth:`TaskFamily.trainer_options`), and whether a metric is better higher
  (:func:`greater_is_better`);
* whether a model's architecture suits the family (:meth:`TaskFamily.check_model`, before loading)
  and, for generative families, how a loaded model writes texts from sources
  (:meth:`TaskFamily.generate` -> :class:`Generated`).

Adding a kind of task is one module that subclasses :class:`TaskFamily` and calls
:func:`register_family`; the runner is not edited.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from asymlora.models import ModelRef
    from asymlora.tasks.base import Task

#: Metrics for which lower is better (everything else: higher is better).
LOWER_IS_BETTER = frozenset({"loss", "perplexity"})


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (False for losses and perplexity)."""
    return metric not in LOWER_IS_BETTER


@dataclass
class TrainerOptions:
    """What a family adds to the Trainer: its class (``"Trainer"`` or ``"Seq2SeqTrainer"``), extra
    ``TrainingArguments`` fields and the ``preprocess_logits_for_metrics`` hook (or None)."""

    trainer_class: str = "Trainer"
    arguments: dict[str, Any] = field(default_factory=dict)
    preprocess_logits: Callable | None = None


@dataclass(frozen=True)
class Generated:
    """Texts a generative family wrote for a list of sources, and what it cost.

    ``new_tokens``: tokens generated per example, up to and including the end-of-sequence token
    (padding after it not counted); ``sources_cut``: sources whose tokens were cut to fit the
    input length (counted, never hidden)."""

    texts: list[str]
    new_tokens: list[int]
    sources_cut: int = 0


def model_type_of(ref: "ModelRef") -> str | None:
    """The ``model_type`` of ``ref`` without loading weights (:attr:`ModelRef.model_type`: a local
    folder's ``config.json``, a tiny model's architecture, a packaged model's known type, a hub id's
    guessed type; None when unknown)."""
    return ref.model_type


@dataclass(frozen=True)
class PreparedData:
    """The tokenised / transformed splits and what preprocessing had to change, for the record."""

    splits: "datasets.DatasetDict"
    notes: dict[str, Any] = field(default_factory=dict)


class TaskFamily:
    """Base class of the families; subclasses override what differs."""

    name: str = ""
    description: str = ""
    token_level_loss: bool = False

    def load_model(self, ref: "ModelRef", task: "Task", seed: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def head_modules(self, ref: "ModelRef", task: "Task") -> list[str]:
        """Names of the freshly initialised head modules (none for language-model heads)."""
        return []

    def preprocess(self, splits: "datasets.DatasetDict", processor, task: "Task",
                   max_length: int) -> PreparedData:  # pragma: no cover - abstract
        raise NotImplementedError

    def collator(self, processor, model):  # pragma: no cover - abstract
        raise NotImplementedError

    def metrics_fn(self, task: "Task", processor) -> Callable | None:
        """``EvalPrediction -> {metric: value}`` (None: the Trainer's loss only)."""
        return None

    def trainer_options(self, task: "Task", processor, config) -> TrainerOptions:
        return TrainerOptions()

    def check_model(self, ref: "ModelRef", task: "Task") -> None:
        """Raise :class:`asymlora.errors.UserError` (one line) when ``ref``'s architecture cannot do
        this family's job; called before anything is loaded. The default accepts every model."""

    def generate(self, model, processor, sources: list[str], generation, max_source_length: int,
                 batch_size: int = 8) -> Generated:  # pragma: no cover - abstract
        """Write one text per source with ``generation`` (:class:`asymlora.tasks.Generation`)."""
        raise NotImplementedError(f"task family {self.name!r} does not generate text")

    def batch_examples(self, inputs: dict) -> int:
        """How many examples a training batch holds (for samples / s)."""
        for key in ("labels", "input_ids", "pixel_values"):
            if key in inputs:
                return int(inputs[key].shape[0])
        return 0


FAMILIES: dict[str, TaskFamily] = {}


def register_family(family: TaskFamily) -> TaskFamily:
    """Add ``family`` to :data:`FAMILIES` under ``family.name`` (names are unique)."""
    if not family.name or family.name in FAMILIES:
        raise ValueError(f"task family {family.name!r} is unnamed or already registered")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> TaskFamily:
    """The registered family called ``name`` (ValueError with a hint otherwise)."""
    if name in FAMILIES:
        return FAMILIES[name]
    match = difflib.get_close_matches(str(name), list(FAMILIES), n=1, cutoff=0.5)
    hint = f" (did you mean {match[0]!r}?)" if match else ""
    raise ValueError(f"unknown task family {name!r}{hint}; known: {', '.join(FAMILIES)}")
