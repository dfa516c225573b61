"""Old command spellings, kept one release: each is rewritten to the new one with one warning line.

The table :data:`RENAMED` is the whole list; :func:`rewrite` applies it to an argument list before
the command line is parsed (``asymlora.cli`` calls it once, for every command). Three kinds of entry:

* a command path renamed (``ood`` -> ``eval ood``): the leading words are replaced;
* an option renamed inside a command (``train --lr`` -> ``train --learning-rate``, ``--bf16`` ->
  ``--dtype bf16``), also in the ``--lr=VALUE`` form; an option that did nothing is dropped with its
  value (``bounds --seed 3``);
* a mode flag that became a subcommand (``bench --sweep`` -> ``bench sweep``, ``bench --rows X`` ->
  ``bench throughput --rows X``).

Plain ``asymlora bench [OPTIONS]`` (what ``make bench`` runs) is ``asymlora bench suite [OPTIONS]``,
without a warning: the suite is bench's default mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Renamed:
    """One old spelling.

    command     the command path it applies under (a prefix: ``("bench",)`` covers ``bench sweep``).
    old         the old word or option (``"ood"``, ``"--lr"``).
    new         what replaces it (``()``: dropped).
    takes_value the old option took a value (kept after ``new``, or dropped with it when ``new`` is empty).
    mode        the subcommand the old option selected (``bench --sweep`` -> ``sweep``).
    """

    command: tuple[str, ...]
    old: str
    new: tuple[str, ...]
    takes_value: bool = False
    mode: str | None = None

    def advice(self) -> str | None:
        """What to type instead, for the warning line (None: nothing, the option had no effect)."""
        if self.mode is not None:
            return " ".join(("asymlora", *self.command, self.mode, *self.new))
        return " ".join(self.new) or None


#: Command paths renamed: old leading words -> new leading words.
COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("ood",): ("eval", "ood"),
    ("summarise", "generate"): ("eval", "rouge"),
    ("summarise", "table"): ("report",),
}

#: Options renamed, dropped, or turned into subcommands (see :class:`Renamed`).
RENAMED: tuple[Renamed, ...] = (
    Renamed(("train",), "--lr", ("--learning-rate",), takes_value=True),
    Renamed(("train",), "--bf16", ("--dtype", "bf16")),
    Renamed(("bench",), "--sweep", (), mode="sweep"),
    Renamed(("bench",), "--serving", (), mode="serving"),
    Renamed(("bench",), "--rows", ("--rows",), takes_value=True, mode="throughput"),
    Renamed(("bench",), "--batch", ("--batch-size",), takes_value=True),
    Renamed(("bench",), "--length", ("--max-length",), takes_value=True),
    Renamed(("memory",), "--batch", ("--batch-size",), takes_value=True),
    Renamed(("memory",), "--seq", ("--max-length",), takes_value=True),
    Renamed(("theory",), "--alpha", ("--exponent",), takes_value=True),
    Renamed(("bounds",), "--seed", (), takes_value=True),
    Renamed(("bounds",), "--quick", ()),
    Renamed(("similarity",), "--seed", (), takes_value=True),
)

#: bench's subcommands; anything else after ``bench`` runs the suite.
BENCH_MODES = ("suite", "sweep", "serving", "throughput", "frontier", "quantized", "mask-cost")

#: ``warn(old, new)``: report one old spelling (``new`` None: drop it, it had no effect).
Warn = Callable[[str, "str | None"], None]


def _rename_command(args: list[str], warn: Warn) -> list[str]:
    for old, new in COMMANDS.items():
        if tuple(args[:len(old)]) == old:
            warn("asymlora " + " ".join(old), "asymlora " + " ".join(new))
            return [*new, *args[len(old):]]
    return args


def _path(args: list[str]) -> tuple[str, ...]:
    """The leading words (the command path, perhaps followed by positional arguments)."""
    words = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    return tuple(words)


def _rename_options(args: list[str], warn: Warn) -> list[str]:
    path = _path(args)
    rules = {r.old: r for r in RENAMED if path[:len(r.command)] == r.command
             and not (r.mode and len(path) > len(r.command))}  # a mode flag only before any subcommand
    if not rules:
        return args
    done: list[str] = []
    mode: Renamed | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            done += args[i:]
            break
        name, has_inline, inline = arg.partition("=")
        rule = rules.get(name) if arg.startswith("--") else None
        if rule is None:
            done.append(arg)
            i += 1
            continue
        warn(arg if not has_inline else name, rule.advice())
        value = []
        if rule.takes_value:
            value = [inline] if has_inline else args[i + 1:i + 2]
            i += 0 if has_inline else 1
        if rule.new:
            done += [*rule.new, *value]
        mode = rule if rule.mode else mode
        i += 1
    if mode is not None:
        done.insert(len(mode.command), mode.mode)
    return done


def _bench_default(args: list[str]) -> list[str]:
    """``bench [OPTIONS]`` -> ``bench suite [OPTIONS]`` (bench's default mode; ``bench --help`` stays)."""
    if args[:1] != ["bench"] or args[1:] == ["--help"] or (len(args) > 1 and args[1] in BENCH_MODES):
        return args
    return ["bench", "suite", *args[1:]]


def rewrite(args: list[str], warn: Warn) -> list[str]:
    """``args`` with every old spelling replaced by its new one; ``warn(old, new)`` once for each.

    Args:
        args: the command line after ``asymlora`` (e.g. ``["ood", "runs/x", "--out", "o"]``).
        warn: called as ``warn(old, new)`` for each old spelling found (``new`` None: dropped).

    Returns:
        The command line in the current grammar (e.g. ``["eval", "ood", "runs/x", "--out", "o"]``).
    """
    return _bench_default(_rename_options(_rename_command(list(args), warn), warn))
