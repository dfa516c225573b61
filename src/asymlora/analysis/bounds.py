"""The information-theoretic generalisation bound of docs/paper.md §5, on a model's real shapes.

Xu & Raginsky (2017): for a σ-sub-Gaussian loss, ``|gen| ≤ sqrt(2 σ² I(W; S) / n)``. Quantising
each trained parameter to ``q`` bits bounds the mutual information by ``ln 2 · q · (#trained
parameters)`` nats, so an adapter of rank r on modules i (``A_i: r × d_in_i``, ``B_i: d_out_i × r``)
gets

    both trained (LoRA)   |gen| ≤ sqrt(2 σ² ln2 · q · r · Σ_i (d_in_i + d_out_i) / n)
    B only (A frozen)     |gen| ≤ sqrt(2 σ² ln2 · q · r · Σ_i d_out_i / n)
    A only (B frozen)     |gen| ≤ sqrt(2 σ² ln2 · q · r · Σ_i d_in_i / n)

A frozen factor drawn independently of the data carries no information about it, so it does not
count. At an equal bound (equal trained-parameter count), B-only affords the rank
``r_B = r · Σ_i (d_in_i + d_out_i) / Σ_i d_out_i`` (= 2r for square layers).

With ``rank_pattern`` a module's own rank r_i replaces r inside the sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ModuleShape:
    name: str
    d_in: int
    d_out: int
    rank: int


def information_bound(parameters: float, n: int, sigma: float = 1.0, bits: float = 32.0) -> float:
    """``sqrt(2 σ² ln2 · q · parameters / n)``: the bound for ``parameters`` trained scalars."""
    if n < 1:
        raise ValueError(f"the number of training samples n must be >= 1, got {n}")
    if sigma <= 0 or bits <= 0:
        raise ValueError(f"sigma and bits must be > 0, got sigma={sigma}, bits={bits}")
    if parameters < 0:
        raise ValueError(f"the parameter count must be >= 0, got {parameters}")
    return math.sqrt(2.0 * sigma ** 2 * math.log(2.0) * bits * parameters / n)


def trained_parameters(shapes: list[ModuleShape], train: str) -> int:
    """``Σ_i r_i · (d_in_i + d_out_i)`` for "AB", ``Σ_i r_i · d_out_i`` for "B", ``Σ_i r_i · d_in_i`` for "A"."""
    per_module = {"AB": lambda m: m.d_in + m.d_out, "B": lambda m: m.d_out, "A": lambda m: m.d_in}
    if train not in per_module:
        raise ValueError(f"train must be one of AB, B, A; got {train!r}")
    return sum(m.rank * per_module[train](m) for m in shapes)


def equal_budget_rank(shapes: list[ModuleShape], rank: int) -> float:
    """``r_B = r · Σ(d_in + d_out) / Σ d_out``: the B-only rank with LoRA's parameter count (and bound)."""
    return rank * sum(m.d_in + m.d_out for m in shapes) / sum(m.d_out for m in shapes)


def bounds_table(shapes: list[ModuleShape], n: int, sigma: float = 1.0, bits: float = 32.0) -> dict:
    """The three bounds, parameter counts and the equal-budget rank, as a JSON-ready dict."""
    if not shapes:
        raise ValueError("no adapted modules: the targets matched nothing")
    rank = shapes[0].rank
    rows = []
    for train, label in (("AB", "both trained (LoRA)"), ("B", "B only (A frozen)"), ("A", "A only (B frozen)")):
        params = trained_parameters(shapes, train)
        rows.append({"train": train, "label": label, "trained_parameters": params,
                     "bound": information_bound(params, n, sigma, bits)})
    r_b = equal_budget_rank(shapes, rank)
    r_b_int = math.floor(r_b + 1e-9)
    at_rb = [ModuleShape(m.name, m.d_in, m.d_out, r_b_int) for m in shapes]
    params_rb = trained_parameters(at_rb, "B")
    return {
        "n": n, "sigma": sigma, "bits": bits, "rank": rank,
        "modules": [m.__dict__ for m in shapes],
        "bounds": rows,
        "equal_budget_rank": r_b,
        "equal_budget_rank_int": r_b_int,
        "b_only_at_equal_budget": {"rank": r_b_int, "trained_parameters": params_rb,
                                   "bound": information_bound(params_rb, n, sigma, bits)},
    }


# ---------------------------------------------------------------------------- real module shapes
def resolve_model_path(model_id: str) -> str:
    """A registry name of :mod:`asymlora.models` (``minilm``, ``roberta-large``, ``tiny-bert``, …), a
    local folder, or a hub id -> what ``AutoConfig.from_pretrained`` takes."""
    from asymlora.models import model_path

    return model_path(model_id)


def default_targets(model_id: str):
    """The model registry's default adapter targets for ``model_id`` (e.g. query, value)."""
    from asymlora.models import resolve_model

    return list(resolve_model(model_id).default_targets)


def empty_model(model_id: str):
    """The base model of ``model_id`` on the meta device: real module shapes, no weights loaded
    (:func:`asymlora.models.empty_model` of :func:`asymlora.models.read_config`)."""
    from asymlora.models import empty_model as empty_model_of_config, read_config

    return empty_model_of_config(read_config(model_id))


def module_shapes(model, targets, rank: int, rank_pattern: dict | None = None) -> list[ModuleShape]:
    """``(name, d_in, d_out, rank)`` of every module an :class:`AdapterConfig` with these targets adapts."""
    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import find_targets
    from asymlora.adapters.linear import dense_weight

    config = AdapterConfig(rank=rank, targets=targets, rank_pattern=dict(rank_pattern or {}))
    names = find_targets(model, config)
    if not names:
        from asymlora.adapters.inject import linear_module_names
        existing = sorted({n.split(".")[-1] for n in linear_module_names(model)})
        raise ValueError(f"no module matches targets={targets!r}; linear layers in this model are named "
                         f"{', '.join(existing[:10]) or '(none)'}")
    shapes = []
    for name in names:
        d_out, d_in = dense_weight(model.get_submodule(name)).shape
        shapes.append(ModuleShape(name, int(d_in), int(d_out), config.rank_for(name)))
    return shapes
