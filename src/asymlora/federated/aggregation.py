"""Server-side aggregation of low-rank adapters, and how far each rule is from the exact average.

N clients return their factors of one adapted layer, ``B_i: d_out × r`` and ``A_i: r × d_in``, with
weights ``w_i`` (their example counts, normalised to sum to 1). The update FedAvg should apply is the
average of the clients' weight updates::

    ΔW* = Σ_i w_i · s B_i A_i                      (d_out × d_in)

Three rules, one per row of :data:`AGGREGATORS`:

* ``average`` (FedAvg of every array). With A frozen and shared (B-only, FFA-LoRA) it gives
  ``B̄ = Σ w_i B_i`` and ``s B̄ A = Σ w_i s B_i A = ΔW*`` exactly (up to fp32 rounding). With A trained
  (LoRA) it gives ``s B̄ Ā`` with ``Ā = Σ w_i A_i``, which is NOT ``ΔW*``: the cross terms
  ``w_i w_j B_i A_j`` (i ≠ j) enter.
* ``refactor`` (the costly exact baseline for LoRA): form ``M = Σ w_i B_i A_i`` (d_out × d_in, N
  products), take its truncated SVD ``M ≈ U_r Σ_r V_rᵀ`` and hand back ``B = U_r Σ_r^½``,
  ``A = Σ_r^½ V_rᵀ``. ``s B A`` is the best rank-r approximation of ``ΔW*`` (Eckart–Young); it is exact
  only when ``M`` has rank ≤ r, and costs an SVD of a d_out × d_in matrix per layer per round.

:func:`aggregation_error` measures ``‖ΔW* − ΔW_agg‖_F`` over all layers for any rule. Arrays that are
not factors (a classifier head) are averaged plainly by every rule.

Names: a factor is an array whose name ends in ``.A`` or ``.B`` (``encoder.layer.0...query.B``); its
layer is the name without that suffix. Frozen factors (B-only's A) are passed in ``frozen``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

Arrays = Mapping[str, torch.Tensor]


def normalised(weights: Sequence[float]) -> list[float]:
    """``w_i / Σ w`` (FedAvg's example-count weights).

    Raises:
        ValueError: no weights, a negative one, or a zero sum.
    """
    total = float(sum(weights))
    if not weights or total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"aggregation weights must be non-negative with a positive sum, got {list(weights)}")
    return [float(w) / total for w in weights]


def weighted_average(updates: Sequence[Arrays], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """``Σ_i w_i · updates_i[name]`` for every name (weights normalised), computed in fp32.

    Args:
        updates (Sequence[Mapping[str, Tensor]]): one ``{name: tensor}`` per client, same names and shapes.
        weights (Sequence[float]): one per client (example counts).

    Returns:
        dict[str, Tensor]: the averaged arrays, in the first update's order and dtype.

    Raises:
        ValueError: the clients send different array names, or bad weights.
    """
    w = normalised(weights)
    names = list(updates[0])
    if any(list(u) != names for u in updates):
        raise ValueError("clients sent different arrays; every client must send the same names")
    out = {}
    for name in names:
        acc = sum(wi * u[name].to(torch.float32) for wi, u in zip(w, updates))
        out[name] = acc.to(updates[0][name].dtype)
    return out


def layers(names: Sequence[str]) -> list[str]:
    """The adapted layers named by factor arrays (``x.A`` / ``x.B`` -> ``x``), in order, once each."""
    return list(dict.fromkeys(n[:-2] for n in names if n.endswith((".A", ".B"))))


def factor(update: Arrays, frozen: Arrays, name: str) -> torch.Tensor:
    """A factor from the client's update, else from the frozen (shared) factors."""
    return (update[name] if name in update else frozen[name]).to(torch.float32)


def best_rank_r(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, A)`` with ``B A`` the best rank-``rank`` approximation of ``matrix`` in Frobenius norm.

    Args:
        matrix (Tensor): d_out × d_in.
        rank (int): r.

    Returns:
        tuple[Tensor, Tensor]: ``B = U_r Σ_r^½`` (d_out × r) and ``A = Σ_r^½ V_rᵀ`` (r × d_in), fp32.
    """
    u, s, vh = torch.linalg.svd(matrix.to(torch.float32), full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def refactor_product(updates: Sequence[Arrays], weights: Sequence[float],
                     frozen: Arrays | None = None) -> dict[str, torch.Tensor]:
    """Average every array, then replace each layer's factors by the truncated SVD of ``Σ w_i B_i A_i``.

    Args:
        updates (Sequence[Mapping[str, Tensor]]): per client ``{name: tensor}`` with both ``x.A`` and ``x.B``.
        weights (Sequence[float]): one per client.
        frozen (Mapping[str, Tensor] | None): unused by this rule (LoRA trains both factors).

    Returns:
        dict[str, Tensor]: the averaged arrays with each layer's ``A`` and ``B`` re-factored at the
        layers' rank (the scaling ``s`` is common to all clients and cancels).

    Raises:
        ValueError: a layer whose clients do not send both factors (re-factoring changes both).
    """
    del frozen
    out = weighted_average(updates, weights)
    w = normalised(weights)
    for layer in layers(list(out)):
        if f"{layer}.A" not in out or f"{layer}.B" not in out:
            raise ValueError(f"layer {layer!r}: re-factoring needs both factors trained and sent")
        rank = out[f"{layer}.B"].shape[1]
        product = sum(wi * (u[f"{layer}.B"].to(torch.float32) @ u[f"{layer}.A"].to(torch.float32))
                      for wi, u in zip(w, updates))
        b, a = best_rank_r(product, rank)
        out[f"{layer}.B"], out[f"{layer}.A"] = b.to(out[f"{layer}.B"].dtype), a.to(out[f"{layer}.A"].dtype)
    return out


def plain_average(updates: Sequence[Arrays], weights: Sequence[float],
                  frozen: Arrays | None = None) -> dict[str, torch.Tensor]:
    """FedAvg: :func:`weighted_average` of every array (``frozen`` unused)."""
    del frozen
    return weighted_average(updates, weights)


#: Aggregation rule name -> ``fn(updates, weights, frozen) -> aggregated arrays``.
AGGREGATORS: dict[str, Callable[..., dict[str, torch.Tensor]]] = {
    "average": plain_average,
    "refactor": refactor_product,
}


@dataclass(frozen=True)
class AggregationError:
    """``absolute = ‖ΔW* − ΔW_agg‖_F`` over all layers; ``relative = absolute / ‖ΔW*‖_F`` (0 when ΔW* = 0)."""

    absolute: float
    relative: float


def aggregation_error(updates: Sequence[Arrays], weights: Sequence[float], aggregated: Arrays,
                      frozen: Arrays | None = None, scaling: float = 1.0) -> AggregationError:
    """How far the aggregated factors' update is from the average of the clients' updates.

    ``ΔW* = s Σ_i w_i B_i A_i`` and ``ΔW_agg = s B_agg A_agg`` per layer; the norms add over layers as
    ``sqrt(Σ_layers ‖·‖_F²)``. Computed in float64 so that fp32 rounding of the inputs is all that is left.

    Args:
        updates (Sequence[Mapping[str, Tensor]]): per client ``{name: tensor}``.
        weights (Sequence[float]): one per client.
        aggregated (Mapping[str, Tensor]): the rule's output.
        frozen (Mapping[str, Tensor] | None): factors no client sends (B-only's shared ``x.A``).
        scaling (float): the adapters' ``s = alpha / r``.

    Returns:
        AggregationError: absolute and relative Frobenius error.
    """
    frozen = frozen or {}
    w = normalised(weights)
    err2 = ref2 = 0.0
    for layer in layers([*aggregated, *frozen]):
        b_name, a_name = f"{layer}.B", f"{layer}.A"
        target = sum(wi * (factor(u, frozen, b_name).double() @ factor(u, frozen, a_name).double())
                     for wi, u in zip(w, updates)) * scaling
        got = factor(aggregated, frozen, b_name).double() @ factor(aggregated, frozen, a_name).double() * scaling
        err2 += float(((target - got) ** 2).sum())
        ref2 += float((target ** 2).sum())
    absolute = err2 ** 0.5
    return AggregationError(absolute, absolute / ref2 ** 0.5 if ref2 > 0 else 0.0)


def payload_bytes(arrays: Arrays) -> int:
    """Bytes of the arrays' data (what a message carries, headers aside)."""
    return sum(t.numel() * t.element_size() for t in arrays.values())
