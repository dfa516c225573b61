"""Real text-classification tasks built from the ACLSum corpus packaged on PyPI (``aclsum``).

ACLSum (Takeshita et al., NAACL 2024) annotates 250 ACL papers: for each, a one-sentence summary of
its *challenge*, *approach* and *outcome*, the sentences of its abstract / introduction / conclusion,
and which of those sentences were highlighted as stating each aspect. The package ships the official
document split ``train.jsonl`` (100 papers) / ``val.jsonl`` (50) / ``test.jsonl`` (100); every task
here keeps it (fixed, independent of the run seed), so no paper appears in two splits.

Tasks (all 3-class, metrics accuracy (main) and macro-F1):

* ``aclsum_aspect`` — which aspect a *summary* states (challenge / approach / outcome).
  One example per (paper, aspect): train 300 / validation 150 / test 300, balanced.
* ``aclsum_highlight`` — which aspect a highlighted *paper sentence* states; sentences highlighted
  for more than one aspect are left out. Sizes are computed from the data (see docs/tasks.md).
* ``aclsum_section`` — which section (abstract / introduction / conclusion) a paper sentence comes
  from; every sentence once.

Cleaning, the same for every task: a text that occurs more than once anywhere in the corpus (any
split; e.g. "The rest of this paper is organized as follows .") is dropped everywhere, and so is one
with fewer than ``MIN_WORDS`` = 4 words containing a letter (list markers, headings such as
"2 Related Work"), so no text is in two splits.

The package is not imported (its ``__init__`` needs ``sienna``); its folder is found with
``importlib.util.find_spec("aclsum")`` and the jsonl files read directly. ``data_dir`` may instead
point to a folder holding ``train.jsonl``, ``val.jsonl`` and ``test.jsonl`` in the same format.

Hyperparameters (our choice, paper-like): lr 4e-4, batch 16, alpha 16, max length 128; 20 epochs for
the 300-example ``aclsum_aspect`` (like the paper's small RTE/CoLA/MRPC), 10 for the others.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Callable

from .base import Hyper, Task, register
from .metrics import metric_suite

ASPECTS = ("challenge", "approach", "outcome")
SECTIONS = ("abstract", "introduction", "conclusion")
MIN_WORDS = 4
SPLIT_FILES = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}


def data_folder(data_dir: str | Path | None = None) -> Path:
    """The folder with ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl``."""
    if data_dir is not None:
        p = Path(data_dir).expanduser()
        for cand in (p, p / "dataset"):
            if (cand / SPLIT_FILES["train"]).is_file():
                return cand
        raise FileNotFoundError(f"{p}: no ACLSum {SPLIT_FILES['train']} there")
    spec = importlib.util.find_spec("aclsum")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the ACLSum tasks need the 'aclsum' package (pip install --no-deps aclsum==0.1.2)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "dataset"
    if not (folder / SPLIT_FILES["train"]).is_file():
        raise FileNotFoundError(f"{folder}: the ACLSum data is missing from the installed package")
    return folder


def read_documents(path: Path) -> list[dict]:
    """Papers of one jsonl split, checked: each has ``summary`` (3 aspects), ``sentences`` and
    ``highlights`` (aspect -> section -> one 0/1 per sentence). Problems raise ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    docs = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: line {lineno} is not a JSON object")
        missing = [k for k in ("summary", "sentences", "highlights") if k not in doc]
        if missing:
            raise ValueError(f"{path}: line {lineno} lacks field(s) {missing}")
        for aspect in ASPECTS:
            if aspect not in doc["summary"] or aspect not in doc["highlights"]:
                raise ValueError(f"{path}: line {lineno} lacks aspect {aspect!r}")
            for section, sents in doc["sentences"].items():
                marks = doc["highlights"][aspect].get(section)
                if marks is None or len(marks) != len(sents):
                    raise ValueError(f"{path}: line {lineno}: highlights[{aspect!r}][{section!r}] does not "
                                     f"match the {len(sents)} sentences of {section!r}")
        docs.append(doc)
    if not docs:
        raise ValueError(f"{path}: empty file")
    return docs


def aspect_examples(docs: list[dict]) -> tuple[list[str], list[int]]:
    """Summary text -> aspect id, one per (paper, aspect)."""
    texts, labels = [], []
    for doc in docs:
        for k, aspect in enumerate(ASPECTS):
            text = str(doc["summary"][aspect]).strip()
            if text:
                texts.append(text)
                labels.append(k)
    return texts, labels


def highlight_examples(docs: list[dict]) -> tuple[list[str], list[int]]:
    """Paper sentence highlighted for exactly one aspect -> that aspect's id."""
    texts, labels = [], []
    for doc in docs:
        for section in SECTIONS:
            for i, sent in enumerate(doc["sentences"].get(section, [])):
                hits = [k for k, a in enumerate(ASPECTS) if doc["highlights"][a][section][i] == 1]
                if len(hits) == 1 and str(sent).strip():
                    texts.append(str(sent).strip())
                    labels.append(hits[0])
    return texts, labels


def section_examples(docs: list[dict]) -> tuple[list[str], list[int]]:
    """Paper sentence -> id of the section it comes from."""
    texts, labels = [], []
    for doc in docs:
        for k, section in enumerate(SECTIONS):
            for sent in doc["sentences"].get(section, []):
                if str(sent).strip():
                    texts.append(str(sent).strip())
                    labels.append(k)
    return texts, labels


def load(build: Callable[[list[dict]], tuple[list[str], list[int]]], label_names: tuple[str, ...],
         data_dir: str | None = None, seed: int = 0):
    """The official ACLSum document split turned into examples by ``build``; ``seed`` is unused."""
    import datasets

    del seed
    folder = data_folder(data_dir)
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(label_names))})
    built = {split: build(read_documents(folder / fname)) for split, fname in SPLIT_FILES.items()}
    counts = Counter(t for texts, _ in built.values() for t in texts)
    out = {}
    for split, (texts, labels) in built.items():
        keep = [i for i, t in enumerate(texts) if counts[t] == 1 and _is_sentence(t)]
        if not keep:
            raise ValueError(f"{folder / SPLIT_FILES[split]}: no examples for this task")
        out[split] = datasets.Dataset.from_dict({"text": [texts[i] for i in keep],
                                                 "label": [labels[i] for i in keep]}, features=feats)
    return datasets.DatasetDict(out)


def _is_sentence(text: str) -> bool:
    """At least ``MIN_WORDS`` tokens containing a letter (drops "1 .", "•", "2 Related Work")."""
    return sum(any(ch.isalpha() for ch in w) for w in text.split()) >= MIN_WORDS


def _task(name: str, build, label_names, epochs: float, description: str) -> Task:
    metrics = ("accuracy", "macro_f1")
    return register(Task(name=name, text_fields=("text",), num_labels=len(label_names), metric_names=metrics,
                         hyper=Hyper(learning_rate=4e-4, epochs=epochs), label_names=label_names,
                         load=partial(load, build, label_names), compute_metrics=metric_suite(metrics),
                         description=description))


ASPECT_TASK = _task("aclsum_aspect", aspect_examples, ASPECTS, 20,
                    "ACLSum: which aspect (challenge/approach/outcome) a summary states")
HIGHLIGHT_TASK = _task("aclsum_highlight", highlight_examples, ASPECTS, 10,
                       "ACLSum: which aspect a highlighted paper sentence states")
SECTION_TASK = _task("aclsum_section", section_examples, SECTIONS, 10,
                     "ACLSum: which section (abstract/introduction/conclusion) a paper sentence is from")
