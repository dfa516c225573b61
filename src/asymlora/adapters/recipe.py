"""Recipes: how a factor is drawn, as a record that can rebuild it.

A recipe is ``(init, seed, module, factor, shape, dtype)``. :meth:`Recipe.build` is the one place
a factor's recipe is made (the adapted layer uses it for every factor it draws) and
:meth:`Recipe.regenerate` the one place a factor is drawn from it, so a layer and a file reader
can never disagree on how a recipe is read.

Which frozen factors an adapter file keeps as a recipe, and which it stores as data
(:func:`stored_by_default`):

* random initialisers (``orthonormal``, ``gaussian``, ``kaiming``, ``banded``, ``dependent_rows``,
  ``dependent_cols``) and ``zero`` are kept as recipes. They read nothing but a seeded CPU
  generator; the draws are float64 (``orthonormal``: a Gaussian matrix and its QR) or float32
  elementwise ops, rounded once to float32. The SHA-256 of the regenerated tensor is written
  beside the recipe and checked on every load, and ``tests/fixtures/factor_sha256.json`` pins
  those hashes so that a torch or LAPACK change that alters a draw fails the tests instead of
  a user's load.
* ``svd`` factors are stored. They depend on the pretrained weight and on the LAPACK build
  (a singular vector is only defined up to its sign and to rounding at the last bit), so
  regenerating them on another machine is not guaranteed bit for bit. Their recipe is still
  written, for the record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from asymlora.adapters.init import NEEDS_WEIGHT, FactorRequest, initialise, make_generator

#: Initialisers whose frozen factors an adapter file stores as data by default.
STORED_INITIALISERS = frozenset({"svd", "svd_format1"})


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def dtype_from_name(name: str) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} in the adapter file")
    return dtype


@dataclass(frozen=True)
class Recipe:
    """How one factor is drawn.

    init    an initialiser name (:data:`asymlora.adapters.init.INITIALISERS`, or a legacy name).
    seed    the adapter seed; with ``module`` and ``factor`` it seeds the generator.
    module  the adapted module's dotted name.
    factor  "A" (shape r × d_in) or "B" (shape d_out × r).
    shape   the factor's shape.
    dtype   the dtype the factor is held in (it is drawn in float32, then cast).
    """

    init: str
    seed: int
    module: str
    factor: str
    shape: tuple[int, int]
    dtype: str = "float32"

    @classmethod
    def build(cls, init: str, seed: int, module: str, factor: str, shape) -> "Recipe":
        return cls(init, int(seed), module, factor, (int(shape[0]), int(shape[1])))

    @property
    def needs_weight(self) -> bool:
        """Whether regenerating reads the pretrained weight (``svd``)."""
        return self.init in NEEDS_WEIGHT

    def regenerate(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The factor, on the CPU in ``dtype``. ``weight``: W0 (d_out × d_in), for ``svd`` only."""
        cpu_weight = weight.detach().to("cpu", torch.float32) if self.needs_weight and weight is not None else None
        request = FactorRequest(self.factor, self.shape, make_generator(self.seed, self.module, self.factor),
                                cpu_weight, self.module)
        return initialise(self.init, request).to(dtype_from_name(self.dtype))

    def with_dtype(self, dtype: torch.dtype) -> "Recipe":
        return Recipe(self.init, self.seed, self.module, self.factor, self.shape, dtype_name(dtype))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data

    @classmethod
    def from_dict(cls, data: dict, format_version: int) -> "Recipe":
        """Read a recipe; in format 1 ``svd`` meant LAPACK's unnormalised signs (``svd_format1``)."""
        init = str(data["init"])
        if format_version == 1 and init == "svd":
            init = "svd_format1"
        shape = data["shape"]
        if not isinstance(shape, (list, tuple)) or len(shape) != 2:
            raise TypeError(f"recipe shape {shape!r}")
        return cls(init, int(data["seed"]), str(data["module"]), str(data["factor"]),
                   (int(shape[0]), int(shape[1])), str(data.get("dtype", "float32")))


def stored_by_default(recipe: Recipe) -> bool:
    """Whether a frozen factor with this recipe is written to the tensor file by default."""
    return recipe.init in STORED_INITIALISERS
