"""Out-of-distribution text: tweet-trained sentiment classifiers scored on IMDB movie reviews.

A ``tweets`` classifier has three outputs, ``("negative", "neutral", "positive")``; IMDB reviews
are only negative or positive. Both domains are scored by the same **two-logit rule**: take the
logits of the negative and the positive class, ignore the neutral one, predict the larger::

    logits: (n, 3)  ->  z = logits[:, [i_neg, i_pos]]: (n, 2)  ->  ŷ = argmax(z) ∈ {0 neg, 1 pos}

* out-of-domain accuracy: ŷ against the IMDB label on the fixed evaluation subset
  (:func:`asymlora.tasks.imdb.load`), reviews truncated to ``max_length`` tokens (default 256);
* in-domain binary accuracy: the same rule on every negative or positive tweet of the tweets
  TEST split (the neutral tweets left out), at the run's own training ``max_length``;
* gap = in-domain binary accuracy − out-of-domain accuracy (percentage points), so the gap
  compares like with like (two classes on both sides);
* the run's 3-class in-domain accuracy is reported beside them, as ``metrics.json`` gives it
  (its test split at the best validation step, possibly a seeded subsample: ``eval_limit``), and
  on the WHOLE test split (argmax over the 3 logits, every tweet, the same forward pass as the
  binary rule's): the number to report when training capped the test split with ``eval_limit``.

Accuracies are percentages. :func:`summarise` gives mean (std) over seeds per (task, model,
method, rank), the layout of the paper's out-of-distribution table.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import numpy as np

from asymlora.evaluation.stats import Stat, stat
from asymlora.evaluation.trained import RunIdentity, RunInfo, TrainedModel

NEGATIVE, POSITIVE = "negative", "positive"
DEFAULT_MAX_LENGTH = 256
DEFAULT_BATCH_SIZE = 32


def class_indices(task) -> tuple[int, int]:
    """``(index of "negative", index of "positive")`` among the task's labels; tasks without both
    raise ValueError."""
    names = tuple(task.label_names or ())
    if NEGATIVE not in names or POSITIVE not in names:
        raise ValueError(f"task {task.name!r} has no {NEGATIVE!r} and {POSITIVE!r} classes (labels {list(names)}); "
                         "only sentiment classifiers can be scored on IMDB")
    return names.index(NEGATIVE), names.index(POSITIVE)


def predict_logits(model, tokenizer, texts, max_length: int, batch_size: int = DEFAULT_BATCH_SIZE,
                   device: str = "cpu") -> np.ndarray:
    """``(n, classes)`` logits of ``texts``.

    Texts are batched in order of length (less padding), truncated to ``max_length`` tokens, and
    the rows returned in the original order.
    """
    import torch

    texts = list(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    rows: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt").to(device)
            logits = model(**enc).logits.float().cpu().numpy()
            if rows is None:
                rows = np.empty((len(texts), logits.shape[1]), dtype=np.float32)
            rows[idx] = logits
    return rows if rows is not None else np.empty((0, 0), dtype=np.float32)


def binary_rule(logits: np.ndarray, indices: tuple[int, int]) -> np.ndarray:
    """``(n,)`` predictions in {0 negative, 1 positive}: argmax over the two columns ``indices``."""
    return np.asarray(logits)[:, list(indices)].argmax(axis=-1).astype(np.int64)


def predict_binary(model, tokenizer, texts, max_length: int, indices: tuple[int, int],
                   batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu") -> np.ndarray:
    """``(n,)`` predictions in {0 negative, 1 positive} by the two-logit rule."""
    return binary_rule(predict_logits(model, tokenizer, texts, max_length, batch_size, device), indices)


def in_domain_test(info: RunInfo) -> tuple[list[str], np.ndarray]:
    """Every example of the run's task's TEST split: (texts, labels as the task's class indices)."""
    from asymlora.tasks import get_task

    task = get_task(info.task)
    class_indices(task)
    if len(task.text_fields) != 1:
        raise ValueError(f"task {task.name!r} has {len(task.text_fields)} text fields; expected one")
    splits = task.load(info.data_dir, info.seed)
    if "test" not in splits:
        raise ValueError(f"task {task.name!r} has no labelled test split")
    test = splits["test"]
    return list(test[task.text_fields[0]]), np.asarray(test["label"], dtype=np.int64)


def binary_subset(labels: np.ndarray, indices: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, binary labels)``: which examples are negative or positive, and their 0/1 labels."""
    neg, pos = indices
    mask = (labels == neg) | (labels == pos)
    return mask, (labels[mask] == pos).astype(np.int64)


@dataclass(frozen=True)
class OodScore(RunIdentity):
    """One run scored in and out of distribution (one line of ``ood.jsonl``; accuracies in %)."""

    in_domain_accuracy: float | None
    in_domain_binary_accuracy: float
    ood_accuracy: float
    gap: float
    in_domain_examples: int
    ood_examples: int
    in_domain_max_length: int
    ood_max_length: int
    ood_subset: int
    ood_source: str
    folder: str
    in_domain_full_accuracy: float | None = None   # 3 classes, the whole test split (absent in older lines)
    in_domain_full_examples: int | None = None

    def key(self) -> tuple[str, int, int]:
        """What makes a score reusable: the run's ``metrics.json`` digest and the IMDB settings (a
        line written before the whole-test-split accuracy existed is not: its run is scored again)."""
        if self.in_domain_full_accuracy is None:
            return (self.digest, -1, -1)
        return (self.digest, self.ood_subset, self.ood_max_length)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "OodScore":
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"not an ood record (missing {missing})")
        return cls(**{k: data[k] for k in names if k in data})


def accuracy(predictions: np.ndarray, labels) -> float:
    """Percentage of ``predictions`` equal to ``labels``."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("no examples to score")
    return 100.0 * float(np.mean(np.asarray(predictions) == labels))


def score(trained: TrainedModel, reviews, subset_size: int, max_length: int = DEFAULT_MAX_LENGTH,
          batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu") -> OodScore:
    """Score one loaded run on ``reviews`` (an :class:`asymlora.tasks.imdb.Reviews`) and on its own
    task's test split; ``subset_size`` is the IMDB subset size asked for (recorded)."""
    from asymlora.tasks import get_task

    info = trained.info
    indices = class_indices(get_task(info.task))
    texts, labels = in_domain_test(info)
    logits = predict_logits(trained.model, trained.tokenizer, texts, info.max_length, batch_size, device)
    mask, binary = binary_subset(labels, indices)
    in_binary = accuracy(binary_rule(logits[mask], indices), binary)
    in_full = accuracy(logits.argmax(axis=-1), labels)
    ood = accuracy(predict_binary(trained.model, trained.tokenizer, reviews.texts, max_length, indices,
                                  batch_size, device), reviews.labels)
    return OodScore(**info.identity(), in_domain_accuracy=info.metrics.get("accuracy"),
                    in_domain_binary_accuracy=in_binary, ood_accuracy=ood, gap=in_binary - ood,
                    in_domain_examples=len(binary), ood_examples=len(reviews), in_domain_max_length=info.max_length,
                    ood_max_length=int(max_length), ood_subset=int(subset_size), ood_source=Path(reviews.source).name,
                    folder=str(info.folder), in_domain_full_accuracy=in_full, in_domain_full_examples=len(labels))


def read_scores(path: str | Path) -> list[OodScore]:
    """Every record of an ``ood.jsonl`` (missing file: none); bad lines raise ValueError naming the line."""
    path = Path(path)
    if not path.exists():
        return []
    scores = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            scores.append(OodScore.from_dict(json.loads(line)))
        except (json.JSONDecodeError, ValueError, TypeError) as err:
            raise ValueError(f"{path}:{number}: {err}") from None
    return scores


# ------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class OodRow:
    """One method: mean (std) over seeds of each accuracy and of the gap."""

    task: str
    model: str
    method: str
    label: str
    rank: int
    seeds: tuple[int, ...]
    in_domain: Stat
    in_domain_full: Stat
    in_domain_binary: Stat
    ood: Stat
    gap: Stat

    def to_dict(self) -> dict:
        cell = lambda s: {"mean": s.mean, "std": s.std, "n": s.n, "values": list(s.values)}  # noqa: E731
        return {"task": self.task, "model": self.model, "method": self.method, "label": self.label,
                "rank": self.rank, "seeds": list(self.seeds), "in_domain_accuracy": cell(self.in_domain),
                "in_domain_full_accuracy": cell(self.in_domain_full),
                "in_domain_binary_accuracy": cell(self.in_domain_binary), "ood_accuracy": cell(self.ood),
                "gap": cell(self.gap)}


def _method_order(name: str) -> int:
    from asymlora.methods import METHODS

    return list(METHODS).index(name) if name in METHODS else len(METHODS)


def summarise(scores: list[OodScore]) -> list[OodRow]:
    """Rows per (task, model, method, rank) in the method registry's order; the latest score of a
    (run_id, digest) wins when one appears twice."""
    latest: dict[tuple[str, str], OodScore] = {}
    for s in scores:
        latest[(s.run_id, s.digest)] = s
    groups: dict[tuple, list[OodScore]] = {}
    for s in latest.values():
        groups.setdefault((s.task, s.model, s.method, s.rank), []).append(s)
    rows = []
    for (task, model, method, rank), group in sorted(groups.items(),
                                                     key=lambda kv: (kv[0][0], kv[0][1], _method_order(kv[0][2]),
                                                                     kv[0][3])):
        group.sort(key=lambda s: s.seed)
        rows.append(OodRow(task, model, method, group[0].label, rank, tuple(s.seed for s in group),
                           stat(s.in_domain_accuracy for s in group), stat(s.in_domain_full_accuracy for s in group),
                           stat(s.in_domain_binary_accuracy for s in group),
                           stat(s.ood_accuracy for s in group), stat(s.gap for s in group)))
    return rows


def to_markdown(rows: list[OodRow], scores: list[OodScore]) -> str:
    """The per-method table with a header stating what was measured."""
    subsets = sorted({(s.ood_examples, s.ood_max_length, s.ood_source) for s in scores})
    domain = "; ".join(f"{n:,} IMDB reviews from {src}, cut to {length} tokens" for n, length, src in subsets)
    lines = ["# Out of distribution: tweets → IMDB movie reviews", "",
             f"In domain: the tweets test split. Out of domain: {domain or '—'}. Negative vs positive by the "
             "two class logits (the neutral class ignored). Gap = in-domain binary − out-of-domain accuracy. "
             "Mean (std) over seeds, accuracy in %.", "",
             "| Task | Model | Method | r | Seeds | In-domain acc (3 classes, run's test) "
             "| In-domain acc (3 classes, whole test split) | In-domain acc (neg/pos) | OOD acc | Gap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.task} | {r.model} | {r.label} | {r.rank or '—'} | {len(r.seeds)} | {r.in_domain.text()} "
                     f"| {r.in_domain_full.text()} | {r.in_domain_binary.text()} | {r.ood.text()} | {r.gap.text()} |")
    return "\n".join(lines) + "\n"
