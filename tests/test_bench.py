"""Benchmarks: the saved-bytes counter, the configuration registry, the suite's JSON, the command.

No timed asserts: timings are only checked to exist and be positive.
"""

import json

import pytest
import torch
from torch import nn

from asymlora.adapters.dropout import drop_mask, keep_mask, project_dropped, zero_dropped
from asymlora.bench.configs import DEFAULT_SUITE, ORDER, Settings, build
from asymlora.bench.saved import count_saved
from asymlora.bench.suite import RATIO_KEYS, SuiteOptions, run_suite
from asymlora.bench.workload import make_workload


# ---------------------------------------------------------------------------- saved bytes
class Adapter(nn.Module):
    """y = base(x) + scale · Σ exp(x): the base saves x; the adapter saves exp(x) and the sum."""

    def __init__(self):
        super().__init__()
        self.base = nn.Linear(20, 5, bias=False)
        self.scale = nn.Parameter(torch.ones(5))

    def forward(self, x):
        summed = torch.exp(x).sum(-1, keepdim=True) + x.sin().sum(-1, keepdim=True)
        return self.base(x) + summed * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.adapter = Adapter()

    def forward(self, x):
        return torch.tanh(self.adapter(x))


def test_saved_bytes_count_each_storage_once_and_attribute_the_adapter_part():
    torch.manual_seed(0)
    net = Net()
    x = torch.randn(10, 20, requires_grad=True)
    saved = count_saved(net, lambda: net(x).sum().backward(), [net.adapter], [net.adapter.base])
    # activations: x (800, saved by sin, by the base mm, once), exp(x) (800), summed (40), tanh output (200)
    assert saved.activation_bytes == 800 + 800 + 40 + 200
    # the adapter's own: exp(x) and summed; x is not (the base layer saves it too)
    assert saved.adapter_activation_bytes == 800 + 40
    # weights: the base weight (seen through its transpose) and scale
    assert saved.weight_bytes == 400 + 20
    # without attribution everything is outside any adapter
    plain = count_saved(net, lambda: net(x).sum().backward())
    assert plain.activation_bytes == saved.activation_bytes and plain.adapter_activation_bytes == 0


def test_views_count_their_whole_storage():
    big = torch.randn(100, requires_grad=True)
    module = nn.Module()
    saved = count_saved(module, lambda: (big[:10].exp()).sum().backward())
    # exp saves its output (a fresh 10-element tensor), not its input
    assert saved.activation_bytes == 40
    saved = count_saved(module, lambda: (big[:10] * big[:10]).sum().backward())
    assert saved.activation_bytes == 400    # the slice lives in big's 100-float storage, counted whole, once


# ---------------------------------------------------------------------------- registry
@pytest.fixture(scope="module")
def tiny():
    return make_workload("bert-tiny", batch=2, length=8)


def _names(model, trainable=True):
    return {n for n, p in model.named_parameters() if p.requires_grad == trainable}


@pytest.mark.parametrize("name", ORDER)
def test_each_configuration_freezes_what_it_should(tiny, name):
    torch.manual_seed(0)
    settings = Settings(head=tiny.head, targets=tiny.targets)
    built = build(name, tiny.fresh_model(), settings)
    trained = _names(built.model)
    assert {id(p) for p in built.trainable} == {id(p) for p in built.model.parameters() if p.requires_grad}
    assert trained and all("classifier" in n or "lora" in n or n.endswith((".A", ".B")) for n in trained), trained
    assert any("classifier" in n for n in trained)          # every configuration trains the head
    modules = 4                                             # 2 layers x (query, value)
    d, r, head = 64, 8, 64 * 3 + 3
    per_factor = modules * d * r
    expected = {"asymlora_b_only": per_factor, "asymlora_a_only": per_factor, "asymlora_lora": 2 * per_factor,
                "peft_lora": 2 * per_factor, "peft_lora_fa": per_factor, "adapter_floor": per_factor,
                "head_only": 0, "asymlora_b_only_no_dropout": per_factor, "asymlora_b_only_v1": per_factor,
                "asymlora_b_only_compiled": per_factor, "asymlora_b_only_compiled_model": per_factor}
    if name in expected:
        assert sum(p.numel() for p in built.trainable) == expected[name] + head
    if name in ("peft_lora_fa", "adapter_floor"):
        assert not any("lora_A" in n for n in trained) and any("lora_B" in n for n in trained)
    if name == "adapter_floor":
        assert not any(isinstance(m, nn.Dropout) for n, m in built.model.named_modules() if "lora_dropout" in n)
    if name.startswith("asymlora_b_only"):
        assert not any(n.endswith(".A") for n in trained) and any(n.endswith(".B") for n in trained)
    if name == "peft_adalora":
        assert any("lora_E" in n for n in trained) and built.after_step is not None
    # the body is shared with the template and stays frozen there
    assert not any(p.requires_grad for n, p in tiny.template.named_parameters() if "classifier" not in n)


def test_unknown_configuration_is_refused(tiny):
    with pytest.raises(ValueError, match="unknown benchmark configuration 'lora_xl'"):
        build("lora_xl", tiny.fresh_model(), Settings())


# ---------------------------------------------------------------------------- suite and command
ENTRY_KEYS = {"step_time_median_s", "step_time_iqr_s", "samples_per_s", "saved_activation_bytes",
              "adapter_activation_bytes", "peak_rss_bytes", "checkpoint_bytes", "trainable_params",
              "ratios_to_peft_lora"}


def test_suite_json_has_every_configuration_and_key():
    options = SuiteOptions(model="bert-tiny", batch=2, length=8, steps=2, warmup=0, memory=False, svd=False)
    document = run_suite(options)
    json.dumps(document)                                   # serialisable
    assert list(document["configurations"]) == list(DEFAULT_SUITE)
    for name, entry in document["configurations"].items():
        assert ENTRY_KEYS <= set(entry), (name, ENTRY_KEYS - set(entry))
        assert entry["step_time_median_s"] > 0 and entry["timed_steps"] == 2
        assert set(entry["ratios_to_peft_lora"]) == set(RATIO_KEYS)
    rows = document["configurations"]
    assert rows["peft_lora"]["ratios_to_peft_lora"]["saved_activation_bytes"] == 1.0
    # the lean path saves no d-wide copy: B-only saves less than PEFT LoRA, its adapter part is tiny
    assert rows["asymlora_b_only"]["saved_activation_bytes"] < rows["peft_lora"]["saved_activation_bytes"]
    assert rows["asymlora_b_only"]["adapter_activation_bytes"] < rows["peft_lora_fa"]["adapter_activation_bytes"]
    assert rows["head_only"]["trainable_params"] < rows["asymlora_b_only"]["trainable_params"]
    assert document["init_timing"]["qr_s"] > 0 and document["init_timing"]["svd_s"] is None
    mask = document["mask_path"]
    assert mask["shape"] == [2, 8, 64] and mask["draw_and_apply"]["now"]["median_ms"] > 0
    assert {"torch", "peft", "transformers", "cpu", "torch_threads"} <= set(document["environment"])
    assert {t["target"] for t in document["targets"]} >= {"B-only step time / PEFT LoRA"}


def test_peak_memory_is_measured_in_a_fresh_process():
    from asymlora.bench.memory import measure_in_subprocess

    spec = {"workload": {"model": "bert-tiny", "batch": 2, "length": 8}, "config": "head_only",
            "settings": {"head": "classifier", "targets": ["query", "value"]}, "steps": 1, "threads": 1}
    result = measure_in_subprocess(spec)
    assert result["peak_rss_bytes"] >= result["rss_after_load_bytes"] > 10 * 2**20


def test_command_writes_json_markdown_and_chart(tmp_path):
    from asymlora.cli import main

    main(["bench", "suite", "--quick", "--no-memory", "--configurations", "peft_lora,b_only",
          "--out", str(tmp_path / "b")])
    document = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert list(document["configurations"]) == ["peft_lora", "asymlora_b_only"]
    assert "| asymlora_b_only |" in (tmp_path / "b" / "bench.md").read_text()
    assert (tmp_path / "b" / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_refuses_bad_input_without_writing(tmp_path, capsys):
    from asymlora.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["bench", "suite", "--quick", "--configurations", "peft_lora,nope", "--out", str(tmp_path / "b")])
    assert stop.value.code == 2
    assert "unknown configuration 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------- mask source
def test_zero_dropped_and_sparse_projection_equal_the_dense_mask():
    x = torch.randn(3, 50, 40)
    a = torch.randn(4, 40)
    for p in (0.05, 0.25, 0.9):
        drop = drop_mask(11, x.shape, p, "cpu")
        assert torch.equal(drop, ~keep_mask(11, x.shape, p, "cpu"))
        assert torch.equal(zero_dropped(x, 11, p), x.masked_fill(drop, 0))
        y = x.clone()
        assert zero_dropped(y, 11, p, inplace=True) is y and torch.equal(y, x.masked_fill(drop, 0))
        strided = x.transpose(0, 1)                          # a non-contiguous input
        assert torch.equal(zero_dropped(strided, 11, p), strided.contiguous().masked_fill(
            drop_mask(11, strided.shape, p, "cpu"), 0))
        flat = x.reshape(-1, 40)
        dense = flat.masked_fill(drop.reshape(-1, 40), 0) @ a.t()
        assert torch.allclose(project_dropped(flat, a, 11, p), dense, atol=1e-5)
    rate = drop_mask(3, (400_000,), 0.25, "cpu").float().mean().item()
    assert abs(rate - 0.25) < 0.005


def test_registry_names_load_their_model_and_layout_names_stay_layouts():
    from asymlora.bench.workload import load_model

    model, _, description = load_model("tiny-llama", task="causal_lm")
    assert type(model).__name__ == "LlamaForCausalLM" and description.startswith("tiny-llama (llama")
    layout, tokenizer, description = load_model("bert-tiny", layers=1)
    assert tokenizer is None and description == "random bert-tiny layout, 1 layers"
