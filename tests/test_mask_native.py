"""The native C loop (asymlora.adapters.mask_native) draws the int64 hash's bits, zeroes exactly those
elements in every float width, is cached once per machine, and falls back cleanly without a compiler."""

import os
import subprocess

import pytest
import torch
from torch import nn

from asymlora import AdapterConfig
from asymlora.adapters import mask_native
from asymlora.adapters.dropout import drop_threshold, hashed_zero, v2_keeps_mask
from asymlora.adapters.linear import AdaptedLinear
from asymlora.adapters.mask_hash import forced_mask_hash, hash_engine_for, hash_mask_torch
from asymlora.adapters.mask_native import native_available, native_mask, native_zero
from asymlora.adapters.mask_stream import MASK32, split_base, stream_keys

CPU = torch.device("cpu")
needs_native = pytest.mark.skipif(not native_available(), reason="no C compiler builds the native kernel here")


def _keys(base: int, call: int) -> torch.Tensor:
    return torch.tensor(stream_keys(*split_base(base), call))


@needs_native
@pytest.mark.parametrize("start, count", [(0, 1), (0, 8_192), (3, 300_001), (2**32 - 37, 100), (5 * 2**32 - 1, 70)])
@pytest.mark.parametrize("p", [1e-9, 0.05, 0.5, 0.95])
def test_native_mask_is_the_int64_hash(start, count, p):
    for base, call in ((0, 0), (2**63 - 1, 2**40 + 3)):
        keys = _keys(base, call)
        expected = hash_mask_torch(keys, start, count, drop_threshold(p), CPU)
        assert torch.equal(native_mask(keys, start, count, drop_threshold(p)), expected)
        assert torch.equal(native_mask(tuple(keys.tolist()), start, count, drop_threshold(p)), expected)


@needs_native
def test_threshold_edges():
    keys = _keys(11, 2)
    assert not native_mask(keys, 0, 4096, 0).any() and native_mask(keys, 0, 4096, MASK32 + 1).all()
    assert torch.equal(native_mask(keys, 0, 4096, MASK32), hash_mask_torch(keys, 0, 4096, MASK32, CPU))
    assert torch.equal(native_zero(torch.ones(50), keys, MASK32 + 1), torch.zeros(50))


@needs_native
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_native_zero_zeroes_exactly_the_mask_in_every_width(dtype):
    keys = _keys(2**62 + 5, 9)
    tensor = torch.randn(3, 70, 33).to(dtype)
    mask = hash_mask_torch(keys, 0, tensor.numel(), drop_threshold(0.3), CPU).view(tensor.shape)
    expected = tensor.masked_fill(mask, 0)
    zeroed = native_zero(tensor, keys, drop_threshold(0.3))
    assert zeroed.dtype == dtype and torch.equal(zeroed, expected) and not torch.equal(zeroed, tensor)
    transposed = tensor.transpose(0, 2)                     # not contiguous: the mask follows the row-major copy
    reference = transposed.contiguous().masked_fill(hash_mask_torch(keys, 0, tensor.numel(), drop_threshold(0.3), CPU)
                                                    .view(transposed.shape), 0)
    assert torch.equal(native_zero(transposed, keys, drop_threshold(0.3)), reference)
    in_place = tensor.clone()
    assert native_zero(in_place, keys, drop_threshold(0.3), inplace=True) is in_place
    assert torch.equal(in_place, expected)


@needs_native
def test_hashed_zero_and_the_layer_take_the_native_loop_and_keep_no_mask():
    x = torch.randn(4, 32, 64)
    assert hash_engine_for("cpu") == "native" and not v2_keeps_mask(x)   # tiny input: regenerated, not kept
    keys = _keys(99, 7)
    with forced_mask_hash("numpy"):
        assert v2_keeps_mask(x)                                        # without it, small inputs keep a bit mask
        expected = hashed_zero(x, keys, 0.2)
    assert torch.equal(hashed_zero(x, keys, 0.2), expected)
    assert torch.equal(hashed_zero(x, tuple(keys.tolist()), 0.2), expected)   # keys as ints, as eager layers pass them


@needs_native
def test_adapted_layer_gradients_are_the_same_as_with_the_numpy_engine():
    results = []
    for engine in ("numpy", "native"):
        torch.manual_seed(0)
        layer = AdaptedLinear(nn.Linear(64, 40), "enc.q", AdapterConfig(rank=4, alpha=8, dropout=0.2,
                                                                        init_B="gaussian")).train()
        x = torch.randn(4, 32, 64, requires_grad=True)
        with forced_mask_hash(engine):
            layer(x).square().sum().backward()
        results.append((x.grad, layer.B.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_errors():
    with pytest.raises(ValueError, match="CPU only"):
        native_mask((1, 2), 0, 8, 5, "meta")
    if native_available():
        with pytest.raises(ValueError, match="no native dropout kernel for torch.uint8"):
            native_zero(torch.ones(8, dtype=torch.uint8), (1, 2), 5)


def test_build_is_cached_and_named_by_source_and_flags(tmp_path, monkeypatch):
    compiler = mask_native.c_compiler()
    if compiler is None:
        pytest.skip("no C compiler here")
    monkeypatch.setenv("ASYMLORA_CACHE", str(tmp_path))
    path = mask_native.library_path(compiler, mask_native.build_flags())
    assert path.parent == tmp_path / "kernels" and path.name.startswith("mask_native-")
    assert path != mask_native.library_path(compiler, ["-O2"])
    mask_native.build_library(compiler, mask_native.build_flags(), path)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == [path.name]   # no build leftovers
    library = mask_native._bind(__import__("ctypes").CDLL(str(path)))
    assert hasattr(library, "zero_32") and hasattr(library, "drop_mask")


def test_no_compiler_means_no_kernel_and_the_numpy_engine(monkeypatch):
    monkeypatch.setattr(mask_native, "c_compiler", lambda: None)
    mask_native.native_library.cache_clear()
    try:
        assert not native_available() and hash_engine_for("cpu") == "numpy"
        with pytest.raises(ValueError, match="unavailable"):
            native_zero(torch.ones(4), (1, 2), 5)
    finally:
        mask_native.native_library.cache_clear()


def test_a_failing_compiler_warns_once_and_falls_back(tmp_path, monkeypatch):
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'cc: error: unrecognized option' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CC", str(failing))
    monkeypatch.setenv("ASYMLORA_CACHE", str(tmp_path / "cache"))
    mask_native.native_library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="unrecognized option.*ASYMLORA_MASK_HASH=numpy"):
            assert mask_native.native_library() is None
        assert hash_engine_for("cpu") == "numpy"
        assert not any((tmp_path / "cache" / "kernels").iterdir())              # nothing half-written
    finally:
        mask_native.native_library.cache_clear()


def test_cc_is_honoured_and_a_missing_cc_means_none(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    assert mask_native.c_compiler() is None
    monkeypatch.delenv("CC")
    found = mask_native.c_compiler()
    assert found is None or os.path.isabs(found)


def test_c_source_compiles_warning_free():
    compiler = mask_native.c_compiler()
    if compiler is None:
        pytest.skip("no C compiler here")
    result = subprocess.run([compiler, "-Wall", "-Wextra", "-fsyntax-only", "-x", "c", "-"],
                            input=mask_native.SOURCE, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
