"""Sequence-to-sequence generation (summarisation): encoder-decoder models such as BART and T5.

Model: ``AutoModelForSeq2SeqLM`` (no fresh head). Preprocessing: the task's ``pair(row)`` gives
``(source, target)``; the source is truncated to ``max_length`` tokens, the target to
``task.generation.max_target_length`` (targets that were cut are counted in ``notes``, never hidden).
Loss: token-level cross-entropy, ``token_level_loss = True``. Evaluation generates with beam search
(``Seq2SeqTrainer(predict_with_generate=True)``; beams, length penalty, no-repeat n-gram size and
the maximum new tokens come from ``task.generation``) and scores the decoded texts with the task's
metric (ROUGE F-measures ×100, :func:`asymlora.tasks.rouge.rouge`).

Outside the Trainer, :meth:`Seq2Seq.generate` writes summaries for a list of sources with the same
settings (the summarisation evaluator, :mod:`asymlora.evaluation.summarise`). Only encoder-decoder
architectures are accepted (:meth:`Seq2Seq.check_model`: the model type must have a
``AutoModelForSeq2SeqLM`` class); a decoder-only model is refused before anything loads.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import numpy as np

from .base import Generated, PreparedData, TaskFamily, TrainerOptions, model_type_of, register_family

IGNORE = -100


def decode(token_ids, tokenizer) -> list[str]:
    """Token ids (``-100`` for padding) -> stripped texts."""
    ids = np.asarray(token_ids)
    ids = np.where(ids < 0, tokenizer.pad_token_id, ids)
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def generated_lengths(rows, eos_token_id: int | None, skip: int = 0) -> list[int]:
    """Tokens generated per row of ``rows`` (shape ``(batch, length)``) after its first ``skip``
    (the decoder start, or the prompt): up to and including the first end-of-sequence token."""
    eos = [] if eos_token_id is None else np.atleast_1d(np.asarray(eos_token_id))
    lengths = []
    for row in np.asarray(rows)[:, skip:]:
        hits = np.flatnonzero(np.isin(row, eos))
        lengths.append(int(hits[0]) + 1 if len(hits) else int(row.shape[0]))
    return lengths


def generation_config_of(model, generation):
    """A copy of ``model.generation_config`` with ``generation``'s decoding settings."""
    import copy

    config = copy.deepcopy(model.generation_config)
    generation.apply(config)
    return config


@contextlib.contextmanager
def decoding(model, config):
    """Make ``config`` the model's generation config while generating. (Passed as ``generate``'s
    argument instead, transformers would replace every value equal to its global default, such as
    ``num_beams=1`` or ``no_repeat_ngram_size=0``, by the model's own setting.)"""
    saved = model.generation_config
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = saved


class Seq2Seq(TaskFamily):
    name = "seq2seq"
    description = "source -> target; AutoModelForSeq2SeqLM; beam-search generation; ROUGE"
    token_level_loss = True

    def check_model(self, ref, task):
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES

        from asymlora.errors import UserError

        kind = model_type_of(ref)
        if kind is not None and kind not in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
            raise UserError(f"task {task.name!r} is sequence-to-sequence and needs an encoder-decoder model "
                            f"(BART, T5); {ref.name!r} is a {kind} model: use the task's causal-LM variant or "
                            "another --model")

    def load_model(self, ref, task, seed):
        from asymlora.models import load_for_seq2seq

        self.check_model(ref, task)
        model = load_for_seq2seq(ref, seed=seed)
        task.generation.apply(model.generation_config)
        return model

    def preprocess(self, splits, processor, task, max_length):
        import datasets

        target_length = task.generation.max_target_length
        notes = {}
        out = {}
        for split, ds in splits.items():
            pairs = [task.pair(row) for row in ds]
            sources = [s for s, _ in pairs]
            targets = [str(t).strip() for _, t in pairs]
            enc = processor(sources, truncation=True, max_length=max_length)
            full = processor(text_target=targets)["input_ids"]
            enc["labels"] = [ids[:target_length] if len(ids) <= target_length else
                             ids[:target_length - 1] + [ids[-1]] for ids in full]
            counts = Counter(len(ids) > target_length for ids in full)
            notes[split] = {"examples": len(ds), "target_cut": counts[True]}
            out[split] = datasets.Dataset.from_dict(dict(enc))
        return PreparedData(datasets.DatasetDict(out), {"truncation": notes, "max_length": max_length,
                                                        "max_target_length": target_length})

    def collator(self, processor, model):
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(processor, model=model, padding=True, label_pad_token_id=IGNORE)

    def trainer_options(self, task, processor, config):
        g = task.generation
        return TrainerOptions(trainer_class="Seq2SeqTrainer", arguments={
            "predict_with_generate": True, "generation_num_beams": g.num_beams,
            "generation_max_length": None})

    def metrics_fn(self, task, processor):
        def compute(prediction):
            predictions = prediction.predictions[0] if isinstance(prediction.predictions, tuple) \
                else prediction.predictions
            return task.compute_metrics(decode(predictions, processor), decode(prediction.label_ids, processor))

        return compute

    def generate(self, model, processor, sources, generation, max_source_length, batch_size=8):
        """Beam search (``generation``) from each source cut to ``max_source_length`` tokens."""
        import torch

        config = generation_config_of(model, generation)
        device = next(model.parameters()).device
        texts, lengths, cut = [], [], 0
        for start in range(0, len(sources), batch_size):
            batch = [str(s) for s in sources[start:start + batch_size]]
            cut += sum(len(ids) > max_source_length for ids in processor(batch)["input_ids"])
            enc = processor(batch, truncation=True, max_length=max_source_length, padding=True, return_tensors="pt")
            with torch.no_grad(), decoding(model, config):
                out = model.generate(input_ids=enc["input_ids"].to(device),
                                     attention_mask=enc["attention_mask"].to(device))
            texts += decode(out.cpu(), processor)
            lengths += generated_lengths(out.cpu(), config.eos_token_id, skip=1)
        return Generated(texts, lengths, cut)


SEQ2SEQ = register_family(Seq2Seq())
