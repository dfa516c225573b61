"""Merging adapters that share A: the delta identity, TIES / DARE on ΔB against their formulas and
PEFT's functions, PEFT's factor-wise merge shown inexact, and the refusals."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from asymlora.adapters.inject import adapted_modules, merge  # noqa: E402
from asymlora.adapters.io import load_adapter, pretrained_weight, read_adapter, save_adapter  # noqa: E402
from asymlora.adapters.merge import delta_weights, merge_adapters  # noqa: E402
from asymlora.adapters.merge_methods import MERGE_METHODS, keep_masks, merge_tensors  # noqa: E402

from helpers import fresh_bert as fresh, trained_adapter  # noqa: E402

WEIGHTS = [0.7, -0.4, 1.3]


def trained(path, value_seed, **fields):
    return trained_adapter(path, 100 + value_seed, **fields)


@pytest.fixture(scope="module")
def folders(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    return [save_adapter(trained(tiny, i), root / f"a{i}") for i in range(3)]


def test_linear_merge_is_the_weighted_sum_of_deltas_negative_weights_included(tiny, folders, tmp_path):
    merge_adapters(folders, WEIGHTS, "linear", out=tmp_path / "merged")
    model = load_adapter(fresh(tiny), tmp_path / "merged")
    singles = [adapted_modules(load_adapter(fresh(tiny), f)) for f in folders]
    merge(model)
    for name, module in adapted_modules(model).items():
        w0 = pretrained_weight(singles[0][name])
        expected = w0 + sum(w * s[name].delta_weight() for w, s in zip(WEIGHTS, singles))
        torch.testing.assert_close(module.base.weight, expected, atol=1e-6, rtol=0)
    # heads summed with the same weights; forgetting (+1, -1) of an adapter with itself is zero
    heads = [read_adapter(f).tensors["classifier.weight"] for f in folders]
    torch.testing.assert_close(model.classifier.weight.detach(), sum(w * h for w, h in zip(WEIGHTS, heads)))
    nothing = merge_adapters([folders[0], folders[0]], [1.0, -1.0], heads="drop")
    assert all(torch.count_nonzero(d) == 0 for d in delta_weights(nothing).values())
    assert nothing.meta.modules_to_save == [] and nothing.config.modules_to_save == []


def _trim(t, density):
    flat = t.flatten()
    keep = int(density * flat.numel())
    threshold = flat.abs().sort(descending=True).values[keep - 1]
    return torch.where(t.abs() >= threshold, t, torch.zeros_like(t))


def _ties_by_formula(tensors, weights, density):
    """TIES written entry by entry from the paper (trim, elect by total mass, disjoint weighted mean)."""
    trimmed = [_trim(t, density) for t in tensors]
    out = torch.zeros_like(tensors[0])
    for index in range(out.numel()):
        values = [t.flatten()[index].item() for t in trimmed]
        sign = 1.0 if sum(values) >= 0 else -1.0
        agree = [(w * v) for w, v in zip(weights, values) if v != 0 and (v > 0) == (sign > 0)]
        out.view(-1)[index] = sum(agree) / max(1, len(agree))
    return out


def test_ties_and_dare_on_b_equal_their_formulas_and_peft(folders):
    from peft.utils import merge_utils

    states = [read_adapter(f) for f in folders]
    key = states[0].meta.trained_keys()[0]
    tensors = [s.tensors[key].double() for s in states]
    weight = torch.tensor(WEIGHTS, dtype=torch.float64)
    ties = merge_tensors(tensors, WEIGHTS, MERGE_METHODS["ties"], 0.3, key=key)
    torch.testing.assert_close(ties, _ties_by_formula(tensors, WEIGHTS, 0.3), atol=1e-12, rtol=0)
    torch.testing.assert_close(ties, merge_utils.ties(tensors, weight, 0.3), atol=1e-12, rtol=0)
    masked = merge_tensors(tensors, WEIGHTS, MERGE_METHODS["magnitude"], 0.3, key=key)
    torch.testing.assert_close(masked, sum(w * _trim(t, 0.3) for w, t in zip(WEIGHTS, tensors)), atol=1e-12, rtol=0)
    torch.testing.assert_close(masked, merge_utils.magnitude_prune(tensors, weight, 0.3), atol=1e-12, rtol=0)
    masks = keep_masks(tuple(tensors[0].shape), 3, 0.5, seed=7, key=key)
    assert 0.3 < masks.mean().item() < 0.7
    dropped = [t * m / 0.5 for t, m in zip(tensors, masks)]
    dare = merge_tensors(tensors, WEIGHTS, MERGE_METHODS["dare_linear"], 0.5, seed=7, key=key)
    torch.testing.assert_close(dare, sum(w * d for w, d in zip(WEIGHTS, dropped)), atol=1e-12, rtol=0)
    dare_ties = merge_tensors(tensors, WEIGHTS, MERGE_METHODS["dare_ties"], 0.5, seed=7, key=key)
    peft_style = merge_utils.disjoint_merge(merge_utils.reshape_weight_task_tensors(torch.stack(dropped), weight)
                                            * torch.stack(dropped),
                                            merge_utils.calculate_majority_sign_mask(torch.stack(dropped)))
    torch.testing.assert_close(dare_ties, peft_style, atol=1e-12, rtol=0)
    # seeded: same seed same masks, another seed other masks
    again = merge_tensors(tensors, WEIGHTS, MERGE_METHODS["dare_linear"], 0.5, seed=7, key=key)
    other = merge_tensors(tensors, WEIGHTS, MERGE_METHODS["dare_linear"], 0.5, seed=8, key=key)
    assert torch.equal(dare, again) and not torch.equal(dare, other)


def test_merged_delta_of_a_pruning_method_is_s_times_merged_b_times_a(folders):
    state = merge_adapters(folders, WEIGHTS, "ties", heads="drop")
    states = [read_adapter(f) for f in folders]
    for name, delta in delta_weights(state).items():
        entry = state.meta.modules[name]
        b = merge_tensors([s.tensors[f"{name}.B"] for s in states], WEIGHTS, MERGE_METHODS["ties"], None, key=f"{name}.B")
        torch.testing.assert_close(delta, entry.scaling * b @ state.frozen[f"{name}.A"], atol=1e-6, rtol=0)
        assert torch.count_nonzero(b) <= 0.2 * b.numel() * 3  # each B trimmed to 20%


def test_peft_linear_merge_of_b_only_adapters_is_not_the_weighted_delta(tiny, folders, tmp_path):
    """PEFT's add_weighted_adapter(linear) gives (Σ σⱼ√|wⱼs|)(Σ √|wᵢs| Bᵢ) A, not Σ wᵢ s Bᵢ A."""
    from peft import PeftModel

    from asymlora.adapters.peft_interop import export_peft

    for index, folder in enumerate(folders):  # PEFT refuses to merge adapters with modules_to_save: bodies only
        body = merge_adapters([folder], [1.0], heads="drop", out=tmp_path / f"body{index}")
        assert all(torch.equal(body.tensors[k], read_adapter(folder).tensors[k]) for k in body.meta.trained_keys())
        export_peft(load_adapter(fresh(tiny), tmp_path / f"body{index}"), tmp_path / f"p{index}")
    peft_model = PeftModel.from_pretrained(fresh(tiny), tmp_path / "p0", adapter_name="a0")
    for index in (1, 2):
        peft_model.load_adapter(tmp_path / f"p{index}", adapter_name=f"a{index}")
    names = ["a0", "a1", "a2"]
    peft_model.add_weighted_adapter(names, WEIGHTS, "lin", combination_type="linear")
    ours = delta_weights(merge_adapters(folders, WEIGHTS, heads="drop"))
    states = [read_adapter(f) for f in folders]
    for name, delta in ours.items():
        layer = peft_model.base_model.model.get_submodule(name)
        theirs = layer.get_delta_weight("lin")
        s = states[0].meta.modules[name].scaling
        a = states[0].frozen[f"{name}.A"]
        root = [(1 if w >= 0 else -1) * abs(w * s) ** 0.5 for w in WEIGHTS]
        predicted = sum(root) * sum(abs(w * s) ** 0.5 * st.tensors[f"{name}.B"] for w, st in zip(WEIGHTS, states)) @ a
        torch.testing.assert_close(theirs, predicted, atol=1e-5, rtol=1e-5)
        assert (theirs - delta).norm() > 0.1 * delta.norm()


def test_refusals(tiny, folders, tmp_path):
    with pytest.raises(ValueError, match="3 adapters but 2 weights"):
        merge_adapters(folders, [1.0, 1.0])
    with pytest.raises(ValueError, match="unknown merge method 'tie'.*did you mean 'ties'"):
        merge_adapters(folders, WEIGHTS, "tie")
    with pytest.raises(ValueError, match="--density must be in"):
        merge_adapters(folders, WEIGHTS, "ties", density=1.5)
    with pytest.raises(ValueError, match="--density applies to the pruning methods"):
        merge_adapters(folders, WEIGHTS, "linear", density=0.5)
    lora = [save_adapter(trained(tiny, i, train="AB"), tmp_path / f"l{i}") for i in range(2)]
    with pytest.raises(ValueError, match="trains both factors"):
        merge_adapters(lora, [0.5, 0.5])
    other_a = save_adapter(trained(tiny, 1, seed=5), tmp_path / "seed5")
    with pytest.raises(ValueError, match="different frozen A"):
        merge_adapters([folders[0], other_a], [0.5, 0.5])
    other_rank = save_adapter(trained(tiny, 1, rank=2), tmp_path / "rank2")
    with pytest.raises(ValueError, match="rank"):
        merge_adapters([folders[0], other_rank], [0.5, 0.5])
    other_targets = save_adapter(trained(tiny, 1, targets=["query"]), tmp_path / "query")
    with pytest.raises(ValueError, match="adapt different modules"):
        merge_adapters([folders[0], other_targets], [0.5, 0.5])
    assert not (tmp_path / "out").exists()


def test_cli_merges_and_refuses_with_one_line(tiny, folders, tmp_path, capsys):
    from helpers import run_cli

    code, out, err = run_cli(["merge", *map(str, folders), "--weights", "0.7,-0.4,1.3", "--method", "dare_ties",
                              "--density", "0.5", "--seed", "3", "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    expected = merge_adapters(folders, WEIGHTS, "dare_ties", density=0.5, seed=3)
    written = read_adapter(tmp_path / "m")
    assert all(torch.equal(written.tensors[k], v) for k, v in expected.tensors.items())
    code, out, err = run_cli(["merge", *map(str, folders), "--weights", "1,x,2", "--out", str(tmp_path / "n")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--weights entry 'x' is not a finite number" in err
    assert not (tmp_path / "n").exists()
    code, out, err = run_cli(["merge", *map(str, folders), "--weights", "1,inf,2", "--out", str(tmp_path / "n")], capsys)
    assert code == 2 and "--weights entry 'inf' is not a finite number; give comma-separated numbers" in err
    assert not (tmp_path / "n").exists()
