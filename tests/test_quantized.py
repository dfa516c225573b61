"""Quantized bases: B-only injected on bitsandbytes 4-bit and torchao int8 / int4 layers of the
registry's tiny Llama (CPU), the merge refusal and the explicit dequantising merge, PEFT QLoRA parity,
unsupported layer types, a missing quantization package, the planner's bit widths and one bench row."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from torch import nn

from asymlora.adapters.inject import adapted_modules, inject, merge
from asymlora.adapters.quantized import dense_linear, quantized_kind
from asymlora.errors import UserError
from asymlora.methods import get_method
from asymlora.models.quantized import check_saved_quantization, load_quantized_causal_lm

pytest.importorskip("bitsandbytes")
pytest.importorskip("torchao")

RANK = 4


def _b_only(model, dropout: float = 0.0):
    return inject(model, get_method("b_only").adapter_config(RANK, 8.0, dropout, "all-linear", 0, []))


@pytest.fixture(scope="module")
def dense():
    return load_quantized_causal_lm("tiny-llama", 32)


@pytest.fixture(scope="module")
def batch():
    ids = torch.randint(0, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "labels": ids}


@pytest.mark.parametrize("backend,bits,kind", [("bitsandbytes", 4, "bnb-4bit"), ("bitsandbytes", 8, "bnb-8bit"),
                                               ("torchao", 8, "torchao-int8"), ("torchao", 4, "torchao-intx")])
def test_b_only_on_a_quantized_base_keeps_w0_packed_and_trains_b(backend, bits, kind, dense, batch):
    model = _b_only(load_quantized_causal_lm("tiny-llama", bits, backend))
    modules = adapted_modules(model)
    assert len(modules) == 7 * dense.config.num_hidden_layers
    for name, module in modules.items():
        assert quantized_kind(module.base).name == kind and quantized_kind(module.base).bits(module.base) == bits
        reference = dict(dense.named_modules())[name].weight
        assert (module.in_features, module.out_features) == (reference.shape[1], reference.shape[0])
        assert module.B.dtype == torch.float32 and module.B.requires_grad and "A" in dict(module.named_buffers())
        error = (dense_linear(module.base).weight - reference).abs().max() / reference.abs().max()
        assert error < (0.2 if bits == 4 else 0.02)       # the dequantised weight is the weight, quantized
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {f"{n}.B" for n in modules}
    before = {n: m.A.clone() for n, m in modules.items()}
    optimizer = torch.optim.SGD([m.B for m in modules.values()], lr=1.0)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    assert all(torch.equal(before[n], m.A) for n, m in modules.items())
    assert all(quantized_kind(m.base) is not None for m in modules.values())     # still packed


def test_merge_refuses_a_quantized_base_and_dequantises_on_request(batch):
    model = _b_only(load_quantized_causal_lm("tiny-llama", 8, "torchao"))
    for module in adapted_modules(model).values():
        nn.init.normal_(module.B, std=0.05)
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=batch["input_ids"]).logits
    with pytest.raises(UserError, match="pass dequantize=True"):
        merge(model)
    assert not any(m.merged for m in adapted_modules(model).values())
    assert all(quantized_kind(m.base) is not None for m in adapted_modules(model).values())
    merge(model, dequantize=True)
    modules = adapted_modules(model).values()
    assert all(m.merged and type(m.base) is nn.Linear and m.base.weight.dtype == torch.float32 for m in modules)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=batch["input_ids"]).logits, expected, atol=2e-4, rtol=1e-4)


def test_b_only_equals_peft_qlora_with_the_same_factors_on_the_same_4bit_base(batch):
    from peft import LoraConfig, get_peft_model

    ours = _b_only(load_quantized_causal_lm("tiny-llama", 4))
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft = get_peft_model(load_quantized_causal_lm("tiny-llama", 4),
                          LoraConfig(r=RANK, lora_alpha=8.0, lora_dropout=0.0, target_modules=targets))
    layers = {n.removeprefix("base_model.model."): m for n, m in peft.named_modules() if hasattr(m, "lora_A")}
    for name, module in adapted_modules(ours).items():
        nn.init.normal_(module.B, std=0.05)
        with torch.no_grad():
            layers[name].lora_A["default"].weight.copy_(module.A)
            layers[name].lora_B["default"].weight.copy_(module.B)
        assert type(layers[name].base_layer) is type(module.base)
    loss_ours, loss_peft = ours(**batch).loss, peft(**batch).loss
    torch.testing.assert_close(loss_ours, loss_peft)
    loss_ours.backward()
    loss_peft.backward()
    for name, module in adapted_modules(ours).items():
        torch.testing.assert_close(module.B.grad, layers[name].lora_B["default"].weight.grad, atol=1e-6, rtol=1e-4)


class QuantLinear(nn.Module):
    """A GPTQ-style packed layer asymlora has no kind for (int32 codes, like auto_gptq's)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("qweight", torch.zeros(4, 16, dtype=torch.int32))
        self.weight = nn.Parameter(torch.zeros(16, 32, dtype=torch.int8), requires_grad=False)

    def forward(self, x):
        return x[..., :16]


QuantLinear.__module__ = "auto_gptq.nn_modules.qlinear.qlinear_cuda"


@pytest.mark.parametrize("targets", ["all-linear", ["proj"]])
def test_an_unsupported_quantized_layer_is_refused_by_name(targets):
    model = nn.Sequential()
    model.add_module("dense", nn.Linear(32, 32))
    model.add_module("proj", QuantLinear())
    with pytest.raises(UserError, match="'proj' is a auto_gptq.*QuantLinear.*cannot adapt; load the base unquantized"):
        inject(model, get_method("b_only").adapter_config(2, 4.0, 0.0, targets, 0, []))
    assert type(model.dense) is nn.Linear


def test_a_missing_quantization_package_is_named_before_loading(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(UserError, match="needs the bitsandbytes package.*pip install bitsandbytes==0.50.2"):
        load_quantized_causal_lm("tiny-llama", 4)
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "bitsandbytes"}}))
    with pytest.raises(UserError, match="saved quantized by bitsandbytes"):
        check_saved_quantization(tmp_path)


def test_the_planner_counts_packed_base_weights(dense):
    from asymlora.planning.bits import PACKED_BYTES
    from asymlora.planning.planner import PlanRequest, plan

    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    plans = {bits: plan(PlanRequest(dense.config, "tiny", method="b_only", rank=RANK, targets=targets, batch=2,
                                    length=8, dtype="fp32", bits=bits)) for bits in (None, 8, 4)}
    linears = [m for n, m in dense.named_modules() if isinstance(m, nn.Linear) and "lm_head" not in n]
    for bits in (8, 4):
        saving = sum(4 * m.weight.numel() - PACKED_BYTES[bits](m.weight.numel(), m.weight.shape[0]) for m in linears)
        assert plans[None].weights - plans[bits].weights == pytest.approx(saving, abs=len(linears))
        assert plans[bits].trainable == plans[None].trainable
    assert plans[4].activations == plans[None].activations          # NF4 keeps only its packed weight
    assert plans[8].activations > plans[None].activations           # int8 keeps each base layer's input
    with pytest.raises(ValueError, match="--bits must be one of"):
        plan(PlanRequest(dense.config, "tiny", bits=3))


def test_one_bench_row_on_a_4bit_base(tmp_path):
    from asymlora.bench.quantized import RowSpec, measure_row
    from asymlora.bench.quantized_report import quantized_markdown

    row = measure_row(RowSpec(model="tiny-llama", bits=4, batch=2, length=16, rank=RANK, steps=1, warmup=0, threads=1))
    assert row["trainable_params"] == sum(m.out_features * RANK for m in
                                          adapted_modules(_b_only(load_quantized_causal_lm("tiny-llama", 32))).values())
    assert row["peak_training_rss_bytes"] >= row["rss_after_build_bytes"] > 0 and row["step_time_median_s"] > 0
    text = quantized_markdown({"command": "asymlora bench quantized", "rows": [row], "quality": []})
    assert "| 4-bit bitsandbytes | B-only |" in text


def test_rows_run_with_glibc_mmap_threshold_fixed_unless_told_not_to(monkeypatch):
    import subprocess

    from asymlora.bench.quantized import RowSpec, row_in_subprocess

    seen = {}

    def fake_run(command, **kwargs):
        seen["env"] = kwargs["env"]
        return subprocess.CompletedProcess(command, 0, stdout='{"row": 1}\n', stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "999")
    assert row_in_subprocess(RowSpec()) == {"row": 1}
    assert seen["env"]["MALLOC_MMAP_THRESHOLD_"] == "65536"
    row_in_subprocess(RowSpec(mmap_threshold=0))
    assert "MALLOC_MMAP_THRESHOLD_" not in seen["env"]          # glibc's default, not the caller's value
