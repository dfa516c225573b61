"""Tasks: data loading, tokenisation, metrics and the paper's hyperparameters per task.

``TASKS`` maps a name to a :class:`Task`; ``get_task(name)`` looks one up (with a did-you-mean hint).
"""

from .base import TASKS, Hyper, Task, get_task, limit, register, tokenize
from . import glue, tweets, aclsum_aspect  # noqa: F401  (register their tasks)

__all__ = ["TASKS", "Hyper", "Task", "get_task", "limit", "register", "tokenize"]
