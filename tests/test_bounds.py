"""docs/paper.md §5: the information-theoretic bound on real module shapes."""

import json
import math

import pytest

from asymlora.analysis import bounds as Bd


def _shapes(rank=8):
    return [Bd.ModuleShape("a", 32, 32, rank), Bd.ModuleShape("b", 32, 96, rank), Bd.ModuleShape("c", 96, 32, rank)]


def test_bound_formula_and_monotonicity():
    assert Bd.information_bound(100, 50, sigma=2.0, bits=8) == pytest.approx(
        math.sqrt(2 * 4.0 * math.log(2) * 8 * 100 / 50))
    previous = 0.0
    for rank in (1, 2, 4, 8, 16):  # grows with the rank
        bound = Bd.bounds_table(_shapes(rank), n=1000)["bounds"][0]["bound"]
        assert bound > previous
        previous = bound
    by_n = [Bd.bounds_table(_shapes(), n=n)["bounds"][0]["bound"] for n in (10, 100, 1000, 10_000)]
    assert all(a > b for a, b in zip(by_n, by_n[1:]))  # shrinks with n


def test_three_trainings_and_equal_budget_rank():
    table = Bd.bounds_table(_shapes(4), n=500)
    by = {row["train"]: row for row in table["bounds"]}
    assert by["AB"]["trained_parameters"] == by["A"]["trained_parameters"] + by["B"]["trained_parameters"]
    assert by["B"]["trained_parameters"] == 4 * (32 + 96 + 32)
    assert by["A"]["trained_parameters"] == 4 * (32 + 32 + 96)
    assert by["B"]["bound"] < by["AB"]["bound"] and by["A"]["bound"] < by["AB"]["bound"]
    # r_B = r Σ(d_in + d_out) / Σ d_out, and B-only at r_B matches LoRA's parameter count
    assert table["equal_budget_rank"] == pytest.approx(4 * 320 / 160)
    assert table["b_only_at_equal_budget"]["trained_parameters"] == by["AB"]["trained_parameters"]
    square = Bd.bounds_table([Bd.ModuleShape("q", 64, 64, 8)], n=10)
    assert square["equal_budget_rank"] == pytest.approx(16.0)  # double the rank on square layers
    with pytest.raises(ValueError, match="n must be"):
        Bd.information_bound(10, 0)


def test_real_module_shapes_from_a_config_without_weights(tmp_path, tiny_model):
    model = tiny_model("llama")
    model.save_pretrained(tmp_path / "tiny")
    empty = Bd.empty_model(str(tmp_path / "tiny"))
    assert next(empty.parameters()).device.type == "meta"
    shapes = Bd.module_shapes(empty, ["q_proj", "k_proj"], rank=2)
    assert len(shapes) == 4
    k = [s for s in shapes if s.name.endswith("k_proj")][0]
    assert (k.d_in, k.d_out) == (32, 16)  # 2 KV heads of size 8
    everything = Bd.module_shapes(empty, "all-linear", rank=2)
    assert any(s.name.endswith("down_proj") and (s.d_in, s.d_out) == (64, 32) for s in everything)
    with pytest.raises(ValueError, match="no module matches"):
        Bd.module_shapes(empty, ["nosuch"], rank=2)


def test_packaged_minilm_shapes():
    shapes = Bd.module_shapes(Bd.empty_model("minilm"), ["query", "value"], rank=8)
    assert len(shapes) == 12 and {(s.d_in, s.d_out) for s in shapes} == {(384, 384)}


def test_bounds_command(tmp_path, tiny_model, capsys):
    from asymlora.cli import main

    tiny_model("bert").save_pretrained(tmp_path / "bert")
    main(["bounds", "--model", str(tmp_path / "bert"), "--targets", "query,value", "--rank", "4", "--n", "100",
          "--out", str(tmp_path / "out")])
    data = json.loads((tmp_path / "out" / "bounds.json").read_text())
    assert len(data["modules"]) == 4 and data["equal_budget_rank"] == pytest.approx(8.0)
    assert "B only" in (tmp_path / "out" / "bounds.md").read_text()
    with pytest.raises(SystemExit) as stop:
        main(["bounds", "--model", str(tmp_path / "bert"), "--targets", "nosuch", "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2 and "no module matches" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "bounds.json").exists()
