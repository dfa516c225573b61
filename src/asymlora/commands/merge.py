"""``asymlora merge ADAPTER... --weights w1,w2,... --method M --out DIR``: one plain adapter from
several that share their frozen A (task arithmetic, TIES, DARE on ΔB; see docs/merging.md).

Every check (weights, method, density, the adapters' files, shared A, ranks, targets, base model)
runs before anything is written; the merged folder is written atomically.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from asymlora.commands.common import parse_floats, user_input


def parse_weights(text: str) -> list[float]:
    """``"0.5,-0.3,1"`` -> ``[0.5, -0.3, 1.0]``; UserError naming the bad item otherwise."""
    return parse_floats(text, "--weights", "0.5,0.5")


def register(app: typer.Typer) -> None:
    @app.command("merge")
    def merge(
        adapters: List[str] = typer.Argument(..., help="adapter folders trained from the same frozen A"),
        weights: str = typer.Option(..., "--weights", help="one weight per adapter, comma-separated (negative "
                                    "subtracts a task)"),
        method: str = typer.Option("linear", "--method", help="linear, ties, dare_linear, dare_ties or magnitude "
                                   "(LoRI-style masks)"),
        density: Optional[float] = typer.Option(None, "--density", help="fraction of B kept by ties / dare "
                                                "(default: ties 0.2, dare and magnitude 0.1)"),
        seed: int = typer.Option(0, "--seed", min=0, help="seed of DARE's random drop"),
        heads: str = typer.Option("sum", "--heads", help="saved heads (modules_to_save): sum (weighted, same "
                                  "shapes) or drop"),
        out: str = typer.Option(..., "--out", help="folder of the merged adapter"),
    ) -> None:
        """Merge adapters that share their frozen A into one plain adapter folder, exactly in B."""
        from asymlora.adapters.merge import merge_adapters

        with user_input():
            state = merge_adapters(adapters, parse_weights(weights), method, density=density, seed=seed,
                                   heads=heads, out=out)
        kept = f", density {density}" if density is not None else ""
        typer.echo(f"merged {len(adapters)} adapters ({method}{kept}) over {len(state.meta.modules)} modules "
                   f"into {out}")
