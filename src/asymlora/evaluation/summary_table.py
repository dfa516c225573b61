"""The paper's Table 3 layout from summarisation evaluations (``summary.json`` files).

Rows are (method, rank) groups in the paper's order (the untuned base model first, then full
fine-tuning, LoRA, B-only ``\\hat B_0 A_rand``, A-only ``B_rand \\hat A_0``, anything else after);
each cell is the mean (sample std) over the group's seeds (:mod:`asymlora.evaluation.stats`).
A group with one seed shows its value and its bootstrap 95% interval instead. Beside ROUGE: the
number of empty predictions (a model that ends its answer at once), the mean generated tokens and
the costs (training samples/s and peak memory — see ``asymlora.evaluation.summarise._train_peak_mib`` —,
generation tokens/s and peak memory), means over seeds. Every evaluation of
a table must have scored the same split and examples; the table says how many.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from asymlora.evaluation.stats import stat
from asymlora.tasks.rouge import ROUGE_TYPES

ORDER = ("base", "full", "lora", "b_only", "a_only")
NAMES = {"base": "base model, no tuning", "full": "full fine-tuning", "lora": "LoRA",
         "b_only": "B-only \\hat B_0 A_rand", "a_only": "A-only B_rand \\hat A_0"}


@dataclass(frozen=True)
class Row:
    method: str
    rank: int
    documents: tuple[dict, ...]

    @property
    def name(self) -> str:
        return NAMES.get(self.method, self.method) + (f" r={self.rank}" if self.rank else "")


def read_documents(paths: list[str | Path]) -> list[dict]:
    """``summary.json`` documents from files or from every ``summary.json`` below given folders."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(path.rglob("summary.json"))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    if not found:
        raise FileNotFoundError(f"no summary.json under {', '.join(map(str, paths))}")
    documents = []
    for path in found:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg})") from None
        if not isinstance(document, dict) or "rouge" not in document or "method" not in document:
            raise ValueError(f"{path}: not a summarisation summary.json (no 'rouge' / 'method')")
        predictions = path.parent / "predictions.jsonl"
        if "empty_predictions" not in document and predictions.is_file():  # older summaries: count them
            document["empty_predictions"] = sum(not json.loads(line)["prediction"].strip()
                                                for line in predictions.read_text(encoding="utf-8").splitlines())
        documents.append(document)
    subsets = {(d["task"], d["split"], d["examples"]) for d in documents}
    if len(subsets) != 1:
        raise ValueError(f"the evaluations scored different tasks, splits or subsets: {sorted(subsets)}")
    return documents


def group(documents: list[dict]) -> list[Row]:
    """Rows of ``documents`` by (method, rank), in the paper's order, seeds sorted."""
    keys: dict[tuple[str, int], list[dict]] = {}
    for document in documents:
        keys.setdefault((document["method"], int(document.get("rank") or 0)), []).append(document)
    def order(key):
        method, rank = key
        return (ORDER.index(method) if method in ORDER else len(ORDER), method, rank)
    return [Row(m, r, tuple(sorted(keys[(m, r)], key=lambda d: d.get("seed", 0)))) for m, r in sorted(keys, key=order)]


def _cell(row: Row, name: str) -> str:
    values = stat(d["rouge"][name]["mean"] for d in row.documents)
    if values.n == 1:
        one = row.documents[0]["rouge"][name]
        return f"{one['mean']:.2f} [{one['low']:.2f}, {one['high']:.2f}]"
    return values.text(2)


def _number(row: Row, key: str, digits: int) -> str:
    value = stat(d.get(key) for d in row.documents)
    return "—" if value.mean is None else f"{value.mean:.{digits}f}"


def markdown(documents: list[dict]) -> str:
    """The table (markdown) with a line saying what was scored."""
    rows = group(documents)
    first = documents[0]
    whole = (f"all {first['examples']} (the whole split)" if first.get("whole_split")
             else f"the first {first['examples']} of {first['split_size']}")
    lines = [f"ROUGE F-measures ×100 (stemmed; Lsum on sentence-split text) on {first['task']} {first['split']}: "
             f"{whole} examples. Cells: mean (sample std) over seeds; one seed: value [bootstrap 95% interval].", "",
             "| row | trained params | seeds | " + " | ".join(ROUGE_TYPES) +
             " | empty outputs | mean new tokens | train samples/s | train peak MiB | gen tokens/s"
             " | gen peak MiB |",
             "|" + "---|" * (len(ROUGE_TYPES) + 9)]
    for row in rows:
        params = row.documents[0].get("trainable_params") or 0
        percent = row.documents[0].get("trainable_percent") or 0.0
        seeds = ",".join(str(d.get("seed")) for d in row.documents)
        lines.append(f"| {row.name} | {params:,} ({percent:.3f}%) | {seeds} | "
                     + " | ".join(_cell(row, n) for n in ROUGE_TYPES)
                     + f" | {_number(row, 'empty_predictions', 1)} | {_number(row, 'mean_generated_tokens', 1)}"
                     + f" | {_number(row, 'train_samples_per_second', 3)} | {_number(row, 'train_peak_rss_mib', 0)}"
                     + f" | {_number(row, 'generated_tokens_per_second', 1)} | {_number(row, 'peak_memory_mib', 0)} |")
    return "\n".join(lines) + "\n"


def table_document(documents: list[dict]) -> dict:
    """JSON beside the markdown: per row, the seeds' ROUGE means and their mean / std."""
    out = []
    for row in group(documents):
        entry = {"method": row.method, "rank": row.rank, "name": row.name,
                 "seeds": [d.get("seed") for d in row.documents],
                 "trainable_params": row.documents[0].get("trainable_params"),
                 "trainable_percent": row.documents[0].get("trainable_percent")}
        for name in ROUGE_TYPES:
            values = stat(d["rouge"][name]["mean"] for d in row.documents)
            entry[name] = {"values": list(values.values), "mean": values.mean, "std": values.std}
        out.append(entry)
    first = documents[0]
    return {"task": first["task"], "split": first["split"], "examples": first["examples"], "rows": out}
