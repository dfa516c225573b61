"""The claims table: markdown (one row per claim) and its JSON twin."""

from __future__ import annotations

from dataclasses import asdict

from asymlora.experiments.claims.rules import Verdict

MARK = {True: "✓", False: "✗", None: "·"}


def table_cell(text: str) -> str:
    """``text`` as one markdown table cell.

    Args:
        text: any text.

    Returns:
        str: the text with pipes escaped and newlines replaced by spaces.
    """
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(verdicts: list[Verdict], files: tuple[str, ...]) -> str:
    """One row per claim: the claim, its test, the numbers used (✓ passed, ✗ failed, · listed only)
    with their source files, and the verdict."""
    lines = ["# The research's claims, tested on result files", "",
             f"Inputs ({len(files)} files): " + (", ".join(f"`{f}`" for f in files) or "none") + ".", "",
             "| # | Claim | Test | Numbers used (source) | Verdict |", "|---|---|---|---|---|"]
    for v in verdicts:
        numbers = "<br>".join(f"{MARK[e.passed]} {table_cell(e.what)}: {table_cell(e.numbers)} (`{e.source}`)"
                              for e in v.evidence) or "—"
        verdict = f"**{v.verdict}**" + (f" ({v.note})" if v.note else "")
        lines.append(f"| {v.claim} | {table_cell(v.statement)} | {table_cell(v.rule)} | {numbers} | {verdict} |")
    lines += ["", "✓ test passed, ✗ test failed, · listed but not tested (see the test).", ""]
    return "\n".join(lines)


def to_json(verdicts: list[Verdict], files: tuple[str, ...]) -> dict:
    return {"inputs": list(files), "claims": [asdict(v) for v in verdicts]}
