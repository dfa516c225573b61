"""CLI commands, one module each; every command module exposes ``register(app)``.

Adding a command = writing a module here with a ``register(app)`` function; :func:`command_modules`
discovers it (helpers without ``register``, such as :mod:`.common`, are skipped).
"""

from __future__ import annotations

import importlib
import pkgutil


def command_modules() -> list:
    """Every module of this package that defines ``register(app)``, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(module, "register", None)):
            found.append(module)
    return found
