"""The one peak-memory function (asymlora.measure) and the helpers it rests on."""

import numpy as np
import pytest

from asymlora import measure

MIB = 2 ** 20


def test_peak_rss_follows_an_allocation_and_resets():
    before = measure.peak_rss_bytes()
    block = np.ones(256 * MIB // 8)  # 256 MiB, every page touched
    held = measure.rss_bytes()
    assert held >= 200 * MIB and measure.peak_rss_bytes() >= max(before, held)
    del block
    peak = measure.peak_rss_bytes()
    if not measure.reset_peak_rss():
        pytest.skip("this platform cannot reset the peak RSS")
    assert measure.peak_rss_bytes() < peak - 150 * MIB  # the freed block no longer counts
    assert measure.peak_rss_bytes() >= measure.rss_bytes() - 16 * MIB


def test_peak_memory_bytes_is_the_rss_off_cuda_and_the_only_definition():
    import torch

    from asymlora.evaluation import summarise
    from asymlora.training import env

    assert env.peak_memory_bytes is measure.peak_memory_bytes
    cpu = measure.peak_memory_bytes("cpu")
    assert cpu == pytest.approx(measure.peak_rss_bytes(), rel=0.05) and cpu > 10 * MIB
    assert summarise.peak_memory_mib("cpu") == pytest.approx(cpu / MIB, rel=0.05)
    if not torch.cuda.is_available():
        assert measure.peak_memory_bytes() == pytest.approx(cpu, rel=0.05)
    measure.reset_cuda_peak("cpu")  # a no-op off CUDA
