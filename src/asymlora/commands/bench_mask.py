"""``asymlora bench mask-cost``: the v2 dropout mask's cost per module call, per hash engine, against ``F.dropout``.

Writes ``mask_cost.json`` (:func:`asymlora.bench.mask_cost.measure_mask_cost`, with the command line
and the commit) and ``mask_cost.md`` in ``--out``. See docs/results/bench/mask_cost/HOW.md.
"""

from __future__ import annotations

from typing import Optional

import typer

from asymlora.commands.common import out_dir, out_option, threads_option, user_input


def _shapes(text: str) -> list[tuple[int, ...]]:
    """``16x128x384,4x256x576`` as ``[(16, 128, 384), (4, 256, 576)]``.

    Raises:
        ValueError: a shape that is not positive integers joined by ``x``.
    """
    try:
        shapes = [tuple(int(n) for n in item.strip().split("x")) for item in text.split(",") if item.strip()]
    except ValueError:
        shapes = []
    if not shapes or any(n < 1 for shape in shapes for n in shape):
        raise ValueError(f"--shapes takes comma-separated shapes such as 16x128x384,4x256x576; got {text!r}")
    return shapes


def add_mask_cost(group: typer.Typer) -> None:
    """Register ``mask-cost`` on the bench command group."""
    @group.command("mask-cost")
    def mask_cost(
        out: Optional[str] = out_option("bench-mask-cost"),
        shapes: str = typer.Option("4x32x64,16x128x384,4x256x576,4x256x1536", "--shapes",
                                   help="module input shapes (batch x tokens x d_in), comma-separated"),
        rank: int = typer.Option(8, "--rank", min=1, help="adapter rank of the lean function"),
        dropout: float = typer.Option(0.05, "--dropout", min=0.001, max=0.999, help="dropout probability"),
        repeats: int = typer.Option(30, "--repeats", min=1, help="interleaved timed repeats per variant"),
        threads: Optional[int] = threads_option(),
    ) -> None:
        """The v2 mask per module call: torch int64 vs numpy uint32 hash vs F.dropout, and lean fwd+bwd vs p = 0."""
        from asymlora.atomic import atomic_write_text
        from asymlora.bench.mask_cost import mask_cost_markdown, measure_mask_cost
        from asymlora.commands.common import command_line, write_json
        from asymlora.training.env import device_name, git_commit, set_threads, versions

        with user_input():
            chosen = _shapes(shapes)
            if rank > min(shape[-1] for shape in chosen):
                raise ValueError(f"--rank {rank} exceeds the narrowest d_in of --shapes ({min(s[-1] for s in chosen)})")
            set_threads(threads)
        folder = out_dir(out, "bench-mask-cost")
        document = {"command": command_line(), "commit": git_commit(), "device": device_name(), "versions": versions(),
                    **measure_mask_cost(chosen, rank, dropout, repeats)}
        write_json(folder / "mask_cost.json", document)
        atomic_write_text(folder / "mask_cost.md", mask_cost_markdown(document))
        typer.echo(f"wrote {folder / 'mask_cost.json'} and mask_cost.md")
