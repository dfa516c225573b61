"""The ``asymlora`` command line: one typer app assembled from :mod:`asymlora.commands`.

Every command module registers itself (``register(app)``); this file only assembles them and
turns expected failures (bad names, bad files, impossible settings) into one clear line on
stderr and exit status 2. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

from asymlora.commands import command_modules
from asymlora.commands.common import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Asymmetric low-rank adapters: freeze A, train B (Zhu et al., ICML 2024).")
for module in command_modules():
    module.register(app)

EXPECTED_ERRORS = (UserError, ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                   PermissionError, KeyError)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; expected errors become ``error: <message>`` and exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("ASYMLORA_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    try:
        app(args=argv, prog_name="asymlora", standalone_mode=False)
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    except typer.Abort:
        sys.exit(130)
    except EXPECTED_ERRORS as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:  # usage errors (bad option, missing argument) carry their own formatting
        if isinstance(err, _click_exceptions()):
            err.show()
            sys.exit(err.exit_code)
        raise


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
