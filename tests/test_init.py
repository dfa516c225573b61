"""Factor initialisers: shapes, orthonormality, reproducibility, Haar sign convention, svd subspace."""

import math

import pytest
import torch

from asymlora.adapters.init import INITIALISERS, FactorRequest, haar_orthonormal, initialise, make_generator


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


def test_kaiming_bound_matches_pefts():
    a = initialise("kaiming", request("A", (8, 400)))
    assert a.abs().max() <= 1 / math.sqrt(400) and a.abs().max() > 0.9 / math.sqrt(400)


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
