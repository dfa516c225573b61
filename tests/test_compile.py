"""torch.compile on adapted models: no graph break in the adapted layer (v2 masks), the compiled
layer's forward and backward equal eager's, and a clean refusal where compiling cannot work."""

import pytest
import torch
import torch._dynamo as dynamo
from torch import nn

from asymlora import AdapterConfig
from asymlora.adapters.compiled import compile_problem, require_compile
from asymlora.adapters.inject import adapted_modules, inject
from asymlora.adapters.linear import AdaptedLinear


def _explain(model, batch):
    dynamo.reset()
    try:
        return dynamo.explain(model)(input_ids=batch)
    finally:
        dynamo.reset()


def test_a_whole_adapted_model_traces_as_one_graph_with_v2_masks(tiny_model, token_batch):
    config = AdapterConfig(rank=4, alpha=8, dropout=0.2, init_B="gaussian", targets="all-linear")
    model = inject(tiny_model("llama"), config).train()
    calls = [m.mask_state()["calls"] for m in adapted_modules(model).values()]
    explained = _explain(model, token_batch)
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons
    # tracing ran the forward once: every layer's counter advanced by one, through the traced graph
    assert [m.mask_state()["calls"] for m in adapted_modules(model).values()] == [c + 1 for c in calls]


@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace")
def test_v1_masks_break_the_graph_in_the_adapted_layer(tiny_model, token_batch):
    """The control: the legacy stream draws its seed in Python (hashlib, numpy), which dynamo cannot trace."""
    config = AdapterConfig(rank=4, alpha=8, dropout=0.2, init_B="gaussian", targets="all-linear", mask_stream="v1")
    explained = _explain(inject(tiny_model("llama"), config).train(), token_batch)
    assert explained.graph_break_count > 0
    assert any("mask_stream" in str(frame.filename) or "dropout" in str(frame.filename) or "linear" in str(frame.filename)
               for reason in explained.break_reasons for frame in reason.user_stack)


def _step(layer, x, calls=0):
    layer.load_mask_state({"base": layer.masks.base, "calls": calls})
    layer.B.grad = None
    x = x.detach().clone().requires_grad_(True)
    loss = layer(x).square().mean()
    loss.backward()
    return loss.detach(), x.grad, layer.B.grad.clone()


def test_compiled_layer_forward_and_backward_equal_eager():
    """CPU inductor, ``fullgraph=True`` (which fails on any graph break), two steps from two counter values."""
    torch.manual_seed(0)
    layer = AdaptedLinear(nn.Linear(24, 20), "enc.q", AdapterConfig(rank=4, alpha=8, dropout=0.25,
                                                                    init_B="gaussian")).train()
    x = torch.randn(3, 7, 24)
    dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True)
    try:
        for calls in (0, 5):
            eager = _step(layer, x, calls)
            fast = _step(compiled, x, calls)
            assert layer.mask_state()["calls"] == calls + 1          # the compiled graph advanced the counter
            for mine, theirs in zip(fast, eager):
                torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
        assert not torch.equal(_step(layer, x, 0)[1], _step(layer, x, 1)[1])  # another call, another mask
    finally:
        dynamo.reset()


def test_compile_is_refused_in_one_line_without_a_cpp_compiler(monkeypatch):
    assert compile_problem("cpu") is None                               # this machine can compile
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    problem = compile_problem("cpu")
    assert problem is not None and "\n" not in problem and "C++ compiler" in problem and "without compiling" in problem
    with pytest.raises(ValueError, match="needs a C\\+\\+ compiler"):
        require_compile("cpu")


def _traced_targets(module, *inputs):
    """The operators of the graph dynamo captures for ``module(*inputs)`` (forward), as strings."""
    targets = []

    def backend(graph_module, example_inputs):
        for module in graph_module.modules():               # autograd Functions trace into sub-graphs
            if isinstance(module, torch.fx.GraphModule):
                targets.extend(str(node.target) for node in module.graph.nodes)
        return graph_module.forward

    dynamo.reset()
    try:
        torch.compile(module, backend=backend, fullgraph=True)(*inputs)
    finally:
        dynamo.reset()
    return targets


def test_compiled_cpu_graphs_call_the_native_mask_loop_as_one_operator():
    from asymlora.adapters.mask_hash import forced_mask_hash
    from asymlora.adapters.mask_native import native_available

    if not native_available():
        pytest.skip("no C compiler builds the native kernel here")
    torch.manual_seed(0)
    for train in ("B", "AB"):                                # the lean Function, and autograd through the op
        layer = AdaptedLinear(nn.Linear(24, 20), "enc.q", AdapterConfig(rank=4, alpha=8, dropout=0.25, train=train,
                                                                        init_B="gaussian")).train()
        x = torch.randn(3, 7, 24, requires_grad=True)
        targets = " ".join(_traced_targets(layer, x))
        assert "asymlora.native_zero" in targets and "bitwise_xor" not in targets, (train, targets)
        with forced_mask_hash("torch"):                      # another engine forced: the hash is traced as ops
            targets = " ".join(_traced_targets(layer, x))
        assert "asymlora.native_zero" not in targets and "bitwise_xor" in targets


def test_lora_gradients_through_the_compiled_operator_equal_eager():
    from asymlora.adapters.mask_native import native_available

    if not native_available():
        pytest.skip("no C compiler builds the native kernel here")
    torch.manual_seed(0)
    layer = AdaptedLinear(nn.Linear(24, 20), "enc.q", AdapterConfig(rank=4, alpha=8, dropout=0.25, train="AB",
                                                                    init_B="gaussian")).train()
    x = torch.randn(3, 7, 24)
    results = []
    for compiled in (False, True):
        layer.load_mask_state({"base": layer.masks.base, "calls": 5})
        layer.zero_grad(set_to_none=True)
        leaf = x.clone().requires_grad_(True)
        dynamo.reset()
        run = torch.compile(layer, fullgraph=True) if compiled else layer
        run(leaf).square().mean().backward()
        results.append((leaf.grad, layer.A.grad, layer.B.grad))
    dynamo.reset()
    for eager, traced in zip(*results):
        assert torch.allclose(eager, traced, atol=1e-6, rtol=1e-5)
