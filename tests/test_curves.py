"""``asymlora curves``: validation curves of finished runs, mean over seeds, and whether they still rise."""

from __future__ import annotations

import json

import pytest

from asymlora.experiments.curves import load_curves, summarise
from helpers import run_cli


def history(values, steps=(10, 20, 30)):
    return [{"step": s, "epoch": s / 30, "metrics": {"accuracy": v, "macro_f1": v - 5}} for s, v in zip(steps, values)]


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "histories"
    folder.mkdir()
    (folder / "lora-s0.json").write_text(json.dumps({"run_id": "t/lora-r8-s0", "history": history([60, 70, 74])}))
    (folder / "lora-s1.json").write_text(json.dumps({"run_id": "t/lora-r8-s1", "history": history([62, 72, 76])}))
    # a results.jsonl line that kept its history, with an extra evaluation the other seed lacks
    line = {"run_id": "t/b_only-r8-s0", "history": history([65, 71, 70.9, 71], steps=(10, 20, 30, 40))}
    (tmp_path / "results.jsonl").write_text(json.dumps(line) + "\n" + json.dumps({"run_id": "old", "metrics": {}}) + "\n")
    return [str(folder), str(tmp_path / "results.jsonl")]


def test_groups_average_the_seeds_and_say_whether_the_curve_still_rises(sources):
    groups = {g.group: g for g in summarise(load_curves(sources, "accuracy"), tolerance=0.5)}
    assert set(groups) == {"t/lora-r8", "t/b_only-r8"}
    lora, b_only = groups["t/lora-r8"], groups["t/b_only-r8"]
    assert lora.steps == [10, 20, 30] and lora.mean_curve == pytest.approx([61, 71, 75])
    assert (lora.best, lora.best_step, lora.last) == (pytest.approx(75), 30, pytest.approx(75))
    assert lora.last_gain == pytest.approx(4) and lora.still_rising
    assert b_only.steps == [10, 20, 30, 40] and b_only.best_step == 20      # a line without history is ignored
    assert b_only.last_gain == pytest.approx(0.1) and not b_only.still_rising
    f1 = {g.group: g for g in summarise(load_curves(sources, "macro_f1"))}
    assert f1["t/lora-r8"].mean_curve == pytest.approx([56, 66, 70])


def test_only_steps_every_seed_has_enter_the_mean(tmp_path):
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(json.dumps({"run_id": "t/lora-r8-s0", "history": history([60, 70, 80])}))
    b.write_text(json.dumps({"run_id": "t/lora-r8-s1", "history": history([50, 60], steps=(10, 30))}))
    (group,) = summarise(load_curves([a, b], "accuracy"))
    assert group.steps == [10, 30] and group.mean_curve == pytest.approx([55, 70])


def test_the_command_writes_table_json_and_plot(sources, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(["curves", *sources, "--out", str(out)], capsys)
    assert code == 0, err
    assert "| t/lora-r8 | 2 | 3 (10–30) | 61.00 | 75.00 (30) | 75.00 | +4.00 | yes |" in stdout
    document = json.loads((out / "curves.json").read_text())
    assert [g["group"] for g in document["groups"]] == ["t/lora-r8", "t/b_only-r8"]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.json", "no such file or folder"),
    (lambda d: (d / "bad.json").write_text("{oops") and d / "bad.json", "not JSON"),
    (lambda d: (d / "none.json").write_text(json.dumps({"run_id": "x"})) and d / "none.json",
     "no run with a validation history"),
    (lambda d: (d / "f.json").write_text(json.dumps({"run_id": "t/x-r1-s0", "history": history([1, 2])}))
     and d / "f.json", "has no metric 'bleu' (it has accuracy, macro_f1)"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, make, message):
    source = make(tmp_path)
    out = tmp_path / "out"
    code, _, err = run_cli(["curves", str(source), "--metric", "bleu" if "bleu" in message else "accuracy",
                            "--out", str(out)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_the_same_run_twice_is_refused(tmp_path):
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps({"run_id": "t/lora-r8-s0", "history": history([1, 2, 3])}))
    with pytest.raises(ValueError, match="run t/lora-r8-s0 appears twice"):
        load_curves([tmp_path], "accuracy")
