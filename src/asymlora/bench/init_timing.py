"""Time to create a frozen orthonormal factor: asymlora's QR against the authors' full SVD.

asymlora draws A (r × d_in) as the QR of a seeded d_in × r Gaussian (exactly Haar, O(d r²)).
The authors' public code takes the SVD of the freshly initialised d_out × d_in layer and keeps r
right singular vectors (O(d³)). Default shape: a 4096 × 4096 layer, r = 64.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from torch import nn


def time_qr(d_in: int = 4096, rank: int = 64, repeats: int = 21) -> list[float]:
    """Seconds to create A (rank × d_in) with :func:`asymlora.adapters.init.initialise`, per repeat."""
    from asymlora.adapters.init import FactorRequest, initialise, make_generator

    times = []
    for repeat in range(repeats + 1):
        start = time.perf_counter()
        request = FactorRequest("A", (rank, d_in), make_generator(repeat, "layer", "A"), None, "layer")
        initialise("orthonormal", request)
        times.append(time.perf_counter() - start)
    return times[1:]   # the first call pays one-off costs


def time_svd(d_out: int = 4096, d_in: int = 4096, rank: int = 64, repeats: int = 1) -> float:
    """Median seconds for the authors' recipe: Kaiming-initialise a layer, full SVD, keep ``rank`` rows of Vᵀ."""
    times = []
    for repeat in range(repeats):
        torch.manual_seed(repeat)
        start = time.perf_counter()
        weight = torch.empty(d_out, d_in)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        _, _, vh = torch.linalg.svd(weight, full_matrices=False)
        vh[:rank].contiguous()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def init_timings(d: int = 4096, rank: int = 64, svd: bool = True) -> dict:
    """``{"shape", "rank", "qr_s" (median), "qr_min_s", "svd_s" (None when skipped), "svd_over_qr"}``."""
    times = time_qr(d, rank)
    qr = statistics.median(times)
    full = time_svd(d, d, rank) if svd else None
    return {"shape": [d, d], "rank": rank, "qr_s": qr, "qr_min_s": min(times), "qr_repeats": len(times),
            "svd_s": full, "svd_over_qr": (full / qr) if full else None}
