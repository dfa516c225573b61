"""The README's evidence paragraph is computed from the committed results (``asymlora evidence``):
the committed README is what the generator writes today, and the sentences follow the numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from asymlora.errors import UserError
from asymlora.experiments.readme_evidence import SOURCES, render_paragraph, render_readme, replace_section

REPO = Path(__file__).resolve().parents[1]
CLAIMS = json.loads((REPO / "docs" / "results" / "claims" / "claims.json").read_text(encoding="utf-8"))["claims"]
VERDICTS = [{"claim": k, "verdict": "holds" if k in (4, 5) else "does not hold"} for k in range(1, 8)]


def test_committed_readme_paragraph_is_not_stale():
    assert (REPO / "README.md").read_text(encoding="utf-8") == render_readme(REPO, CLAIMS), \
        "the README's evidence paragraph is stale: run `asymlora evidence --out docs/evidence.md`"


@pytest.fixture()
def root(tmp_path):
    """A copy of the committed sources, to be edited by each test."""
    for relative in SOURCES.values():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / relative, tmp_path / relative)
    return tmp_path


def _edit(root: Path, key: str, change) -> None:
    path = root / SOURCES[key]
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _chosen_test(data: dict, method: str, rank: int) -> dict:
    arm = next(a for a in data["arms"] if (a["method"], a["rank"]) == (method, rank))
    return arm["test"][str(arm["chosen"])]


def flat(text: str) -> str:
    """The paragraph on one line (it is wrapped for the README)."""
    return " ".join(text.split())


def test_the_verdict_follows_the_gap_and_its_margin(root):
    text = flat(render_paragraph(root, VERDICTS))
    assert "**B-only does not match LoRA**" in text

    def close_the_gap(data):  # B-only 0.5 below LoRA: within max(1, pooled std)
        lora = _chosen_test(data, "lora", 8)
        _chosen_test(data, "b_only", 8).update(mean=lora["mean"] - 0.5)

    _edit(root, "protocol_two", close_the_gap)
    text = flat(render_paragraph(root, VERDICTS))
    assert "**B-only matches LoRA within the margin**" in text and "leads B-only by 0.50 points" in text


def test_the_claims_are_counted_paper_and_ours_apart(root):
    text = flat(render_paragraph(root, VERDICTS))
    assert "Of the research's 6 claims 2 hold and 4 do not; our claim 7 (equal memory, as above) does not hold" in text
    text = flat(render_paragraph(root, VERDICTS[:6]))
    assert "Of the research's 6 claims 2 hold and 4 do not ([claims]" in text


def test_the_equal_memory_sentence_names_the_best_b_only_that_fits_and_goes_when_none_fits(root):
    text = flat(render_paragraph(root, VERDICTS))
    assert "At LoRA r=8's training memory" in text and "the best B-only arm that fits, r=" in text

    def b_only_far_behind(data):
        for point in data["points"]:
            if point["method"] == "b_only":
                point["accuracy"].update(mean=50.0, std=1.0)
    _edit(root, "frontier", b_only_far_behind)
    text = flat(render_paragraph(root, VERDICTS))
    assert "points behind: beyond the margin max(1 point, pooled std" in text

    def lora_r8_smallest(data):
        for point in data["points"]:
            if (point["method"], point["rank"]) == ("lora", 8):
                point["measured_bytes"] = 1
    _edit(root, "frontier", lora_r8_smallest)
    assert "training memory" not in render_paragraph(root, VERDICTS)


def test_the_width_sentence_states_each_gap_on_both_models_and_the_change_verdict(root):
    width = json.loads((root / SOURCES["width"]).read_text(encoding="utf-8"))
    gaps = {(g["method"], g["model"]): g for g in width["gaps"]}
    text = flat(render_paragraph(root, VERDICTS))
    assert "Width, minilm (22.7M) → mpnet (109.5M), a quarter epoch: " in text
    for change in width["changes"]:
        small, large = gaps[(change["method"], "minilm")], gaps[(change["method"], "mpnet")]
        assert f"{change['method']} − b_only {small['gap']:+.2f} → {large['gap']:+.2f} (" in text
    assert "[width](docs/results/width/gaps/gaps.md)" in text

    def widen(data):  # a change far beyond twice its se (gaps.json's verdict), made on one device
        for change in data["changes"]:
            change.update(change=-9.0, se=1.0, devices=[["cpu"], ["cpu"]], shown=True)
    _edit(root, "width", widen)
    text = flat(render_paragraph(root, VERDICTS))
    assert text.count("(se 1.00, beyond 2 se)") == len(width["changes"])
    assert "within 2 se" not in text and "different devices" not in text

    def narrow(data):  # within twice its se, the two models on different devices
        for change in data["changes"]:
            change.update(change=0.5, se=1.0, devices=[["cpu"], ["NVIDIA H200"]], shown=False)
    _edit(root, "width", narrow)
    text = flat(render_paragraph(root, VERDICTS))
    assert "(se 1.00, within 2 se)" in text and "; on different devices ([width]" in text

    def one_seed(data):
        for change in data["changes"]:
            change["se"] = None
    _edit(root, "width", one_seed)
    assert "(no se: fewer than 2 seeds)" in flat(render_paragraph(root, VERDICTS))


def test_a_missing_source_or_section_is_one_clear_error(root):
    (root / SOURCES["ood"]).unlink()
    with pytest.raises(UserError, match="ood.json is missing"):
        render_paragraph(root, VERDICTS)
    with pytest.raises(UserError, match="no '## What our evidence shows' section"):
        replace_section("# Title\n\n## Other\n\ntext\n", "body")


def test_only_the_section_body_is_replaced():
    readme = "# T\n\n## What our evidence shows\n\nold\nlines\n\n## Layout\n\nkept\n"
    assert replace_section(readme, "\nnew\n\n") == "# T\n\n## What our evidence shows\n\nnew\n\n## Layout\n\nkept\n"
