"""Does a 4-bit base cost B-only quality? Train B-only on the base in ``bits`` bits, then score the
ShareGPT validation pairs (``asymlora bench quantized --quality``).

Training: the ShareGPT training pairs (:mod:`asymlora.tasks.instructions`, Alpaca template, loss
on the response tokens only, :class:`asymlora.tasks.families.causal_lm.CausalLM` preprocessing),
taken in their stored order, ``batch`` pairs per step padded to the longest (at most ``length``
tokens), AdamW at ``lr``, for ``steps`` steps. The same pairs in the same order for every bit width.

Validation loss: ``Σ token losses / Σ response tokens`` over every validation pair (153), the
same pairs, cut and padding for every bit width, computed in batches of ``batch`` without grad.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass
class QualitySpec:
    """One quality run: B-only (rank, alpha, all-linear, no dropout) on a ``bits``-bit base."""

    model: str = "smollm2"
    bits: int = 32
    backend: str = "bitsandbytes"
    steps: int = 60
    batch: int = 4
    length: int = 256
    rank: int = 32
    alpha: float = 64.0
    lr: float = 2e-4
    seed: int = 0
    threads: int = 2
    eval_limit: int | None = None


def _batches(dataset, collate, size: int, count: int | None = None):
    rows = [dataset[i] for i in range(len(dataset))]
    groups = [rows[i:i + size] for i in range(0, len(rows), size)]
    return [collate(g) for g in (groups if count is None else groups[:count])]


def validation_loss(model, batches) -> tuple[float, int]:
    """``(Σ token losses / Σ tokens, Σ tokens)`` over ``batches`` (labels -100 ignored)."""
    import torch
    from torch.nn import functional as F

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            losses = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                     ignore_index=-100, reduction="sum")
            total += float(losses)
            tokens += int((labels != -100).sum())
    model.train()
    return total / max(tokens, 1), tokens


def run_quality(spec: QualitySpec, progress=print) -> dict:
    """Train B-only ``spec.steps`` steps on the ``spec.bits``-bit base; returns the figures.

    Returns:
        dict: the spec, ``train_losses`` (one per step), ``validation_loss``, ``validation_tokens``,
        ``validation_loss_before`` (the base itself), ``train_s``.
    """
    import torch
    from transformers import DataCollatorForSeq2Seq

    from asymlora.adapters.inject import inject
    from asymlora.methods import get_method
    from asymlora.models import load_tokenizer
    from asymlora.models.quantized import load_quantized_causal_lm
    from asymlora.tasks import get_family, get_task

    torch.set_num_threads(spec.threads)
    tokenizer = load_tokenizer(spec.model)
    task = get_task("sharegpt")
    splits = task.load(None, spec.seed)
    splits["train"] = splits["train"].select(range(min(spec.steps * spec.batch, len(splits["train"]))))
    prepared = get_family("causal_lm").preprocess(splits, tokenizer, task, spec.length).splits
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")
    train = _batches(prepared["train"], collate, spec.batch, spec.steps)
    held = prepared["validation"]
    held = held.select(range(min(spec.eval_limit, len(held)))) if spec.eval_limit else held
    valid = _batches(held, collate, spec.batch)
    model = load_quantized_causal_lm(spec.model, spec.bits, spec.backend)
    before, _ = validation_loss(model, valid)
    inject(model, get_method("b_only").adapter_config(spec.rank, spec.alpha, 0.0, "all-linear", spec.seed, []))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=spec.lr)
    model.train()
    losses, start = [], time.perf_counter()
    for step, batch in enumerate(train):
        optimizer.zero_grad(set_to_none=True)
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        progress(f"  {spec.bits}-bit step {step + 1}/{len(train)}: loss {losses[-1]:.4f}")
    elapsed = time.perf_counter() - start
    after, tokens = validation_loss(model, valid)
    return {**asdict(spec), "train_losses": losses, "validation_loss_before": before, "validation_loss": after,
            "validation_tokens": tokens, "validation_pairs": len(held), "train_s": elapsed}
