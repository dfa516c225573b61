"""One fine-tuning run on the Hugging Face Trainer, for any task family: :func:`train`.

Data flow (``family`` = the task's :class:`asymlora.tasks.TaskFamily`; the runner knows no task kind)::

    validate(TrainConfig) -> Plan: task, family, method, model ref, resolved numbers   (plan.py; nothing loaded)
    task.load(data_dir, seed) -> limit -> family.preprocess -> (train, validation[, test])
    family.load_model(ref, task, seed) -> methods.prepare(...) -> model
    <family's Trainer class>(collator, metrics, options; callbacks=[BestEval, Throughput, (AdaLoRA)]).train()
                                                                                        (trainer.py)
    restore best evaluation -> evaluate test split (if any) -> RunRecord (record.py)
    -> save adapter, <out>/metrics.json (run_folder.py)

The jobs live in their own modules: :mod:`~asymlora.training.plan` (every check, the resolved
numbers), :mod:`~asymlora.training.trainer` (the Trainer subclass, its arguments, the evaluation
schedule), :mod:`~asymlora.training.resume` (identity stamp, resumable check, last complete
checkpoint), :mod:`~asymlora.training.record` (:class:`RunRecord`) and
:mod:`~asymlora.run_folder` (the run folder's files; save and load per method kind). The
names ``runner`` used to define (``validate``, ``Plan``, ``last_checkpoint``, ``checkpoint_matches``,
``save_trained``, ``eval_subset``, ...) stay importable from here.

Evaluation: see :mod:`asymlora.training.trainer`; plus once at the end if the last step was not
evaluated. The headline metrics are the TEST split's at the best validation evaluation when the task
has a labelled test split (``selection = "test@best-validation"``), else the best validation
evaluation (``selection = "best-validation"``: the paper's GLUE convention, optimistic by
construction). Quick runs (:data:`~asymlora.training.trainer.QUICK_RUN_STEPS`) score their periodic
evaluations on a subset; then, without a test split, the full validation split is scored at the best
subset evaluation (``selection = "full-validation@best-validation-subset"``).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from asymlora.errors import UserError
from asymlora.run_folder import ADAPTER_DIR, CHECKPOINTS_DIR, TRACKING_DIR, save_trained, write_metrics  # noqa: F401
from asymlora.training import env
from asymlora.training.callbacks import (AdaLoRACallback, BestEvalCallback, MaskStateCallback, ThroughputCallback,
                                        restore_mask_state)
from asymlora.training.config import TrainConfig, identity
from asymlora.training.guards import NonFiniteLossCallback
from asymlora.training.plan import REPORTERS, Plan, validate  # noqa: F401  (re-exported)
from asymlora.training.record import EvalPoint, RunRecord, task_metrics
from asymlora.training.resume import (IDENTITY_FILE, RUN_LENGTH, check_resumable, checkpoint_matches,  # noqa: F401
                                      last_checkpoint, stamp_differences, stamp_identity)
from asymlora.training.tracking import local_tracking, report_adapter_config
from asymlora.training.trainer import (EVAL_SUBSET, QUICK_RUN_STEPS, eval_subset,  # noqa: F401
                                       make_trainer_class, training_arguments)


@contextlib.contextmanager
def _sources_of(task, ref, config):
    """Failures to reach the hub while loading data or a model become one UserError line with the fix;
    so do a missing data file and a malformed file given with ``--data-dir``. Other failures stay bugs."""
    from asymlora.errors import UserError
    from asymlora.models import hub_hint

    try:
        yield
    except FileNotFoundError as err:
        raise UserError(str(err)) from err
    except (ValueError, UnicodeDecodeError) as err:  # a malformed file of the user's (--data-dir)
        if config.data_dir is not None and not isinstance(err, UserError):
            from asymlora.errors import describe

            raise UserError(f"--data-dir {config.data_dir}: {describe(err)}" if config.data_dir not in str(err)
                            else describe(err)) from err
        raise
    except (OSError, ConnectionError) as err:
        if ref.source == "hub" or (task.hub_dataset and config.data_dir is None):
            what = f"model {ref.name!r}" if ref.source == "hub" else f"task {task.name!r} ({task.hub_dataset})"
            raise UserError(f"{hub_hint(what)} ({type(err).__name__}); pass a local folder with --model or "
                            "--data-dir") from err
        raise


@dataclass
class _Data:
    """A run's preprocessed splits, its tokenizer/processor and the family's preprocessing notes."""

    splits: dict
    processor: Any
    notes: Any


def _load_data(config: TrainConfig, plan: Plan) -> _Data:
    from asymlora.models import load_tokenizer
    from asymlora.tasks import limit

    task, ref = plan.task, plan.ref
    with _sources_of(task, ref, config):
        splits = limit(task.load(config.data_dir, config.seed), config.train_limit, config.eval_limit, config.seed)
    for needed in ("train", "validation"):
        if needed not in splits:
            raise UserError(f"task {task.name!r} has no {needed!r} split"
                            f"{f' in --data-dir {config.data_dir}' if config.data_dir else ''}")
    with _sources_of(task, ref, config):
        processor = load_tokenizer(ref)
    with _sources_of(task, ref, config):
        prepared = plan.family.preprocess(splits, processor, task, plan.resolved.max_length)
    return _Data(prepared.splits, processor, prepared.notes)


def _run_length(config: TrainConfig, plan: Plan, train_examples: int) -> tuple[int, int]:
    """``(steps_per_epoch, total_steps)``: ⌈examples / (batch · accumulation · processes)⌉ per epoch."""
    global_batch = plan.resolved.batch_size * config.grad_accum * env.world_size()
    steps_per_epoch = max(1, math.ceil(train_examples / global_batch))
    total_steps = int(config.max_steps) if config.max_steps else int(math.ceil(steps_per_epoch * plan.resolved.epochs))
    return steps_per_epoch, total_steps


def _build_model(config: TrainConfig, plan: Plan, total_steps: int):
    """``(model ready to train, parameters of the base model with its head)``."""
    from asymlora.methods import prepare

    resolved = plan.resolved
    with _sources_of(plan.task, plan.ref, config):
        model = plan.family.load_model(plan.ref, plan.task, config.seed)
    total_params = sum(p.numel() for p in model.parameters())
    model = prepare(model, plan.method, rank=max(plan.rank, 1), alpha=resolved.alpha, dropout=config.dropout,
                    targets=resolved.targets, seed=resolved.adapter_seed, head_modules=resolved.head_modules,
                    total_steps=total_steps, mask_stream=config.mask_stream)
    return model, total_params


@dataclass
class _Fit:
    """The model and Trainer of a run, its callbacks and the validation set its periodic evaluations score."""

    model: Any
    trainer: Any
    best: BestEvalCallback
    throughput: ThroughputCallback
    adalora: AdaLoRACallback | None
    during: Any


def _make_trainer(config: TrainConfig, plan: Plan, model, data: _Data, steps_per_epoch: int,
                  total_steps: int) -> _Fit:
    from asymlora.tasks.families import greater_is_better

    task, family = plan.task, plan.family
    options = family.trainer_options(task, data.processor, config)
    args = training_arguments(config, plan.resolved, options, Path(config.out), steps_per_epoch, total_steps)
    during = eval_subset(data.splits["validation"], config, total_steps)  # what the periodic evaluations score
    best = BestEvalCallback(model, f"eval_{task.main_metric}", greater_is_better(task.main_metric))
    throughput = ThroughputCallback()
    callbacks = [best, throughput, MaskStateCallback(model), NonFiniteLossCallback(model)]
    adalora = AdaLoRACallback(model) if plan.method.kind == "adalora" else None
    if adalora is not None:
        callbacks.append(adalora)
    trainer = make_trainer_class(family, options)(
        model=model, args=args, train_dataset=data.splits["train"], eval_dataset=during,
        data_collator=family.collator(data.processor, model), compute_metrics=family.metrics_fn(task, data.processor),
        preprocess_logits_for_metrics=options.preprocess_logits, callbacks=callbacks)
    trainer.throughput = throughput
    report_adapter_config(trainer, plan.method.name)  # method, rank, frozen factor in the --report-to run
    if not config.progress:  # no progress bars means no per-step log lines either
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return _Fit(model, trainer, best, throughput, adalora, during)


def _final_evaluations(fit: _Fit, data: _Data) -> tuple[dict, dict | None, dict | None]:
    """Evaluate the last step if it was not, restore the best evaluation, then score the test split
    (or, when the periodic evaluations used a subset, the full validation split):
    ``(final evaluation, test, full)``."""
    trainer, best = fit.trainer, fit.best
    if not best.history or best.history[-1]["step"] != trainer.state.global_step:
        trainer.evaluate()
    final_eval = best.history[-1]
    best.restore_best()
    test = full = None
    if "test" in data.splits:
        test = trainer.evaluate(data.splits["test"], metric_key_prefix="test")
    elif len(fit.during) < len(data.splits["validation"]):  # the headline: the best checkpoint on the FULL split
        full = trainer.evaluate(data.splits["validation"], metric_key_prefix="full")
    return final_eval, test, full


def _headline(plan: Plan, fit: _Fit, test: dict | None, full: dict | None) -> tuple[dict, str]:
    """``(headline metrics, selection)``: test at the best validation, else full validation, else best."""
    names = plan.task.metric_names
    if test is not None:
        return task_metrics(test, "test", names), "test@best-validation"
    if full is not None:
        return task_metrics(full, "full", names), "full-validation@best-validation-subset"
    return task_metrics(fit.best.best["metrics"], "eval", names), "best-validation"


def _point(evaluation: dict, names) -> EvalPoint:
    return EvalPoint(evaluation["step"], evaluation["epoch"], task_metrics(evaluation["metrics"], "eval", names))


def _record(config: TrainConfig, plan: Plan, fit: _Fit, data: _Data, output, evaluations, measures: dict) -> RunRecord:
    """The :class:`RunRecord` of a trained run. ``evaluations``: ``(final evaluation, test, full)``;
    ``measures``: ``trainable``, ``total_params``, ``train_seconds``, ``threads``."""
    task, family, spec, resolved = plan.task, plan.family, plan.method, plan.resolved
    final_eval, test, full = evaluations
    metrics, selection = _headline(plan, fit, test, full)
    names, splits = task.metric_names, data.splits
    trainable, total_params = measures["trainable"], measures["total_params"]
    return RunRecord(
        task=task.name, family=family.name, model=config.model, method=spec.name, label=spec.label, kind=spec.kind,
        rank=plan.rank, seed=config.seed, adapter_seed=resolved.adapter_seed, main_metric=task.main_metric,
        metrics=metrics, selection=selection, best_eval=_point(fit.best.best, names),
        final_eval=_point(final_eval, names), test=task_metrics(test, "test", names) if test is not None else None,
        history=[_point(h, names) for h in fit.best.history],
        trainable_params=int(trainable), total_params=int(total_params),
        trainable_percent=100.0 * trainable / total_params,
        samples_per_second=fit.throughput.samples_per_second,
        trainer_samples_per_second=output.metrics.get("train_samples_per_second"),
        train_steps=int(fit.trainer.state.global_step), train_examples=len(splits["train"]),
        eval_examples=len(splits["validation"]), eval_examples_during_training=len(fit.during),
        test_examples=len(splits["test"]) if "test" in splits else 0,
        train_loss=float(output.training_loss), preprocessing=data.notes,
        peak_memory_bytes=env.peak_memory_bytes(), train_seconds=measures["train_seconds"],
        adalora_updates=fit.adalora.calls if fit.adalora is not None else None,
        world_size=env.world_size(), threads=measures["threads"], device=env.device_name(),
        versions=env.versions(), git_commit=env.git_commit(),
        config=config.to_dict(), resolved=resolved.to_dict(), identity=identity(config))


def _finish(config: TrainConfig, plan: Plan, record: RunRecord, fit: _Fit, started: float) -> None:
    """The main process (world process zero) saves the adapter, removes the checkpoints (unless kept) and writes
    ``metrics.json``; every process then waits for the others."""
    out = Path(config.out)
    if fit.trainer.is_world_process_zero():
        record.adapter_bytes = save_trained(_peft_or_model(fit.model), plan.method.kind, out / ADAPTER_DIR)
        if not config.keep_checkpoints:
            shutil.rmtree(out / CHECKPOINTS_DIR, ignore_errors=True)
        record.wall_seconds = time.perf_counter() - started
        write_metrics(out, record.to_dict())
    else:
        record.wall_seconds = time.perf_counter() - started
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def train_run(config: TrainConfig, plan: Plan | None = None) -> RunRecord:
    """Run one fine-tuning; write ``<out>/adapter/`` and ``<out>/metrics.json``.

    Args:
        config: the run.
        plan: its :func:`validate` result (validated here when None).

    Returns:
        The :class:`RunRecord` (``metrics.json`` holds its :meth:`RunRecord.to_dict`).

    Raises:
        ValueError: bad input (before anything is loaded).
        UserError: data or model unreachable or malformed; checkpoints of another run on ``--resume``.
    """
    started = time.perf_counter()
    plan = plan or validate(config)
    from transformers import set_seed

    threads = env.set_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    check_resumable(config, out)
    set_seed(config.seed)
    data = _load_data(config, plan)
    steps_per_epoch, total_steps = _run_length(config, plan, len(data.splits["train"]))
    model, total_params = _build_model(config, plan, total_steps)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fit = _make_trainer(config, plan, model, data, steps_per_epoch, total_steps)

    resume_from = last_checkpoint(out / CHECKPOINTS_DIR) if config.resume else None
    stamp_identity(config, out, plan.used())
    restore_mask_state(model, resume_from)  # the dropout masks continue where the checkpoint left them
    fit.best.restore(resume_from)  # the evaluations before the checkpoint still compete for the best
    train_started = time.perf_counter()
    with local_tracking(fit.trainer, out / TRACKING_DIR):  # --report-to runs written under <out>/tracking
        output = fit.trainer.train(resume_from_checkpoint=resume_from)
        train_seconds = time.perf_counter() - train_started
        evaluations = _final_evaluations(fit, data)
    record = _record(config, plan, fit, data, output, evaluations,
                     {"trainable": trainable, "total_params": total_params, "train_seconds": train_seconds,
                      "threads": threads})
    _finish(config, plan, record, fit, started)
    return record


def train(config: TrainConfig, plan: Plan | None = None) -> dict:
    """:func:`train_run`, returning the record in its JSON form (what ``<out>/metrics.json`` holds).

    Keys, in order: ``task, family, model, method, label, kind, rank, seed, adapter_seed, main_metric,
    metrics, selection, best_eval, final_eval, test, history, trainable_params, total_params,
    trainable_percent, samples_per_second, trainer_samples_per_second, train_steps, train_examples,
    eval_examples, eval_examples_during_training, test_examples, train_loss, preprocessing,
    peak_memory_bytes, train_seconds, adalora_updates, world_size, threads, device, versions,
    git_commit, config, resolved, identity, adapter_bytes, wall_seconds`` (see :class:`RunRecord`).
    """
    return train_run(config, plan).to_dict()


def _peft_or_model(model):
    return getattr(model, "module", model)
