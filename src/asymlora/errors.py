"""The one exception type that means "the user's input is wrong", and the boundary that makes it.

:class:`UserError` is what the CLI turns into one ``error: …`` line and exit status 2. Every other
exception is a bug in asymlora (or its dependencies): the CLI exits 1 with a one-line summary and
writes the whole traceback to ``<out>/error.txt``.

Library functions raise plain ``ValueError`` / ``FileNotFoundError`` for bad arguments, so Python
callers keep the usual types. A command marks the places where such an error can only come from
the user's input (validating arguments, reading the user's files) with :func:`user_input`, which
re-raises them as :class:`UserError` (a ``ValueError`` subclass, so ``except ValueError`` still
catches it). Standard library only: every layer may import this module.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

#: Exceptions that mean bad input when they come out of a validation or user-file-reading step.
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError,
                                                 IsADirectoryError, PermissionError, UnicodeDecodeError)


class UserError(ValueError):
    """An expected failure caused by the user's input; the CLI prints it as one line, exit 2."""


class RunsFailed(Exception):
    """Some runs of a grid failed (each kept its traceback in its run folder); the CLI exits 1."""


def describe(err: BaseException) -> str:
    """One line for ``err``: its message (a ``UnicodeDecodeError`` says which codec failed)."""
    if isinstance(err, UnicodeDecodeError):
        return f"not valid {err.encoding} text (byte {err.start}: {err.reason})"
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


@contextlib.contextmanager
def user_input(what: str | None = None) -> Iterator[None]:
    """Inside this block, :data:`INPUT_ERRORS` are the user's: re-raise them as :class:`UserError`.

    ``what`` (e.g. a file name) is put in front of messages that do not already name it.
    """
    try:
        yield
    except UserError:
        raise
    except INPUT_ERRORS as err:
        message = describe(err)
        if what and what not in message:
            message = f"{what}: {message}"
        raise UserError(message) from err
