"""The README's "What our evidence shows" paragraph, computed from committed results.

``asymlora evidence`` writes it into the README beside the evidence page (a test fails when the
committed README differs), so the paragraph is never edited by hand. Its numbers, each read from a
committed file it links to (:data:`SOURCES`, relative to the repository root):

* protocol 1 (one learning rate for every method; ``asymlora report`` JSON): LoRA, A-only and B-only
  r=8, test accuracy mean (sample std) over seeds;
* protocol 2 (each arm at its rate chosen on validation; ``asymlora choose-lr`` JSON, the widest
  sweep): ``mean(LoRA r=8) − mean(B-only r=8)`` at the chosen rates, and whether that gap exceeds the
  claims checker's margin ``max(1 point, pooled std)`` (the verdict the sentence states);
* out of distribution (``asymlora ood`` JSON): IMDB accuracy of B-only and LoRA;
* equal memory (``asymlora report --frontier`` JSON, the file docs/choosing.md reads): at LoRA r=8's
  measured peak training memory, the most accurate B-only arm that fits
  (:func:`asymlora.experiments.frontier.best_within`);
* width (``asymlora report --against b_only`` JSON of the MiniLM / MPNet comparison): each method's gap
  to B-only on both models and how it moves from the smaller to the larger, with the standard error and
  the gaps module's verdict (a change beyond twice its se, or not), and the devices when they differ;
* cost (``asymlora sizes`` JSON): the B-only tensor file over PEFT LoRA's;
* the claims checker's verdicts (passed in: the same run of ``asymlora evidence`` computes them).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from asymlora.errors import UserError
from asymlora.evaluation.stats import Stat, from_summary, pooled_std
from asymlora.experiments import choosing_page
from asymlora.experiments.claims.rules import NEAR_MARGIN, near
from asymlora.experiments.frontier import best_within, point_from_json, reference_point
from asymlora.experiments.gaps import SHOWN_AT_SE

HEADING = "What our evidence shows"
_TWEETS = "docs/results/converged_tweets"
#: The committed files the paragraph is computed from, relative to the repository root.
SOURCES = {
    "protocol_one": f"{_TWEETS}/report/report.json",
    "protocol_two": choosing_page.SOURCES["lr_choice"],
    "ood": f"{_TWEETS}/ood/ood.json",
    "frontier": choosing_page.SOURCES["frontier"],
    "sizes": "docs/results/sizes/sizes.json",
    "width": "docs/results/width/gaps/gaps.json",
}
#: The links the paragraph gives (markdown targets relative to the repository root).
LINKS = {"tables": f"{_TWEETS}/tables.md", "sizes": "docs/results/sizes/sizes.md",
         "claims": "docs/results/claims/claims.md", "width": "docs/results/width/gaps/gaps.md", "evidence": "docs/evidence.md", "choosing": "docs/choosing.md"}
#: The paper's claims (ours, numbered after them, are counted apart).
PAPER_CLAIMS = range(1, 7)
#: What our own claims are, in a few words, where the paragraph states their numbers.
OURS = {7: " (equal memory, as above)"}


def _read(root: Path, key: str) -> dict:
    path = root / SOURCES[key]
    if not path.is_file():
        raise UserError(f"{SOURCES[key]} is missing: the README's evidence paragraph is computed from it")
    return json.loads(path.read_text(encoding="utf-8"))


def _report_cell(report: dict, method: str, rank: int) -> Stat:
    """Test accuracy of ``(method, rank)`` on the tweets in an ``asymlora report`` JSON."""
    for row in report["rows"]:
        if (row["method"], row["rank"]) == (method, rank):
            return from_summary(row["cells"]["tweets"]["accuracy"])
    raise UserError(f"{SOURCES['protocol_one']} has no {method} r={rank} row")


def _chosen_cell(lr_choice: dict, method: str, rank: int) -> Stat:
    """Test accuracy at the chosen rate of ``(method, rank)`` in an ``asymlora choose-lr`` JSON."""
    for arm in lr_choice["arms"]:
        if (arm["method"], arm["rank"]) == (method, rank) and arm.get("chosen") is not None:
            return from_summary(arm["test"][str(arm["chosen"])])
    raise UserError(f"{SOURCES['protocol_two']} has no chosen rate for {method} r={rank}")


def _ood_cell(ood: dict, method: str, rank: int = 8) -> Stat:
    for row in ood["rows"]:
        if (row["method"], row["rank"]) == (method, rank):
            return from_summary(row["ood_accuracy"])
    raise UserError(f"{SOURCES['ood']} has no {method} r={rank} row")


def _gap_sentence(lora: Stat, b_only: Stat) -> tuple[str, str]:
    """(verdict, gap clause) of protocol 2: B-only matches LoRA when the gap is within the claims margin."""
    gap = lora.mean - b_only.mean
    close, _ = near(b_only, lora)
    verdict = "B-only matches LoRA within the margin" if close else "B-only does not match LoRA"
    return verdict, f"at each method's chosen rate LoRA {'leads' if gap >= 0 else 'trails'} B-only by {abs(gap):.2f} points"


def _margin_clause(x: Stat, y: Stat) -> str:
    """Whether ``x`` trails ``y`` within the claims checker's margin (:func:`near`), in words."""
    spread = pooled_std(x, y)
    what = f"max({NEAR_MARGIN:g} point, pooled std {spread:.2f})" if spread is not None else f"{NEAR_MARGIN:g} point"
    return f"{'within' if near(x, y)[0] else 'beyond'} the margin {what}"


def _memory_sentence(frontier: dict) -> str:
    points = [point_from_json(p) for p in frontier["points"]]
    ref = reference_point(points)
    best = best_within(points, ref) if ref is not None else None
    if best is None:
        return ""
    x, y = best.accuracy, ref.accuracy
    gap = y.mean - x.mean
    behind = f"{gap:.2f} points behind" if gap >= 0 else f"{-gap:.2f} points ahead"
    mib = choosing_page.MIB
    return (f" At LoRA r=8's training memory ({ref.measured_bytes / mib:.0f} MiB) the best B-only arm that fits, "
            f"r={best.rank} ({best.measured_bytes / mib:.0f} MiB), scores {x.text()} against {y.text()}, {behind}: "
            f"{_margin_clause(x, y)}.")


def _width_sentence(width: dict) -> str:
    """Each method's gap to the reference on the smaller and the larger model, the change, its standard
    error and verdict (gaps.json's ``shown``: beyond :data:`asymlora.experiments.gaps.SHOWN_AT_SE` standard
    errors), and whether the devices differ."""
    gaps = {(g["method"], g["model"]): g for g in width["gaps"]}
    parts, mixed = [], False
    for c in width["changes"]:
        small, large = gaps[(c["method"], c["smaller"])], gaps[(c["method"], c["larger"])]
        if c["se"] is None:
            verdict = "no se: fewer than 2 seeds"
        else:  # gaps.json's own verdict (asymlora.experiments.gaps: |change| > SHOWN_AT_SE · se), not recomputed
            verdict = f"se {c['se']:.2f}, {'beyond' if c['shown'] else 'within'} {SHOWN_AT_SE:g} se"
        parts.append(f"{c['method']} − {width['reference']} {small['gap']:+.2f} → {large['gap']:+.2f} ({verdict})")
        mixed = mixed or c["devices"][0] != c["devices"][1]
    if not parts:
        return ""
    first = width["changes"][0]
    sizes = {g["model"]: g["total_params"] for g in width["gaps"]}
    return (f" Width, {first['smaller']} ({sizes[first['smaller']] / 1e6:.1f}M) → {first['larger']} "
            f"({sizes[first['larger']] / 1e6:.1f}M), a quarter epoch: " + "; ".join(parts)
            + ("; on different devices" if mixed else "") + f" ([width]({LINKS['width']})).")


def _claims_sentence(claims: list[dict]) -> str:
    paper = [c for c in claims if c["claim"] in PAPER_CLAIMS]
    held = sum(c["verdict"] == "holds" for c in paper)
    ours = [c for c in claims if c["claim"] not in PAPER_CLAIMS]
    extra = "".join(f"; our claim {c['claim']}{OURS.get(c['claim'], '')} {c['verdict']}" for c in ours)
    return (f"Of the research's {len(paper)} claims {held} hold and {len(paper) - held} do not{extra} "
            f"([claims]({LINKS['claims']})).")


def render_paragraph(root: Path, claims: list[dict]) -> str:
    """The body of the README's "What our evidence shows" section (markdown, wrapped at 120 columns).

    Args:
        root: the repository root holding the committed :data:`SOURCES`.
        claims: the claims checker's verdicts (``claims.json``'s ``claims``: ``claim``, ``verdict``).

    Raises:
        UserError: a source file is missing or lacks a row the paragraph needs.
    """
    one, two = _read(root, "protocol_one"), _read(root, "protocol_two")
    ood, sizes = _read(root, "ood"), _read(root, "sizes")
    lora, a_only, b_only = (_report_cell(one, m, 8) for m in ("lora", "a_only", "b_only"))
    verdict, gap = _gap_sentence(_chosen_cell(two, "lora", 8), _chosen_cell(two, "b_only", 8))
    ratio = next(r["tensor_ratio_vs_peft"] for r in sizes["rows"] if r["name"] == "ours_b_only")
    text = (f"On MiniLM and 3-class tweets, one epoch, 3 seeds ([tables]({LINKS['tables']})), **{verdict}**: "
            f"LoRA r=8 scores {lora.text()}, A-only r=8 {a_only.text()}, B-only r=8 {b_only.text()} at one rate; "
            f"{gap}; out of distribution (IMDB) B-only {_ood_cell(ood, 'b_only').text()}, LoRA "
            f"{_ood_cell(ood, 'lora').text()}.{_memory_sentence(_read(root, 'frontier'))}"
            f"{_width_sentence(_read(root, 'width'))} What B-only delivers "
            f"is cost: a tensor file {ratio:.3f}× PEFT LoRA's ([sizes]({LINKS['sizes']})). "
            f"{_claims_sentence(claims)} Commands and machines: [docs/evidence.md]({LINKS['evidence']}); "
            f"advice for a budget: [docs/choosing.md]({LINKS['choosing']}).")
    # break on spaces only: never inside a word, a hyphenated name or a link target
    return "\n" + textwrap.fill(text, 120, break_long_words=False, break_on_hyphens=False) + "\n\n"


def replace_section(readme: str, body: str, heading: str = HEADING) -> str:
    """``readme`` with the body of its ``## heading`` section replaced by ``body``.

    Raises:
        UserError: the README has no such section.
    """
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", readme, flags=re.S | re.M)
    if not found:
        raise UserError(f"the README has no '## {heading}' section to write the evidence paragraph into")
    return readme[:found.start(1)] + body + readme[found.end(1):]


def render_readme(root: Path, claims: list[dict]) -> str:
    """The repository's README.md with its evidence paragraph computed again."""
    path = root / "README.md"
    if not path.is_file():
        raise UserError(f"{path} is missing: the evidence paragraph is written into it")
    return replace_section(path.read_text(encoding="utf-8"), render_paragraph(root, claims))
