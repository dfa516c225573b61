"""The public API (``asymlora.__all__``): what it holds, its docstrings, and torchtune's adapter protocol."""

import inspect
import re

import pytest
from torch import nn

import asymlora as al
from asymlora import methods

FUNCTIONS = {name: getattr(al, name) for name in al.__all__ if inspect.isfunction(getattr(al, name))}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_public_function_has_typed_args_returns_and_raises(name):
    """Google-style sections: every parameter under ``Args:`` as ``name (type): …``, a typed
    ``Returns:`` (``Yields:`` for a context manager), and ``Raises:`` when the function raises."""
    function = inspect.unwrap(FUNCTIONS[name])
    doc = inspect.getdoc(FUNCTIONS[name]) or ""
    sections = dict(re.findall(r"^(Args|Returns|Yields|Raises):\n((?:(?: {4}.*)?\n?)*)", doc, re.MULTILINE))
    for parameter in inspect.signature(function).parameters.values():
        star = {parameter.VAR_KEYWORD: "**", parameter.VAR_POSITIONAL: "*"}.get(parameter.kind, "")
        typed = rf"^    {re.escape(star + parameter.name)}( \([^)]+\))?:" if star else \
            rf"^    {re.escape(parameter.name)} \([^)]+\):"
        assert re.search(typed, sections.get("Args", ""), re.MULTILINE), f"{name}: Args lacks {parameter.name} (type)"
    returned = sections.get("Returns") or sections.get("Yields")
    assert returned and re.match(r"    [\w.\[\], |]+: \S", returned), f"{name}: no typed Returns/Yields"
    if re.search(r"^\s+raise \w", inspect.getsource(function), re.MULTILINE):
        assert re.match(r"    \w+(Error|Exception): \S", sections.get("Raises", "")), f"{name}: no Raises"


def test_prepare_and_get_method_are_public_and_the_registry_s_own():
    assert al.prepare is methods.prepare and al.get_method is methods.get_method and al.MethodSpec is methods.MethodSpec
    assert al.get_method("B-only") is methods.METHODS["b_only"]
    with pytest.raises(ValueError, match="unknown method 'b_onyl'.*b_only"):
        al.get_method("b_onyl")


def _torchtune_get_adapter_params(model: nn.Module) -> dict:
    """torchtune.modules.peft.get_adapter_params, as torchtune 0.6 writes it (torchtune is not a
    dependency): each module's ``adapter_params()`` is a LIST of its own parameter names, consumed
    with ``remove``, and must be used up."""
    found = {}
    for k, v in model.named_modules():
        if hasattr(v, "adapter_params") and callable(v.adapter_params):
            current = v.adapter_params()
            for n, p in v.named_parameters(recurse=True):
                if n in current:
                    found[f"{k}.{n}" if k else n] = p
                    current.remove(n)
            assert current == [], f"adapter params {current} not converted"
    return found


@pytest.mark.parametrize("method, trained", [("b_only", "B"), ("a_only", "A"), ("lora", "AB")])
def test_adapter_params_follow_torchtune_s_protocol(tiny_model, method, trained):
    model = al.prepare(tiny_model("bert"), method, rank=2, targets=["query", "value"], seed=0)
    modules = al.adapted_modules(model)
    assert len(modules) == 4
    for module in modules.values():
        assert module.adapter_params() == list(trained)                     # names, trained factors only
        assert module.adapter_params() is not module.adapter_params()       # a fresh list each call
        assert list(module.trained_factor_params()) == list(trained)
        assert all(module.trained_factor_params()[f] is getattr(module, f) for f in trained)
    ours = al.get_adapter_params(model)
    expected = [f"{name}.{f}" for name in modules for f in trained]
    assert list(ours) == expected and ours == _torchtune_get_adapter_params(model)
    assert all(ours[key] is model.get_parameter(key) and ours[key].requires_grad for key in ours)
    # the classifier head is trainable (modules_to_save) but not an adapter parameter
    head = {n for n, p in model.named_parameters() if p.requires_grad} - set(ours)
    assert head == {"classifier.weight", "classifier.bias"}
    assert sum(p.numel() for p in ours.values()) == al.trainable_parameters(model) - 32 * 3 - 3


def test_get_adapter_params_is_empty_without_adapters_and_names_what_a_module_misnames(tiny_model):
    model = tiny_model("bert")
    assert al.get_adapter_params(model) == {}

    class Misnamed(nn.Linear):
        def adapter_params(self):
            return ["lora_a"]

    model.classifier = Misnamed(32, 3)
    with pytest.raises(AttributeError, match="lora_a"):
        al.get_adapter_params(model)
