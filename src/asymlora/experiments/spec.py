"""Experiment configs as data: the YAML schema and its validation.

Schema (shared with the analysis commands; every key but ``name``/``model``/``tasks``/``methods``
is optional)::

    name: table1_glue
    description: free text                 # optional, shown in reports
    model: roberta-large
    tasks: [mnli, sst2, mrpc, cola, qnli, rte, stsb]
    methods: [lora, b_only, a_only]
    ranks: [8, 16]                         # default [8]; ignored by full / linear_probe
    seeds: [0, 1, 2]                       # default [0, 1, 2]
    adapter_seeds: per_seed                # or "same": every run draws its adapter with seed 0
    runs: [{method: adalora, rank: 8}]     # optional extra (method, rank) pairs beyond the product
    overrides: {max_steps, epochs, learning_rate, batch_size, max_length, train_limit, eval_limit,
                alpha, dropout, targets, warmup_ratio, weight_decay, eval_steps, evals_per_run, evals_per_epoch,
                grad_accum, save_checkpoints}
    data_dir: null                         # local folder for hub-less GLUE (TSV layout)

Unknown keys anywhere get a "did you mean" hint; unknown tasks, methods and models too. Every
problem is a ``ValueError`` with one line (the CLI prints it and exits 2). YAML is read with
``yaml.safe_load`` (a Python tag such as ``!!python/object`` is refused), and ``name`` must be a
plain folder name (it becomes ``runs/<name>``, so ``../x`` could write elsewhere).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asymlora.adapters.config import closest

TOP_KEYS = ("name", "description", "model", "tasks", "methods", "ranks", "seeds", "adapter_seeds", "runs",
            "overrides", "data_dir")
OVERRIDE_TYPES: dict[str, tuple] = {
    "max_steps": (int,), "epochs": (int, float), "learning_rate": (int, float), "batch_size": (int,),
    "max_length": (int,), "train_limit": (int,), "eval_limit": (int,), "alpha": (int, float),
    "dropout": (int, float), "targets": (list, str), "warmup_ratio": (int, float), "weight_decay": (int, float),
    "eval_steps": (int,), "evals_per_run": (int,), "evals_per_epoch": (int,), "grad_accum": (int,), "save_checkpoints": (bool,),
    "alpha_ratio": (int, float), "bf16": (bool,), "gradient_checkpointing": (bool,), "mask_stream": (str,),
}
ADAPTER_SEED_MODES = ("per_seed", "same")
#: An experiment name names a folder (``runs/<name>``): one plain path component.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class Spec:
    name: str
    model: str
    tasks: list[str]
    methods: list[str]
    ranks: list[int] = field(default_factory=lambda: [8])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    adapter_seeds: str = "per_seed"
    runs: list[dict] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    data_dir: str | None = None
    description: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def _int_list(value, key: str, where: str, minimum: int) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value):
        raise ValueError(f"{where}{key!r} must be a non-empty list of integers >= {minimum} (got {value!r})")
    return list(value)


def _name_list(value, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}{key!r} must be a non-empty list of names (got {value!r})")
    return list(value)


def validate(data: Any, source: str = "", check_names: bool = True) -> Spec:
    """Check a parsed YAML mapping and return a :class:`Spec` (names canonicalised)."""
    where = _where(source)
    if not isinstance(data, dict):
        raise ValueError(f"{where}the config must be a YAML mapping of keys (got {type(data).__name__})")
    for key in data:
        if key not in TOP_KEYS:
            raise ValueError(f"{where}unknown config key {key!r}{closest(key, TOP_KEYS)}; "
                             f"known keys: {', '.join(TOP_KEYS)}")
    for key in ("name", "model", "tasks", "methods"):
        if key not in data or data[key] in (None, "", []):
            raise ValueError(f"{where}missing required key {key!r}")
    if not isinstance(data["name"], str) or not isinstance(data["model"], str):
        raise ValueError(f"{where}'name' and 'model' must be strings")
    if not PLAIN_NAME.fullmatch(data["name"]) or ".." in data["name"]:
        raise ValueError(f"{where}name {data['name']!r} is not a plain name (it becomes the folder runs/<name>); "
                         "use letters, digits, '-', '_' and '.' only")
    spec = Spec(name=data["name"], model=data["model"], tasks=_name_list(data["tasks"], "tasks", where),
                methods=_name_list(data["methods"], "methods", where),
                ranks=_int_list(data.get("ranks", [8]), "ranks", where, 1),
                seeds=_int_list(data.get("seeds", [0, 1, 2]), "seeds", where, 0),
                adapter_seeds=data.get("adapter_seeds", "per_seed"),
                runs=list(data.get("runs") or []), overrides=dict(data.get("overrides") or {}),
                data_dir=data.get("data_dir"), description=str(data.get("description") or ""))
    if spec.adapter_seeds not in ADAPTER_SEED_MODES:
        raise ValueError(f"{where}adapter_seeds={spec.adapter_seeds!r} is invalid{closest(spec.adapter_seeds, ADAPTER_SEED_MODES)}; "
                         f"use one of {', '.join(ADAPTER_SEED_MODES)}")
    if not isinstance(data.get("overrides") or {}, dict):
        raise ValueError(f"{where}'overrides' must be a mapping")
    for key, value in spec.overrides.items():
        if key not in OVERRIDE_TYPES:
            raise ValueError(f"{where}unknown override {key!r}{closest(key, OVERRIDE_TYPES)}; "
                             f"known overrides: {', '.join(OVERRIDE_TYPES)}")
        if value is not None and ((isinstance(value, bool) and bool not in OVERRIDE_TYPES[key])
                                  or not isinstance(value, OVERRIDE_TYPES[key])):
            raise ValueError(f"{where}override {key}={value!r} has the wrong type "
                             f"(expected {' or '.join(t.__name__ for t in OVERRIDE_TYPES[key])})")
    if spec.data_dir is not None and not isinstance(spec.data_dir, str):
        raise ValueError(f"{where}'data_dir' must be a folder path or null")
    for i, run in enumerate(spec.runs):
        if not isinstance(run, dict) or "method" not in run or set(run) - {"method", "rank"}:
            raise ValueError(f"{where}runs[{i}] must be a mapping with 'method' and optional 'rank' (got {run!r})")
    if check_names:
        from asymlora.methods import get_method
        from asymlora.models import resolve_model
        from asymlora.tasks import get_task

        spec.tasks = [get_task(t).name for t in spec.tasks]
        spec.methods = [get_method(m).name for m in spec.methods]
        for run in spec.runs:
            run["method"] = get_method(run["method"]).name
            if "rank" in run:
                _int_list(run["rank"], "runs[].rank", where, 1)
        try:
            resolve_model(spec.model)
        except ValueError as err:
            raise ValueError(f"{where}{err}") from None
    return spec


def load_spec(path: str | Path, check_names: bool = True) -> Spec:
    """Read and validate a YAML experiment config; malformed YAML is one clear line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if isinstance(err, yaml.constructor.ConstructorError) and "python/" in problem:
            raise ValueError(f"{path}: refused YAML tag{at}: {problem} (configs are read with yaml.safe_load: "
                             "plain YAML only, no Python objects)") from None
        raise ValueError(f"{path}: malformed YAML{at}: {problem}; fix the YAML syntax there") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    return validate(data, str(path), check_names)
