"""Analysis beside the experiments (docs/paper.md §§4 and 5).

* :mod:`asymlora.analysis.theory` — the linear-regression theory: closed forms, Monte Carlo,
  the d/r → ∞ limit, a gradient-descent fit through the library's adapter.
* :mod:`asymlora.analysis.bounds` — the information-theoretic generalisation bound on a model's
  real module shapes, and the equal-budget rank of B-only adapters.
* :mod:`asymlora.analysis.similarity` — subspace similarity of learned factors across runs.
* :mod:`asymlora.analysis.plots` — the figures.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def single_blas_thread():
    """Run numpy's linear algebra on one BLAS thread inside the block.

    The analysis does many small decompositions (batched SVD / QR of 64 × 8 matrices); a
    multi-threaded OpenBLAS spends more time synchronising its threads than computing on them,
    and on a busy 2-core machine that made ``expected_losses`` 20-70× slower. Uses threadpoolctl
    (installed with scikit-learn) when available, else does nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
