"""What every command shares: the option grammar, the user-error type, output folders, atomic writes.

The options several commands take are defined here once, with the same name, meaning and default
text everywhere (the Hugging Face Trainer's words where it has one):

=====================  ===========================================================================
``--batch-size N``     examples per step (per device)
``--max-length N``     tokens per sequence
``--max-steps N``      optimiser steps
``--learning-rate X``  the optimiser's learning rate
``--dtype D``          ``fp32``, ``bf16`` or ``fp16`` (``float32``, ``bfloat16``, ``float16`` still read)
``--device D``         ``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``
``--threads N``        CPU threads (default: the cores available to this process)
``--seeds LIST``       a comma list of seeds (``0,1,2``); a bare ``N`` is a config's first N seeds
``--out DIR``          output folder (default under ``runs/``)
``--verbose``          progress bars and per-step logs (quiet by default)
=====================  ===========================================================================

JSON beside every human-readable table, nothing half-written (temporary name, then rename). A
command validates its arguments before it creates its output folder (:func:`out_dir`), so bad input
leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from asymlora.atomic import atomic_write_bytes, atomic_write_text  # noqa: F401 (re-exported)
from asymlora.errors import UserError, user_input  # noqa: F401 (re-exported)

#: The output folder of the command running in this process (where ``error.txt`` goes on a bug).
CURRENT_OUT: list[Path] = []
#: The arguments of the command running in this process, in the current grammar (set by ``asymlora.cli``).
CURRENT_ARGS: list[str] = []


def command_line() -> str:
    """``asymlora ARGS`` as parsed (old spellings already rewritten), for the documents a command writes."""
    import shlex

    return " ".join(["asymlora", *(shlex.quote(a) for a in CURRENT_ARGS)])


def out_dir(path: str | os.PathLike | None, default: str) -> Path:
    """The output folder (created): ``path`` or ``runs/<default>``; remembered for ``error.txt``."""
    folder = Path(path) if path else Path("runs") / default
    with user_input(f"--out {folder}"):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"--out {folder} is a file, not a folder; choose a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create --out {folder} ({err.strerror or type(err).__name__}); choose a "
                            "writable folder") from None
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"--out {folder} is not writable; choose a writable folder")
    CURRENT_OUT[:] = [folder]
    return folder


def results_file(name: str | os.PathLike) -> Path:
    """``name``, or ``name/results.jsonl`` when ``name`` is a folder that holds one (a grid's output folder)."""
    source = Path(name)
    return source / "results.jsonl" if source.is_dir() and (source / "results.jsonl").is_file() else source


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


# ---------------------------------------------------------------------------- the shared options
def _default_text(default: Any, default_text: str | None) -> str:
    """`` (default …)`` for a default resolved later (typer itself shows a fixed ``default``)."""
    return f" (default {default_text})" if default_text is not None else ""


def batch_size_option(default: int | None = None, what: str = "examples per step, per device",
                      default_text: str | None = None, minimum: int | None = None) -> Any:
    """``--batch-size N`` (``default_text`` names a default resolved later, e.g. the task's; ``minimum``
    lets the parser refuse smaller values, else the command checks them)."""
    return typer.Option(default, "--batch-size", min=minimum, help=what + _default_text(default, default_text))


def max_length_option(default: int | None = None, what: str = "tokens per sequence",
                      default_text: str | None = None, minimum: int | None = None) -> Any:
    """``--max-length N`` (see :func:`batch_size_option`)."""
    return typer.Option(default, "--max-length", min=minimum, help=what + _default_text(default, default_text))


def max_steps_option(what: str = "optimiser steps", default_text: str | None = None) -> Any:
    """``--max-steps N`` (no default: the run's own length; the command checks it)."""
    return typer.Option(None, "--max-steps", help=what + _default_text(None, default_text))


def learning_rate_option(default_text: str | None = None) -> Any:
    """``--learning-rate X``."""
    return typer.Option(None, "--learning-rate", help="learning rate" + _default_text(None, default_text))


#: ``--dtype`` values: the short name -> torch's name (the long names are still read).
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def dtype_option(default: str = "fp32", what: str = "") -> Any:
    """``--dtype fp32|bf16|fp16`` (parse it with :func:`dtype_name`)."""
    return typer.Option(default, "--dtype", help=(what + "; " if what else "") + ", ".join(DTYPES))


def dtype_name(text: str) -> str:
    """The short name (``fp32``, ``bf16``, ``fp16``) of a ``--dtype`` value; the long names are read too.

    Raises:
        UserError: neither a short nor a long name.
    """
    value = text.strip().lower()
    if value in DTYPES:
        return value
    for short, long in DTYPES.items():
        if value == long:
            return short
    raise UserError(f"--dtype must be {', '.join(DTYPES)}; got {text!r}")


def device_option(what: str = "") -> Any:
    """``--device auto|cpu|cuda[:N]`` (parse it with :func:`device_name`)."""
    return typer.Option("auto", "--device", help=(what + "; " if what else "") +
                        "auto (CUDA when there is one), cpu, cuda or cuda:N")


def device_name(text: str) -> str:
    """``auto`` resolved (``cuda`` when a GPU is visible, else ``cpu``); other values checked.

    Raises:
        UserError: not ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """
    value = (text or "auto").strip().lower()
    if value == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = value.partition(":")
    if kind == "cpu" and not index or kind == "cuda" and (not index or index.isdigit()):
        return value
    raise UserError(f"--device must be auto, cpu, cuda or cuda:N; got {text!r}")


def threads_option(minimum: int | None = 1) -> Any:
    """``--threads N`` (None: the cores available, see :func:`asymlora.training.env.set_threads`;
    ``minimum`` None: the command checks the value itself)."""
    return typer.Option(None, "--threads", min=minimum, help="CPU threads (default: the cores available to this "
                                                        "process, shared among local processes)")


@dataclass(frozen=True)
class Seeds:
    """A ``--seeds`` value: an explicit list, or (the old form, a bare N) a config's first ``count``."""

    values: tuple[int, ...] | None = None
    count: int | None = None


def seeds_option(what: str = "") -> Any:
    """``--seeds LIST`` (parse it with :func:`parse_seeds`)."""
    return typer.Option(None, "--seeds", help="comma list of seeds, e.g. 0,1,2; a bare N: the first N"
                                              + (f" ({what})" if what else ""))


def parse_seeds(text: str | None) -> Seeds:
    """``"0,1,2"`` -> ``Seeds(values=(0, 1, 2))``; ``"3"`` -> ``Seeds(count=3)``; None -> ``Seeds()``.

    Raises:
        UserError: not integers, a negative seed, a repeated seed or a count below 1.
    """
    if text is None:
        return Seeds()
    parts = [p.strip() for p in str(text).split(",")]
    try:
        numbers = [int(p) for p in parts if p]
    except ValueError:
        raise UserError(f"--seeds must be a comma list of integers (0,1,2) or a count; got {text!r}") from None
    if "," not in str(text):
        if not numbers or numbers[0] < 1:
            raise UserError(f"--seeds N must be >= 1 (got {text!r}); give a list (0,) for seed 0 alone")
        return Seeds(count=numbers[0])
    if not numbers or min(numbers) < 0 or len(set(numbers)) != len(numbers):
        raise UserError(f"--seeds must list distinct seeds >= 0; got {text!r}")
    return Seeds(values=tuple(numbers))


def write_study_report(folder: Path, name: str, result: dict, markdown, plot, plot_name: str | None = None) -> None:
    """Write a study's bundle: ``name.json`` (``result`` with the command line added under
    ``"command"``), ``name.md`` (``markdown(result)``, also printed) and the figure
    (``plot(result, path)``, ``plot_name`` or ``name.png``); each file written atomically. Prints what was written."""
    result["command"] = command_line()
    write_json(folder / f"{name}.json", result)
    table = markdown(result)
    atomic_write_text(folder / f"{name}.md", table)
    plot_name = plot_name or f"{name}.png"
    plot(result, folder / plot_name)
    typer.echo(table)
    typer.echo(f"wrote {folder / (name + '.json')}, {name}.md and {plot_name}")


def parse_floats(text: str, option: str, example: str, non_negative: bool = False) -> list[float]:
    """A comma-separated list of finite numbers: ``"0.5,-0.3,1"`` -> ``[0.5, -0.3, 1.0]`` (blank entries skipped).

    Args:
        text: as typed after ``option``.
        option: the option's name, for the message (e.g. ``"--weights"``).
        example: a valid value, for the message (e.g. ``"0.5,0.5"``).
        non_negative: refuse entries below 0 too.

    Raises:
        UserError: an entry that is not a finite number (or is negative when ``non_negative``),
            named in one line with an example.
    """
    values, wanted = [], "a finite number >= 0" if non_negative else "a finite number"
    for item in (x.strip() for x in text.split(",") if x.strip()):
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (non_negative and value < 0):
            raise UserError(f"{option} entry {item!r} is not {wanted}; give comma-separated numbers, "
                            f"e.g. {option} {example}")
        values.append(value)
    return values


def out_option(default: str) -> Any:
    """``--out DIR`` (default ``runs/<default>``, or what ``default`` says)."""
    shown = default if "/" in default or " " in default else f"runs/{default}"
    return typer.Option(None, "--out", help=f"output folder (default {shown})")


def verbose_option() -> Any:
    """``--verbose``: progress bars and per-step logs (quiet by default)."""
    return typer.Option(False, "--verbose", help="show progress bars and per-step logs (default: quiet)")
