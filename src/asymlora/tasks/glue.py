"""GLUE tasks (the paper's Table 1): MNLI, SST-2, MRPC, CoLA, QNLI, RTE, STS-B.

Data comes from the hub (``datasets.load_dataset("nyu-mll/glue", config)``) when ``data_dir`` is
``None``, or from a local folder in GLUE's ORIGINAL TSV layout (what ``download_glue_data.py``
writes): ``data_dir`` is either the GLUE root holding ``RTE/``, ``SST-2/``, ... or the task's own
folder. Splits: ``train`` and ``validation`` (GLUE's dev set, which the paper reports). GLUE's test
labels are hidden, so no ``test`` split is returned. MNLI's ``validation`` is the matched dev set and
``validation_mismatched`` the mismatched one (evaluate it too to get both numbers from one run);
``mnli_mm`` is the same task with the mismatched set as ``validation``.

Hyperparameters: the paper's table (RoBERTa-large, batch 16, alpha 16, max length 128)::

    task  MNLI  SST-2 MRPC  CoLA  QNLI  RTE   STS-B
    lr    4e-4  2e-4  2e-4  4e-4  2e-4  3e-4  2e-4
    ep    10    10    20    20    10    20    10
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from asymlora.errors import UserError

from .base import Hyper, Task, register
from .metrics import metric_suite
from .tsv import read_rows


@dataclass(frozen=True)
class GlueSpec:
    """How one GLUE task is laid out on disk and on the hub.

    ``columns`` maps our column name (= the hub's) -> the TSV column name (or, for header-less files,
    the positional name in ``positional``). ``label_column`` is the TSV column holding the label;
    ``label_map`` turns its strings into class ids (``None``: the label is already an int, or a float
    for regression). ``files`` maps our split name -> file name inside the task folder.
    """

    name: str
    hub_config: str
    folder: str
    text_fields: tuple[str, ...]
    columns: dict[str, str]
    label_column: str
    label_names: tuple[str, ...] | None
    label_map: dict[str, int] | None
    metric_names: tuple[str, ...]
    hyper: Hyper
    files: dict[str, str] = field(default_factory=lambda: {"train": "train.tsv", "validation": "dev.tsv"})
    hub_splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "validation": "validation"})
    header: bool = True
    positional: tuple[str, ...] | None = None  # column names for header-less files (CoLA)

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)


_NLI2 = ("entailment", "not_entailment")
_NLI3 = ("entailment", "neutral", "contradiction")

SPECS: dict[str, GlueSpec] = {s.name: s for s in [
    GlueSpec("mnli", "mnli", "MNLI", ("premise", "hypothesis"),
             {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label", _NLI3,
             {n: i for i, n in enumerate(_NLI3)}, ("accuracy",), Hyper(4e-4, 10),
             files={"train": "train.tsv", "validation": "dev_matched.tsv",
                    "validation_mismatched": "dev_mismatched.tsv"},
             hub_splits={"train": "train", "validation": "validation_matched",
                         "validation_mismatched": "validation_mismatched"}),
    GlueSpec("sst2", "sst2", "SST-2", ("sentence",), {"sentence": "sentence"}, "label",
             ("negative", "positive"), None, ("accuracy",), Hyper(2e-4, 10)),
    GlueSpec("mrpc", "mrpc", "MRPC", ("sentence1", "sentence2"),
             {"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality",
             ("not_equivalent", "equivalent"), None, ("accuracy", "f1"), Hyper(2e-4, 20)),
    GlueSpec("cola", "cola", "CoLA", ("sentence",), {"sentence": "sentence"}, "label",
             ("unacceptable", "acceptable"), None, ("matthews", "accuracy"), Hyper(4e-4, 20),
             header=False, positional=("source", "label", "original_label", "sentence")),
    GlueSpec("qnli", "qnli", "QNLI", ("question", "sentence"),
             {"question": "question", "sentence": "sentence"}, "label", _NLI2,
             {n: i for i, n in enumerate(_NLI2)}, ("accuracy",), Hyper(2e-4, 10)),
    GlueSpec("rte", "rte", "RTE", ("sentence1", "sentence2"),
             {"sentence1": "sentence1", "sentence2": "sentence2"}, "label", _NLI2,
             {n: i for i, n in enumerate(_NLI2)}, ("accuracy",), Hyper(3e-4, 20)),
    GlueSpec("stsb", "stsb", "STS-B", ("sentence1", "sentence2"),
             {"sentence1": "sentence1", "sentence2": "sentence2"}, "score", None, None,
             ("pearson", "spearman"), Hyper(2e-4, 10)),
]}
# MNLI scored on the mismatched dev set; the matched one stays as a second validation split.
SPECS["mnli_mm"] = replace(
    SPECS["mnli"], name="mnli_mm",
    files={"train": "train.tsv", "validation": "dev_mismatched.tsv", "validation_matched": "dev_matched.tsv"},
    hub_splits={"train": "train", "validation": "validation_mismatched", "validation_matched": "validation_matched"})


def features(spec: GlueSpec):
    """The ``datasets.Features`` of a loaded split: text columns and ``label``."""
    import datasets

    cols = {f: datasets.Value("string") for f in spec.text_fields}
    cols["label"] = (datasets.Value("float32") if spec.label_names is None
                     else datasets.ClassLabel(names=list(spec.label_names)))
    return datasets.Features(cols)


def task_folder(spec: GlueSpec, data_dir: str | Path) -> Path:
    """The folder holding ``spec``'s TSVs: ``data_dir/<Folder>`` (GLUE root) or ``data_dir`` itself."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data folder not found; pass an existing folder with --data-dir")
    first = spec.files["train"]
    for cand in (root / spec.folder, root / spec.folder.lower(), root / spec.name.upper(), root / spec.name):
        if (cand / first).is_file():
            return cand
    if (root / first).is_file():
        return root
    raise FileNotFoundError(
        f"{root}: no GLUE {spec.folder} data (expected {root / spec.folder / first} "
        f"or {root / first}, GLUE's original TSV layout)")


def _parse_label(spec: GlueSpec, raw: str, path: Path, row_no: int):
    raw = raw.strip()
    try:
        if spec.label_names is None:
            return float(raw)
        if spec.label_map is not None:
            return spec.label_map[raw]
        value = int(raw)
        if not 0 <= value < spec.num_labels:
            raise KeyError(raw)
        return value
    except (KeyError, ValueError):
        allowed = (list(spec.label_map) if spec.label_map else
                   "a number" if spec.label_names is None else list(range(spec.num_labels)))
        raise UserError(f"{path}: data row {row_no}: label {raw!r} is not one of {allowed}; fix the label in that "
                        "row") from None


def read_split(spec: GlueSpec, path: Path):
    """One split file -> ``datasets.Dataset`` with ``spec.text_fields`` + ``label``."""
    import datasets

    needed = tuple(spec.columns.values()) + (spec.label_column,)
    if spec.header:
        rows = read_rows(path, needed, header=True)
    else:
        rows = read_rows(path, spec.positional, header=False)
    data = {f: [r[spec.columns[f]] for r in rows] for f in spec.text_fields}
    data["label"] = [_parse_label(spec, r[spec.label_column], path, i) for i, r in enumerate(rows, 1)]
    return datasets.Dataset.from_dict(data, features=features(spec))


def load_local(spec: GlueSpec, data_dir: str | Path):
    import datasets

    folder = task_folder(spec, data_dir)
    return datasets.DatasetDict({split: read_split(spec, folder / fname) for split, fname in spec.files.items()})


def load_hub(spec: GlueSpec):
    import datasets

    raw = datasets.load_dataset("nyu-mll/glue", spec.hub_config)
    out = {}
    for split, hub_split in spec.hub_splits.items():
        ds = raw[hub_split]
        ds = ds.remove_columns([c for c in ds.column_names if c not in spec.text_fields + ("label",)])
        out[split] = ds.cast(features(spec))
    return datasets.DatasetDict(out)


def load(spec: GlueSpec, data_dir: str | None, seed: int = 0):
    """``(data_dir, seed) -> DatasetDict``; GLUE's splits are fixed, so ``seed`` is unused."""
    del seed
    return load_hub(spec) if data_dir is None else load_local(spec, data_dir)


def _task(spec: GlueSpec) -> Task:
    return Task(name=spec.name, text_fields=spec.text_fields, num_labels=spec.num_labels,
                metric_names=spec.metric_names, hyper=spec.hyper, label_names=spec.label_names,
                load=partial(load, spec), compute_metrics=metric_suite(spec.metric_names), hub_dataset="nyu-mll/glue",
                description=f"GLUE {spec.folder}" + (" (dev mismatched as validation)" if spec.name == "mnli_mm" else ""))


GLUE_TASKS = tuple(SPECS)
for _spec in SPECS.values():
    register(_task(_spec))
