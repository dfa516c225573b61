"""methods.py: every registered method freezes the right tensors and trains the right number of scalars."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from asymlora.adapters.inject import adapted_modules
from asymlora.methods import METHODS, adalora_schedule, get_method, head_parameters, prepare

HIDDEN, LAYERS, LABELS, RANK = 32, 2, 3, 4
HEAD = HIDDEN * LABELS + LABELS  # BERT's classifier: Linear(hidden, labels)


def tiny_model(seed: int = 0) -> BertForSequenceClassification:
    config = BertConfig(vocab_size=97, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=2,
                        intermediate_size=64, num_labels=LABELS, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    return BertForSequenceClassification(config)


def step(model) -> None:
    x = torch.randint(0, 97, (4, 7), generator=torch.Generator().manual_seed(1))
    model(input_ids=x, labels=torch.tensor([0, 1, 2, 0])).loss.backward()


ADAPTER_METHODS = [name for name, spec in METHODS.items() if spec.kind == "adapter"]


def test_registry_has_the_papers_methods_with_labels():
    expected = {"lora", "b_only", "a_only", "b_only_km", "b_only_svd", "a_only_svd", "lora_svd_A", "lora_rand_A",
                "lora_svd_B", "lora_rand_B", "a_only_km", "lora_km_B", "b_only_banded", "b_only_dep_rows",
                "b_only_dep_cols", "swapped", "adalora", "full", "linear_probe"}
    assert expected <= set(METHODS)
    for spec in METHODS.values():
        assert spec.label and spec.description
    assert METHODS["b_only"].label == r"$\hat B_0 A_{rand}$"
    assert (METHODS["b_only"].train, METHODS["b_only"].init_A, METHODS["b_only"].init_B) == ("B", "orthonormal", "zero")
    assert (METHODS["a_only"].train, METHODS["a_only"].init_A, METHODS["a_only"].init_B) == ("A", "zero", "orthonormal")
    assert (METHODS["lora"].train, METHODS["lora"].init_A) == ("AB", "kaiming")
    assert (METHODS["swapped"].train, METHODS["swapped"].init_A, METHODS["swapped"].init_B) == ("AB", "zero", "orthonormal")


@pytest.mark.parametrize("name", ADAPTER_METHODS)
def test_adapter_methods_freeze_and_count(name):
    spec = METHODS[name]
    model = prepare(tiny_model(), name, rank=RANK, seed=3, head_modules=["classifier"])
    modules = adapted_modules(model)
    assert len(modules) == 2 * LAYERS  # query and value of each layer
    per_factor = {"A": RANK * HIDDEN, "B": HIDDEN * RANK}
    expected = len(modules) * sum(per_factor[f] for f in spec.train) + HEAD
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    for module in modules.values():
        assert module.train_mode == spec.train
        assert not module.base.weight.requires_grad
        for factor in "AB":
            tensor = getattr(module, factor)
            assert isinstance(tensor, torch.nn.Parameter) == (factor in spec.train)
    # the frozen orthonormal factor is orthonormal
    for module in modules.values():
        if "A" not in spec.train and spec.init_A == "orthonormal":
            assert torch.allclose(module.A @ module.A.T, torch.eye(RANK), atol=1e-5)
        if "B" not in spec.train and spec.init_B == "orthonormal":
            assert torch.allclose(module.B.T @ module.B, torch.eye(RANK), atol=1e-5)
    # gradients reach exactly the trainable tensors
    step(model)
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n


def test_svd_variants_use_the_pretrained_weight():
    model = tiny_model()
    w0 = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    prepared = prepare(model, "b_only_svd", rank=RANK)
    A = adapted_modules(prepared)["bert.encoder.layer.0.attention.self.query"].A
    _, _, vh = torch.linalg.svd(w0)
    # same subspace as the top-r right singular vectors of W0 (signs may differ)
    assert torch.allclose((A @ vh[:RANK].T).abs(), torch.eye(RANK), atol=1e-4)


def test_adapter_seed_changes_the_frozen_factor_only_through_the_seed():
    a = adapted_modules(prepare(tiny_model(), "b_only", rank=RANK, seed=1))
    b = adapted_modules(prepare(tiny_model(), "b_only", rank=RANK, seed=1))
    c = adapted_modules(prepare(tiny_model(), "b_only", rank=RANK, seed=2))
    name = next(iter(a))
    assert torch.equal(a[name].A, b[name].A) and not torch.equal(a[name].A, c[name].A)


def test_full_and_linear_probe():
    full = prepare(tiny_model(), "full", head_modules=["classifier"])
    assert all(p.requires_grad for p in full.parameters())
    probe = prepare(tiny_model(), "linear_probe", head_modules=["classifier"])
    assert sum(p.numel() for p in probe.parameters() if p.requires_grad) == HEAD
    step(probe)
    assert probe.bert.embeddings.word_embeddings.weight.grad is None
    with pytest.raises(ValueError, match="linear_probe"):
        prepare(tiny_model(), "linear_probe", head_modules=["no_such_head"])


def test_adalora_is_peft_with_total_step_and_head():
    model = prepare(tiny_model(), "adalora", rank=RANK, head_modules=["classifier"], total_steps=100)
    config = model.peft_config["default"]
    assert config.total_step == 100 and config.target_r == RANK and config.init_r == 6
    assert config.tinit < config.total_step - config.tfinal
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_E" in n for n in names) and any("classifier" in n for n in names)
    with pytest.raises(ValueError, match="total_steps"):
        prepare(tiny_model(), "adalora", rank=RANK, total_steps=None)
    assert adalora_schedule(8, 1000)["init_r"] == 12


def test_get_method_suggests_the_closest_name():
    assert get_method("B-ONLY").name == "b_only"
    assert get_method("lora_svd_a").name == "lora_svd_A"
    with pytest.raises(ValueError, match="did you mean 'b_only'"):
        get_method("b_onyl")
    with pytest.raises(ValueError, match="rank"):
        prepare(tiny_model(), "lora", rank=0)


def test_head_parameters_finds_the_classifier():
    assert sum(p.numel() for p in head_parameters(tiny_model(), ["classifier"])) == HEAD


def test_every_label_renders_in_plots():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.mathtext import MathTextParser

    parser = MathTextParser("agg")
    for spec in METHODS.values():
        if "$" in spec.label:
            parser.parse(spec.label)  # raises ValueError on mathtext the plots cannot draw
