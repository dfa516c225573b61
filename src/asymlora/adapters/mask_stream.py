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
torch's CPU RNG state at that moment (a 64-bit hash of its bytes); a draw made while the autograd engine is running (a
recomputation) takes back the latest remembered seed with the same digest (checkpointing
restores that state before recomputing), or the latest one if none matches
(``preserve_rng_state=False``), and does not advance the counter.

The counter is the only state: :meth:`MaskStream.state` / :meth:`MaskStream.load_state` save and
restore it, so that a resumed run continues the same stream of masks.

**Versions** (:data:`MASK_STREAMS`). How a call's mask is made is versioned, because changing it
changes every dropout mask and so every result trained with dropout > 0:

* ``"v1"`` (:data:`LEGACY_MASK_STREAM`; every run and adapter file made before the version existed):
  the seed above, then on the CPU numpy PCG64 geometric gaps (:func:`asymlora.adapters.dropout.dropped_positions`),
  elsewhere a seeded ``torch.Generator``. Python and numpy inside the layer: ``torch.compile``
  cannot trace it (graph breaks).
* ``"v2"`` (:data:`DEFAULT_MASK_STREAM`): a counter-based hash (:class:`CounterMaskStream`). Call
  ``k`` gets two 32-bit keys ``(k0, k1) = keys(base, k)`` and element ``i`` of the flat input is
  dropped iff ``H(i; k0, k1) < round(p · 2³²)``, with ``H`` two rounds of a 32-bit mixer
  (:func:`mix32`) done in int64 torch ops (products stay below 2⁶³: no overflow). A pure tensor
  function of the keys, the same bits in eager and compiled code on every device (eager CPU calls
  compute the same bits faster, in uint32 numpy or one compiled loop: :mod:`asymlora.adapters.mask_hash`,
  :mod:`asymlora.adapters.mask_fused`), and the call
  counter is an int64 buffer of the layer (``mask_calls``), so ``torch.compile`` traces the whole
  layer, counter update included.

The version enters a run's identity only when its dropout is > 0 and only when it is not the
legacy one (:func:`mask_stream_identity`): runs without dropout, and runs that ask for ``"v1"``,
keep the fingerprints they had before the version existed.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass

import torch

#: How many (digest, seed) pairs a stream remembers for recomputation.
REMEMBERED = 1024


def in_backward() -> bool:
    """True while the autograd engine is executing a backward pass on this thread."""
    task = getattr(torch._C, "_current_graph_task_id", None)
    return task is not None and task() >= 0


def _rng_digest() -> int:
    """A 64-bit digest of torch's global CPU RNG state (read, never advanced): Python's SipHash of
    its bytes, a few microseconds per call. Digests are compared only within one process (a forward
    and its recomputation), so the per-process hash salt does not matter."""
    return hash(torch.get_rng_state().numpy().tobytes())


def call_seed(base: int, call: int) -> int:
    """The mask seed of call ``call`` of a stream with base seed ``base``: 63 bits of SHA-256."""
    digest = hashlib.sha256(f"{base}|{call}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def replayed(remembered: deque) -> int | None:
    """Inside backward (a recomputation): the remembered value whose RNG digest matches torch's
    CPU RNG state now (or the latest one), taken out of ``remembered``; None outside backward."""
    if not (in_backward() and remembered):
        return None
    digest = _rng_digest()
    for position in range(len(remembered) - 1, -1, -1):
        if remembered[position][0] == digest:
            value = remembered[position][1]
            del remembered[position]
            return value
    return remembered.pop()[1]


class MaskStream:
    """The seeds of one layer's dropout masks: ``call_seed(base, 0), call_seed(base, 1), …``."""

    def __init__(self, base: int):
        self.base = int(base)
        self.calls = 0
        self._remembered: deque[tuple[int, int]] = deque(maxlen=REMEMBERED)

    def next_seed(self) -> int:
        """The seed for this forward (a recomputation inside backward replays the original's)."""
        seed = replayed(self._remembered)
        if seed is not None:
            return seed
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


# ---------------------------------------------------------------------------- v2: counter hash
#: The 32-bit mask of the hash; every intermediate value stays in [0, 2³²).
MASK32 = 0xFFFFFFFF
#: Multipliers of :func:`mix32` (odd, below 2³¹, so a product with a 32-bit value fits in int64).
MIX_MULTIPLIERS = (0x7FEB352D, 0x2C1B3C6D)
#: Mixed into the second key so that ``k1`` differs from ``k0`` (the golden-ratio constant).
KEY_SALT = 0x9E3779B9


def mix32(h):
    """A 32-bit bijective mixer (xorshift-multiply, as in Wang / Mueller hashes) of ``h`` in [0, 2³²).

    Works alike on a Python ``int`` and on an int64 tensor (same bits): every step is
    ``^``, ``>>``, ``*`` by a constant below 2³¹ and ``& MASK32``.
    """
    h = h ^ (h >> 16)
    h = (h * MIX_MULTIPLIERS[0]) & MASK32
    h = h ^ (h >> 15)
    h = (h * MIX_MULTIPLIERS[1]) & MASK32
    return h ^ (h >> 16)


def mix32_(h: torch.Tensor) -> torch.Tensor:
    """:func:`mix32` in place on an int64 tensor (no temporaries beyond one shift; eager speed)."""
    h.bitwise_xor_(h >> 16)
    h.mul_(MIX_MULTIPLIERS[0]).bitwise_and_(MASK32)
    h.bitwise_xor_(h >> 15)
    h.mul_(MIX_MULTIPLIERS[1]).bitwise_and_(MASK32)
    return h.bitwise_xor_(h >> 16)


def split_base(base: int) -> tuple[int, int]:
    """A 63-bit base seed as its low and high 32-bit halves."""
    return base & MASK32, (base >> 32) & MASK32


def stream_keys(base_lo, base_hi, call):
    """The two 32-bit keys of call ``call`` of a v2 stream whose base seed has halves ``base_lo, base_hi``.

    ``k0 = mix32(mix32((call mod 2³²) ⊕ base_lo) ⊕ base_hi ⊕ ⌊call / 2³²⌋)``, ``k1 = mix32(k0 ⊕ salt)``.

    Args:
        base_lo, base_hi: :func:`split_base` of the stream's base seed (ints or 0-d int64 tensors).
        call: the call index, a Python ``int`` or a 0-d int64 tensor.

    Returns:
        tuple: ``(k0, k1)``, ints (all arguments ints) or 0-d int64 tensors, with the same values.
    """
    k0 = mix32(mix32((call & MASK32) ^ base_lo) ^ base_hi ^ ((call >> 32) & MASK32))
    return k0, mix32(k0 ^ KEY_SALT)


class CounterMaskStream:
    """The v2 stream: call ``k`` has the keys :func:`stream_keys` ``(base, k)``.

    The counter itself is the layer's int64 buffer ``mask_calls`` (so ``model.to`` moves it and a
    compiled graph updates it), and the base seed's halves are the buffer ``mask_base`` (so a
    compiled graph takes them as inputs: every layer of a model shares one compiled block instead
    of one per seed); this object holds the base seed and, in eager mode, the calls remembered for
    a recomputation under activation checkpointing (same rule as :class:`MaskStream`).
    """

    version = "v2"

    def __init__(self, base: int):
        self.base = int(base)
        self._remembered: deque[tuple[int, int]] = deque(maxlen=REMEMBERED)

    def next_call(self, counter: torch.Tensor) -> int:
        """Eager: the call index of this forward; advances ``counter`` unless replaying a recomputation."""
        call = replayed(self._remembered)
        if call is not None:
            return call
        call = int(counter)
        counter.add_(1)
        self._remembered.append((_rng_digest(), call))
        return call

    def next_keys(self, counter: torch.Tensor, base: torch.Tensor) -> torch.Tensor | tuple[int, int]:
        """The keys of this forward: ``[k0, k1]``.

        Args:
            counter (torch.Tensor): the layer's 0-d int64 call counter (advanced in place).
            base (torch.Tensor): int64 ``[base_lo, base_hi]`` (:func:`split_base` of :attr:`base`).

        Returns:
            Under ``torch.compile``, an int64 tensor of traced ops on the buffers (no recomputation
            replay there); in eager mode the Python ints ``(k0, k1)`` (:meth:`next_call` picks the
            call; a tuple costs no tensor), which every mask function takes as well as a tensor; on
            the meta device ``(0, 0)`` (shapes only: the planner's trace saves what eager code saves).
        """
        if counter.device.type == "meta":        # shapes only (memory planning): no values to draw
            return 0, 0
        if torch.compiler.is_compiling():
            call = counter.clone()
            counter.add_(1)
            return torch.stack(stream_keys(base[0], base[1], call))
        return stream_keys(*split_base(self.base), self.next_call(counter))

    def state(self, counter: torch.Tensor) -> dict:
        """``{"base": int, "calls": int}``, as :meth:`MaskStream.state`."""
        return {"base": self.base, "calls": int(counter)}

    def load_state(self, state: dict, counter: torch.Tensor) -> None:
        """Continue from a :meth:`state` (forgets the calls remembered for recomputation)."""
        if int(state["base"]) != self.base:
            raise ValueError(f"mask state has base seed {state['base']}, this layer's is {self.base} "
                             f"(a different adapter seed or module name)")
        counter.fill_(int(state["calls"]))
        self._remembered.clear()


# ---------------------------------------------------------------------------- the version registry
@dataclass(frozen=True)
class MaskStreamVersion:
    """One way of making dropout masks: ``name``, a one-line ``description``, and whether
    ``torch.compile`` traces it without a graph break (``traceable``)."""

    name: str
    description: str
    traceable: bool


#: Every mask-stream version, by name (see the module docstring).
MASK_STREAMS: dict[str, MaskStreamVersion] = {
    "v1": MaskStreamVersion("v1", "SHA-256 call seeds; CPU: numpy PCG64 geometric gaps; other devices: "
                                  "seeded torch.Generator", traceable=False),
    "v2": MaskStreamVersion("v2", "counter-based 32-bit hash of (element index, call keys) in torch int64 ops",
                            traceable=True),
}
#: The version of every run and adapter file made before versions existed.
LEGACY_MASK_STREAM = "v1"
#: The version new adapters use.
DEFAULT_MASK_STREAM = "v2"


def check_mask_stream(name: str) -> str:
    """``name`` if it is a known version.

    Raises:
        ValueError: an unknown version (the message lists the known ones).
    """
    if name not in MASK_STREAMS:
        raise ValueError(f"unknown dropout mask stream {name!r}; choose one of {', '.join(MASK_STREAMS)} "
                         f"({DEFAULT_MASK_STREAM} is the default, {LEGACY_MASK_STREAM} reproduces older runs)")
    return name


def mask_stream_identity(dropout: float, name: str | None) -> dict:
    """What the mask stream adds to a run's identity.

    Args:
        dropout (float): the adapter's dropout probability.
        name (str | None): the version (None: :data:`DEFAULT_MASK_STREAM`).

    Returns:
        dict: ``{}`` when ``dropout == 0`` (no mask is drawn) or the version is the legacy one (the
        identity those runs always had), else ``{"mask_stream": name}``.
    """
    name = DEFAULT_MASK_STREAM if name is None else check_mask_stream(name)
    if not dropout > 0 or name == LEGACY_MASK_STREAM:
        return {}
    return {"mask_stream": name}
