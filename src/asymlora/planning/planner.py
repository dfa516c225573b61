"""Peak training memory from a model's config alone: weights, trainable parameters, gradients,
optimiser states and saved activations.

``peak ≈ weights + trainable + gradients + optimiser + saved activations``, each in bytes:

* **weights**: frozen parameters and buffers (a B-only model's frozen A is a buffer), at their
  dtype (the base model in ``dtype``; PEFT keeps its adapters in float32, asymlora its factors in
  float32: whatever the builders do is what the meta model holds); with ``bits`` (4 or 8) the
  blocks' linear weights are counted packed instead (:mod:`asymlora.planning.bits`: QLoRA's
  NF4 with double quantisation, or LLM.int8), the rest of the model staying in ``dtype``;
* **trainable**: the trained parameters; **gradients**: one per trained element, same dtype;
* **optimiser** (:data:`OPTIMISERS`): AdamW two states per trained element in its dtype (what
  ``torch.optim.AdamW`` allocates), 8-bit AdamW two one-byte states plus one float32 scale per
  256-element block of each, SGD none (no momentum);
* **saved activations**: what autograd saves for backward, by the **per-layer rule**: the step is
  traced on the meta device (:mod:`asymlora.planning.trace`) for the model cut to 1 and to 2
  layers; ``per_layer = S(2) − S(1)``, ``rest = S(1) − per_layer`` (embeddings, head, loss), and
  for L layers ``S(L) = rest + L · per_layer``. Both the total and the adapter-attributable part
  (saved inside adapter code, as the benchmark counts it) follow this rule.
  With gradient checkpointing (every block recomputed in backward), the rule becomes
  ``rest + L · (B · T · hidden · bytes) + per_layer``: each block keeps only its input, and one
  block's activations exist at a time during its recomputation.

``total`` is the sum: activations are all alive at the end of forward, when the optimiser states and
(from the second step on) the gradient buffers already exist. ``total`` is what the paper's tables
report and is unchanged by the terms below.

**peak** (:mod:`asymlora.planning.profiles`) adds what exists at the moment the step peaks, each a
column of its own: ``peak = runtime + checkpoint map + total + max(loss temporaries, layer transient)``:

* **loss temporaries** (:mod:`asymlora.planning.loss_memory`): the two float32 ``N × C`` gradients
  the loss's backward writes while every activation is still saved (``2 · B · T · vocab · 4`` for a
  causal LM); on a GPU as on the CPU;
* **layer transient** (:func:`asymlora.planning.quantized_saves.dequantised_transient`): a quantized
  base's largest dense weight, dequantised for one matmul (0 for a dense base);
* **runtime** (``--device cpu`` only): the resident memory of a fresh interpreter with the libraries
  (:mod:`asymlora.planning.runtime`);
* **checkpoint map** (``--device cpu``, 4- or 8-bit base): the dense checkpoint bytes of the packed
  weights, resident in the memory map they were quantized from
  (:func:`asymlora.planning.bits.checkpoint_linear_bytes`; element size from the config's ``dtype``).

With ``bits`` = 8 the trace also keeps each base linear's input, as bitsandbytes' int8 layers do
(:func:`asymlora.planning.quantized_saves.int8_input_rule`): that part is in ``activations``.
What the allocator keeps beyond live tensors is not predicted (docs/quantized.md).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch

from asymlora.bench.configs import Settings
from asymlora.models import head_module_name
from asymlora.planning.bits import check_bits, checkpoint_linear_bytes, quantized_saving
from asymlora.planning.loss_memory import loss_temporaries
from asymlora.planning.profiles import device_profile
from asymlora.planning.quantized_saves import dequantised_transient
from asymlora.planning.trace import METHODS, trace

GIB = float(1 << 30)

#: Optimiser -> bytes of state per trained element of a given element size.
OPTIMISERS = {
    "adamw": lambda element: 2 * element,
    "adamw8bit": lambda element: 2 * (1 + 4 / 256),
    "sgd": lambda element: 0,
}
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: a model config (``config``, a transformers config) and the training setting."""

    config: object
    description: str
    method: str = "b_only"
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    targets: tuple[str, ...] = ("q_proj", "v_proj")
    batch: int = 16
    length: int = 512
    dtype: str = "bf16"
    task: str = "causal_lm"
    labels: int = 3
    gradient_checkpointing: bool = False
    optimizer: str = "adamw"
    bits: int | None = None     # base linear weights stored in 4 / 8 bits (None: in ``dtype``)
    device: str = "cuda"        # a key of asymlora.planning.profiles.DEVICE_PROFILES (what peak counts)

    def settings(self) -> Settings:
        head = None if self.task == "causal_lm" else head_module_name(self.config.model_type)
        return Settings(rank=self.rank, alpha=self.alpha, dropout=self.dropout, targets=list(self.targets),
                        head=head)


@dataclass
class MemoryPlan:
    """Predicted bytes per component (see the module docstring) and the per-layer rule behind them."""

    model: str
    method: str
    layers: int
    weights: int
    trainable: int
    gradients: int
    optimizer: int
    activations: int
    adapter_activations: int
    per_layer_activations: int
    rest_activations: int
    trainable_params: int
    loss_temporaries: int = 0
    layer_transient: int = 0
    runtime: int = 0
    checkpoint_map: int = 0
    device: str = "cuda"

    @property
    def total(self) -> int:
        """Weights + trainable + gradients + optimiser + saved activations (the paper's figure)."""
        return self.weights + self.trainable + self.gradients + self.optimizer + self.activations

    @property
    def peak(self) -> int:
        """``runtime + total + max(loss temporaries, layer transient)`` (module docstring)."""
        return self.runtime + self.checkpoint_map + self.total + max(self.loss_temporaries, self.layer_transient)

    def as_dict(self) -> dict:
        return {**asdict(self), "total": self.total, "peak": self.peak}

    def gib(self) -> dict:
        return {k: self.as_dict()[k] / GIB for k in
                ("weights", "trainable", "gradients", "optimizer", "activations", "total", "loss_temporaries",
                 "layer_transient", "runtime", "checkpoint_map", "peak")}


def _layers(config) -> int:
    return config.num_hidden_layers


def _with_layers(config, layers: int):
    cut = copy.deepcopy(config)
    cut.num_hidden_layers = layers
    if getattr(cut, "layer_types", None) is not None:
        cut.layer_types = cut.layer_types[:layers]
    return cut


#: Old planner method names (PEFT's baselines before they were called ``peft_*``) -> the current ones.
OLD_METHOD_NAMES = {"lora": "peft_lora", "adalora": "peft_adalora", "lora_fa": "peft_lora_fa"}


def validate(request: PlanRequest) -> None:
    """Raise ValueError naming the first bad setting.

    Raises:
        ValueError: an unknown method, optimiser, dtype, task, bit width or device, or a size below 1.
    """
    if request.method not in METHODS:
        raise ValueError(f"unknown method {request.method!r}; choose one of {', '.join(METHODS)}")
    if request.optimizer not in OPTIMISERS:
        raise ValueError(f"unknown optimizer {request.optimizer!r}; choose one of {', '.join(OPTIMISERS)}")
    if request.dtype not in DTYPES:
        raise ValueError(f"unknown dtype {request.dtype!r}; choose one of bf16, fp16, fp32")
    for name, flag in (("rank", "rank"), ("batch", "batch-size"), ("length", "max-length")):
        if getattr(request, name) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(request, name)}")
    if request.task not in ("causal_lm", "classification"):
        raise ValueError(f"unknown task {request.task!r}; choose causal_lm or classification")
    check_bits(request.bits)
    device_profile(request.device)


def plan(request: PlanRequest) -> MemoryPlan:
    """Predict the peak training memory of ``request`` (nothing is loaded or allocated)."""
    validate(request)
    dtype = DTYPES[request.dtype]
    config = copy.deepcopy(request.config)
    if request.task == "classification":
        config.num_labels = request.labels
        if getattr(config, "pad_token_id", None) is None:
            config.pad_token_id = 0
    layers = _layers(config)
    settings = request.settings()
    one, two = (trace(_with_layers(config, n), request.task, request.method, settings, request.batch, request.length,
                      dtype, request.bits) for n in (1, 2))
    per_layer = two.saved.activation_bytes - one.saved.activation_bytes
    per_layer_adapter = two.saved.adapter_activation_bytes - one.saved.adapter_activation_bytes
    rest = one.saved.activation_bytes - per_layer
    rest_adapter = one.saved.adapter_activation_bytes - per_layer_adapter
    if request.gradient_checkpointing:
        kept = request.batch * request.length * config.hidden_size * torch.empty((), dtype=dtype).element_size()
        activations = rest + layers * kept + per_layer
        adapter = rest_adapter + per_layer_adapter
    else:
        activations = rest + layers * per_layer
        adapter = rest_adapter + layers * per_layer_adapter
    # parameters: per layer from the same two traces, scaled to L layers
    weights = _extrapolate(_bytes(one.built.model, frozen=True), _bytes(two.built.model, frozen=True), layers)
    weights -= _extrapolate(quantized_saving(one.built.model, request.bits),
                            quantized_saving(two.built.model, request.bits), layers)
    trainable = _extrapolate(_bytes(one.built.model, frozen=False), _bytes(two.built.model, frozen=False), layers)
    numel = _extrapolate(_numel(one.built.model), _numel(two.built.model), layers)
    profile = device_profile(request.device)
    element = trainable / numel if numel else 0
    optimizer = int(round(numel * OPTIMISERS[request.optimizer](element)))
    return MemoryPlan(request.description, request.method, layers, weights, trainable, trainable, optimizer,
                      activations, adapter, per_layer, rest, numel,
                      loss_temporaries=loss_temporaries(config, request.task, request.batch, request.length,
                                                        request.labels),
                      layer_transient=dequantised_transient(two.built.model, request.bits, dtype),
                      runtime=profile.runtime(request.bits), device=request.device,
                      checkpoint_map=_checkpoint_map(one, two, layers, request.bits, config) if profile.maps_checkpoint
                      else 0)


def _checkpoint_map(one, two, layers: int, bits: int | None, config) -> int:
    """:func:`checkpoint_linear_bytes` of the two traced models, extrapolated to ``layers``; the element
    size is the config's stored ``dtype`` (float32 when it names none)."""
    stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    stored = getattr(torch, stored) if isinstance(stored, str) else stored
    element = torch.empty((), dtype=stored).element_size()
    return _extrapolate(checkpoint_linear_bytes(one.built.model, bits, element),
                        checkpoint_linear_bytes(two.built.model, bits, element), layers)


def _extrapolate(at_one: int, at_two: int, layers: int) -> int:
    return at_one + (layers - 1) * (at_two - at_one)


def _bytes(model: torch.nn.Module, frozen: bool) -> int:
    tensors = [p for p in model.parameters() if p.requires_grad != frozen]
    if frozen:
        tensors += list(model.buffers())
    seen, total = set(), 0
    for tensor in tensors:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def _numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
