"""Quiet model loading: transformers' load report and progress bars silenced while a model loads.

Loading a base model for a new task makes transformers list the fresh task head as MISSING (the
point of the load, not a problem) and draw a progress bar into the logs; errors still show.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Inside the block transformers logs errors only and draws no progress bar; both settings are
    restored as they were on leaving.

    Returns:
        Iterator[None]: a context manager (``with quiet_transformers(): ...``).
    """
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


#: The old name (``asymlora.models.quiet_load_report``).
quiet_load_report = quiet_transformers
