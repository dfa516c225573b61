"""docs/choosing.md is computed from the committed sweep, memory and frontier files (asymlora evidence)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from asymlora.errors import UserError
from asymlora.experiments.choosing_page import (ADVICE_MODULE, SOURCES, default_rate_sentence,
                                               rank_at_reference_memory, rate_advice, render_advice_module,
                                               render_choosing, unfinished)

REPO = Path(__file__).resolve().parents[1]


def arm(method: str, rank: int, rates: list[float], chosen: float | None, at_edge: bool = False) -> dict:
    test = {f"{r:g}": {"mean": 70.0} for r in rates}
    return {"label": f"{method} r={rank}", "method": method, "rank": rank, "test": test, "chosen": chosen,
            "at_edge": at_edge}


def test_each_swept_arm_gets_its_rate_relative_to_loras():
    arms = [arm("lora", 8, [3e-4, 1e-3, 3e-3], 1e-3), arm("b_only", 8, [1e-3, 3e-3, 1e-2], 3e-3),
            arm("b_only", 32, [1e-3, 3e-3], 3e-3, at_edge=True), arm("b_only_banded", 8, [1e-3], 1e-3)]
    rows = {(a.method, a.rank): a for a in rate_advice(arms)}
    assert set(rows) == {("lora", 8), ("b_only", 8), ("b_only", 32)}  # one rate: not a sweep, no advice
    assert rows["b_only", 8].ratio == pytest.approx(3.0) and rows["lora", 8].ratio == pytest.approx(1.0)
    assert rows["b_only", 32].ratio == pytest.approx(3.0) and rows["b_only", 32].at_edge  # no LoRA r=32: LoRA r=8's


def test_the_largest_b_only_rank_within_loras_memory():
    memory = [{"method": "lora", "rank": 8, "measured_bytes": 100}, {"method": "b_only", "rank": 32, "measured_bytes": 90},
              {"method": "b_only", "rank": 128, "measured_bytes": 101}, {"method": "b_only", "rank": 8, "measured_bytes": 80}]
    ref, fit = rank_at_reference_memory(memory)
    assert ref["rank"] == 8 and fit["rank"] == 32  # r=128 costs more than LoRA r=8
    assert rank_at_reference_memory(memory[1:]) is None


def test_the_frontier_is_preliminary_until_every_measured_arm_has_three_seeds_at_an_interior_rate():
    memory = [{"method": "lora", "rank": 8}, {"method": "b_only", "rank": 32}, {"method": "b_only", "rank": 128}]
    point = lambda method, rank, n: {"method": method, "rank": rank, "accuracy": {"values": [70.0] * n}}
    points = [point("lora", 8, 3), point("b_only", 32, 2)]
    choice = [arm("lora", 8, [3e-4, 1e-3, 3e-3], 1e-3), arm("b_only", 32, [1e-3, 3e-3], 3e-3, at_edge=True)]
    assert unfinished(memory, points, choice) == [
        "b_only r=32 has 2 of 3 seeds", "b_only r=32's chosen rate is at the edge of its sweep",
        "b_only r=128 has no runs at a chosen rate"]
    points = [point("lora", 8, 3), point("b_only", 32, 3), point("b_only", 128, 3)]
    choice[1]["at_edge"] = False
    assert unfinished(memory, points, choice) == []


def test_every_number_follows_its_source_and_a_missing_source_is_one_line(tmp_path):
    for path in SOURCES.values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    memory_path = tmp_path / SOURCES["memory"]
    memory = json.loads(memory_path.read_text())
    for a in memory["arms"]:
        if a["method"] == "b_only" and a["rank"] == 128:
            a["measured_bytes"] = 10 ** 10  # now larger than LoRA r=8's peak
    memory_path.write_text(json.dumps(memory))
    page = render_choosing(tmp_path)
    assert "the largest B-only rank measured is r=128" not in page and "| b_only r=128 | 9537 |" in page
    memory_path.unlink()
    with pytest.raises(UserError, match="frontier_memory.json is missing"):
        render_choosing(tmp_path)


def test_train_help_prints_the_committed_advice_and_the_module_is_not_stale():
    from typer.testing import CliRunner

    from asymlora.choosing_advice import ADVICE
    from asymlora.cli import app

    assert (REPO / ADVICE_MODULE).read_text(encoding="utf-8") == render_advice_module(REPO), \
        "src/asymlora/choosing_advice.py is stale: run asymlora evidence --out docs/evidence.md"
    page = render_choosing(REPO)
    first = ADVICE.split(": ")[0]  # the rate sentence's opening, as on the page
    assert f"**Advice.** {first}" in page
    shown = " ".join(CliRunner().invoke(app, ["train", "--help"], terminal_width=400).output.split())
    assert " ".join(ADVICE.split()[:12]) in shown


def test_the_width_section_states_each_models_ratio_from_its_own_choice(tmp_path):
    for path in SOURCES.values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    page = render_choosing(tmp_path)
    assert "### The same ratio on a wider model" in page
    mpnet_path = tmp_path / SOURCES["width_mpnet"]
    mpnet = json.loads(mpnet_path.read_text())
    for a in mpnet["arms"]:  # every frozen-factor arm now picks LoRA's own rate
        if a["method"] in ("b_only", "a_only"):
            lora = next(x for x in mpnet["arms"] if x["method"] == "lora" and x["rank"] == a["rank"])
            a["chosen"] = lora["chosen"]
    mpnet_path.write_text(json.dumps(mpnet))
    page = render_choosing(tmp_path)
    assert "1× on mpnet, at a quarter epoch." in page
    assert f"| mpnet | {next(a['label'] for a in mpnet['arms'] if a['method'] == 'b_only')} |" in page
    mpnet_path.unlink()
    with pytest.raises(UserError, match="mpnet/choice/lr_choice.json is missing"):
        render_choosing(tmp_path)


def sweep(lora: float, b_only: float, a_only: float | None = None) -> list:
    arms = [arm("lora", 8, [3e-4, 1e-3, 3e-3], lora), arm("b_only", 8, [1e-3, 3e-3, 1e-2], b_only)]
    arms += [arm("a_only", 8, [1e-3, 3e-3, 1e-2], a_only)] if a_only is not None else []
    return rate_advice(arms)


def test_a_method_specific_default_rate_needs_every_sweep_to_agree_on_one_multiple():
    agree = default_rate_sentence({"one": sweep(1e-3, 3e-3, 3e-3), "two": sweep(3e-3, 9e-3)})
    assert agree.startswith("Every sweep gave the frozen-factor arms the same multiple") and "3× on two" in agree
    differ = default_rate_sentence({"one": sweep(1e-3, 3e-3), "two": sweep(3e-3, 3e-3)})
    assert differ.startswith("No method-specific default rate") and "differed between sweeps (3× on one, 1× on two)" in differ
    within = default_rate_sentence({"one": sweep(1e-3, 3e-3, 1e-3), "two": sweep(1e-3, 3e-3)})
    assert within.startswith("No method-specific default rate") and "1× to 3× on one" in within  # B and A disagree
    alone = default_rate_sentence({"one": sweep(1e-3, 3e-3)})
    assert "comes from one sweep (3× on one)" in alone  # one setting's optimum is not a default
    assert default_rate_sentence({"one": rate_advice([arm("lora", 8, [1e-3, 3e-3], 1e-3)])}) is None


def test_the_default_rate_verdict_follows_the_committed_sweeps(tmp_path):
    for path in SOURCES.values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    ratios = {}
    for key in ("lr_choice", "width_minilm", "width_mpnet"):
        arms = json.loads((tmp_path / SOURCES[key]).read_text())["arms"]
        lora = next(a["chosen"] for a in arms if (a["method"], a["rank"]) == ("lora", 8))
        ratios[key] = {round(a["chosen"] / lora, 6) for a in arms if a["method"] in ("b_only", "a_only")}
    committed = render_choosing(tmp_path)
    agreed = len(set().union(*ratios.values())) == 1
    assert ("**Default rate.** Every sweep gave" in committed) == agreed
    assert ("**Default rate.** No method-specific default rate" in committed) == (not agreed)
    for key in ("lr_choice", "width_minilm", "width_mpnet"):  # make every sweep's frozen arms choose 3× LoRA's rate
        path = tmp_path / SOURCES[key]
        choice = json.loads(path.read_text())
        lora = {a["rank"]: a["chosen"] for a in choice["arms"] if a["method"] == "lora"}
        for a in choice["arms"]:
            if a["method"] in ("b_only", "a_only"):
                a["chosen"] = 3 * lora.get(a["rank"], lora[min(lora)])
        path.write_text(json.dumps(choice))
    page = render_choosing(tmp_path)
    assert "**Default rate.** Every sweep gave the frozen-factor arms the same multiple of LoRA's rate (3× on minilm " \
           "at 1 epoch, 3× on minilm at a quarter epoch, 3× on mpnet at a quarter epoch)" in page
