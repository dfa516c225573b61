"""asymlora: asymmetric low-rank adapters (Zhu et al., ICML 2024).

Freeze A at a random orthonormal matrix, train only B: LoRA's accuracy with half the trainable
parameters. The public API is re-exported here; nothing else lives in this file.
"""

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.init import INITIALISERS
from asymlora.adapters.inject import (
    adapted_modules,
    disable_adapters,
    inject,
    merge,
    summary,
    total_parameters,
    trainable_parameters,
    unmerge,
)
from asymlora.adapters.linear import AdaptedLinear

__version__ = "0.1.0"

__all__ = [
    "AdapterConfig", "AdaptedLinear", "INITIALISERS", "adapted_modules", "disable_adapters", "inject",
    "merge", "summary", "total_parameters", "trainable_parameters", "unmerge", "__version__",
]
