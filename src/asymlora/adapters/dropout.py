"""Dropout masks that can be regenerated from a seed instead of being stored.

The memory-lean backward of a frozen-A adapter (:mod:`asymlora.adapters.linear`) keeps only an
integer seed per call and draws the same keep-mask again in backward. The mask source must
therefore be a pure function of ``(seed, shape, p, device)`` and cheap:

* CPU: numpy's PCG64 writes ``2·n`` random bytes (about 1 ms for 10⁶ elements on one core),
  read as ``uint16`` and compared with ``round(p·2¹⁶)``. The effective probability is that
  threshold over 2¹⁶ (0.05 -> 3277/65536 = 0.050003); :func:`effective_p` reports it and the
  survivors are scaled by ``1 / (1 - effective_p)``, so the layer is exactly unbiased.
  (``torch.bernoulli_`` on the CPU costs about 8× more per element.)
* CUDA and other devices: a ``torch.Generator`` on that device seeded with the seed (Philox on
  CUDA), ``rand < p``; the effective probability is p itself.
"""

from __future__ import annotations

import numpy as np
import torch

_LEVELS = 1 << 16


def effective_p(p: float, device: torch.device | str) -> float:
    """The probability the mask source really drops with on ``device``."""
    if torch.device(device).type == "cpu":
        return round(p * _LEVELS) / _LEVELS
    return p


def keep_mask(seed: int, shape: torch.Size | tuple, p: float, device: torch.device | str) -> torch.Tensor:
    """A boolean tensor of ``shape``: True where the element is kept. Deterministic in ``seed``."""
    device = torch.device(device)
    count = int(np.prod(shape)) if len(shape) else 1
    if device.type == "cpu":
        threshold = round(p * _LEVELS)
        raw = np.random.Generator(np.random.PCG64(seed)).bytes(2 * count)
        keep = np.frombuffer(raw, dtype=np.uint16) >= threshold
        return torch.from_numpy(keep).view(shape)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return torch.rand(shape, generator=generator, device=device) >= p


def apply_mask(tensor: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    """``tensor ⊙ keep / (1 - p_eff)``: inverted dropout with a given mask (a new tensor)."""
    scale = 1.0 / (1.0 - effective_p(p, tensor.device))
    return torch.where(keep, tensor * scale, torch.zeros((), dtype=tensor.dtype, device=tensor.device))


def draw_seed() -> int:
    """A fresh mask seed from torch's global CPU generator (so ``torch.manual_seed`` fixes it)."""
    return int(torch.randint(0, 2**62, (1,)).item())
