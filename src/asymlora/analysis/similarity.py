"""Subspace similarity of learned adapter factors (docs/paper.md §4, the paper's Figure 1).

For two matrices whose COLUMNS span the subspaces compared (B as it is, ``d_out × r``; A
transposed, ``Aᵀ: d_in × r``), with orthonormal bases ``U_X`` (n × k₁) and ``U_Y`` (n × k₂)::

    sim(X, Y) = ‖U_Yᵀ U_X‖_F² / min(k₁, k₂)   ∈ [0, 1]

It is the mean squared cosine of the principal angles (a CCA similarity), symmetric, 1 when one
subspace contains the other, 0 when they are orthogonal, and unchanged by ``B → B C``,
``A → C⁻¹ A`` (C invertible): it sees the subspaces, not the factorisation of ``BA``. Two
independent Haar-random r-dimensional subspaces of Rⁿ have ``E sim = r / n``, the chance level.

Rank deficiency: the bases come from an SVD keeping singular values above
``tol = max(shape) · eps · s_max`` (numpy's ``matrix_rank`` rule), so ``k`` is the numerical rank,
not the number of columns. A matrix with no singular value above the tolerance (e.g. an
untrained zero-initialised factor) spans no subspace; the similarity is then undefined and
:func:`subspace_similarity` returns NaN (shown blank in heatmaps, skipped in means).

:func:`load_run` reads one run folder written by ``asymlora train`` / ``asymlora reproduce``
(``adapter/adapter_config.json``, ``adapter/adapter.safetensors`` keyed ``"<module>.A"`` /
``"<module>.B"``, ``metrics.json``) with :func:`asymlora.adapters.adapter_file.read_adapter`, which
regenerates and verifies the frozen factors absent from the file; the initial value of every
trained factor is regenerated from the config (``init_A``/``init_B``, ``seed``, module name,
shape). :func:`compare` produces every pairwise
comparison and every learned-vs-initial comparison.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asymlora.analysis import single_blas_thread
from asymlora.run_folder import (ADAPTER_CONFIG, ADAPTER_DIR, RUN_NAME, RunName, parse_folder_name,  # noqa: F401
                                 read_metrics)

#: Relations between two runs of the same method and rank (docs/paper.md §4, settings a–c).
RELATIONS = {
    "same_task_diff_init": "(a) same task, different seeds and initialisations",
    "diff_task_same_init": "(b) different tasks, same initialisation",
    "diff_task_diff_init": "(c) different tasks, different initialisations",
    "same_task_same_init": "same task and initialisation, different data seed",
}

#: Short labels of every comparison (the relations and the learned-vs-initial one), for plots.
SHORT_LABELS = {
    "same_task_diff_init": "(a) same task,\ndiff. seed+init",
    "diff_task_same_init": "(b) diff. tasks,\nsame init",
    "diff_task_diff_init": "(c) diff. tasks,\ndiff. init",
    "same_task_same_init": "same task+init,\ndiff. data seed",
    "learned_vs_init": "learned vs\nits init",
}


# ---------------------------------------------------------------------------- the measure
def orthonormal_basis(matrix, tol: float | None = None, top: int | None = None) -> np.ndarray:
    """An orthonormal basis (n × k) of the column space of ``matrix`` (n × m); k = numerical rank.

    ``top``: keep only the ``top`` leading left singular vectors (the dominant directions), as in
    the LoRA paper's φ(A, B, i, j) comparison of top-i and top-j subspaces."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {m.shape}")
    if m.size == 0:
        return np.zeros((m.shape[0], 0))
    left, values, _ = np.linalg.svd(m, full_matrices=False)
    if tol is None:
        tol = max(m.shape) * np.finfo(np.float64).eps * (values[0] if values.size else 0.0)
    keep = int(np.sum(values > tol)) if values.size and values[0] > 0 else 0
    return left[:, :keep if top is None else min(keep, int(top))]


def subspace_similarity(x, y, tol: float | None = None, top: int | None = None) -> float:
    """``‖U_Yᵀ U_X‖_F² / min(k_X, k_Y)`` for the column spaces of ``x`` (n × r₁) and ``y`` (n × r₂).

    Pass ``Aᵀ`` to compare A factors (their row spaces). NaN when either matrix has numerical
    rank 0. ``tol``: singular values at or below it are treated as zero (default: numpy's rule).
    ``top``: compare only the ``top`` dominant directions of each (default: the whole subspaces).
    """
    x = np.asarray(x.detach().cpu().double().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    y = np.asarray(y.detach().cpu().double().numpy() if hasattr(y, "detach") else y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"the two matrices need the same number of rows (the ambient dimension); "
                         f"got shapes {x.shape} and {y.shape}")
    if top is not None and int(top) < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    ux, uy = orthonormal_basis(x, tol, top), orthonormal_basis(y, tol, top)
    k = min(ux.shape[1], uy.shape[1])
    if k == 0:
        return float("nan")
    return float(min(1.0, np.sum((uy.T @ ux) ** 2) / k))


def column_space(factor: str, tensor) -> np.ndarray:
    """The matrix whose columns span what a factor reads or writes: ``Aᵀ`` for A, ``B`` for B."""
    t = np.asarray(tensor, dtype=np.float64)
    return t.T if factor == "A" else t


# ---------------------------------------------------------------------------- run folders
@dataclass
class Run:
    """One trained adapter: identity, config, and per module the learned and initial factors.

    Its task, method, rank and seed are the shared run identity (:class:`asymlora.run_folder.RunName`,
    :meth:`name`); it is not that frozen type because it also carries the folder, the adapter seed
    and the factors (mutable arrays filled while reading)."""

    path: Path
    task: str
    method: str
    rank: int
    seed: int
    adapter_seed: int
    config: dict
    factors: dict = field(default_factory=dict)   # {module: {"A": ndarray, "B": ndarray}}
    initial: dict = field(default_factory=dict)   # {module: {factor: ndarray}} for trained factors
    trained: str = "AB"

    @property
    def label(self) -> str:
        return f"{self.task}/s{self.seed}"

    def name(self) -> RunName:
        """The shared run identity (:class:`asymlora.run_folder.RunName`)."""
        return RunName(self.task, self.method, self.rank, self.seed)


def find_run_dirs(paths) -> list[Path]:
    """Run folders among ``paths``: each path itself if it holds ``adapter/adapter_config.json``,
    else every such folder below it."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if (path / ADAPTER_DIR / ADAPTER_CONFIG).is_file():
            found.append(path)
            continue
        below = sorted(p.parent.parent for p in path.rglob(f"{ADAPTER_DIR}/{ADAPTER_CONFIG}"))
        if not below:
            raise FileNotFoundError(f"{path} holds no run folder (no adapter/adapter_config.json inside)")
        found.extend(below)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def _regenerate(init: str, factor: str, shape, seed: int, module: str):
    from asymlora.adapters.recipe import Recipe

    recipe = Recipe.build(init, seed, module, factor, shape)
    if recipe.needs_weight:
        return None  # needs the pretrained weight, which a run folder does not hold
    return recipe.regenerate().double().numpy()


def load_run(path) -> Run:
    """Read one run folder (see the module docstring for the layout)."""
    from asymlora.adapters.adapter_file import read_adapter

    path = Path(path)
    adapter = path / ADAPTER_DIR
    state = read_adapter(adapter)
    config = state.config.to_dict()
    weights_file = adapter / "adapter.safetensors"
    metrics = read_metrics(path, missing_ok=True)
    named = parse_folder_name(path.name)
    task = metrics.get("task") if isinstance(metrics.get("task"), str) else path.parent.name
    method = metrics.get("method") if isinstance(metrics.get("method"), str) else (
        named["method"] if named else path.name)
    seed = metrics.get("seed") if isinstance(metrics.get("seed"), int) else (named["seed"] if named else 0)
    trained = str(config["train"])
    run = Run(path=path, task=task, method=method, rank=int(config["rank"]), seed=seed,
              adapter_seed=int(config["seed"]), config=config, trained=trained)
    for key, value in {**state.tensors, **state.frozen}.items():
        module, _, factor = key.rpartition(".")
        if factor in ("A", "B") and module in state.meta.modules:
            run.factors.setdefault(module, {})[factor] = value.double().numpy()  # bf16/fp16 files too
    if not run.factors:
        raise ValueError(f"{weights_file} holds no '<module>.A' / '<module>.B' tensors")
    inits = {"A": config.get("init_A"), "B": config.get("init_B")}
    for module, factors in run.factors.items():
        for factor in trained:
            if factor in factors and inits[factor]:
                value = _regenerate(inits[factor], factor, factors[factor].shape, run.adapter_seed, module)
                if value is not None:
                    run.initial.setdefault(module, {})[factor] = value
    return run


# ---------------------------------------------------------------------------- comparisons
def module_label(module: str) -> str:
    """``encoder.layer.3.attention.self.query`` -> ``L3.query``."""
    layer = re.findall(r"\.(\d+)\.", f".{module}.")
    return f"L{layer[-1]}.{module.rsplit('.', 1)[-1]}" if layer else module


def relation(x: Run, y: Run) -> str | None:
    same_task = x.task == y.task
    same_init = x.adapter_seed == y.adapter_seed
    if same_task and same_init and x.seed == y.seed:
        return None
    if same_task:
        return "same_task_same_init" if same_init else "same_task_diff_init"
    return "diff_task_same_init" if same_init else "diff_task_diff_init"


def compare(runs: list[Run], top: int | None = None) -> dict:
    """:func:`compare_runs` with one BLAS thread (many small SVDs)."""
    with single_blas_thread():
        return compare_runs(runs, top)


def compare_runs(runs: list[Run], top: int | None = None) -> dict:
    """Every pairwise and learned-vs-initial similarity, a summary and the chance levels.

    Runs are compared only within the same method and rank. Rows of ``pairs``: method,
    relation, run_x, run_y, module, label, factor, similarity; factor ``"ΔA"`` / ``"ΔB"`` rows
    compare the updates ``learned − initial`` of a factor that started nonzero (where in its
    space training moved it). Rows of ``init``: method, run,
    module, label, factor, similarity (learned factor vs its regenerated initial value).
    ``summary``: mean / std / count per (method, comparison, factor). ``chance``: ``r / n`` per
    (module, factor), the expected similarity of two independent random subspaces.
    ``top``: compare only the ``top`` dominant directions of every factor (chance is then top/n).
    """
    pairs, init_rows, chance = [], [], {}
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.method, run.rank), []).append(run)
    for (method, _rank), members in groups.items():
        members.sort(key=lambda r: (r.task, r.seed))
        for x, y in itertools.combinations(members, 2):
            kind = relation(x, y)
            if kind is None:
                continue
            for module in x.factors:
                if module not in y.factors:
                    continue
                for factor in "AB":
                    if factor in x.factors[module] and factor in y.factors[module]:
                        a, b = x.factors[module][factor], y.factors[module][factor]
                        if a.shape != b.shape:
                            continue
                        pairs.append({"method": method, "relation": kind, "run_x": x.label, "run_y": y.label,
                                      "module": module, "label": module_label(module), "factor": factor,
                                      "similarity": subspace_similarity(column_space(factor, a),
                                                                        column_space(factor, b), top=top)})
                        a0 = x.initial.get(module, {}).get(factor)
                        b0 = y.initial.get(module, {}).get(factor)
                        if a0 is not None and b0 is not None and np.any(a0) and np.any(b0):
                            # the update a factor made away from a nonzero start ("ΔA" / "ΔB")
                            pairs.append({"method": method, "relation": kind, "run_x": x.label, "run_y": y.label,
                                          "module": module, "label": module_label(module), "factor": f"Δ{factor}",
                                          "similarity": subspace_similarity(column_space(factor, a - a0),
                                                                            column_space(factor, b - b0), top=top)})
        for run in members:
            for module, factors in run.factors.items():
                for factor, value in factors.items():
                    space = column_space(factor, value)
                    chance[f"{module_label(module)}.{factor}"] = min(run.rank, top or run.rank) / space.shape[0]
                    start = run.initial.get(module, {}).get(factor)
                    if start is not None and np.any(start):  # a zero start spans nothing
                        init_rows.append({"method": method, "run": run.label, "module": module,
                                          "label": module_label(module), "factor": factor,
                                          "similarity": subspace_similarity(space, column_space(factor, start),
                                                                            top=top)})
    summary = []
    order = {k: i for i, k in enumerate(list(RELATIONS) + ["learned_vs_init"])}
    factor_order = {"A": 0, "B": 1, "ΔA": 2, "ΔB": 3}
    grouped = _grouped(pairs, init_rows)
    for (method, comparison, factor) in sorted(grouped, key=lambda k: (k[0], order[k[1]], factor_order[k[2]])):
        values = grouped[(method, comparison, factor)]
        finite = [v for v in values if math.isfinite(v)]
        summary.append({"method": method, "comparison": comparison, "factor": factor, "count": len(values),
                        "finite": len(finite), "mean": float(np.mean(finite)) if finite else float("nan"),
                        "std": float(np.std(finite)) if finite else float("nan")})
    return {"runs": [{"path": str(r.path), "task": r.task, "method": r.method, "rank": r.rank, "seed": r.seed,
                      "adapter_seed": r.adapter_seed, "trained": r.trained, "init_A": r.config.get("init_A"),
                      "init_B": r.config.get("init_B"), "modules": len(r.factors)} for r in runs],
            "top": top, "pairs": pairs, "init": init_rows, "summary": summary, "chance": chance}


def _grouped(pairs, init_rows) -> dict:
    out: dict[tuple, list[float]] = {}
    for row in pairs:
        out.setdefault((row["method"], row["relation"], row["factor"]), []).append(row["similarity"])
    for row in init_rows:
        out.setdefault((row["method"], "learned_vs_init", row["factor"]), []).append(row["similarity"])
    return out


def heatmap_panels(result: dict, method: str) -> list[dict]:
    """Panels for :func:`asymlora.analysis.plots.similarity_heatmaps`: rows of the grid are the
    factors (A, B), columns the comparisons; inside a panel, rows are modules (layer.module, from
    the input up) and columns are run pairs (or runs)."""
    panels = []
    comparisons = [k for k in RELATIONS if any(p["method"] == method and p["relation"] == k for p in result["pairs"])]
    for row_index, factor in enumerate("AB"):
        for col_index, kind in enumerate(comparisons + ["learned_vs_init"]):
            if kind == "learned_vs_init":
                rows = [r for r in result["init"] if r["method"] == method and r["factor"] == factor]
                key = lambda r: r["run"]  # noqa: E731
                title = f"{factor}: learned vs its initialisation"
            else:
                rows = [r for r in result["pairs"] if r["method"] == method and r["relation"] == kind
                        and r["factor"] == factor]
                key = lambda r: f"{r['run_x']} ~ {r['run_y']}"  # noqa: E731
                title = f"{factor}: {RELATIONS[kind]}"
            if not rows:
                continue
            columns = list(dict.fromkeys(key(r) for r in rows))
            modules = list(dict.fromkeys(r["module"] for r in rows))
            matrix = np.full((len(modules), len(columns)), np.nan)
            for r in rows:
                matrix[modules.index(r["module"]), columns.index(key(r))] = r["similarity"]
            panels.append({"title": title, "matrix": matrix, "rows": [module_label(m) for m in modules],
                           "columns": columns, "row": row_index, "col": col_index})
    return panels


def markdown_summary(result: dict) -> str:
    lines = ["# Subspace similarity of learned factors (docs/paper.md §4)", "",
             f"{len(result['runs'])} runs. Similarity ‖U_Yᵀ U_X‖_F² / min(k_X, k_Y) of the column spaces of B "
             "and of Aᵀ, per module; mean ± std over modules and pairs"
             + (f"; only the top {result['top']} singular directions of each factor." if result.get("top") else "."),
             "",
             "| method | comparison | factor | mean | std | values |", "|---|---|---|---|---|---|"]
    for row in result["summary"]:
        name = RELATIONS.get(row["comparison"], "learned vs its initialisation")
        lines.append(f"| {row['method']} | {name} | {row['factor']} | {row['mean']:.3f} | {row['std']:.3f} | "
                     f"{row['finite']}/{row['count']} |")
    levels = sorted(set(round(v, 4) for v in result["chance"].values()))
    lines += ["", f"Chance level (two independent random subspaces, r/n): {', '.join(f'{v:g}' for v in levels)}."]
    lines += ["", "| run | task | method | seed | adapter seed | trained | init A | init B |", "|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {Path(r['path']).name} | {r['task']} | {r['method']} | {r['seed']} | {r['adapter_seed']} | "
                     f"{r['trained']} | {r['init_A']} | {r['init_B']} |")
    return "\n".join(lines) + "\n"
