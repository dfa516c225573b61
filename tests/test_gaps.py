"""Gaps to a reference method per model, and how they move between model sizes (report --against)."""

import json
import math
import statistics

import pytest

from asymlora.experiments import gaps
from asymlora.methods import get_method

SMALL, LARGE = 22_700_000, 109_500_000


def record(method, seed, accuracy, model="minilm", total=SMALL, lr=1e-3, rank=8):
    return {"run_id": f"tweets/{method}-r{rank}-s{seed}", "task": "tweets", "model": model, "method": method,
            "label": get_method(method).label, "rank": rank, "seed": seed, "main_metric": "accuracy",
            "metrics": {"accuracy": accuracy}, "total_params": total, "resolved": {"learning_rate": lr}}


def two_models():
    table = {("minilm", SMALL): {"lora": (78.0, 79.0, 80.0), "b_only": (74.0, 75.0, 76.0), "a_only": (76.0, 77.0, 81.0)},
             ("mpnet", LARGE): {"lora": (79.0, 80.0, 81.0), "b_only": (80.0, 81.0, 82.0), "a_only": (79.0, 81.0, 83.0)}}
    # the larger model first in the file: the order of the changes comes from the sizes, not the file
    return [record(method, s, v, model, total, lr=3e-3 if method != "lora" else 1e-3)
            for (model, total), by_method in reversed(table.items()) for method, values in by_method.items()
            for s, v in enumerate(values)]


def test_gap_pooled_std_and_standard_error_per_model():
    built = gaps.build(two_models(), "b_only")
    by = {(g.model, g.method): g for g in built.gaps}
    assert set(by) == {("minilm", "lora"), ("minilm", "a_only"), ("mpnet", "lora"), ("mpnet", "a_only")}
    g = by[("minilm", "a_only")]
    s_a, s_b = statistics.stdev([76.0, 77.0, 81.0]), statistics.stdev([74.0, 75.0, 76.0])
    assert g.gap == pytest.approx(78.0 - 75.0)
    assert g.pooled_std == pytest.approx(math.sqrt((s_a ** 2 + s_b ** 2) / 2))
    assert g.se == pytest.approx(math.sqrt(s_a ** 2 / 3 + s_b ** 2 / 3))
    assert g.learning_rates == (3e-3, 3e-3) and by[("minilm", "lora")].learning_rates == (1e-3, 3e-3)


def test_change_goes_from_the_smaller_model_to_the_larger_and_is_shown_beyond_two_se():
    built = gaps.build(two_models(), "b_only")
    change = {c.method: c for c in built.changes}
    lora = change["lora"]
    assert (lora.smaller, lora.larger) == ("minilm", "mpnet")
    assert lora.change == pytest.approx((80.0 - 81.0) - (79.0 - 75.0))  # the gap shrinks by 5 points
    assert lora.se == pytest.approx(math.sqrt(4 * (1 / 3)))  # four groups of std 1 and 3 seeds
    assert lora.shown  # |−5| > 2 × 1.15
    a_only = change["a_only"]
    assert a_only.change == pytest.approx((81.0 - 81.0) - (78.0 - 75.0))
    assert a_only.se == pytest.approx(math.sqrt(7 / 3 + 1 / 3 + 4 / 3 + 1 / 3))
    assert not a_only.shown  # |−3| < 2 × 2.08
    said = gaps.sentences(built)
    assert any("lora − b_only" in s and "-5.00" in s and "beyond twice" in s for s in said)
    assert any("a_only − b_only" in s and "no change shown" in s for s in said)


def test_one_seed_has_no_standard_error_and_no_verdict():
    records = [r for r in two_models() if r["seed"] == 0]
    built = gaps.build(records, "b_only")
    assert all(g.se is None and g.pooled_std is None for g in built.gaps)
    assert not any(c.shown for c in built.changes)
    assert all("fewer than 2 seeds" in s for s in gaps.sentences(built))


def test_refuses_a_missing_reference_and_an_arm_at_two_rates():
    records = two_models()
    with pytest.raises(ValueError, match="no full runs"):
        gaps.build(records, "full")
    mixed = records + [record("lora", 3, 70.0, lr=3e-4)]
    with pytest.raises(ValueError, match="several learning rates"):
        gaps.build(mixed, "b_only")
    with pytest.raises(ValueError, match="nothing to compare"):
        gaps.build([r for r in records if r["method"] == "b_only"], "b_only")


def test_report_against_writes_tables_and_rejects_bad_arguments_in_one_line(tmp_path, capsys):
    from asymlora.cli import main

    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in two_models()))
    out = tmp_path / "report"
    main(["report", str(results), "--against", "b_only", "--out", str(out)])
    document = json.loads((out / "gaps.json").read_text())
    assert document["command"].endswith(f"--against b_only --out {out}")
    assert [c["shown"] for c in document["changes"]] == [True, False]
    assert "| tweets | mpnet | 109.5M |" in (out / "gaps.md").read_text()
    for argv, words in ((["--against", "bonly"], "did you mean 'b_only'"),
                        (["--against", "b_only", "--frontier", str(results)], "not both")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main(["report", str(results), *argv, "--out", str(tmp_path / "bad")])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def test_each_gap_names_its_devices_and_a_change_across_devices_says_so(tmp_path):
    cpu, gpu = "cpu (x86_64, 2 logical cores)", "NVIDIA H200"
    same = gaps.build([{**r, "device": cpu} for r in two_models()], "b_only")
    assert all(g.devices == (cpu,) for g in same.gaps)
    assert not any("different devices" in s for s in gaps.sentences(same))
    mixed = gaps.build([{**r, "device": gpu if r["model"] == "mpnet" else cpu} for r in two_models()], "b_only")
    by = {g.model: g.devices for g in mixed.gaps}
    assert by == {"minilm": (cpu,), "mpnet": (gpu,)}
    said = gaps.sentences(mixed)
    assert len(said) == 2 and all(f"different devices (minilm: {cpu}; mpnet: {gpu})" in s for s in said)
    table = gaps.markdown(mixed)
    assert table.splitlines()[4].endswith("| seeds | device |") and f"| 3/3 | {gpu} |" in table
    assert gaps.as_json(mixed)["changes"][0]["devices"] == [[cpu], [gpu]]
    unnamed = gaps.build(two_models(), "b_only")  # records that name no device
    assert all(g.devices == ("?",) for g in unnamed.gaps)


def test_runs_from_an_uncommitted_tree_are_named_beside_the_table():
    clean, dirty = "39edee7", "39edee7+dirty"
    built = gaps.build([{**r, "git_commit": dirty if r["model"] == "mpnet" else clean} for r in two_models()], "b_only")
    assert {g.model: g.commits for g in built.gaps} == {"minilm": (clean,), "mpnet": (dirty,)}
    assert gaps.uncommitted(built) == {"mpnet": (dirty,)}
    table = gaps.markdown(built).splitlines()
    below = max(i for i, line in enumerate(table) if line.startswith("| tweets |")) + 2  # after the last row
    assert table[below] == f"**Made from an uncommitted tree** (the records' commit ends in +dirty), not re-run " \
                           f"from a commit: mpnet's runs ({dirty})."
    assert gaps.as_json(built)["gaps"][-1]["commits"] == [dirty]
    committed = gaps.build([{**r, "git_commit": clean} for r in two_models()], "b_only")
    assert gaps.uncommitted(committed) == {} and "uncommitted" not in gaps.markdown(committed)
