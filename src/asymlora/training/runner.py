"""One fine-tuning run on the Hugging Face Trainer, for any task family: :func:`train`.

Data flow (``family`` = the task's :class:`asymlora.tasks.TaskFamily`; the runner knows no task kind)::

    validate(TrainConfig) -> Plan: task, family, method, model ref, resolved numbers   (nothing loaded)
    task.load(data_dir, seed) -> limit -> family.preprocess -> (train, validation[, test])
    family.load_model(ref, task, seed) -> methods.prepare(...) -> model
    <family's Trainer class>(collator, metrics, options; callbacks=[BestEval, Throughput, (AdaLoRA)]).train()
    restore best evaluation -> evaluate test split (if any) -> save adapter -> <out>/metrics.json

Written under ``<out>``: ``metrics.json`` (see :func:`train`), ``adapter/`` (the trained tensors
of the best evaluation: asymlora's ``adapter_config.json`` + ``adapter.safetensors``; PEFT's folder
for AdaLoRA; ``trainable.safetensors`` for full / linear_probe), and, while running,
``checkpoints/`` (Trainer checkpoints for ``--resume``; removed after success unless kept).

Evaluation: every epoch; ``evals_per_epoch`` times per epoch when set; ``evals_per_run`` times
when ``max_steps`` is set (``evals_per_run`` has no effect on a run sized in epochs); ``eval_steps``
overrides all; plus once at the end if the last step was not evaluated. The headline metrics are
the TEST split's at the best validation evaluation when the task has a labelled test split
(``selection = "test@best-validation"``), else the best validation evaluation
(``selection = "best-validation"``: the paper's GLUE convention, optimistic by construction).

Quick runs (at most :data:`QUICK_RUN_STEPS` steps, no ``eval_limit``) evaluate during training on a
fixed seeded subset of :data:`EVAL_SUBSET` validation examples; the full split is scored once at the
end: the test split, or, without one, the full validation split at the best subset evaluation
(``selection = "full-validation@best-validation-subset"``). ``checkpoints/`` are adapter-only
(:mod:`asymlora.training.checkpoints`).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from asymlora.errors import UserError
from asymlora.training import checkpoints, env
from asymlora.training.callbacks import (MASK_STATE_FILE, AdaLoRACallback, BestEvalCallback, MaskStateCallback,
                                        ThroughputCallback, restore_mask_state)
from asymlora.training.config import Resolved, TrainConfig, identity, resolve
from asymlora.training.guards import NonFiniteLossCallback

if TYPE_CHECKING:  # pragma: no cover
    from asymlora.methods import MethodSpec
    from asymlora.models import ModelRef
    from asymlora.tasks import Task, TaskFamily


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def save_trained(model, method_kind: str, directory: Path) -> int:
    """Write the run's trained tensors to ``directory``; returns the bytes of the tensor file(s)."""
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    if method_kind == "adapter":
        from asymlora.adapters.io import save_adapter

        save_adapter(model, directory)
    elif method_kind == "adalora":
        model.save_pretrained(str(directory), safe_serialization=True)
    else:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        tmp = directory / "trainable.safetensors.tmp"
        save_file(tensors, str(tmp))
        tmp.rename(directory / "trainable.safetensors")
    return sum(f.stat().st_size for f in directory.glob("*.safetensors"))


def _make_trainer_class(family, options):
    """The family's Trainer class (``Trainer`` / ``Seq2SeqTrainer``), counting training examples.

    The loss policy is the family's: for per-example losses (classification) the Trainer must not
    believe the model takes ``num_items_in_batch`` — with any forward that accepts ``**kwargs`` it
    would then multiply the loss by the number of processes under DDP, scaling every gradient by the
    world size. For token-level losses (language models) the Trainer's own detection stays: it passes
    the token count so that accumulation and DDP weight every token equally.
    """
    import transformers

    base = getattr(transformers, options.trainer_class)

    class CountingTrainer(base):
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

        # Adapter-only checkpoints (asymlora.training.checkpoints): trainable tensors, optimiser,
        # scheduler and RNG states in safetensors + JSON; no frozen weight, no pickle.
        def _save(self, output_dir=None, state_dict=None):
            if self.args.should_save:
                checkpoints.save_trainable(self.model, output_dir or self.args.output_dir)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            if not Path(resume_from_checkpoint, checkpoints.TRAINABLE_FILE).is_file():
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            checkpoints.load_trainable(model or self.model, resume_from_checkpoint)

        def _save_optimizer_and_scheduler(self, output_dir):
            if self.args.should_save:
                checkpoints.save_optimizer(self.optimizer, self.lr_scheduler, output_dir)

        def _load_optimizer_and_scheduler(self, checkpoint):
            if checkpoint is not None and not checkpoints.load_optimizer(self.optimizer, self.lr_scheduler, checkpoint):
                super()._load_optimizer_and_scheduler(checkpoint)

        def _rank(self):
            return None if self.args.world_size <= 1 else self.args.process_index

        def _save_rng_state(self, output_dir):
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            checkpoints.save_rng(output_dir, self._rank())

        def _load_rng_state(self, checkpoint):
            if checkpoint is not None and not checkpoints.load_rng(checkpoint, self._rank()):
                super()._load_rng_state(checkpoint)

    return CountingTrainer


def last_checkpoint(folder: Path) -> str | None:
    """The newest COMPLETE checkpoint under ``folder``: its last file, ``asymlora_mask_state.json``
    (written atomically after the Trainer's own files), is there; a checkpoint that a kill cut short
    is skipped, never resumed from (a half-written ``trainer_state.json`` would break the resume)."""
    if not folder.is_dir():
        return None
    steps = []
    for child in folder.iterdir():
        name = child.name
        if child.is_dir() and name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit():
            steps.append((int(name[len("checkpoint-"):]), child))
    for _, child in sorted(steps, reverse=True):
        if (child / MASK_STATE_FILE).is_file() and (child / "trainer_state.json").is_file():
            return str(child)
    return None


IDENTITY_FILE = "run_identity.json"
#: Identity fields a ``--resume`` may change: how long the run goes on (extending a finished budget).
RUN_LENGTH = ("max_steps", "epochs")


def stamp_differences(config: TrainConfig, out: Path) -> list[str] | None:
    """The identity fields in which the run stamped in ``out/run_identity.json`` differs from
    ``config`` (``[]``: the same run), or None when ``out`` holds no stamp or no complete checkpoint."""
    import json

    stamp = Path(out) / IDENTITY_FILE
    if not stamp.is_file() or last_checkpoint(Path(out) / "checkpoints") is None:
        return None
    mine, theirs = _identity_as_json(config), json.loads(stamp.read_text(encoding="utf-8"))
    return sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))


def checkpoint_matches(config: TrainConfig, out: Path) -> bool:
    """True when ``out`` holds a complete checkpoint written by a run of exactly this config's identity
    (``out/run_identity.json``, stamped as that run's training started): a run that can be resumed."""
    return stamp_differences(config, out) == []


def _identity_as_json(config: TrainConfig) -> dict:
    """The identity as it reads back from ``run_identity.json`` (tuples as lists, paths as text)."""
    import json

    return json.loads(json.dumps(identity(config), default=str))


def check_resumable(config: TrainConfig, out: Path) -> None:
    """On ``--resume``, refuse checkpoints stamped (``out/run_identity.json``) by a different run:
    resuming them would mix two runs' optimiser states. A different length (:data:`RUN_LENGTH`:
    training a run on for longer) is a resume. Reads only; called before any data is loaded."""
    differ = [k for k in (stamp_differences(config, out) or []) if k not in RUN_LENGTH] if config.resume else []
    if differ:
        raise UserError(f"--resume: the checkpoints in {out / 'checkpoints'} belong to a different run "
                        f"(differs in {', '.join(differ)}); resume with the same settings, or start "
                        "without --resume in another --out")


def stamp_identity(config: TrainConfig, out: Path) -> None:
    """Record the run's identity in ``out/run_identity.json``, just before training starts (a run that
    fails while loading its data or model leaves no stamp): the checkpoints it writes are its own."""
    import json

    from asymlora.atomic import atomic_write_text

    if env.is_main_process():
        atomic_write_text(out / IDENTITY_FILE, json.dumps(_identity_as_json(config), indent=2) + "\n")


@dataclass(frozen=True)
class Plan:
    """What a run will do, decided from its :class:`TrainConfig` before any data or model is loaded."""

    task: "Task"
    family: "TaskFamily"
    method: "MethodSpec"
    ref: "ModelRef"
    rank: int  # 0 for rankless methods (full, linear_probe)
    resolved: Resolved


#: ``--report-to`` integrations and the package each needs.
REPORTERS = {"wandb": "wandb", "tensorboard": "tensorboard", "mlflow": "mlflow", "comet_ml": "comet_ml",
             "clearml": "clearml", "trackio": "trackio"}


def _check_report_to(name: str) -> None:
    import importlib.util

    if name not in REPORTERS:
        raise ValueError(f"--report-to {name!r} is not supported; choose none, {', '.join(REPORTERS)}")
    if importlib.util.find_spec(REPORTERS[name]) is None:
        raise ValueError(f"--report-to {name} needs the '{REPORTERS[name]}' package: pip install {REPORTERS[name]}")


def validate(config: TrainConfig, check_sources: bool = True) -> Plan:
    """Check every argument and resolve names and numbers; loads nothing. Bad input raises ValueError
    (or FileNotFoundError for a model folder that is not there) with one line naming the option.
    ``check_sources``: also fail when the model or data needs the hub and the hub is switched off."""
    from asymlora.methods import get_method
    from asymlora.models import check_reachable, hub_hint, hub_offline, resolve_model
    from asymlora.tasks import get_family, get_task

    task = get_task(config.task)
    family = get_family(task.family)
    spec = get_method(config.method)
    ref = resolve_model(config.model)
    if spec.uses_rank and (isinstance(config.rank, bool) or not isinstance(config.rank, int) or config.rank < 1):
        raise ValueError(f"--rank must be an integer >= 1 for method {spec.name!r} (got {config.rank!r})")
    if config.threads is not None and config.threads < 1:
        raise ValueError(f"--threads must be >= 1 (got {config.threads})")
    for name in ("train_limit", "eval_limit", "eval_steps", "eval_batch_size", "logging_steps"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1 (got {value}); leave it out for no limit")
    if config.evals_per_run < 1:
        raise ValueError(f"evals_per_run must be >= 1 (got {config.evals_per_run})")
    if config.evals_per_epoch is not None and config.evals_per_epoch < 1:
        raise ValueError(f"evals_per_epoch must be >= 1 (got {config.evals_per_epoch})")
    if check_sources:
        check_reachable(ref)
    if check_sources and task.hub_dataset and config.data_dir is None and hub_offline():
        raise ValueError(f"{hub_hint(f'task {task.name!r} ({task.hub_dataset})')}: pass a local copy with "
                         "--data-dir (see docs/tasks.md for the layout)")
    if config.report_to not in (None, "", "none"):
        _check_report_to(config.report_to)
    family.check_model(ref, task)  # e.g. a seq2seq task asked of a decoder-only model
    head = family.head_modules(ref, task)
    if spec.kind == "linear_probe" and not head:
        raise ValueError(f"linear_probe trains only a task head, and task {task.name!r} ({family.name}) has none")
    resolved = resolve(config, task.hyper, ref.default_targets, head)
    if spec.kind == "adapter":  # the adapter's own settings (alpha, dropout, targets) fail here, not after loading
        spec.adapter_config(config.rank, resolved.alpha, config.dropout, resolved.targets, resolved.adapter_seed,
                            resolved.head_modules)
    return Plan(task, family, spec, ref, int(config.rank) if spec.uses_rank else 0, resolved)


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


def train(config: TrainConfig, plan: Plan | None = None) -> dict:
    """Run one fine-tuning and return the record written to ``<out>/metrics.json``.

    Record keys: ``task, family, model, method, label, rank, seed, adapter_seed, main_metric, metrics``
    (headline), ``selection``, ``best_eval`` (step, epoch, metrics), ``final_eval``, ``test``,
    ``history``, ``trainable_params``, ``total_params`` (of the base model with its head, the
    denominator of ``trainable_percent``), ``trainable_percent``, ``samples_per_second`` (training
    steps only), ``trainer_samples_per_second`` (the Trainer's, includes evaluation), ``train_seconds``,
    ``wall_seconds``, ``adapter_bytes``, ``preprocessing`` (what the family had to cut or skip),
    ``world_size``, ``threads``, ``device``, ``versions``, ``git_commit``, ``config`` (the TrainConfig)
    and ``resolved`` (the numbers used).
    """
    started = time.perf_counter()
    plan = plan or validate(config)
    from transformers import TrainingArguments, set_seed

    from asymlora.methods import prepare
    from asymlora.models import load_tokenizer
    from asymlora.tasks import limit
    from asymlora.tasks.families import greater_is_better

    task, family, spec, ref, rank, resolved = plan.task, plan.family, plan.method, plan.ref, plan.rank, plan.resolved
    threads = env.set_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    check_resumable(config, out)

    set_seed(config.seed)
    with _sources_of(task, ref, config):
        splits = limit(task.load(config.data_dir, config.seed), config.train_limit, config.eval_limit, config.seed)
    for needed in ("train", "validation"):
        if needed not in splits:
            raise UserError(f"task {task.name!r} has no {needed!r} split"
                            f"{f' in --data-dir {config.data_dir}' if config.data_dir else ''}")
    with _sources_of(task, ref, config):
        processor = load_tokenizer(ref)
    with _sources_of(task, ref, config):
        prepared = family.preprocess(splits, processor, task, resolved.max_length)
    data = prepared.splits

    global_batch = resolved.batch_size * config.grad_accum * env.world_size()
    steps_per_epoch = max(1, math.ceil(len(data["train"]) / global_batch))
    total_steps = int(config.max_steps) if config.max_steps else int(math.ceil(steps_per_epoch * resolved.epochs))

    with _sources_of(task, ref, config):
        model = family.load_model(ref, task, config.seed)
    total_params = _count(model)
    model = prepare(model, spec, rank=max(rank, 1), alpha=resolved.alpha, dropout=config.dropout,
                    targets=resolved.targets, seed=resolved.adapter_seed, head_modules=resolved.head_modules,
                    total_steps=total_steps)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    if config.eval_steps:
        strategy, eval_steps = "steps", int(config.eval_steps)
    elif config.evals_per_epoch:
        strategy, eval_steps = "steps", max(1, math.ceil(steps_per_epoch / config.evals_per_epoch))
    elif config.max_steps:
        strategy, eval_steps = "steps", max(1, math.ceil(total_steps / max(1, config.evals_per_run)))
    else:
        strategy, eval_steps = "epoch", None
    main_key = f"eval_{task.main_metric}"
    options = family.trainer_options(task, processor, config)
    args_class = TrainingArguments
    if options.trainer_class == "Seq2SeqTrainer":
        from transformers import Seq2SeqTrainingArguments as args_class
    arguments = dict(
        output_dir=str(out / "checkpoints"),
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
        gradient_checkpointing=bool(config.gradient_checkpointing),
        gradient_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
    )
    arguments.update(options.arguments)
    args = args_class(**arguments)

    validation = data["validation"]
    during = eval_subset(validation, config, total_steps)  # what the periodic evaluations score
    best = BestEvalCallback(model, main_key, greater_is_better(task.main_metric))
    throughput = ThroughputCallback()
    callbacks = [best, throughput, MaskStateCallback(model), NonFiniteLossCallback(model)]
    adalora = AdaLoRACallback(model) if spec.kind == "adalora" else None
    if adalora is not None:
        callbacks.append(adalora)
    trainer = _make_trainer_class(family, options)(
        model=model, args=args, train_dataset=data["train"], eval_dataset=during,
        data_collator=family.collator(processor, model), compute_metrics=family.metrics_fn(task, processor),
        preprocess_logits_for_metrics=options.preprocess_logits, callbacks=callbacks)
    trainer.throughput = throughput
    if not config.progress:  # no progress bars means no per-step log lines either
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)

    resume_from = last_checkpoint(out / "checkpoints") if config.resume else None
    stamp_identity(config, out)
    restore_mask_state(model, resume_from)  # the dropout masks continue where the checkpoint left them
    best.restore(resume_from)  # the evaluations before the checkpoint still compete for the best
    train_started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.perf_counter() - train_started
    if not best.history or best.history[-1]["step"] != trainer.state.global_step:
        trainer.evaluate()
    final_eval = best.history[-1]
    best.restore_best()
    test = full = None
    if "test" in data:
        test = trainer.evaluate(data["test"], metric_key_prefix="test")
    elif len(during) < len(validation):  # the headline: the best checkpoint on the FULL validation split
        full = trainer.evaluate(validation, metric_key_prefix="full")

    def strip(metrics: dict, prefix: str) -> dict:
        names = set(task.metric_names)
        return {k[len(prefix) + 1:]: float(v) for k, v in metrics.items()
                if k.startswith(prefix + "_") and k[len(prefix) + 1:] in names}

    record = {
        "task": task.name, "family": family.name, "model": config.model, "method": spec.name, "label": spec.label, "kind": spec.kind,
        "rank": rank, "seed": config.seed, "adapter_seed": resolved.adapter_seed,
        "main_metric": task.main_metric,
        "metrics": strip(test, "test") if test is not None else
        strip(full, "full") if full is not None else strip(best.best["metrics"], "eval"),
        "selection": "test@best-validation" if test is not None else
        "full-validation@best-validation-subset" if full is not None else "best-validation",
        "best_eval": {"step": best.best["step"], "epoch": best.best["epoch"],
                      "metrics": strip(best.best["metrics"], "eval")},
        "final_eval": {"step": final_eval["step"], "epoch": final_eval["epoch"],
                       "metrics": strip(final_eval["metrics"], "eval")},
        "test": strip(test, "test") if test is not None else None,
        "history": [{"step": h["step"], "epoch": h["epoch"], "metrics": strip(h["metrics"], "eval")}
                    for h in best.history],
        "trainable_params": int(trainable), "total_params": int(total_params),
        "trainable_percent": 100.0 * trainable / total_params,
        "samples_per_second": throughput.samples_per_second,
        "trainer_samples_per_second": output.metrics.get("train_samples_per_second"),
        "train_steps": int(trainer.state.global_step), "train_examples": len(data["train"]),
        "eval_examples": len(validation), "eval_examples_during_training": len(during), "test_examples": len(data["test"]) if "test" in data else 0,
        "train_loss": float(output.training_loss),
        "preprocessing": prepared.notes,
        "peak_memory_bytes": env.peak_memory_bytes(),
        "train_seconds": train_seconds,
        "adalora_updates": adalora.calls if adalora is not None else None,
        "world_size": env.world_size(), "threads": threads, "device": env.device_name(),
        "versions": env.versions(), "git_commit": env.git_commit(),
        "config": config.to_dict(), "resolved": resolved.to_dict(),
        "identity": identity(config),
    }
    if trainer.is_world_process_zero():
        record["adapter_bytes"] = save_trained(_peft_or_model(model), spec.kind, out / "adapter")
        if not config.keep_checkpoints:
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
        record["wall_seconds"] = time.perf_counter() - started
        from asymlora.atomic import atomic_write_text
        import json

        atomic_write_text(out / "metrics.json", json.dumps(record, indent=2, default=str) + "\n")
    else:
        record["adapter_bytes"] = None
        record["wall_seconds"] = time.perf_counter() - started
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return record


def _peft_or_model(model):
    return getattr(model, "module", model)
