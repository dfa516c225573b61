"""The budget frontier: points per arm, Pareto flags on each axis, the computed equal-memory sentence."""

import json

import pytest

from asymlora.experiments import frontier as fr
from asymlora.methods import get_method

MIB = 1 << 20


def record(method, rank, seed, accuracy, params, lr=1e-3, model="minilm", task="tweets"):
    return {"run_id": f"{task}/{method}-r{rank}-s{seed}", "task": task, "model": model, "method": method,
            "label": get_method(method).label,
            "rank": rank, "seed": seed, "main_metric": "accuracy", "metrics": {"accuracy": accuracy},
            "trainable_params": params, "samples_per_second": 10.0, "resolved": {"learning_rate": lr}}


def arms():
    records = []
    table = {("lora", 2): ([70.0, 71.0, 72.0], 20000, 1e-3), ("lora", 8): ([78.0, 79.0, 80.0], 75000, 1e-3),
             ("b_only", 8): ([74.0, 75.0, 76.0], 38000, 3e-3), ("b_only", 32): ([77.0, 78.0, 79.0], 150000, 3e-3),
             ("b_only", 128): ([76.0, 77.0, 78.0], 600000, 1e-3)}
    for (method, rank), (values, params, lr) in table.items():
        records += [record(method, rank, s, v, params, lr) for s, v in enumerate(values)]
    memory = [fr.ArmMemory("lora", 2, 400 * MIB, 390 * MIB), fr.ArmMemory("lora", 8, 420 * MIB, 410 * MIB),
              fr.ArmMemory("b_only", 8, 300 * MIB), fr.ArmMemory("b_only", 32, 310 * MIB),
              fr.ArmMemory("b_only", 128, 450 * MIB)]
    return records, memory


def test_points_carry_each_arms_seeds_rate_and_memory():
    records, memory = arms()
    points = {(p.method, p.rank): p for p in fr.points_from(records, memory)}
    assert list(points)[:2] == [("lora", 2), ("lora", 8)]  # registry order, then rank
    lora8 = points[("lora", 8)]
    assert lora8.accuracy.mean == pytest.approx(79.0) and lora8.accuracy.std == pytest.approx(1.0)
    assert lora8.accuracy.n == 3 and lora8.learning_rate == 1e-3
    assert lora8.measured_bytes == 420 * MIB and lora8.predicted_bytes == 410 * MIB
    assert points[("b_only", 32)].trainable_params == 150000


def test_pareto_on_memory_and_on_parameters_differ():
    records, memory = arms()
    built = fr.build(records, memory)
    on_memory = {(p.method, p.rank) for p in built.points if p.pareto_memory}
    on_params = {(p.method, p.rank) for p in built.points if p.pareto_params}
    # memory: b_only r8 (cheapest), b_only r32 (more accurate, 310 MiB), lora r8 (most accurate);
    # lora r2 (400 MiB, 71) and b_only r128 (450 MiB, 77) are dominated
    assert on_memory == {("b_only", 8), ("b_only", 32), ("lora", 8)}
    # parameters: lora r2 is the cheapest; b_only r8 beats it; lora r8 beats b_only r32 at fewer params
    assert on_params == {("lora", 2), ("b_only", 8), ("lora", 8)}


def test_equal_memory_sentence_picks_the_best_b_only_that_fits():
    records, memory = arms()
    sentence = fr.build(records, memory).sentence
    assert "420 MiB" in sentence and "r=32" in sentence  # r=128 (450 MiB) does not fit
    assert "-1.00 points" in sentence and "pooled std 1.00" in sentence


def test_no_b_only_within_the_reference_memory_is_said():
    records, memory = arms()
    memory = [m if m.method == "lora" else fr.ArmMemory(m.method, m.rank, 999 * MIB) for m in memory]
    assert "no b_only arm fits" in fr.build(records, memory).sentence


def test_refuses_an_arm_at_two_rates_and_mixed_models():
    records, memory = arms()
    with pytest.raises(ValueError, match="several learning rates"):
        fr.points_from(records + [record("lora", 8, 3, 70.0, 75000, lr=3e-3)], memory)
    with pytest.raises(ValueError, match="one model"):
        fr.points_from(records + [record("lora", 8, 0, 70.0, 75000, model="mpnet")], memory)


def test_outputs_markdown_json_and_plot(tmp_path):
    records, memory = arms()
    built = fr.build(records, memory)
    text = fr.markdown(built, command="asymlora report --frontier x")
    assert "| B̂₀ A_rand (b_only) r=32 |" in text  # labels, not bare names
    assert text.count("*") >= 6 and built.sentence in text
    data = fr.as_json(built)
    json.dumps(data)
    assert data["points"][1]["accuracy"]["values"] == [78.0, 79.0, 80.0]
    fr.plot(built, tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 1000


def test_parse_arms_refuses_bad_items():
    from asymlora.planning.frontier_memory import parse_arms

    assert parse_arms("lora:2, b_only:128") == [("lora", 2), ("b_only", 128)]
    for bad, words in (("lora", "method:rank"), ("b_only:0", "rank >= 1"), ("a_only:8", "measures"), ("", "empty")):
        with pytest.raises(ValueError, match=words):
            parse_arms(bad)


def test_bench_frontier_then_report_frontier_end_to_end(tmp_path, monkeypatch):
    """Measured in fresh processes on the tiny BERT (more trainable state for LoRA r=16 than B-only r=2),
    predicted by the planner, then rendered with a results file of the same arms."""
    from typer.testing import CliRunner

    from asymlora.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runner = CliRunner()
    done = runner.invoke(app, ["bench", "frontier", "--arms", "b_only:2,lora:16", "--model", "tiny-bert",
                               "--out", str(tmp_path / "mem"), "--steps", "1"])
    assert done.exit_code == 0, done.output
    document = json.loads((tmp_path / "mem" / "frontier_memory.json").read_text())
    rows = {(a["method"], a["rank"]): a for a in document["arms"]}
    assert rows[("lora", 16)]["predicted_bytes"] > rows[("b_only", 2)]["predicted_bytes"] > 0
    assert all(a["measured_bytes"] >= a["after_load_bytes"] > 0 for a in document["arms"])
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(record(m, r, s, 60.0 + s + r / 10, 1000 * r)) + "\n"
                               for m, r in (("b_only", 2), ("lora", 16)) for s in range(2)))
    done = runner.invoke(app, ["report", str(results), "--frontier", str(tmp_path / "mem" / "frontier_memory.json"),
                               "--out", str(tmp_path / "report")])
    assert done.exit_code == 0, done.output
    assert {p.name for p in (tmp_path / "report").iterdir()} >= {"frontier.md", "frontier.json", "frontier.png"}
    assert "no lora r=8 point" in (tmp_path / "report" / "frontier.md").read_text().lower()


def test_report_frontier_bad_memory_file_is_one_line(tmp_path):
    from asymlora.cli import main

    records, _ = arms()
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    bad = tmp_path / "frontier_memory.json"
    bad.write_text(json.dumps({"something": 1}))
    with pytest.raises(SystemExit) as stop:
        main(["report", str(results), "--frontier", str(bad), "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    assert not (tmp_path / "out" / "frontier.md").exists()


def _saved(method, rank, mean, peak):
    return {"method": method, "rank": rank, "accuracy": {"mean": mean, "std": 1.0, "values": [mean - 1, mean + 1]},
            "measured_bytes": peak}


def test_best_within_a_saved_frontier_takes_the_most_accurate_fit_and_the_smaller_peak_on_a_tie():
    points = [fr.point_from_json(_saved(*arm)) for arm in [
        ("lora", 8, 78.0, 100), ("b_only", 8, 75.0, 80), ("b_only", 16, 76.0, 90), ("b_only", 32, 76.0, 85),
        ("b_only", 128, 79.0, 120), ("a_only", 8, 77.0, 80)]]
    ref = fr.reference_point(points)
    best = fr.best_within(points, ref)
    assert (ref.method, ref.rank) == ("lora", 8) and (best.method, best.rank) == ("b_only", 32)
    assert fr.reference_point(points, ("lora", 2)) is None  # no such reference
    assert fr.best_within(points[:1], ref) is None  # nothing fits
