"""Causal language modelling on (prompt, response) pairs: instruction tuning, decoder-only summaries.

Model: ``AutoModelForCausalLM`` (no fresh head: the LM head is pretrained and stays frozen).

Preprocessing of one example, with ``T = max_length``::

    prompt tokens p (with the tokenizer's BOS, if it adds one)   response tokens r + [EOS]
    (EOS: the tokenizer's, else its SEP; :func:`end_token_id`)
    input_ids = p' + r'            labels = [-100] * len(p') + r'     (loss on the response only)

The response tokens are those it has in running text after the prompt (:func:`response_ids`): a
prompt ending in ``"Summary:"`` is followed by ``" The …"`` (BPE: ``ĠThe``), exactly the tokens the
model produces when it continues the prompt at generation time, not by ``"The …"`` tokenised alone.

If ``len(p) + len(r) > T`` the prompt keeps its LAST ``max(T - len(r), T // 2)`` tokens (its start is
cut) and the response its first ``T - len(p')`` tokens (its end is cut). Nothing is dropped
silently: ``notes`` counts the prompts and responses cut per split, and an example whose response is
empty (before or after cutting) is skipped and counted.

Loss: the model's mean over response tokens, so ``token_level_loss = True`` (the Trainer passes
``num_items_in_batch``; gradient accumulation and DDP then weight every token equally).
Scoring: the evaluation loss (main metric ``loss``, lower is better) and ``token_accuracy`` = 100 ·
share of response tokens whose next-token argmax is right (computed from argmax ids, so the full
``(batch, seq, vocab)`` logits are never accumulated).

Generation (decoder-only summaries, :meth:`CausalLM.generate`): each prompt is tokenised as in
training (the tokenizer's BOS, if it adds one), keeps its last ``max_source_length`` tokens (cut
prompts are counted), is padded on the LEFT to the batch's longest, and the model continues it
greedily (``num_beams = 1``) or with beam search until the end-of-sequence token (the one training
appended to every response) or ``max_new_tokens``. Only the continuation is decoded.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .base import Generated, PreparedData, TaskFamily, TrainerOptions, register_family

IGNORE = -100


def encode_pair(prompt_ids: list[int], response_ids: list[int], max_length: int) -> tuple[list[int], list[int], str]:
    """``(input_ids, labels, what was cut)`` for one example; see the module docstring for the rule.

    ``what`` is ``""``, ``"prompt"``, ``"response"``, ``"both"`` or ``"empty"`` (no response left)."""
    if not response_ids:
        return [], [], "empty"
    p, r = list(prompt_ids), list(response_ids)
    cut = set()
    if len(p) + len(r) > max_length:
        keep_prompt = min(len(p), max(max_length - len(r), max_length // 2))
        if keep_prompt < len(p):
            p = p[len(p) - keep_prompt:]
            cut.add("prompt")
        if len(p) + len(r) > max_length:
            r = r[:max_length - len(p)]
            cut.add("response")
    if not r:
        return [], [], "empty"
    what = "both" if len(cut) == 2 else (cut.pop() if cut else "")
    return p + r, [IGNORE] * len(p) + r, what


def response_ids(processor, prompt: str, response: str, prompt_ids: list[int]) -> list[int]:
    """Tokens of ``response`` as it follows ``prompt`` in running text: ``prompt + " " + response``
    (no space when the prompt ends in white space) tokenised together, minus ``prompt_ids`` (the
    prompt's own tokens). If the joint tokens do not start with ``prompt_ids`` (a merge across the
    boundary), the response is tokenised alone, with the same leading space."""
    text = str(response).strip()
    joined = text if not prompt or prompt[-1].isspace() else " " + text
    together = processor(prompt + joined, add_special_tokens=True)["input_ids"]
    if together[:len(prompt_ids)] == list(prompt_ids) and len(together) > len(prompt_ids):
        return list(together[len(prompt_ids):])
    return processor(joined, add_special_tokens=False)["input_ids"]


def end_token_id(processor) -> int | None:
    """The token that ends a response: the tokenizer's EOS, else its SEP (WordPiece tokenizers such as
    the tiny test models' have no EOS; their model configs use SEP as end of sequence)."""
    eos = getattr(processor, "eos_token_id", None)
    return eos if eos is not None else getattr(processor, "sep_token_id", None)


class CausalLM(TaskFamily):
    name = "causal_lm"
    description = "prompt -> response; AutoModelForCausalLM; loss on response tokens; eval loss, token accuracy"
    token_level_loss = True

    def load_model(self, ref, task, seed):
        from asymlora.models import load_for_causal_lm

        return load_for_causal_lm(ref, seed=seed)

    def preprocess(self, splits, processor, task, max_length):
        import datasets

        eos = end_token_id(processor)
        notes: dict[str, dict[str, int]] = {}
        out = {}
        for split, ds in splits.items():
            counts: Counter = Counter()
            rows = {"input_ids": [], "attention_mask": [], "labels": []}
            for row in ds:
                prompt, response = task.pair(row)
                p = processor(prompt, add_special_tokens=True)["input_ids"]
                r = response_ids(processor, prompt, response, p) if str(response).strip() else []
                ids, labels, what = encode_pair(p, r + ([eos] if r and eos is not None else []), max_length)
                counts[what or "kept"] += 1
                if what == "empty":
                    continue
                rows["input_ids"].append(ids)
                rows["attention_mask"].append([1] * len(ids))
                rows["labels"].append(labels)
            if not rows["input_ids"]:
                raise ValueError(f"task {task.name!r}: split {split!r} has no example with a non-empty response")
            notes[split] = {"examples": len(ds), "skipped_empty_response": counts["empty"],
                            "prompt_cut": counts["prompt"] + counts["both"],
                            "response_cut": counts["response"] + counts["both"]}
            out[split] = datasets.Dataset.from_dict(rows)
        return PreparedData(datasets.DatasetDict(out), {"truncation": notes, "max_length": max_length})

    def collator(self, processor, model):
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(processor, padding=True, label_pad_token_id=IGNORE)

    def generate(self, model, processor, sources, generation, max_source_length, batch_size=8):
        """Continue each prompt (left-padded batches) with ``generation``; see the module docstring."""
        import torch

        from .seq2seq import decode, decoding, generated_lengths, generation_config_of

        config = generation_config_of(model, generation)
        eos = end_token_id(processor)
        pad = processor.pad_token_id if processor.pad_token_id is not None else eos
        config.pad_token_id = pad
        if eos is not None:
            config.eos_token_id = eos
        device = next(model.parameters()).device
        texts, lengths, cut = [], [], 0
        for start in range(0, len(sources), batch_size):
            batch = sources[start:start + batch_size]
            prompts = [processor(str(s), add_special_tokens=True)["input_ids"] for s in batch]
            cut += sum(len(p) > max_source_length for p in prompts)
            prompts = [p[-max_source_length:] for p in prompts]
            width = max(len(p) for p in prompts)
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
            with torch.no_grad(), decoding(model, config):
                out = model.generate(input_ids=ids, attention_mask=mask)
            new = out[:, width:].cpu()
            texts += decode(new, processor)
            lengths += generated_lengths(new, config.eos_token_id)
        return Generated(texts, lengths, cut)

    def trainer_options(self, task, processor, config):
        def argmax_ids(logits, labels):
            logits = logits[0] if isinstance(logits, tuple) else logits
            return logits.argmax(dim=-1)

        return TrainerOptions(preprocess_logits=argmax_ids)

    def metrics_fn(self, task, processor):
        def compute(prediction):
            predicted = np.asarray(prediction.predictions)[:, :-1]
            labels = np.asarray(prediction.label_ids)[:, 1:]
            mask = labels != IGNORE
            total = int(mask.sum())
            return {"token_accuracy": 100.0 * float((predicted[mask] == labels[mask]).sum()) / max(total, 1)}

        return compute


CAUSAL_LM = register_family(CausalLM())
