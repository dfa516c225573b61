"""Sequence classification and regression (GLUE, tweets, ACLSum aspects): the original runner's path.

Model: ``AutoModelForSequenceClassification`` with ``task.num_labels`` outputs (1 = regression, MSE);
head = the model's classifier modules (``ModelRef.head``). Preprocessing: the task's 1 or 2 text
columns tokenised (pairs as pairs), truncated to ``max_length``, padded per batch. Loss: a per-batch
mean over examples, so ``token_level_loss = False``. Scoring: the task's metric suite over the logits
(argmax for classification, the raw score for regression).
"""

from __future__ import annotations

import numpy as np

from .base import TaskFamily, register_family


class SequenceClassification(TaskFamily):
    name = "sequence_classification"
    description = "text (pair) -> class or score; AutoModelForSequenceClassification; accuracy, F1, ..."
    token_level_loss = False

    def load_model(self, ref, task, seed):
        from asymlora.models import load_for_sequence_classification

        return load_for_sequence_classification(ref, task.num_labels, seed=seed)

    def head_modules(self, ref, task):
        return list(ref.head)

    def preprocess(self, splits, processor, task, max_length):
        from .base import PreparedData
        from asymlora.tasks.base import tokenize

        return PreparedData(tokenize(splits, processor, task, max_length))

    def collator(self, processor, model):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(processor)

    def metrics_fn(self, task, processor):
        def compute(prediction):
            logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
            logits = np.asarray(logits)
            if task.is_regression:
                logits = logits.reshape(-1)
            return task.compute_metrics(logits, np.asarray(prediction.label_ids))

        return compute


SEQUENCE_CLASSIFICATION = register_family(SequenceClassification())
