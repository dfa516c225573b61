"""Per-layer dropout-mask seeds: no global RNG, and the same mask when a forward is recomputed.

Each adapted layer owns a :class:`MaskStream`: call ``k`` of a training forward with dropout gets
the seed ``H(base, k)`` (SHA-256, 63 bits), where ``base`` comes from the adapter seed and the
module name. The stream never touches torch's global generator, so adding or removing adapter
dropout does not change any other random draw of a run, and ``torch.manual_seed`` does not fix it
(the adapter seed does).

Activation checkpointing runs a block's forward a second time during backward and expects the
same random draws (torch restores its own RNG state for that). A counter that simply advanced
would give the recomputation a new mask, and the gradient would belong to a different function
than the loss. So every seed drawn outside backward is remembered together with a digest of
torch's CPU RNG state at that moment; a draw made while the autograd engine is running (a
recomputation) takes back the latest remembered seed with the same digest (checkpointing
restores that state before recomputing), or the latest one if none matches
(``preserve_rng_state=False``), and does not advance the counter.

The counter is the only state: :meth:`MaskStream.state` / :meth:`MaskStream.load_state` save and
restore it, so that a resumed run continues the same stream of masks.
"""

from __future__ import annotations

import hashlib
from collections import deque

import torch

#: How many (digest, seed) pairs a stream remembers for recomputation.
REMEMBERED = 1024


def in_backward() -> bool:
    """True while the autograd engine is executing a backward pass on this thread."""
    task = getattr(torch._C, "_current_graph_task_id", None)
    return task is not None and task() >= 0


def _rng_digest() -> bytes:
    """A digest of torch's global CPU RNG state (read, never advanced)."""
    return hashlib.sha256(torch.get_rng_state().numpy().tobytes()).digest()[:16]


def call_seed(base: int, call: int) -> int:
    """The mask seed of call ``call`` of a stream with base seed ``base``: 63 bits of SHA-256."""
    digest = hashlib.sha256(f"{base}|{call}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class MaskStream:
    """The seeds of one layer's dropout masks: ``call_seed(base, 0), call_seed(base, 1), …``."""

    def __init__(self, base: int):
        self.base = int(base)
        self.calls = 0
        self._remembered: deque[tuple[bytes, int]] = deque(maxlen=REMEMBERED)

    def next_seed(self) -> int:
        """The seed for this forward (a recomputation inside backward replays the original's)."""
        if in_backward() and self._remembered:
            digest = _rng_digest()
            for position in range(len(self._remembered) - 1, -1, -1):
                if self._remembered[position][0] == digest:
                    seed = self._remembered[position][1]
                    del self._remembered[position]
                    return seed
            return self._remembered.pop()[1]
        seed = call_seed(self.base, self.calls)
        self.calls += 1
        self._remembered.append((_rng_digest(), seed))
        return seed

    def state(self) -> dict:
        """``{"base": int, "calls": int}``: everything needed to continue the stream."""
        return {"base": self.base, "calls": self.calls}

    def load_state(self, state: dict) -> None:
        """Continue from a :meth:`state` (forgets the seeds remembered for recomputation)."""
        if int(state["base"]) != self.base:
            raise ValueError(f"mask state has base seed {state['base']}, this layer's is {self.base} "
                             f"(a different adapter seed or module name)")
        self.calls = int(state["calls"])
        self._remembered.clear()
