"""Device profiles of the memory planner (``asymlora memory --device``): which terms a peak holds.

Every profile counts the tensors of a step (the planner's ``total``: weights, trainable, gradients,
optimiser, saved activations) and the moment they peak: the start of backward, when every saved
activation is still alive and the loss's two float32 temporaries exist
(:mod:`asymlora.planning.loss_memory`), or, where larger, the dense weight one quantized layer
dequantises (:func:`asymlora.planning.quantized_saves.dequantised_transient`)::

    peak = runtime + checkpoint map + total + max(loss temporaries, layer transient)

==========  ==========================================================================================
``cuda``    what ``torch.cuda.max_memory_allocated`` counts: tensors only, ``runtime = 0``,
            ``checkpoint map = 0``
``cpu``     a process's peak resident set size: adds the **runtime** floor, the resident memory of a
            fresh interpreter holding the row's libraries (:mod:`asymlora.planning.runtime`),
            measured where the planner runs, and for a 4- or 8-bit base the **checkpoint map**: the
            dense bytes of the packed weights, still resident in the memory-mapped checkpoint they
            were quantized from (:func:`asymlora.planning.bits.checkpoint_linear_bytes`)
==========  ==========================================================================================

Neither counts what the allocator holds beyond live tensors (glibc's freed-but-kept heap on the
CPU, the caching allocator's reserve on CUDA): docs/quantized.md shows how large it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from asymlora.planning.runtime import measure_runtime, runtime_imports


@dataclass(frozen=True)
class DeviceProfile:
    """A device's peak: ``runtime(bits) -> bytes`` of the process outside tensors; ``maps_checkpoint``:
    the quantized weights' dense checkpoint bytes stay resident (host memory)."""

    name: str
    runtime: Callable[[int | None], int]
    maps_checkpoint: bool


#: ``--device`` -> its profile (see the module docstring)
DEVICE_PROFILES: dict[str, DeviceProfile] = {
    "cuda": DeviceProfile("cuda", lambda bits: 0, maps_checkpoint=False),
    "cpu": DeviceProfile("cpu", lambda bits: measure_runtime(runtime_imports(bits)), maps_checkpoint=True),
}


def device_profile(name: str) -> DeviceProfile:
    """The profile called ``name``.

    Raises:
        ValueError: an unknown name.
    """
    if name not in DEVICE_PROFILES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_PROFILES)}")
    return DEVICE_PROFILES[name]
