"""Memory held by the exact-unmerge record of merged adapters (docs/files.md, "Merging").

    PYTHONPATH=src python docs/results/merge_memory/measure.py > docs/results/merge_memory/merge_memory.json

Adapters (B-only, orthonormal A, r = 8, alpha = 16) get "trained" B factors drawn N(0, sigma²) from a
fixed generator, with sigma such that the delta s·B·A has about the size of a fine-tuning update;
each is merged and the record (int32 positions + original values, or a weight copy) is measured.
Cases: every linear layer of the packaged all-MiniLM-L6-v2 (fp32, and cast to bf16), and one
4096 × 4096 layer (fp32 and bf16, seeded weights with std 0.02).
"""

from __future__ import annotations

import json
import platform

import torch
from torch import nn

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.inject import adapted_modules, inject
from asymlora.adapters.linear import AdaptedLinear

SIGMAS = (1e-3, 1e-2)


def _set_b(modules, sigma: float) -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in modules:
            module.B.copy_(torch.randn(module.B.shape, generator=generator) * sigma)


def _summary(modules) -> dict:
    weight_bytes = sum(m.base.weight.numel() * m.base.weight.element_size() for m in modules)
    for module in modules:
        module.merge()
    record_bytes = sum(m.unmerge_bytes() for m in modules)
    corrected = sum(m._unmerge.index.numel() for m in modules if m._unmerge.index is not None)
    copies = sum(m._unmerge.original is not None for m in modules)
    entries = sum(m.base.weight.numel() for m in modules)
    for module in modules:
        module.unmerge()
    return {"modules": len(modules), "weight_bytes": weight_bytes, "record_bytes": record_bytes,
            "record_over_weights": record_bytes / weight_bytes, "corrected_entries": corrected,
            "corrected_fraction": corrected / entries, "weight_copies": copies}


def minilm(dtype: torch.dtype, sigma: float) -> dict:
    from transformers import AutoModel

    from asymlora.models import minilm_path

    model = AutoModel.from_pretrained(minilm_path()).to(dtype).eval()
    inject(model, AdapterConfig(rank=8, alpha=16.0, targets="all-linear"))
    modules = list(adapted_modules(model).values())
    _set_b(modules, sigma)
    return {"case": "minilm_all_linear", "dtype": str(dtype).removeprefix("torch."), "sigma": sigma,
            **_summary(modules)}


def square(dtype: torch.dtype, sigma: float, size: int = 4096) -> dict:
    base = nn.Linear(size, size, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.randn(size, size, generator=torch.Generator().manual_seed(1)) * 0.02)
    module = AdaptedLinear(base.to(dtype), "layer", AdapterConfig(rank=8, alpha=16.0))
    _set_b([module], sigma)
    return {"case": f"linear_{size}x{size}", "dtype": str(dtype).removeprefix("torch."), "sigma": sigma,
            **_summary([module])}


def main() -> None:
    torch.set_num_threads(1)
    rows = [fn(dtype, sigma) for fn in (minilm, square) for dtype in (torch.float32, torch.bfloat16)
            for sigma in SIGMAS]
    print(json.dumps({"torch": torch.__version__, "machine": platform.machine(), "python": platform.python_version(),
                      "rank": 8, "alpha": 16.0, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
