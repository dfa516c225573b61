"""News summarisation data sets of the paper's Table 3: XSum and CNN/DailyMail, for encoder-decoder
models (family ``seq2seq``) and as an instruction prompt for decoder-only models (``causal_lm``).

=====================  =========================  ======================  ====================
task                   columns (source -> target)  hub data set            family
=====================  =========================  ======================  ====================
``xsum``               ``document -> summary``     ``EdinburghNLP/xsum``   seq2seq
``cnn_dailymail``      ``article -> highlights``   ``abisee/cnn_dailymail``  seq2seq
                                                   (config ``3.0.0``)
``xsum_lm``            the same, as a prompt       the same                causal_lm
``cnn_dailymail_lm``   the same, as a prompt       the same                causal_lm
=====================  =========================  ======================  ====================

Data comes from the hub when no ``data_dir`` is given, else from a local folder holding one file
per split, named ``train``, ``validation`` (or ``val``) and ``test`` with the extension ``.jsonl``
(one JSON object per line), ``.json`` (a list of objects, or JSON lines) or ``.csv`` (a header row).
Every file must have the source and target columns; an ``id`` column is kept when present (else
``<split>-<row>``). A missing file, a missing column, an empty split or an empty source / target
raises one line naming the file (:class:`asymlora.errors.UserError`: these are the user's files).

Settings (docs/paper.md §3; docs/summarisation.md says where we chose): lr 5e-4, 15 epochs,
per-device batch 8 (the configs reach the paper's 48 with ``grad_accum: 6``), source length 1024
tokens (BART's limit). Generation: XSum 8 beams, at most 62 new tokens, at least 11, no repeated
3-gram, length penalty 1.0, targets cut at 64 tokens in training; CNN/DM 4 beams, at most 142 new
tokens, at least 56, no repeated 3-gram, length penalty 2.0, targets cut at 142 tokens (the
decoding settings of the released BART-large XSum / CNN checkpoints). Targets longer than the
maximum are counted in the run's ``preprocessing`` record, never cut silently.
Metrics: ROUGE-1 (main), ROUGE-2, ROUGE-L, ROUGE-Lsum (:mod:`.rouge`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from asymlora.errors import UserError

from .base import Generation, Hyper, Task, register
from .rouge import ROUGE_TYPES, rouge

SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "val"), "test": ("test",)}
EXTENSIONS = (".jsonl", ".json", ".csv")


@dataclass(frozen=True)
class Corpus:
    """One summarisation corpus: its columns, hub location, prompt and decoding settings."""

    name: str
    source: str
    target: str
    hub_id: str
    hub_config: str | None
    prompt: str
    generation: Generation
    description: str


def read_records(path: Path) -> list[dict]:
    """The rows of one local split file (``.jsonl``, ``.json`` or ``.csv``) as dicts."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if path.suffix == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    stripped = text.strip()
    if path.suffix == ".json" and stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise UserError(f"{path}: line {lineno} is not valid JSON ({err.msg})") from None
    if not all(isinstance(row, dict) for row in rows):
        raise UserError(f"{path}: every record must be a JSON object with named fields")
    return rows


def split_file(folder: Path, split: str) -> Path:
    """The file of ``split`` in ``folder`` (see the module docstring for the names)."""
    for stem in SPLIT_NAMES[split]:
        for ext in EXTENSIONS:
            if (folder / f"{stem}{ext}").is_file():
                return folder / f"{stem}{ext}"
    names = ", ".join(f"{stem}{ext}" for stem in SPLIT_NAMES[split] for ext in EXTENSIONS)
    raise FileNotFoundError(f"{folder}: no {split} file (looked for {names})")


def columns_of(rows: list[dict], corpus: Corpus, split: str, where: str) -> dict[str, list[str]]:
    """``{id, source column, target column}`` lists of ``rows``, checked (see the module docstring)."""
    if not rows:
        raise UserError(f"{where}: the {split} split is empty")
    for column in (corpus.source, corpus.target):
        if column not in rows[0]:
            raise UserError(f"{where}: no {column!r} column (has {sorted(rows[0])}); {corpus.name} needs "
                            f"{corpus.source!r} -> {corpus.target!r}")
    out: dict[str, list[str]] = {"id": [], corpus.source: [], corpus.target: []}
    for i, row in enumerate(rows):
        for column in (corpus.source, corpus.target):
            value = row.get(column)
            if value is None or not str(value).strip():
                raise UserError(f"{where}: row {i + 1} of the {split} split has an empty {column!r}")
        out["id"].append(str(row.get("id") or f"{split}-{i}"))
        out[corpus.source].append(str(row[corpus.source]))
        out[corpus.target].append(str(row[corpus.target]))
    return out


def load(corpus: Corpus, data_dir: str | None = None, seed: int = 0):
    """``{train, validation, test}`` with columns ``id``, the source and the target; ``seed`` unused."""
    import datasets

    del seed
    out = {}
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such data folder")
        for split in SPLIT_NAMES:
            path = split_file(folder, split)
            out[split] = datasets.Dataset.from_dict(columns_of(read_records(path), corpus, split, str(path)))
        return datasets.DatasetDict(out)
    raw = datasets.load_dataset(corpus.hub_id, corpus.hub_config) if corpus.hub_config else \
        datasets.load_dataset(corpus.hub_id)
    for split in SPLIT_NAMES:
        rows = raw[split]
        where = f"{corpus.hub_id} {split}"
        out[split] = datasets.Dataset.from_dict(columns_of(list(rows), corpus, split, where))
    return datasets.DatasetDict(out)


def source_target(corpus: Corpus, row: dict) -> tuple[str, str]:
    return row[corpus.source], row[corpus.target]


def prompt_response(corpus: Corpus, row: dict) -> tuple[str, str]:
    return corpus.prompt.format(source=row[corpus.source]), row[corpus.target]


CORPORA = {c.name: c for c in [
    Corpus("xsum", "document", "summary", "EdinburghNLP/xsum", None,
           "Summarise this article in one sentence.\n\nArticle: {source}\n\nSummary:",
           Generation(num_beams=8, max_new_tokens=62, min_new_tokens=11, max_target_length=64,
                      length_penalty=1.0, no_repeat_ngram_size=3),
           "XSum (BBC articles -> one-sentence summary)"),
    Corpus("cnn_dailymail", "article", "highlights", "abisee/cnn_dailymail", "3.0.0",
           "Summarise this news article in a few short highlight sentences.\n\nArticle: {source}\n\nHighlights:",
           Generation(num_beams=4, max_new_tokens=142, min_new_tokens=56, max_target_length=142,
                      length_penalty=2.0, no_repeat_ngram_size=3),
           "CNN/DailyMail 3.0.0 (news articles -> highlights, several sentences)"),
]}
HYPER = Hyper(learning_rate=5e-4, epochs=15, batch_size=8, max_length=1024)


def _register(corpus: Corpus, family: str) -> Task:
    seq2seq = family == "seq2seq"
    return register(Task(
        name=corpus.name if seq2seq else f"{corpus.name}_lm", text_fields=(), num_labels=0,
        metric_names=ROUGE_TYPES if seq2seq else ("loss", "token_accuracy"), hyper=HYPER, label_names=None,
        load=partial(load, corpus), compute_metrics=rouge, family=family,
        description=f"{corpus.description}, {'encoder-decoder' if seq2seq else 'instruction prompt (causal LM)'}",
        pair=partial(source_target if seq2seq else prompt_response, corpus), generation=corpus.generation,
        hub_dataset=corpus.hub_id))


TASKS = [_register(corpus, family) for corpus in CORPORA.values() for family in ("seq2seq", "causal_lm")]
