"""Memory of this process: THE peak-memory function and its resident-set helpers.

What :func:`peak_memory_bytes` measures, by platform:

==========================  ===================================================================
CUDA device                 ``torch.cuda.max_memory_allocated(device)``: the peak of bytes held
                            by PyTorch's allocator on that device (tensors, not the allocator's
                            reserved cache, not other processes) since the process started or
                            since :func:`reset_cuda_peak`
CPU, Linux (``/proc``)      the process's peak resident set size, ``VmHWM`` of
                            ``/proc/self/status``; :func:`reset_peak_rss` lowers it to the
                            current RSS (``clear_refs`` 5), so a later peak excludes what came
                            before
CPU, macOS / no ``/proc``   ``getrusage(RUSAGE_SELF).ru_maxrss`` (bytes on macOS, KiB
                            elsewhere): the peak RSS, not resettable. Not preferred where
                            ``/proc`` exists: Linux carries a parent's peak across fork and exec
                            into it, so in a child process it can report the parent's peak
==========================  ===================================================================

Nothing here imports the rest of asymlora; torch is imported only when a CUDA figure is asked for.
Results keep their own keys (``peak_memory_bytes``, ``peak_rss_bytes``, ``peak_memory_mib``, ...).
"""

from __future__ import annotations

import resource
import sys

MIB = float(2 ** 20)


def _status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` memory field (``VmHWM``: peak RSS, ``VmRSS``: current) in bytes."""
    try:
        with open("/proc/self/status") as stream:
            for line in stream:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """The peak resident set size of this process.

    Returns:
        int: bytes; ``VmHWM`` where there is ``/proc``, else ``ru_maxrss`` (see the module docstring).
    """
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


def rss_bytes() -> int:
    """The current resident set size of this process.

    Returns:
        int: bytes; ``VmRSS`` where there is ``/proc``, else the peak (:func:`peak_rss_bytes`).
    """
    current = _status_bytes("VmRSS")
    return current if current is not None else peak_rss_bytes()


def reset_peak_rss() -> bool:
    """Lower this process's peak RSS (``VmHWM``) to its current RSS (Linux ``clear_refs`` 5).

    Returns:
        bool: True when reset; False where unsupported (then :func:`peak_rss_bytes` keeps the
        whole process's peak).
    """
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
        return True
    except OSError:
        return False


def _is_cuda(device) -> bool:
    return str(device).startswith("cuda")


def reset_cuda_peak(device) -> None:
    """Start CUDA's peak allocation afresh on ``device`` (after a synchronize); no-op off CUDA.

    Args:
        device: a device or its name (``"cuda:0"``, ``"cpu"``).
    """
    if _is_cuda(device):
        import torch

        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device=None) -> int | None:
    """THE peak memory of this process so far (see the module docstring for each platform).

    Args:
        device: ``"cuda[:N]"`` (or a CUDA ``torch.device``) -> CUDA's peak allocation there; any other
            device -> the process's peak RSS; None -> CUDA's peak allocation when CUDA is available,
            else the peak RSS.

    Returns:
        int | None: bytes; None where neither figure can be read.
    """
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if _is_cuda(device):
        import torch

        return int(torch.cuda.max_memory_allocated(device))
    try:
        return peak_rss_bytes()
    except OSError:
        return None
