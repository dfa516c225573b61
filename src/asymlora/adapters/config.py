"""AdapterConfig: the validated recipe of an asymmetric low-rank adapter.

An adapter adds ``s · B A`` to a frozen weight ``W0``:

    y = W0 x + s · B (A · drop(x)),   A: r × d_in,  B: d_out × r,
    s = alpha / r            (or alpha / sqrt(r) with rsLoRA)

``train`` says which factor is a trainable parameter; the other one is a frozen buffer,
reproducible from ``(seed, module name, init, shape)``. The paper's method is
``train="B", init_A="orthonormal", init_B="zero"`` (written \\hat B_0 A_rand).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from asymlora.adapters.init import INITIALISERS
from asymlora.adapters.mask_stream import DEFAULT_MASK_STREAM, LEGACY_MASK_STREAM, MASK_STREAMS

TRAIN_CHOICES = ("A", "B", "AB")


def closest(name: str, choices) -> str:
    """A ' (did you mean X?)' hint for a misspelt name, or ''."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def is_rank(value: Any) -> bool:
    """The one rank rule: an ``int`` (not a ``bool``) >= 1.

    Args:
        value: a candidate adapter rank r.

    Returns:
        True when ``value`` can be the inner dimension of ``B A``.
    """
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _fail(field_name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"AdapterConfig.{field_name}={value!r} is invalid: {allowed}")


@dataclass
class AdapterConfig:
    """What to adapt and how.

    Fields (names are public API, close to PEFT's vocabulary where one exists):

    rank            r, the inner dimension of B A (>= 1).
    alpha           scaling numerator: s = alpha / r (alpha / sqrt(r) with ``use_rslora``).
    dropout         probability p in [0, 1) of the dropout applied to the adapter's input.
    train           "B" (the paper's method: A frozen), "A" (B frozen) or "AB" (LoRA).
    init_A, init_B  initialiser names from :data:`asymlora.adapters.init.INITIALISERS`.
    targets         module-name suffixes (``["query", "value"]``), one regex string
                    (``"re:.*attn\\.(q|v)_proj"``), or ``"all-linear"`` (every linear layer but
                    the output head).
    rank_pattern    ``{pattern: rank}``: a per-module rank where the pattern (a suffix or a regex,
                    matched like PEFT: ``(.*\\.)?pattern$``) matches the module name.
    seed            seeds every factor draw together with the module name.
    use_rslora      rank-stabilised scaling alpha / sqrt(r).
    modules_to_save module-name suffixes kept fully trainable (e.g. a classifier head).
    mask_stream     how dropout masks are drawn (:data:`asymlora.adapters.mask_stream.MASK_STREAMS`):
                    ``"v2"`` (default, compilable) or ``"v1"`` (runs and files made before it).
                    Written to a file only when ``dropout > 0``; a file with dropout and without
                    it was written before versions existed and reads as ``"v1"``.
    """

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    train: str = "B"
    init_A: str = "orthonormal"
    init_B: str = "zero"
    targets: Any = field(default_factory=lambda: ["query", "value"])
    rank_pattern: dict = field(default_factory=dict)
    seed: int = 0
    use_rslora: bool = False
    modules_to_save: list = field(default_factory=list)
    mask_stream: str = DEFAULT_MASK_STREAM

    def __post_init__(self) -> None:
        if not is_rank(self.rank):
            _fail("rank", self.rank, "an integer >= 1 is required")
        if not isinstance(self.alpha, (int, float)) or isinstance(self.alpha, bool) or not self.alpha > 0 \
                or not math.isfinite(self.alpha):
            _fail("alpha", self.alpha, "a finite number > 0 is required")
        self.alpha = float(self.alpha)
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= float(self.dropout) < 1.0:
            _fail("dropout", self.dropout, "a probability in [0, 1) is required")
        self.dropout = float(self.dropout)
        if self.train not in TRAIN_CHOICES:
            _fail("train", self.train, f"allowed values are {', '.join(TRAIN_CHOICES)}")
        for name in ("init_A", "init_B"):
            value = getattr(self, name)
            if value not in INITIALISERS:
                _fail(name, value, f"allowed values are {', '.join(sorted(INITIALISERS))}"
                      + closest(value, INITIALISERS))
        if isinstance(self.targets, str):
            if self.targets != "all-linear" and not self.targets.startswith("re:"):
                self.targets = [self.targets]
        elif isinstance(self.targets, (list, tuple)) and self.targets and all(
                isinstance(t, str) and t for t in self.targets):
            self.targets = list(self.targets)
        else:
            _fail("targets", self.targets,
                  "a non-empty list of module-name suffixes, 're:<regex>' or 'all-linear' is required")
        if isinstance(self.targets, str) and self.targets.startswith("re:"):
            try:
                re.compile(self.targets[3:])
            except re.error as err:
                _fail("targets", self.targets, f"the regex does not compile ({err}); give a valid regular expression "
                      "after 're:'")
        if not isinstance(self.rank_pattern, dict):
            _fail("rank_pattern", self.rank_pattern, "a mapping {pattern: rank} is required")
        for pattern, rank in self.rank_pattern.items():
            if not is_rank(rank):
                _fail("rank_pattern", {pattern: rank}, "every rank must be an integer >= 1")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            _fail("seed", self.seed, "a non-negative integer is required")
        if isinstance(self.modules_to_save, str):
            self.modules_to_save = [self.modules_to_save]
        self.modules_to_save = list(self.modules_to_save or [])
        if self.mask_stream not in MASK_STREAMS:
            _fail("mask_stream", self.mask_stream, f"allowed values are {', '.join(MASK_STREAMS)} ({DEFAULT_MASK_STREAM} "
                  f"is the default, {LEGACY_MASK_STREAM} reproduces runs made before it)" + closest(self.mask_stream, MASK_STREAMS))
        if self.train == "B" and self.init_B == "zero" and self.init_A == "zero":
            _fail("init_A", self.init_A, "A and B both zero give a zero gradient for B")

    # ------------------------------------------------------------------ derived values
    @property
    def trained(self) -> tuple[str, ...]:
        """The trainable factors, e.g. ``("B",)``."""
        return tuple(self.train)

    def frozen(self) -> tuple[str, ...]:
        """The frozen factors, e.g. ``("A",)``; empty for LoRA."""
        return tuple(f for f in "AB" if f not in self.train)

    def rank_for(self, module_name: str) -> int:
        """The rank of one module: the first ``rank_pattern`` entry that matches, else ``rank``."""
        for pattern, rank in self.rank_pattern.items():
            if re.fullmatch(rf"(.*\.)?{pattern}", module_name):
                return rank
        return self.rank

    def scaling(self, rank: int) -> float:
        """s = alpha / r, or alpha / sqrt(r) with rsLoRA."""
        return self.alpha / (math.sqrt(rank) if self.use_rslora else rank)

    def to_dict(self) -> dict:
        """The fields as a mapping; ``mask_stream`` only when ``dropout > 0`` (files without dropout
        stay as they were before the version existed)."""
        data = dataclasses.asdict(self)
        if not self.dropout > 0:
            del data["mask_stream"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "AdapterConfig":
        """Build from a mapping (a file's ``config``), refusing unknown keys with a suggestion.

        A mapping with dropout and without ``mask_stream`` was written before mask streams were
        versioned: it reads as :data:`~asymlora.adapters.mask_stream.LEGACY_MASK_STREAM` (without
        dropout no mask is drawn, and the default stands: ``from_dict(c.to_dict()) == c``).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(f"unknown AdapterConfig field {key!r}{closest(key, known)}; "
                                 f"known fields: {', '.join(sorted(known))}")
        legacy = {"mask_stream": LEGACY_MASK_STREAM} if float(data.get("dropout") or 0.0) > 0 else {}
        return cls(**{**legacy, **data})
