"""Task families: one module per kind of task (see :mod:`.base` for the protocol).

``FAMILIES`` maps a name to a :class:`TaskFamily`; a :class:`asymlora.tasks.Task` names its family.
"""

from .base import (FAMILIES, Generated, PreparedData, TaskFamily, TrainerOptions, get_family, greater_is_better,
                   register_family)
from . import causal_lm, image_classification, seq2seq, sequence_classification  # noqa: F401 (register)

__all__ = ["FAMILIES", "Generated", "PreparedData", "TaskFamily", "TrainerOptions", "get_family", "greater_is_better",
           "register_family"]
