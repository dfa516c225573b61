"""Tasks: data sets, their family (kind of model and scoring) and the paper's hyperparameters.

``TASKS`` maps a name to a :class:`Task`; ``get_task(name)`` looks one up (with a did-you-mean hint).
``FAMILIES`` (from :mod:`.families`) maps a family name to its :class:`TaskFamily`. Adding a data set
is one module that calls :func:`register`, plus its line below.
"""

from .base import TASKS, Generation, Hyper, Task, get_task, limit, register, tokenize
from .families import FAMILIES, TaskFamily, get_family
from . import (aclsum_aspect, aclsum_summary, digits, glue, instructions, summarisation,  # noqa: F401 (register)
               tweets)

__all__ = ["FAMILIES", "TASKS", "Generation", "Hyper", "Task", "TaskFamily", "get_family", "get_task", "limit",
           "register", "tokenize"]
