"""``asymlora train``: fine-tune one model on one task with one method (Hugging Face Trainer).

Writes ``<out>/metrics.json`` and ``<out>/adapter/`` (see :mod:`asymlora.training.runner`).
Works unchanged under ``torchrun --nproc_per_node N`` or ``accelerate launch`` (DDP).
"""

from __future__ import annotations

import typer

from asymlora.commands.common import (UserError, batch_size_option, dtype_name, dtype_option, learning_rate_option,
                                      max_length_option, max_steps_option, out_option, threads_option,
                                      verbose_option)

QUICK = {"max_steps": 20, "train_limit": 256, "eval_limit": 128, "max_length": 64}


def parse_targets(targets: str | None):
    """``--targets`` as the config takes it: ``None``, ``"all-linear"``, ``"re:<regex>"`` or a list of suffixes.

    Raises:
        UserError: an empty list.
    """
    if targets is None:
        return None
    if targets == "all-linear" or targets.startswith("re:"):
        return targets
    value = [t.strip() for t in targets.split(",") if t.strip()]
    if not value:
        raise UserError("--targets is empty; give module-name suffixes (query,value), 'all-linear' or 're:<regex>'")
    return value


def run_in_folder(config, plan, folder, replace: bool) -> None:
    """Train ``plan`` into ``folder`` (refusing a finished run unless ``replace``), removing a folder this call
    created when bad input surfaces while loading; print the summary on the main process."""
    import json
    import shutil

    from asymlora.commands.common import out_dir
    from asymlora.training import env, train as run_train

    if (folder / "metrics.json").exists() and not replace:
        raise UserError(f"--out {folder} already holds a finished run (metrics.json); choose another --out, "
                        "or pass --overwrite to replace it")
    created = not folder.exists()
    out_dir(folder, "train")
    try:
        record = run_train(config, plan)
    except UserError:
        if created:  # bad input found while loading data or the model: leave nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if env.is_main_process():
        summary = {k: record[k] for k in ("task", "family", "model", "method", "rank", "seed", "main_metric",
                                          "metrics", "selection", "trainable_params", "trainable_percent",
                                          "samples_per_second", "adapter_bytes", "wall_seconds")}
        print(json.dumps(summary, indent=2, default=str))
        print(f"wrote {folder / 'metrics.json'} and {folder / 'adapter'}")


def register(app: typer.Typer) -> None:
    from asymlora.choosing_advice import ADVICE

    @app.command("train", help="Fine-tune with one method and write metrics.json + adapter/.\n\n"
                 f"Which method, rank and learning rate for a budget (docs/choosing.md, computed by `asymlora evidence` "
                 f"from the committed sweeps and frontier of MiniLM on the tweets): {ADVICE}")
    def train(
        task: str = typer.Option(..., "--task", help="task name (tweets, aclsum_aspect, aclsum_summary, digits, rte, sst2, ...)"),
        model: str = typer.Option("minilm", "--model", help="model name (minilm, roberta-large, tiny-bert, ...), "
                                  "a local folder or a hub id"),
        method: str = typer.Option("b_only", "--method", help="method name (lora, b_only, a_only, "
                                   "peft_adalora = adalora, full, linear_probe, ...)"),
        rank: int = typer.Option(8, "--rank", help="adapter rank r"),
        seed: int = typer.Option(0, "--seed", help="data order, head init, dropout"),
        adapter_seed: int = typer.Option(None, "--adapter-seed", help="seed of the adapter's factors (default --seed)"),
        out: str = out_option("train"),
        data_dir: str = typer.Option(None, "--data-dir", help="local data folder (GLUE TSV layout)"),
        max_steps: int = max_steps_option("optimiser steps (overrides --epochs)", "none: --epochs decides; --quick 20"),
        epochs: float = typer.Option(None, "--epochs", help="epochs (default: the task's, e.g. tweets 3)"),
        learning_rate: float = learning_rate_option("the task's, e.g. tweets 4e-4"),
        batch_size: int = batch_size_option(default_text="the task's, e.g. tweets 16, digits 8"),
        max_length: int = max_length_option(default_text="the task's, e.g. tweets 128; --quick 64"),
        alpha: float = typer.Option(None, "--alpha", help="adapter alpha (s = alpha / r; default: the task's, 16 "
                                    "for every task; or --alpha-ratio · rank)"),
        dropout: float = typer.Option(0.05, "--dropout", help="adapter input dropout (0.05: with A frozen the "
                                      "backward then keeps only the r-wide projection; 0 turns it off)"),
        targets: str = typer.Option(None, "--targets", help="comma-separated module suffixes, 're:<regex>' or "
                                    "'all-linear' (default: the model's, e.g. query,value)"),
        train_limit: int = typer.Option(None, "--train-limit", help="use at most N training examples (seeded)"),
        eval_limit: int = typer.Option(None, "--eval-limit", help="use at most N examples per eval split"),
        eval_steps: int = typer.Option(None, "--eval-steps", help="evaluate every N steps (default: each epoch)"),
        evals_per_epoch: int = typer.Option(None, "--evals-per-epoch", help="evaluate N times per epoch"),
        grad_accum: int = typer.Option(1, "--grad-accum", help="gradient accumulation steps"),
        report_to: str = typer.Option("none", "--report-to", help="Trainer logging integration (none, wandb, "
                                      "tensorboard, mlflow): loss, metrics and the adapter's config, written "
                                      "under <out>/tracking unless WANDB_DIR / TENSORBOARD_LOGGING_DIR / "
                                      "MLFLOW_TRACKING_URI say otherwise"),
        resume: bool = typer.Option(False, "--resume", help="resume from the last checkpoint in <out>/checkpoints"),
        keep_checkpoints: bool = typer.Option(False, "--keep-checkpoints", help="keep Trainer checkpoints"),
        save_checkpoints: bool = typer.Option(True, "--save-checkpoints/--no-save-checkpoints",
                                              help="write Trainer checkpoints at each evaluation (for --resume)"),
        threads: int = threads_option(minimum=None),  # checked with the other settings
        quick: bool = typer.Option(False, "--quick", help="20 steps on 256 examples, max length 64"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace a finished run already in --out"),
        alpha_ratio: float = typer.Option(None, "--alpha-ratio", help="alpha = ratio · rank (the paper's 2 for "
                                          "instruction tuning); ignored when --alpha is given"),
        dtype: str = dtype_option("fp32", "bf16: bfloat16 mixed precision (GPUs); fp16 is not supported here"),
        gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing",
                                                    help="recompute activations in backward to save memory"),
        compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model (inductor: a C++ "
                                           "compiler on the CPU); the same identity and maths (the model's own dropout then draws from "
                                           "inductor's RNG). On the CPU it paid off only for tiny models (docs/benchmarks.md)"),
        verbose: bool = verbose_option(),
    ) -> None:
        """Fine-tune with one method and write metrics.json + adapter/ (the command's help adds the
        computed advice of :mod:`asymlora.choosing_advice`)."""
        from pathlib import Path

        from asymlora.commands.common import user_input
        from asymlora.methods import canonical_name
        from asymlora.training import TrainConfig
        from asymlora.training.runner import validate

        options = dict(max_steps=max_steps, train_limit=train_limit, eval_limit=eval_limit, max_length=max_length)
        if quick:
            options = {k: (QUICK[k] if v is None else v) for k, v in options.items()}
        targets_value = parse_targets(targets)
        precision = dtype_name(dtype)
        if precision == "fp16":
            raise UserError("--dtype fp16 is not supported for training; use bf16 (GPUs) or fp32")
        folder = Path(out) if out else Path("runs") / "train"
        with user_input():
            config = TrainConfig(task=task, model=model, method=canonical_name(method), rank=rank, seed=seed,
                                 adapter_seed=adapter_seed, out=str(folder), data_dir=data_dir, epochs=epochs,
                                 learning_rate=learning_rate, batch_size=batch_size, alpha=alpha, dropout=dropout,
                                 targets=targets_value, eval_steps=eval_steps, evals_per_epoch=evals_per_epoch, grad_accum=grad_accum,
                                 report_to=report_to, resume=resume, keep_checkpoints=keep_checkpoints,
                                 save_checkpoints=save_checkpoints, threads=threads, alpha_ratio=alpha_ratio,
                                 bf16=(precision == "bf16") or None,
                                 gradient_checkpointing=gradient_checkpointing or None, progress=verbose,
                                 compile=compile_model, **options)
            plan = validate(config)
        run_in_folder(config, plan, folder, replace=overwrite or resume)
