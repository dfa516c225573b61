"""Where an adapter folder and its base model come from, for the commands that read one (verify, export).

A run folder (``adapter/`` beside ``metrics.json``) names the model and task it was trained with; a
bare adapter folder needs ``--model`` and ``--task``. The base model is the task's family class and
head (:func:`base_model`), so the adapter's module paths are those of the model it was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path


def locate(path: Path, model: str | None, task: str | None) -> tuple[Path, str | None, str | None]:
    """``(adapter folder, model, task)``: a run folder (``adapter/`` + ``metrics.json``) fills in the
    model and task it was trained with, unless given."""
    run = path / "metrics.json"
    if (path / "adapter").is_dir() and run.is_file():
        record = json.loads(run.read_text(encoding="utf-8"))
        return path / "adapter", model or record.get("model"), task or record.get("task")
    return path, model, task


def base_model(model: str, task: str):
    """A fresh base model for ``task``'s family (the class and head the adapter was trained with)."""
    from asymlora.models import resolve_model
    from asymlora.tasks import get_family, get_task

    chosen = get_task(task)
    return get_family(chosen.family).load_model(resolve_model(model), chosen, 0)


def served_model(model: str, task_type: str | None):
    """The model an engine serves for a PEFT ``task_type``, built on the meta device from ``model``'s
    config (module paths and shapes only; no weights read). None / CAUSAL_LM: the causal-LM class."""
    from accelerate import init_empty_weights
    import transformers

    from asymlora.models.meta import read_config

    classes = {"SEQ_CLS": "AutoModelForSequenceClassification", "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
               "TOKEN_CLS": "AutoModelForTokenClassification", "QUESTION_ANS": "AutoModelForQuestionAnswering",
               "FEATURE_EXTRACTION": "AutoModel"}
    auto = getattr(transformers, classes.get(task_type or "", "AutoModelForCausalLM"))
    config = read_config(model)
    with init_empty_weights(include_buffers=True):
        try:
            return auto.from_config(config)
        except ValueError as err:
            raise ValueError(f"model {model!r} has no {auto.__name__[len('AutoModelFor'):] or 'base'} class "
                             f"for task_type {task_type!r} ({str(err).splitlines()[0][:80]}); give the model the "
                             f"adapter was trained on") from None
