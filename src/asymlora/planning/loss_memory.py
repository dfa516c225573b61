"""The loss's temporaries: what a training step's loss materialises beyond what autograd saves.

transformers' losses (``transformers.loss.loss_utils``) upcast the logits to float32 and call
``F.cross_entropy`` = ``log_softmax`` + ``nll_loss``. Autograd saves the log-softmax output
(``N × C`` float32, ``N`` positions, ``C`` classes), which the meta trace already counts among the
saved activations. At the start of backward two more ``N × C`` float32 tensors exist at once while
every other saved activation is still alive:

* ``nll_loss``'s backward writes the gradient of the log-probabilities (``zeros`` + scatter, ``N × C``);
* ``log_softmax``'s backward then writes the gradient of the logits (``N × C``) from it and the saved output.

So the term is ``2 · N · C · 4`` bytes, whatever the compute dtype (the upcast makes both float32;
a bf16 model's extra bf16 copy of the logits' gradient exists only after the saved log-softmax output
is released, so it never adds to this moment). Per task (:data:`LOSS_SHAPES`):

* ``causal_lm``: ``N = batch · length`` (the shifted labels keep every position, the last one
  ignored), ``C = vocab_size``;
* ``classification``: ``N = batch``, ``C = labels``.

Measured with ``torch.profiler(profile_memory=True)`` on SmolLM2 (1 × 64 tokens: two 12 MiB
``AUTOGRAD_DETAIL`` tensors and the 12 MiB saved log-softmax alive at the peak,
docs/results/quantized/peak_anatomy/) and asserted in tests/test_memory_planner.py.
"""

from __future__ import annotations

from typing import Callable

#: bytes per element of the loss's temporaries (the logits are upcast to float32 before the loss)
LOSS_ELEMENT_BYTES = 4
#: task -> ``(config, batch, length, labels) -> (positions N, classes C)``
LOSS_SHAPES: dict[str, Callable[[object, int, int, int], tuple[int, int]]] = {
    "causal_lm": lambda config, batch, length, labels: (batch * length, config.vocab_size),
    "classification": lambda config, batch, length, labels: (batch, labels),
}


def loss_temporaries(config, task: str, batch: int, length: int, labels: int = 3) -> int:
    """Bytes the loss holds at the start of backward beyond its saved log-softmax output.

    Args:
        config: a transformers config (``vocab_size`` read for a causal LM).
        task (str): a key of :data:`LOSS_SHAPES`.
        batch (int): sequences per step ``B``.
        length (int): tokens per sequence ``T``.
        labels (int): classes of a classification head.

    Returns:
        int: ``2 · N · C · 4`` (see the module docstring).

    Raises:
        ValueError: an unknown task.
    """
    if task not in LOSS_SHAPES:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(LOSS_SHAPES)}")
    positions, classes = LOSS_SHAPES[task](config, batch, length, labels)
    return 2 * positions * classes * LOSS_ELEMENT_BYTES
