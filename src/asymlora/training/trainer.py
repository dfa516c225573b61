"""The Hugging Face Trainer as a run uses it: the Trainer subclass with adapter-only checkpoint hooks
(:func:`make_trainer_class`), its arguments (:func:`training_arguments`) and the evaluation schedule
(:func:`eval_schedule`, :func:`eval_subset`).

Evaluation: every epoch; ``evals_per_epoch`` times per epoch when set; ``evals_per_run`` times when
``max_steps`` is set (``evals_per_run`` has no effect on a run sized in epochs); ``eval_steps``
overrides all. The schedule follows from identity fields only, so it is part of what a fingerprint
names: a 4-step run with the default ``evals_per_run = 5`` evaluates after every step (every = ⌈4/5⌉ = 1).

Quick runs (at most :data:`QUICK_RUN_STEPS` steps, no ``eval_limit``) evaluate during training on a
fixed seeded subset of :data:`EVAL_SUBSET` validation examples; the full split is scored once at the
end (see :mod:`asymlora.training.runner`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from asymlora.run_folder import CHECKPOINTS_DIR
from asymlora.training import checkpoints, env
from asymlora.training.callbacks import ThroughputCallback
from asymlora.training.config import Resolved, TrainConfig

#: The quick-evaluation rule: a run of at most ``QUICK_RUN_STEPS`` optimiser steps with no
#: ``--eval-limit`` scores its periodic evaluations on a fixed subset of ``EVAL_SUBSET`` validation
#: examples; the full split is scored once at the end (test, or validation when there is no test).
QUICK_RUN_STEPS = 500
EVAL_SUBSET = 500


def eval_subset(validation, config: TrainConfig, total_steps: int):
    """The validation examples the periodic evaluations use (see :data:`QUICK_RUN_STEPS`): a seeded
    subset, in the original order, chosen by the run seed and independent of everything else."""
    import zlib

    if config.eval_limit is not None or total_steps > QUICK_RUN_STEPS or len(validation) <= EVAL_SUBSET:
        return validation
    rng = np.random.default_rng([int(config.seed), zlib.crc32(b"eval-subset")])
    return validation.select(np.sort(rng.choice(len(validation), size=EVAL_SUBSET, replace=False)).tolist())


def eval_schedule(config: TrainConfig, steps_per_epoch: int, total_steps: int) -> tuple[str, int | None]:
    """``(eval_strategy, eval_steps)`` for the Trainer (see the module docstring).

    Args:
        config: the run (``eval_steps``, ``evals_per_epoch``, ``max_steps``, ``evals_per_run``).
        steps_per_epoch: optimiser steps in one epoch, ⌈examples / global batch⌉.
        total_steps: optimiser steps of the whole run.

    Returns:
        ``("steps", every)`` or ``("epoch", None)``.
    """
    if config.eval_steps:
        return "steps", int(config.eval_steps)
    if config.evals_per_epoch:
        return "steps", max(1, math.ceil(steps_per_epoch / config.evals_per_epoch))
    if config.max_steps:
        return "steps", max(1, math.ceil(total_steps / max(1, config.evals_per_run)))
    return "epoch", None


def training_arguments(config: TrainConfig, resolved: Resolved, options, out: Path, steps_per_epoch: int,
                       total_steps: int):
    """The ``TrainingArguments`` (``Seq2SeqTrainingArguments`` when the family asks) of a run.

    Progress bars and per-step log lines only with ``config.progress``; activation checkpointing
    under the name transformers 5 uses (``activation_checkpointing``, the same switch as the
    deprecated ``gradient_checkpointing``).

    Args:
        config: the run; resolved: its numbers; options: the family's ``trainer_options``.
        out: the run folder (checkpoints go to ``out/checkpoints``).
        steps_per_epoch, total_steps: the run's length in optimiser steps.
    """
    from transformers import TrainingArguments

    args_class = TrainingArguments
    if options.trainer_class == "Seq2SeqTrainer":
        from transformers import Seq2SeqTrainingArguments as args_class
    strategy, eval_steps = eval_schedule(config, steps_per_epoch, total_steps)
    arguments = dict(
        output_dir=str(out / CHECKPOINTS_DIR),
        per_device_train_batch_size=resolved.batch_size,
        per_device_eval_batch_size=config.eval_batch_size or max(resolved.batch_size, 32),
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=resolved.learning_rate,
        num_train_epochs=resolved.epochs,
        max_steps=int(config.max_steps) if config.max_steps else -1,
        warmup_steps=resolved.warmup_ratio,
        weight_decay=resolved.weight_decay,
        lr_scheduler_type="linear",
        eval_strategy=strategy, eval_steps=eval_steps,
        save_strategy=strategy if config.save_checkpoints else "no", save_steps=eval_steps,
        save_total_limit=None if config.keep_checkpoints else 1,
        logging_strategy="steps", logging_steps=config.logging_steps or max(1, min(50, total_steps // 10 or 1)),
        report_to=[] if config.report_to in (None, "", "none") else [config.report_to],
        seed=config.seed, data_seed=config.seed,
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
        remove_unused_columns=True,
        ddp_find_unused_parameters=False,
        use_cpu=not torch.cuda.is_available(),
        bf16=bool(config.bf16),
        torch_compile=bool(config.compile),
        activation_checkpointing=bool(config.gradient_checkpointing),
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
    )
    arguments.update(options.arguments)
    return args_class(**arguments)


def make_trainer_class(family, options):
    """The family's Trainer class (``Trainer`` / ``Seq2SeqTrainer``), counting training examples.

    The loss policy is the family's: for per-example losses (classification) the Trainer must not
    believe the model takes ``num_items_in_batch`` — with any forward that accepts ``**kwargs`` it
    would then multiply the loss by the number of processes under DDP, scaling every gradient by the
    world size. For token-level losses (language models) the Trainer's own detection stays: it passes
    the token count so that accumulation and DDP weight every token equally.

    Checkpoints are adapter-only (:mod:`asymlora.training.checkpoints`): trainable tensors,
    optimiser, scheduler and RNG states in safetensors + JSON; no frozen weight, no pickle.
    """
    import transformers

    base = getattr(transformers, options.trainer_class)

    class CountingTrainer(checkpoints.PicklelessTrainerState, base):
        throughput: ThroughputCallback | None = None

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if not family.token_level_loss:
                self.model_accepts_loss_kwargs = False

        def evaluate(self, *args, **kwargs):
            # An evaluation must not move the training's random streams: iterating a DataLoader draws
            # its base seed from the global torch generator, which would shift every later dropout
            # mask and make the trajectory depend on how often the run evaluates.
            with torch.random.fork_rng(devices=[]):
                return super().evaluate(*args, **kwargs)

        def training_step(self, model, inputs, num_items_in_batch=None):
            if self.throughput is not None:
                self.throughput.samples += family.batch_examples(inputs) * env.world_size()
            return super().training_step(model, inputs, num_items_in_batch)

        def _save(self, output_dir=None, state_dict=None):
            if self.args.should_save:
                checkpoints.save_trainable(self.model, output_dir or self.args.output_dir)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            if not Path(resume_from_checkpoint, checkpoints.TRAINABLE_FILE).is_file():
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            checkpoints.load_trainable(model or self.model, resume_from_checkpoint)

    return CountingTrainer
