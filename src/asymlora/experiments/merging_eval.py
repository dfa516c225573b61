"""Score weight deltas on a task with that task's own head (the merging study's evaluation).

A :class:`TaskScorer` loads the base model once with a ``num_labels``-way head, tokenises a fixed
subset of the task's test split (``limit(..., seed=0)``: the same rows for every body and seed),
and scores a body ``{module: ΔW}`` with a head ``{"classifier.weight": …, "classifier.bias": …}``:
the base weights become ``W0 + ΔW`` (fp32), the head is copied in, and the accuracy of the argmax is
returned (×100, the task's metric); the weights are put back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TaskScorer:
    task: object
    model: torch.nn.Module
    batches: list
    pretrained: dict

    @classmethod
    def build(cls, task_name: str, model_name: str, max_length: int, eval_limit: int,
              modules: list[str], batch_size: int = 64) -> "TaskScorer":
        """The scorer of ``task_name`` on ``model_name`` for deltas on ``modules``."""
        from transformers import DataCollatorWithPadding

        from asymlora.models import load_for_sequence_classification, load_tokenizer
        from asymlora.tasks import get_task, limit, tokenize

        task = get_task(task_name)
        tokenizer = load_tokenizer(model_name)
        splits = limit(task.load(None, 0), None, eval_limit, seed=0)
        split = "test" if "test" in splits else "validation"
        data = tokenize(splits, tokenizer, task, max_length)[split]
        collate = DataCollatorWithPadding(tokenizer)
        rows = [data[i] for i in range(len(data))]
        batches = [collate(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
        model = load_for_sequence_classification(model_name, task.num_labels).eval()
        pretrained = {m: model.get_submodule(m).weight.detach().clone() for m in modules}
        return cls(task, model, batches, pretrained)

    @torch.no_grad()
    def score(self, deltas: dict[str, torch.Tensor] | None, head: dict[str, torch.Tensor]) -> float:
        """Accuracy (×100) of the base plus ``deltas`` (None: the base alone) with ``head``."""
        parameters = dict(self.model.named_parameters())
        for key, value in head.items():
            parameters[key].copy_(value)
        for module, weight in self.pretrained.items():
            delta = deltas[module] if deltas is not None else 0.0
            self.model.get_submodule(module).weight.copy_(weight + delta)
        logits, labels = [], []
        for batch in self.batches:
            batch = dict(batch)
            labels.append(batch.pop("labels"))
            logits.append(self.model(**batch).logits)
        for module, weight in self.pretrained.items():
            self.model.get_submodule(module).weight.copy_(weight)
        metrics = self.task.compute_metrics(torch.cat(logits).numpy(), torch.cat(labels).numpy())
        return float(metrics[self.task.metric_names[0]])
