"""The runtime floor: resident memory of a fresh interpreter holding a training run's libraries.

A CPU training process's peak RSS includes what no tensor accounts for: the interpreter, torch's,
transformers' and PEFT's code and import-time objects (and bitsandbytes' for a quantized base). The
planner measures it where it runs, by starting a fresh interpreter that imports
:data:`RUNTIME_IMPORTS` (plus :data:`QUANTIZED_IMPORTS` for a 4- or 8-bit base) and reading its RSS
(:func:`asymlora.measure.rss_bytes`): what a ``bench quantized`` row holds before it loads a model
(docs/results/quantized/runtime_rss.py measures the same thing). On a GPU the figure is not part
of the device's memory, so only the ``cpu`` profile (:mod:`asymlora.planning.profiles`) adds it.
"""

from __future__ import annotations

import functools
import subprocess
import sys

#: What every training row imports before its model exists.
RUNTIME_IMPORTS = ("torch", "transformers", "peft", "asymlora.bench.configs")
#: Added for a quantized base (``--bits 4`` or ``8``).
QUANTIZED_IMPORTS = ("bitsandbytes",)


def runtime_imports(bits: int | None) -> tuple[str, ...]:
    """The modules a row with a base in ``bits`` bits imports (see the module docstring)."""
    return RUNTIME_IMPORTS + (QUANTIZED_IMPORTS if bits in (4, 8) else ())


@functools.lru_cache(maxsize=None)
def measure_runtime(imports: tuple[str, ...], timeout: float = 300.0) -> int:
    """RSS of a fresh interpreter after importing ``imports``.

    Args:
        imports (tuple[str, ...]): module names, imported in order.
        timeout (float): seconds before giving up.

    Returns:
        int: bytes (``VmRSS``; the peak RSS where there is no ``/proc``).

    Raises:
        RuntimeError: the interpreter failed (its last line named).
    """
    code = ";".join([f"import {name}" for name in imports] +
                    ["from asymlora.measure import rss_bytes", "print(rss_bytes())"])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"measuring the runtime floor failed: {tail[0]}")
    return int(done.stdout.strip().splitlines()[-1])
