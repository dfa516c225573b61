"""The ``asymlora`` command line: one typer app assembled from :mod:`asymlora.commands`.

Every command module registers itself (``register(app)``); this file only assembles them and
maps failures to exit statuses:

* :class:`asymlora.errors.UserError` (bad names, bad files, impossible settings, raised where a
  command validates its input): one line ``error: …`` on stderr, exit 2;
* a usage error: one line, exit 2; an unknown option names the closest known one
  (``error: no such option --lr (did you mean --learning-rate?)``);
* anything else is a bug: exit 1, one line ``error: internal error (<type>: <message>)`` naming the
  file that holds the whole traceback (``<out>/error.txt``, or ``runs/error.txt`` before the
  command chose its folder).

Old spellings (:mod:`asymlora.commands.aliases`) are rewritten before parsing, each with one line
``warning: 'OLD' is deprecated; use 'NEW'``. ``--debug`` (or ``ASYMLORA_DEBUG=1``) shows the traceback instead of either line. Warnings of
asymlora's own categories (e.g. a torn results line that was skipped) are one ``warning: …`` line.
When stderr is not a terminal (a log file, a test), the model-loading and dataset-mapping
progress bars of transformers and datasets are switched off, so stderr holds only what matters; so are
the import-time warnings of optional quantization back-ends that transformers imports when they are
installed (:data:`_IMPORT_NOISE`: e.g. torchao's "Failed to load <kernel>.so" for GPU kernels).
"""

from __future__ import annotations

import difflib
import os
import sys
import traceback
import warnings
from pathlib import Path

import typer
from typer.core import TyperGroup

from asymlora.commands import command_modules
from asymlora.commands.aliases import rewrite
from asymlora.commands.common import CURRENT_ARGS, CURRENT_OUT
from asymlora.errors import RunsFailed, UserError, describe



def _deprecated(old: str, new: str | None) -> None:
    """The one warning line of an old spelling (``new`` None: the option had no effect)."""
    advice = f"use '{new}'" if new else "drop it (it had no effect)"
    typer.echo(f"warning: '{old}' is deprecated; {advice}", err=True)


class _Grammar(TyperGroup):
    """The root command: rewrites old spellings (:func:`asymlora.commands.aliases.rewrite`) before parsing,
    whether called from :func:`main` or from a test's ``CliRunner``."""

    def make_context(self, info_name, args, parent=None, **extra):
        if parent is None:
            args = rewrite(list(args), _deprecated)
            CURRENT_ARGS[:] = args
        return super().make_context(info_name, args, parent=parent, **extra)


app = typer.Typer(cls=_Grammar, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Asymmetric low-rank adapters: freeze A, train B (Zhu et al., ICML 2024). "
                       "Global flag: --debug shows tracebacks instead of one-line errors.")
for module in command_modules():
    module.register(app)


def _write_traceback(err: BaseException) -> Path | None:
    """Write the traceback of ``err`` to ``<out>/error.txt``; the path, or None if it cannot be written."""
    folder = CURRENT_OUT[0] if CURRENT_OUT else Path("runs")
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        from asymlora.atomic import atomic_write_text

        return atomic_write_text(folder / "error.txt", text)
    except OSError:
        return None


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    """``warning: <message>`` for asymlora's own warning categories; the others go where they would
    have gone (Python's format on stderr, or a caller's ``catch_warnings(record=True)``)."""
    if category.__module__.startswith("asymlora."):
        print(f"warning: {message}", file=file or sys.stderr)
    else:
        warnings._showwarnmsg_impl(warnings.WarningMessage(message, category, filename, lineno, file, line))


#: Loggers that warn at import time about things no CLI user can act on (missing GPU kernels of an
#: installed quantization back-end, torch's deprecation notice for enum registration by such a back-end);
#: their errors still show.
_IMPORT_NOISE = ("torchao", "torch.utils._pytree")


def _quiet_import_noise() -> None:
    """Only errors from the :data:`_IMPORT_NOISE` loggers (see the module docstring)."""
    import logging

    for name in _IMPORT_NOISE:
        logging.getLogger(name).setLevel(logging.ERROR)


def _quiet_progress_bars() -> None:
    """No loading / mapping progress bars when stderr is not a terminal (see the module docstring)."""
    if sys.stderr.isatty():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is not None:  # already imported (an in-process caller): switch them off directly
        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; see the module docstring for the exit statuses."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("ASYMLORA_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    CURRENT_OUT.clear()
    _quiet_progress_bars()
    _quiet_import_noise()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings
            app(args=argv, prog_name="asymlora", standalone_mode=False)
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except UserError as err:
        if debug:
            raise
        print(f"error: {describe(err)}", file=sys.stderr)
        sys.exit(2)
    except RunsFailed as err:
        if debug:
            raise
        print(f"error: {describe(err)}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:
        if isinstance(err, _click_exceptions()):  # a usage error: one line, like any bad input
            print(f"error: {_usage_line(err)}", file=sys.stderr)
            sys.exit(err.exit_code)
        if debug:
            raise
        where = _write_traceback(err)
        saved = f"; traceback in {where}" if where else ""
        print(f"error: internal error ({type(err).__name__}: {describe(err)}){saved}; "
              "rerun with --debug to see it", file=sys.stderr)
        sys.exit(1)


def _known_options(err) -> list[str]:
    """The visible long options of the command that refused ``err``'s option."""
    command = getattr(getattr(err, "ctx", None), "command", None)
    names = [o for p in getattr(command, "params", ()) if not getattr(p, "hidden", False)
             for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    return [*names, "--help"]


def suggest_option(typed: str, known: list[str]) -> str | None:
    """The known option ``typed`` most likely meant: the one whose words' initials it spells
    (``--lr`` -> ``--learning-rate``), else the one it starts, else the closest spelling.

    Args:
        typed: the unknown option as given (``"--lr"``).
        known: the command's options (``["--learning-rate", ...]``).

    Returns:
        One of ``known``, or None when none is close.
    """
    bare = typed.lstrip("-").lower()
    for option in known:
        if bare and "".join(w[:1] for w in option.lstrip("-").split("-")) == bare:
            return option
    starts = [o for o in known if o.lstrip("-").startswith(bare)] if len(bare) > 1 else []
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(typed, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _usage_line(err) -> str:
    """One line for a usage error; an unknown option with the closest known one."""
    name = getattr(err, "option_name", None)
    if name is not None and type(err).__name__ == "NoSuchOption":
        guess = suggest_option(name, _known_options(err))
        return f"no such option {name}" + (f" (did you mean {guess}?)" if guess else "")
    command = getattr(getattr(err, "ctx", None), "command_path", None)
    message = " ".join(err.format_message().split())
    return f"{message} (see {command} --help)" if command else message


def _click_exceptions() -> tuple[type, ...]:
    """ClickException from click and from the copy of click that typer >= 0.29 vendors."""
    import click

    found: list[type] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as VendoredClickException
        found.append(VendoredClickException)
    except ImportError:
        pass
    return tuple(found)


if __name__ == "__main__":
    main()
