"""``torch.compile`` for adapted models, and a clean refusal where it cannot run.

The adapted layer with the default mask stream (``"v2"``, :mod:`asymlora.adapters.mask_stream`) is
plain tensor code, so ``torch.compile(model)`` traces it, the dropout mask and its counter included,
without a graph break (``tests/test_compile.py``). Whether compiling can work at all depends on the
platform, and torch only says so deep inside the first compiled call; :func:`compile_problem` checks
first, in the order of :data:`REQUIREMENTS`:

* **dynamo**: the Python version / build (torch's own ``check_if_dynamo_supported``: e.g. a Python
  newer than the torch release, or a free-threaded build it does not support);
* **C++ compiler** (CPU, inductor): inductor writes C++ kernels and builds them with the compiler
  named by ``CXX`` or its default (``g++``; ``clang++`` on macOS; ``cl`` on Windows);
* **triton** (CUDA, inductor): the GPU kernels are triton kernels.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Callable

import torch
from torch import nn

#: How to go on without compiling, the default end of every refusal (callers name their own switch).
WITHOUT = "or run without compiling"


def _dynamo_problem(device: str, without: str) -> str | None:
    from torch._dynamo.eval_frame import check_if_dynamo_supported

    try:
        check_if_dynamo_supported()
    except RuntimeError as err:
        python = ".".join(map(str, sys.version_info[:3]))
        return (f"torch.compile is unavailable on Python {python} with torch {torch.__version__} ({err}); use a "
                f"Python version this torch supports, {without}")
    return None


def _cxx_candidates() -> list[str]:
    if "CXX" in os.environ:
        return [os.environ["CXX"]]
    if sys.platform == "win32":
        return ["cl"]
    from torch._inductor import config

    names = config.cpp.cxx if isinstance(config.cpp.cxx, (list, tuple)) else (config.cpp.cxx,)
    return [name for name in names if name]


def _compiler_problem(device: str, without: str) -> str | None:
    if torch.device(device).type != "cpu":
        return None
    candidates = _cxx_candidates()
    if any(shutil.which(name) for name in candidates):
        return None
    return (f"torch.compile on the CPU (inductor) needs a C++ compiler and found none ({', '.join(candidates)} "
            f"not on PATH); install g++ or point CXX at a C++ compiler, {without}")


def _triton_problem(device: str, without: str) -> str | None:
    if torch.device(device).type != "cuda":
        return None
    from torch.utils._triton import has_triton

    if has_triton():
        return None
    return f"torch.compile on CUDA (inductor) needs triton, which is not installed; pip install triton, {without}"


#: The checks of :func:`compile_problem`, in order: ``(name, check(device, without) -> problem or None)``.
REQUIREMENTS: tuple[tuple[str, Callable[[str, str], str | None]], ...] = (
    ("dynamo", _dynamo_problem), ("C++ compiler", _compiler_problem), ("triton", _triton_problem))


def compile_problem(device: str | torch.device = "cpu", without: str = WITHOUT) -> str | None:
    """Why ``torch.compile`` (inductor) cannot run here, or None when it can.

    Args:
        device (str | torch.device): where the compiled model will run (``"cpu"``, ``"cuda"``, …).
        without (str): the end of the line, how to go on without compiling (e.g. ``"or drop --compile"``).

    Returns:
        str | None: one line naming the problem and the fix (:data:`REQUIREMENTS`), or None.
    """
    for _, check in REQUIREMENTS:
        problem = check(str(device), without)
        if problem is not None:
            return problem
    return None


def require_compile(device: str | torch.device = "cpu", without: str = WITHOUT) -> None:
    """Refuse to go on when ``torch.compile`` cannot run (before any expensive work).

    Args:
        device (str | torch.device): where the compiled model will run.
        without (str): how to go on without compiling (the end of the message).

    Raises:
        ValueError: :func:`compile_problem`'s line.
    """
    problem = compile_problem(device, without)
    if problem is not None:
        raise ValueError(problem)


def compile_model(model: nn.Module, device: str | torch.device = "cpu", **options) -> nn.Module:
    """``torch.compile(model, **options)`` after :func:`require_compile`.

    Args:
        model (nn.Module): a model (adapted or not); it is not copied.
        device (str | torch.device): where it runs.
        **options: passed to ``torch.compile`` (``fullgraph``, ``dynamic``, ``backend``, …).

    Returns:
        nn.Module: the compiled wrapper (an ``OptimizedModule``; ``._orig_mod`` is ``model``).

    Raises:
        ValueError: compiling is unavailable here.
    """
    require_compile(device)
    return torch.compile(model, **options)
