"""The shape sweep (``bench --sweep``), causal-LM workloads, all-linear targets, and the mask-path
policy of the lean B-only layer (saved bit-packed mask below the crossover, regenerated above)."""

from __future__ import annotations

import json

import pytest
import torch

from asymlora.adapters.dropout import (MASK_POLICY, drop_mask, forced_mask_path, mask_path_for, pack_mask,
                                       unpack_mask)
from asymlora.adapters.linear import FrozenAProjection
from asymlora.bench.mask_path import measure_crossover
from asymlora.bench.saved import count_saved
from asymlora.bench.suite import SuiteOptions
from asymlora.bench.sweep import SweepWorkload, check_sweep_targets, run_sweep
from asymlora.bench.workload import make_workload


# ---------------------------------------------------------------------------- mask policy
@pytest.mark.parametrize("count", [1, 7, 8, 9, 1000, 4099])
def test_packed_mask_round_trips(count):
    mask = drop_mask(3, (count,), 0.3, "cpu")
    packed = pack_mask(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-count // 8)
    assert torch.equal(unpack_mask(packed, (count,)), mask)
    meta = pack_mask(torch.empty(count, dtype=torch.bool, device="meta"))       # the generic (non-numpy) path
    assert meta.shape == packed.shape


def test_policy_chooses_by_size_and_device_and_can_be_forced():
    limit = MASK_POLICY.saved_max_elements
    assert mask_path_for(limit, "cpu") == "saved" and mask_path_for(limit + 1, "cpu") == "regenerated"
    assert mask_path_for(10, "meta") == "saved"
    with forced_mask_path("regenerated"):
        assert mask_path_for(10, "cpu") == "regenerated"
    assert mask_path_for(10, "cpu") == "saved"
    with pytest.raises(ValueError, match="unknown mask path 'bits'"):
        with forced_mask_path("bits"):
            pass


def _lean_step(path, x, a, b, grad, seed=17, p=0.2):
    x = x.clone().requires_grad_(True)
    holder = torch.nn.Module()                          # the factors are weights, not activations
    holder.register_buffer("A", a)
    holder.B = torch.nn.Parameter(b.clone())
    with forced_mask_path(path):
        saved = count_saved(holder, lambda: FrozenAProjection.apply(x, holder.A, holder.B, 1.5, p, seed).backward(grad))
    return x.grad, holder.B.grad, saved.activation_bytes


def test_saved_and_regenerated_paths_draw_the_same_mask_and_keep_what_they_promise():
    generator = torch.Generator().manual_seed(0)
    tokens, width, rank = 6 * 11, 40, 4
    x = torch.randn(6, 11, width, generator=generator)
    a = torch.linalg.qr(torch.randn(width, rank, generator=generator))[0].t().contiguous()
    b = torch.randn(30, rank, generator=generator)
    grad = torch.randn(6, 11, 30, generator=generator)
    saved_x, saved_b, saved_bytes = _lean_step("saved", x, a, b, grad)
    regen_x, regen_b, regen_bytes = _lean_step("regenerated", x, a, b, grad)
    torch.testing.assert_close(saved_x, regen_x, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(saved_b, regen_b, rtol=1e-5, atol=1e-6)
    mask = drop_mask(17, (tokens, width), 0.2, "cpu").view(6, 11, width)
    assert (saved_x[mask] == 0).all() and (saved_x[~mask] != 0).all() and 0 < mask.sum() < mask.numel()
    u_bytes = tokens * rank * 4
    assert regen_bytes == u_bytes                                                # only u = A drop(x)
    assert saved_bytes == u_bytes + -(-tokens * width // 8)                      # plus one bit per element


# ---------------------------------------------------------------------------- workloads
def test_causal_lm_workload_streams_tokens_and_resolves_all_linear():
    workload = make_workload("llama-tiny", batch=2, length=16, task="causal_lm", targets=["all-linear"])
    assert workload.head is None and workload.task == "causal_lm"
    assert workload.targets == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert torch.equal(workload.batch["labels"], workload.batch["input_ids"])
    assert workload.batch["input_ids"].shape == (2, 16)
    with pytest.raises(ValueError, match="unknown benchmark task 'seq2seq'"):
        make_workload("llama-tiny", batch=2, length=16, task="seq2seq")


def test_sweep_runs_each_workload_and_checks_its_targets(tmp_path):
    from asymlora.bench.report import write_sweep_report

    workloads = (SweepWorkload("bert", "bert-tiny", 2, 8, steps=2, warmup=0),
                 SweepWorkload("llama_lm", "llama-tiny", 2, 8, targets=("all-linear",), task="causal_lm", steps=2,
                               warmup=0))
    options = SuiteOptions(threads=1, configurations=["asymlora_b_only", "peft_lora", "adapter_floor"])
    document = run_sweep(options, workloads, crossover=False)
    assert list(document["results"]) == ["bert", "llama_lm"]
    lm = document["results"]["llama_lm"]
    assert lm["suite"]["task"] == "causal_lm" and lm["configurations"]["asymlora_b_only"]["adapter_modules"] == 14
    for result in document["results"].values():
        rows = result["configurations"]
        assert list(rows) == ["asymlora_b_only", "peft_lora", "adapter_floor"] and result["suite"]["steps"] == 2
        checks = {c["target"]: c for c in result["sweep_targets"]}
        ratio = rows["asymlora_b_only"]["adapter_activation_bytes"] / rows["peft_lora"]["adapter_activation_bytes"]
        assert checks["B-only adapter-attributable saved / PEFT LoRA"]["measured"] == pytest.approx(ratio)
        assert 0 < ratio < 0.2
    paths = write_sweep_report(document, tmp_path)
    assert json.loads(paths["json"].read_text())["sweep"]["threads"] == 1
    assert "| llama_lm | 14 |" in paths["markdown"].read_text()
    assert paths["chart"].read_bytes()[:4] == b"\x89PNG"


def test_sweep_targets_report_missing_figures_as_unknown():
    document = {"configurations": {"asymlora_b_only": {"step_time_median_s": 1.0, "step_time_min_s": 1.0,
                                                        "adapter_activation_bytes": 1}}}
    assert all(check["met"] is None for check in check_sweep_targets(document))


def test_crossover_measurement_reports_every_shape():
    result = measure_crossover(shapes=((16, 8), (64, 32)), repeats=2)
    assert [row["elements"] for row in result["rows"]] == [128, 2048]
    assert all(row["saved_ms"] > 0 and row["regenerated_ms"] > 0 for row in result["rows"])
    assert result["crossover_elements"] in (None, 128, 2048)


def test_sweep_command_refuses_a_configuration_a_workload_cannot_run(tmp_path, capsys):
    from helpers import run_cli

    code, _, err = run_cli(["bench", "sweep", "--configurations", "b_only,head_only",
                            "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and "sweep workload smollm2: configuration head_only needs a task head" in err
    assert not (tmp_path / "s").exists()


def test_bench_command_can_force_the_mask_path(tmp_path, capsys):
    """The mask path is the v1 stream's (the b_only_v1 configuration); v2 masks are always regenerated."""
    from helpers import run_cli

    code, _, err = run_cli(["bench", "suite", "--quick", "--no-memory", "--configurations", "b_only_v1",
                            "--mask-path", "regenerated", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    regenerated = json.loads((tmp_path / "r" / "bench.json").read_text())
    code, _, err = run_cli(["bench", "suite", "--quick", "--no-memory", "--configurations", "b_only_v1",
                            "--out", str(tmp_path / "a")], capsys)
    auto = json.loads((tmp_path / "a" / "bench.json").read_text())
    assert regenerated["suite"]["mask_path"] == "regenerated" and auto["suite"]["mask_path"] == "auto"
    ours, theirs = (d["configurations"]["asymlora_b_only_v1"] for d in (auto, regenerated))
    # quick = 4 x 32 tokens, 64 wide: the saved path keeps one bit per element per module (4 modules)
    assert ours["saved_activation_bytes"] - theirs["saved_activation_bytes"] == 4 * 4 * 32 * 64 // 8
    code, _, err = run_cli(["bench", "suite", "--quick", "--mask-path", "bits", "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and "--mask-path must be auto" in err
