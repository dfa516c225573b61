"""Sequence-to-sequence generation (summarisation): encoder-decoder models such as BART and T5.

Model: ``AutoModelForSeq2SeqLM`` (no fresh head). Preprocessing: the task's ``pair(row)`` gives
``(source, target)``; the source is truncated to ``max_length`` tokens, the target to
``task.generation.max_target_length`` (targets that were cut are counted in ``notes``, never hidden).
Loss: token-level cross-entropy, ``token_level_loss = True``. Evaluation generates with beam search
(``Seq2SeqTrainer(predict_with_generate=True)``; beams, length penalty, no-repeat n-gram size and
the maximum new tokens come from ``task.generation``) and scores the decoded texts with the task's
metric (ROUGE F-measures ×100, :func:`asymlora.tasks.metrics.rouge`).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .base import PreparedData, TaskFamily, TrainerOptions, register_family

IGNORE = -100


def decode(token_ids, tokenizer) -> list[str]:
    """Token ids (``-100`` for padding) -> stripped texts."""
    ids = np.asarray(token_ids)
    ids = np.where(ids < 0, tokenizer.pad_token_id, ids)
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


class Seq2Seq(TaskFamily):
    name = "seq2seq"
    description = "source -> target; AutoModelForSeq2SeqLM; beam-search generation; ROUGE"
    token_level_loss = True

    def load_model(self, ref, task, seed):
        import torch
        from transformers import AutoModelForSeq2SeqLM

        from asymlora.models import model_path

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = AutoModelForSeq2SeqLM.from_pretrained(model_path(ref))
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


SEQ2SEQ = register_family(Seq2Seq())
