"""``asymlora choose-lr``: a learning rate chosen per method on validation, on hand-made sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asymlora.experiments.lr_choice import choose, to_markdown
from tests.helpers import run_cli


def record(method: str, lr: float, seed: int, validation: float, test: float, rank: int = 8, **identity) -> dict:
    """One results line of a tweets run at ``lr``: best validation and test accuracy."""
    ident = {"task": "tweets", "model": "minilm", "method": method, "rank": rank, "seed": seed, "epochs": 1,
             "learning_rate": lr, **identity}
    return {"run_id": f"tweets/{method}-r{rank}-s{seed}", "task": "tweets", "model": "minilm", "method": method,
            "rank": rank, "seed": seed, "main_metric": "accuracy", "metrics": {"accuracy": test},
            "best_eval": {"step": 10, "metrics": {"accuracy": validation}}, "resolved": {"learning_rate": lr},
            "identity": ident}


def write(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def sweep() -> list[dict]:
    """B-only: seed 0 at three rates (validation best at 3e-3, test best at 3e-4), 3 seeds at 1e-3; LoRA best at 1e-3."""
    return [record("b_only", 3e-4, 0, 70.0, 75.0), record("b_only", 3e-3, 0, 74.0, 71.0),
            record("b_only", 1e-3, 0, 72.0, 72.0), record("b_only", 1e-3, 1, 73.0, 73.0),
            record("b_only", 1e-3, 2, 71.0, 74.0),
            record("lora", 3e-4, 0, 76.0, 77.0), record("lora", 1e-3, 0, 80.0, 78.0), record("lora", 3e-3, 0, 79.0, 79.0)]


def test_the_rate_is_chosen_on_validation_of_the_common_seed_and_reported_on_test():
    by_method = {c.method: c for c in choose(sweep())}
    b_only, lora = by_method["b_only"], by_method["lora"]
    assert b_only.chosen == 3e-3 and lora.chosen == 1e-3  # validation decides, not test (75.0 at 3e-4)
    assert b_only.at_edge and not lora.at_edge  # 3e-3 is the largest rate of the sweep
    assert b_only.selection_seeds == (0,)  # the only seed every rate has
    assert b_only.validation[1e-3].values == (72.0,)  # seeds 1 and 2 do not vote
    assert b_only.test[1e-3].mean == pytest.approx(73.0) and b_only.test[1e-3].std == pytest.approx(1.0)
    assert b_only.test[1e-3].seeds == (0, 1, 2) and b_only.test[3e-3].std is None


def test_selection_seeds_can_be_given_and_must_exist():
    records = sweep() + [record("b_only", 3e-4, 1, 80.0, 70.0), record("b_only", 3e-3, 1, 60.0, 70.0)]
    b_only = next(c for c in choose(records) if c.method == "b_only")
    assert b_only.selection_seeds == (0, 1) and b_only.chosen == 3e-4  # (70+80)/2 = 75 beats 67 and 72.5
    b_only = next(c for c in choose(records, seeds=(0,)) if c.method == "b_only")
    assert b_only.chosen == 3e-3
    with pytest.raises(ValueError, match="selection seed.s. 5 are in no run"):
        choose(records, seeds=(5,))


def test_a_tie_goes_to_the_smaller_rate():
    records = [record("lora", 1e-3, 0, 80.0, 70.0), record("lora", 3e-4, 0, 80.0, 71.0)]
    assert choose(records)[0].chosen == 3e-4


def test_each_arm_is_chosen_over_its_own_rates():
    records = sweep() + [record("a_only", 1e-3, 0, 90.0, 90.0)]
    a_only = next(c for c in choose(records) if c.method == "a_only")
    assert a_only.chosen == 1e-3 and a_only.rates == (1e-3,) and not a_only.swept and not a_only.at_edge
    assert "| 0.001 (one rate: not swept) |" in to_markdown(choose(records))
    # B-only swept higher than LoRA (1e-3..1e-2): chosen over its own rates, the edge relative to them
    wider = sweep() + [record("b_only", 1e-2, s, 60.0, 60.0) for s in (0, 1, 2)]
    b_only = next(c for c in choose(wider) if c.method == "b_only")
    lora = next(c for c in choose(wider) if c.method == "lora")
    assert b_only.rates == (3e-4, 1e-3, 3e-3, 1e-2) and b_only.chosen == 3e-3 and not b_only.at_edge
    assert lora.rates == (3e-4, 1e-3, 3e-3) and lora.chosen == 1e-3 and lora.swept
    partial = [record("lora", 1e-3, 0, 80.0, 70.0), record("lora", 3e-4, 1, 81.0, 71.0)]
    assert choose(partial)[0].reason == "no seed is at every learning rate"


def test_runs_that_differ_in_more_than_rate_and_seed_are_refused():
    records = sweep() + [record("lora", 3e-3, 1, 79.0, 79.0, epochs=2)]
    with pytest.raises(ValueError, match="differ in epochs .1 vs 2."):
        choose(records)
    first_has_more = [record("lora", 3e-3, 1, 79.0, 79.0, targets=["query"])] + sweep()
    with pytest.raises(ValueError, match=r"differ in targets \(\['query'\] vs None\)"):
        choose(first_has_more)


def test_the_command_writes_markdown_and_json_and_refuses_bad_input(tmp_path, capsys):
    records = sweep()
    write(tmp_path / "lr1e-3" / "results.jsonl", [r for r in records if r["resolved"]["learning_rate"] == 1e-3])
    other = write(tmp_path / "others.jsonl", [r for r in records if r["resolved"]["learning_rate"] != 1e-3])
    code, out, err = run_cli(["choose-lr", str(tmp_path / "lr1e-3"), str(other), "--out", str(tmp_path / "out")],
                             capsys)
    assert code == 0, err
    table = (tmp_path / "out" / "lr_choice.md").read_text()
    assert "| lr 0.0003 | lr 0.001 | lr 0.003 | chosen |" in table and "**74.00 (-) [1]**" in table
    assert "| 0.003 (edge of the sweep) |" in table and "| 0.001 |" in table
    assert "**72.00 (1.00) [3]**" not in table and "| 73.00 (1.00) [3] |" in table
    data = json.loads((tmp_path / "out" / "lr_choice.json").read_text())
    assert [(a["method"], a["chosen"]) for a in data["arms"]] == [("lora", 1e-3), ("b_only", 3e-3)]
    assert data["arms"][1]["test"]["0.001"]["seeds"] == [0, 1, 2]
    chosen = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["resolved"]["learning_rate"], r["seed"]) for r in chosen) == [
        ("b_only", 3e-3, 0), ("lora", 1e-3, 0)]

    code, out, err = run_cli(["choose-lr", str(other), "--seed", "9", "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and err.strip().splitlines() == ["error: selection seed(s) 9 are in no run (seeds present: 0)"]
    assert not (tmp_path / "bad").exists()
    code, out, err = run_cli(["choose-lr", str(tmp_path / "nothing.jsonl"), "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and "results file not found" in err and len(err.strip().splitlines()) == 1


def test_runs_without_validation_or_rate_are_refused():
    no_validation = record("lora", 1e-3, 0, 80.0, 70.0)
    del no_validation["best_eval"]
    with pytest.raises(ValueError, match="tweets/lora-r8-s0: no validation evaluation"):
        choose([no_validation])
    no_rate = record("lora", 1e-3, 0, 80.0, 70.0)
    del no_rate["resolved"]
    with pytest.raises(ValueError, match="holds no learning rate"):
        choose([no_rate])
