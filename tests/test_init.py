"""Factor initialisers: shapes, orthonormality, reproducibility, Haar sign convention, svd subspace."""

import json
from pathlib import Path

import pytest
import torch

from asymlora.adapters import init as init_module
from asymlora.adapters.fingerprint import tensor_sha256
from asymlora.adapters.init import INITIALISERS, FactorRequest, haar_orthonormal, initialise, make_generator, signed_svd
from asymlora.adapters.recipe import Recipe

PINNED = Path(__file__).parent / "fixtures" / "factor_sha256.json"


def request(factor, shape, name="layer.q", seed=0, weight=None):
    return FactorRequest(factor, shape, make_generator(seed, name, factor), weight, name)


@pytest.mark.parametrize("name", sorted(INITIALISERS))
@pytest.mark.parametrize("factor, shape", [("A", (4, 24)), ("B", (20, 4))])
def test_every_initialiser_gives_its_shape_reproducibly(name, factor, shape):
    weight = torch.randn(20, 24)
    first = initialise(name, request(factor, shape, weight=weight))
    again = initialise(name, request(factor, shape, weight=weight))
    assert first.shape == shape and first.dtype == torch.float32
    assert torch.equal(first, again)


def test_orthonormal_rows_for_A_and_columns_for_B():
    a = initialise("orthonormal", request("A", (8, 64)))
    b = initialise("orthonormal", request("B", (48, 8)))
    assert torch.allclose(a @ a.t(), torch.eye(8), atol=1e-6)
    assert torch.allclose(b.t() @ b, torch.eye(8), atol=1e-6)


def test_seed_and_module_name_change_the_draw():
    base = initialise("orthonormal", request("A", (4, 32)))
    assert not torch.equal(base, initialise("orthonormal", request("A", (4, 32), seed=1)))
    assert not torch.equal(base, initialise("orthonormal", request("A", (4, 32), name="layer.v")))


def test_haar_first_column_is_uniform_on_the_sphere():
    """Sign-corrected QR is Haar: a fixed coordinate of a column has mean 0 and variance 1/n."""
    generator = torch.Generator().manual_seed(0)
    n = 6
    samples = torch.stack([haar_orthonormal(n, 2, generator)[0, 0] for _ in range(4000)])
    assert abs(samples.mean().item()) < 0.03          # without the sign fix the mean is ~ +0.4
    assert abs(samples.var().item() - 1 / n) < 0.02


def test_orthonormal_rank_above_dimension_names_module_and_numbers():
    with pytest.raises(ValueError, match=r"'enc\.q'.*rank is 40 and d_in is 32"):
        initialise("orthonormal", request("A", (40, 32), name="enc.q"))


def test_svd_spans_top_singular_subspaces_of_pretrained_weight():
    torch.manual_seed(0)
    left, _ = torch.linalg.qr(torch.randn(30, 30))
    right, _ = torch.linalg.qr(torch.randn(20, 20))
    spectrum = torch.tensor([10.0, 8, 6, 4] + [0.5] * 16)
    weight = left[:, :20] @ torch.diag(spectrum) @ right.t()
    a = initialise("svd", request("A", (4, 20), weight=weight))
    b = initialise("svd", request("B", (30, 4), weight=weight))
    top_right, top_left = right[:, :4], left[:, :4]
    assert torch.allclose(a.t() @ a, top_right @ top_right.t(), atol=1e-5)   # same projector
    assert torch.allclose(b @ b.t(), top_left @ top_left.t(), atol=1e-5)


@pytest.mark.parametrize("init, peft_init", [("kaiming", True), ("gaussian", "gaussian")])
def test_lora_a_initialisers_equal_pefts_own_draw(init, peft_init):
    """PEFT draws lora_A from torch's global generator; seeded identically, ours draws the same tensor."""
    from peft import LoraConfig, get_peft_model
    from torch import nn

    host = nn.Sequential()
    host.add_module("q", nn.Linear(400, 24))
    layer = get_peft_model(host, LoraConfig(r=8, target_modules=["q"], init_lora_weights=peft_init)).base_model.model.q
    torch.manual_seed(1234)
    layer.reset_lora_parameters("default", peft_init)
    theirs = layer.lora_A["default"].weight.detach()
    ours = initialise(init, FactorRequest("A", (8, 400), torch.Generator().manual_seed(1234), None, "q"))
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)


def test_structured_and_dependent_factors():
    banded = initialise("banded", request("A", (4, 16)))
    assert torch.count_nonzero(banded[0, 4:]) == 0 and torch.count_nonzero(banded[3, :3]) == 0
    assert torch.linalg.matrix_rank(banded) == 4
    for name in ("dependent_rows", "dependent_cols"):
        factor = initialise(name, request("A", (4, 16)))
        assert torch.linalg.matrix_rank(factor) == 1
        assert abs(factor.norm().item() - 2.0) < 1e-5        # Frobenius norm sqrt(r), as orthonormal
    cols = initialise("dependent_cols", request("A", (4, 16)))
    assert torch.allclose(cols, cols[:, :1].expand_as(cols))  # reads only the sum of the input


def test_svd_signs_do_not_depend_on_lapacks_choice(monkeypatch):
    """LAPACK may return (u, v) or (−u, −v); the initialiser gives the same factors either way."""
    weight = torch.randn(30, 20, generator=torch.Generator().manual_seed(0))
    left, right_t = signed_svd(weight)
    assert torch.all(left.gather(0, left.abs().argmax(0, keepdim=True)) > 0)
    original = torch.linalg.svd

    def flipped(matrix, full_matrices=True):
        u, s, vh = original(matrix, full_matrices=full_matrices)
        signs = torch.where(torch.arange(s.shape[0]) % 2 == 0, -1.0, 1.0).to(u.dtype)
        return u * signs, s, vh * signs.unsqueeze(1)

    monkeypatch.setattr(init_module.torch.linalg, "svd", flipped)
    left_flipped, right_flipped = signed_svd(weight)
    assert torch.equal(left, left_flipped) and torch.equal(right_t, right_flipped)
    torch.testing.assert_close(left @ torch.diag(original(weight.double())[1]) @ right_t, weight.double())


def test_regenerated_factors_match_pinned_sha256():
    """Every recipe-only initialiser regenerates bit for bit what was pinned (tests/fixtures/factor_sha256.json)."""
    pinned = json.loads(PINNED.read_text())
    assert set(pinned) == set(INITIALISERS) - {"svd"}
    for init, cases in pinned.items():
        for case in cases:
            recipe = Recipe.build(init, case["seed"], case["module"], case["factor"], case["shape"])
            assert tensor_sha256(recipe.regenerate()) == case["sha256"], (init, case)
