"""The memory planner: meta-device traces equal real CPU measurements, the per-layer rule equals a
full trace, parameter and optimiser components count what torch allocates, and the command."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from asymlora.bench.configs import Settings, build
from asymlora.bench.saved import count_saved
from asymlora.models import layout_config
from asymlora.planning.planner import PlanRequest, plan
from asymlora.planning.trace import trace
from helpers import run_cli

CASES = [("bert-tiny", "classification", ("query", "value")),          # attention dropout: math kernel
         ("llama-tiny", "causal_lm", ("q_proj", "v_proj")),             # no dropout: flash kernel on the CPU
         ("llama-gqa", "causal_lm", ("q_proj", "v_proj")),              # grouped-query attention (1 k/v head)
         ("llama-tiny", "classification", ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                           "down_proj"))]
CONFIGS = {"b_only": "asymlora_b_only", "peft_lora": "peft_lora", "peft_lora_fa": "peft_lora_fa",
           "peft_adalora": "peft_adalora"}


def _config(layout, layers=2):
    if layout == "llama-gqa":
        from asymlora.models import tiny_config

        return tiny_config("llama", vocab_size=97, num_hidden_layers=layers, num_attention_heads=4,
                           num_key_value_heads=1, num_labels=3)
    config = layout_config(layout, layers)
    config.num_labels = 3
    return config


def _measure_cpu(config, task, configuration, settings, batch, length):
    torch.manual_seed(0)
    auto = AutoModelForCausalLM if task == "causal_lm" else AutoModelForSequenceClassification
    built = build(configuration, auto.from_config(config), settings)
    built.model.train()
    ids = torch.randint(1, config.vocab_size, (batch, length))
    labels = ids if task == "causal_lm" else torch.randint(0, 3, (batch,))
    return count_saved(built.model, lambda: built.model(input_ids=ids, labels=labels).loss.backward(),
                       built.adapter_modules, built.excluded)


@pytest.mark.parametrize("layout, task, targets", CASES)
@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_meta_trace_saves_exactly_what_the_cpu_step_saves(layout, task, targets, method):
    settings = Settings(targets=list(targets), head=None if task == "causal_lm" else
                        ("classifier" if layout.startswith("bert") else "score"))
    config = _config(layout)
    measured = _measure_cpu(config, task, CONFIGS[method], settings, 3, 24)
    traced = trace(config, task, method, settings, 3, 24, torch.float32).saved
    assert measured.activation_bytes > 0 and measured.adapter_activation_bytes > 0
    assert traced.activation_bytes == measured.activation_bytes
    assert traced.adapter_activation_bytes == measured.adapter_activation_bytes


def test_full_fine_tuning_saves_the_attention_output_once():
    # o_proj's input is a view of the attention kernel's saved output on the CPU (the kernel lays it
    # out B x T x H x D): a trained o_proj saves no copy of it, and neither does the meta trace
    config = _config("llama-tiny")
    settings = Settings(targets=["q_proj", "v_proj"], head=None)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).train()
    ids = torch.randint(1, config.vocab_size, (3, 24))
    measured = count_saved(model, lambda: model(input_ids=ids, labels=ids).loss.backward())
    assert trace(config, "causal_lm", "full", settings, 3, 24, torch.float32).saved.activation_bytes == \
        measured.activation_bytes


def test_per_layer_rule_equals_a_trace_of_every_layer():
    config = _config("llama-tiny", 5)
    request = PlanRequest(config, "llama-tiny x5", method="peft_lora", rank=4, targets=("q_proj", "v_proj"), batch=2,
                          length=16, dtype="fp32", task="causal_lm")
    planned = plan(request)
    full = trace(config, "causal_lm", "peft_lora", request.settings(), 2, 16, torch.float32)
    assert planned.layers == 5 and planned.per_layer_activations > 0
    assert planned.activations == full.saved.activation_bytes
    assert planned.adapter_activations == full.saved.adapter_activation_bytes
    frozen = sum(p.numel() * p.element_size() for p in full.built.model.parameters() if not p.requires_grad)
    frozen += sum(b.numel() * b.element_size() for b in full.built.model.buffers())
    assert planned.weights == frozen


def test_parameter_and_optimiser_components_match_torch():
    config = _config("llama-tiny", 2)
    torch.manual_seed(0)
    real = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in real.parameters())
    full = plan(PlanRequest(config, "tiny", method="full", batch=1, length=8, dtype="fp32"))
    assert full.trainable_params == params and full.trainable == full.gradients == 4 * params
    optimizer = torch.optim.AdamW(real.parameters())
    real(input_ids=torch.ones(1, 8, dtype=torch.long), labels=torch.ones(1, 8, dtype=torch.long)).loss.backward()
    optimizer.step()
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values() if t.dim() > 0)
    assert full.optimizer == state
    sgd = plan(PlanRequest(config, "tiny", method="b_only", rank=4, batch=1, length=8, dtype="bf16", optimizer="sgd"))
    assert sgd.optimizer == 0 and sgd.trainable_params == 2 * 2 * 64 * 4   # 2 layers x (q_proj, v_proj) B: 64 x 4
    assert sgd.trainable == 4 * sgd.trainable_params                       # asymlora's factors stay float32
    half = plan(PlanRequest(config, "tiny", method="full", batch=1, length=8, dtype="bf16"))
    assert half.trainable == 2 * params                                     # bf16 weights
    checkpointed = plan(PlanRequest(config, "tiny", method="full", batch=1, length=8, dtype="bf16",
                                    gradient_checkpointing=True))
    assert checkpointed.activations < half.activations


def test_memory_command_prints_components_and_refuses_bad_input(tmp_path, capsys):
    code, out, err = run_cli(["memory", "--model", "llama-tiny", "--method", "b_only,peft_lora", "--rank", "4",
                              "--batch-size", "2", "--max-length", "16", "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    assert "| b_only | 4 |" in out and "| peft_lora | 4 |" in out and "warning" not in err
    document = json.loads((tmp_path / "m" / "memory.json").read_text())
    b_only, lora = document["plans"]
    assert b_only["adapter_activations"] < lora["adapter_activations"]
    assert b_only["total"] == sum(b_only[k] for k in ("weights", "trainable", "gradients", "optimizer", "activations"))
    code, out, err = run_cli(["memory", "--model", "llama-tiny", "--method", "lora_fa", "--batch", "2"], capsys)
    assert code == 0 and "| peft_lora_fa |" in out                  # old spellings still read, one line each
    assert "'lora_fa' is deprecated; use 'peft_lora_fa'" in err and "'--batch' is deprecated" in err
    code, _, err = run_cli(["memory", "--model", "llama-tiny", "--method", "dora"], capsys)
    assert code == 2 and "unknown method 'dora'" in err
    code, _, err = run_cli(["memory", "--validate", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and "no such file" in err
