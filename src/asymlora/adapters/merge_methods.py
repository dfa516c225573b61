"""Ways to merge the trained factors of adapters that share their frozen A: a registry.

Every method maps ``n`` task tensors ``T_i`` (the trained factor of one module in each adapter,
``B_i: d_out × r``; with A frozen and shared the adapter's delta is ``s B_i A``, linear in ``B_i``)
and weights ``w_i`` to one tensor of the same shape. Because the delta is linear in B, whatever a
method does to the B's it does exactly to the deltas: ``s (merge B_i) A = merge(s B_i A)`` for
every method below whose result is a linear combination of the (masked) B's. That is why they act
on ΔB (the trained factor) and never on A, which stays the shared frozen tensor.

=============  ==============================================================================
method         merged tensor (all arithmetic in float64, cast back once)
=============  ==============================================================================
linear         ``Σ_i w_i T_i`` (task arithmetic; negative weights subtract a task)
ties           TIES-Merging (Yadav et al., 2023): trim each ``T_i`` to its ``k = ⌊density · numel⌋``
               largest magnitudes, elect the sign ``γ = sgn(Σ_i T̂_i)`` (total mass, ``γ = +1``
               where the sum is 0), then the disjoint mean of the weighted tensors that agree with
               it: ``Σ_{i: sgn T̂_i = γ} w_i T̂_i / max(1, #{i: sgn T̂_i = γ})``. Default density
               0.2 (the paper's top-20%), λ = 1.
dare_linear    DARE (Yu et al., 2024): keep each entry with probability ``density`` (drop rate
               ``p = 1 − density``), rescale kept entries by ``1 / density``, then ``Σ_i w_i T̃_i``.
               Default density 0.1 (the paper's drop rate 0.9). Seeded (see below).
dare_ties      DARE's drop and rescale, then TIES's sign election and disjoint mean.
magnitude      LoRI-style per-task sparse masks on B (Zhang et al., 2025), chosen by magnitude
               after training: trim each ``T_i`` as ``ties`` does, then ``Σ_i w_i T̂_i`` (the masks
               make the tasks' updates overlap less). Default density 0.1 (LoRI's 90% sparsity
               of B). LoRI also retrains B under its mask; this method applies the masks only.
=============  ==============================================================================

The weights enter as in PEFT's ``peft.utils.merge_utils`` (``ties``: sign elected on the unweighted
trimmed tensors, weights applied in the disjoint mean), so at unit weights ``ties`` is the paper's
formula with λ = 1, and every method equals PEFT's function of the same name applied to the B's
(tested). DARE's masks are not drawn from torch's global generator: the mask of adapter ``i`` in
module ``key`` comes from a CPU ``torch.Generator`` seeded with ``SHA-256(seed, key, i)``, so a
merge is reproducible and does not depend on the order modules are visited.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch

#: ``(stacked T: n × …, weights: n, density, masks: n × … or None) -> merged``
MergeFunction = Callable[[torch.Tensor, torch.Tensor, float | None, torch.Tensor | None], torch.Tensor]


@dataclass(frozen=True)
class MergeMethod:
    """A merge method: its name, one line of what it does, its function, and whether it prunes
    (then ``density`` in (0, 1] applies, ``default_density`` when not given) at random (DARE)."""

    name: str
    summary: str
    function: MergeFunction
    default_density: float | None = None
    random: bool = False

    @property
    def uses_density(self) -> bool:
        return self.default_density is not None


def _weighted(stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``w_i T_i`` for each ``i`` (weights broadcast over the tensor dimensions)."""
    return stacked * weights.reshape(weights.shape + (1,) * (stacked.dim() - 1))


def trim_by_magnitude(stacked: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``⌊density · numel⌋`` largest magnitudes of each ``T_i`` (zero elsewhere)."""
    flat = stacked.reshape(stacked.shape[0], -1)
    keep = int(density * flat.shape[1])
    mask = torch.zeros_like(flat)
    if keep > 0:
        mask.scatter_(1, flat.abs().topk(keep, dim=1).indices, 1.0)
    return (flat * mask).reshape(stacked.shape)


def drop_and_rescale(stacked: torch.Tensor, density: float, masks: torch.Tensor) -> torch.Tensor:
    """DARE: ``T_i · m_i / density`` with ``m_i`` the keep masks (1 with probability ``density``)."""
    return stacked * masks / density


def disjoint_mean(stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """TIES's elect-and-merge: sign ``γ = sgn(Σ_i T_i)`` (+1 on ties), then the mean of the weighted
    entries whose sign agrees with ``γ`` (zero entries never agree)."""
    elected = torch.where(stacked.sum(dim=0) >= 0, 1.0, -1.0).to(stacked.dtype)
    agree = (stacked.sign() == elected).to(stacked.dtype)
    return (_weighted(stacked, weights) * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1.0)


def _linear(stacked, weights, density, masks):
    return _weighted(stacked, weights).sum(dim=0)


def _ties(stacked, weights, density, masks):
    return disjoint_mean(trim_by_magnitude(stacked, density), weights)


def _dare_linear(stacked, weights, density, masks):
    return _weighted(drop_and_rescale(stacked, density, masks), weights).sum(dim=0)


def _dare_ties(stacked, weights, density, masks):
    return disjoint_mean(drop_and_rescale(stacked, density, masks), weights)


def _magnitude(stacked, weights, density, masks):
    return _weighted(trim_by_magnitude(stacked, density), weights).sum(dim=0)


MERGE_METHODS: dict[str, MergeMethod] = {m.name: m for m in (
    MergeMethod("linear", "Σ wᵢ Bᵢ: exact task arithmetic (negative weights subtract)", _linear),
    MergeMethod("ties", "TIES: trim to the top density by magnitude, elect sign, disjoint mean", _ties, 0.2),
    MergeMethod("dare_linear", "DARE: drop with p = 1 − density, rescale 1/density, Σ wᵢ", _dare_linear, 0.1,
                random=True),
    MergeMethod("dare_ties", "DARE's drop and rescale, then TIES's sign election and disjoint mean", _dare_ties, 0.1,
                random=True),
    MergeMethod("magnitude", "LoRI-style sparse masks: keep each Bᵢ's top density by magnitude, Σ wᵢ", _magnitude, 0.1),
)}


def get_merge_method(name: str) -> MergeMethod:
    """The registered method ``name``; ValueError naming the known ones otherwise."""
    if name not in MERGE_METHODS:
        from asymlora.adapters.config import closest

        raise ValueError(f"unknown merge method {name!r}{closest(name, MERGE_METHODS)}; choose one of "
                         f"{', '.join(MERGE_METHODS)}")
    return MERGE_METHODS[name]


def keep_masks(shape: tuple[int, ...], count: int, density: float, seed: int, key: str) -> torch.Tensor:
    """``count × shape`` float64 masks, entry 1 with probability ``density``; mask ``i`` drawn from a
    CPU generator seeded with ``SHA-256(seed, key, i)`` (independent of visiting order)."""
    masks = []
    for index in range(count):
        digest = hashlib.sha256(f"{seed}:{key}:{index}".encode()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
        masks.append((torch.rand(shape, generator=generator, dtype=torch.float64) < density).to(torch.float64))
    return torch.stack(masks)


def merge_tensors(tensors: list[torch.Tensor], weights: list[float], method: MergeMethod, density: float | None,
                  seed: int = 0, key: str = "") -> torch.Tensor:
    """Merge one module's task tensors with ``method`` (float64 inside, returned in the first's dtype).

    Args:
        tensors (list[torch.Tensor]): ``n`` tensors of one shape (e.g. ``B_i: d_out × r``).
        weights (list[float]): ``n`` weights.
        method (MergeMethod): from :data:`MERGE_METHODS`.
        density (float | None): kept fraction for pruning methods (their default when None).
        seed (int): DARE's seed. key (str): the module's name, part of DARE's mask seed.

    Returns:
        torch.Tensor: the merged tensor, same shape and dtype as ``tensors[0]``.
    """
    stacked = torch.stack([t.detach().to("cpu", torch.float64) for t in tensors])
    weight = torch.tensor([float(w) for w in weights], dtype=torch.float64)
    if method.uses_density and density is None:
        density = method.default_density
    masks = keep_masks(tuple(stacked.shape[1:]), len(tensors), density, seed, key) if method.random else None
    return method.function(stacked, weight, density, masks).to(tensors[0].dtype)
