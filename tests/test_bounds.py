"""docs/paper.md §5: the information-theoretic bound on real module shapes."""

import json
import math

import pytest

from asymlora.analysis import bounds as Bd


def _shapes(rank=8):
    """Three modules ``(name, d_in, d_out, rank)`` with d_in != d_out, neither equal to the rank, and
    Σ d_in = 152 != Σ d_out = 168: a d_in / d_out swap anywhere changes every count below."""
    return [Bd.ModuleShape("a", 48, 32, rank), Bd.ModuleShape("b", 24, 96, rank), Bd.ModuleShape("c", 80, 40, rank)]


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
    assert by["B"]["trained_parameters"] == 4 * (32 + 96 + 40)          # r Σ d_out
    assert by["A"]["trained_parameters"] == 4 * (48 + 24 + 80)          # r Σ d_in
    assert by["AB"]["trained_parameters"] == 4 * 320
    assert by["A"]["bound"] < by["B"]["bound"] < by["AB"]["bound"]      # fewer inputs than outputs here
    # r_B = r Σ(d_in + d_out) / Σ d_out; B-only at floor(r_B) = 7 has at most LoRA's parameter count, at 8 more
    assert table["equal_budget_rank"] == pytest.approx(4 * 320 / 168)
    assert table["equal_budget_rank_int"] == 7
    at_rb = table["b_only_at_equal_budget"]
    assert at_rb["rank"] == 7 and at_rb["trained_parameters"] == 7 * 168 <= by["AB"]["trained_parameters"] < 8 * 168
    assert [(m["d_in"], m["d_out"]) for m in table["modules"]] == [(48, 32), (24, 96), (80, 40)]
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
    main(["bounds", "--model", str(tmp_path / "bert"), "--targets", "query,intermediate.dense", "--rank", "4",
          "--n", "100", "--out", str(tmp_path / "out")])
    data = json.loads((tmp_path / "out" / "bounds.json").read_text())
    # query 32 -> 32 and intermediate.dense 32 -> 64 in each of the 2 layers: Σ d_in = 128, Σ d_out = 192
    shapes = {m["name"].split("layer.")[1]: (m["d_in"], m["d_out"]) for m in data["modules"]}
    assert shapes == {f"{i}.{name}": shape for i in (0, 1)
                      for name, shape in (("attention.self.query", (32, 32)), ("intermediate.dense", (32, 64)))}
    assert data["equal_budget_rank"] == pytest.approx(4 * (128 + 192) / 192)
    assert "B only" in (tmp_path / "out" / "bounds.md").read_text()
    with pytest.raises(SystemExit) as stop:
        main(["bounds", "--model", str(tmp_path / "bert"), "--targets", "nosuch", "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2 and "no module matches" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "bounds.json").exists()
