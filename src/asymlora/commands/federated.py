"""``asymlora federated``: B-only FedAvg against LoRA aggregation rules and centralised training, on Flower.

Writes to ``--out`` (default ``runs/federated``): ``federated.json`` (the config, each client's label
counts, every round of every method, the command line), ``federated.md`` (the tables) and
``federated_accuracy.png`` (test accuracy per round per method). See docs/federated.md.
"""

from __future__ import annotations

import importlib.util

import typer

from asymlora.commands.common import UserError, out_dir, parse_floats, user_input, write_study_report

FLOWER_HINT = "install Flower with its simulation runtime: pip install 'flwr[simulation]==1.42.0'"


def require_flower(backend: str = "ray") -> None:
    """Raise a one-line :class:`UserError` when ``flwr`` (or, for ``backend="ray"``, Ray) is missing."""
    for module in ("flwr", "ray") if backend == "ray" else ("flwr",):
        if importlib.util.find_spec(module) is None:
            raise UserError(f"asymlora federated needs the {module!r} package, which is not installed; {FLOWER_HINT}")


def noise_levels(text: str) -> list[float]:
    """``"0,0.5,1"`` -> ``[0.0, 0.5, 1.0]`` (empty text: no levels).

    Raises:
        UserError: an entry that is not a finite number >= 0.
    """
    return parse_floats(text, "--dp-noise", "0,0.5,1", non_negative=True)


def register(app: typer.Typer) -> None:
    @app.command("federated")
    def federated(
        clients: int = typer.Option(4, "--clients", help="number of clients N"),
        alpha: float = typer.Option(0.5, "--alpha", help="Dirichlet concentration of the label split (small = non-IID)"),
        rounds: int = typer.Option(5, "--rounds", help="federated rounds"),
        local_steps: int = typer.Option(5, "--local-steps", help="optimiser steps per client per round"),
        methods: str = typer.Option("b_only,lora_separate,lora_product", "--methods",
                                    help="comma list of b_only, lora_separate, lora_product"),
        centralised: bool = typer.Option(True, "--centralised/--no-centralised", help="also train centrally"),
        task: str = typer.Option("tweets", "--task", help="a single-text classification task"),
        model: str = typer.Option("minilm", "--model", help="model name"),
        batch_size: int = typer.Option(8, "--batch-size", help="examples per step (per client)"),
        max_length: int = typer.Option(32, "--max-length", help="tokens per sequence"),
        learning_rate: float = typer.Option(1e-3, "--learning-rate", help="AdamW learning rate"),
        rank: int = typer.Option(8, "--rank", help="adapter rank r"),
        train_examples: int = typer.Option(1000, "--train-examples", help="training examples split over clients"),
        eval_examples: int = typer.Option(200, "--eval-examples", help="held-out examples for accuracy"),
        seed: int = typer.Option(0, "--seed", help="seed of the split, A, head and batch order"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/federated)"),
        backend: str = typer.Option("ray", "--backend",
                                    help="ray (Flower's simulation runtime) or inprocess (same apps, no Ray)"),
        verbose: bool = typer.Option(False, "--verbose", help="Flower's INFO log"),
        dp_clip: float = typer.Option(0.0, "--dp-clip", help="client-level DP: clip each client's update to this "
                                      "L2 norm C (0: no DP; docs/federated.md)"),
        dp_noise: str = typer.Option("", "--dp-noise", help="comma list of DP noise multipliers z (noise std zC/N "
                                     "on the average); every method runs once per value; needs --dp-clip"),
    ) -> None:
        """Federated fine-tuning on Flower's simulation runtime: B-only FedAvg (exact) vs LoRA rules (docs/federated.md)."""
        from asymlora.federated.config import FederatedConfig, get_method

        chosen = [get_method(name) for name in dict.fromkeys(x.strip() for x in methods.split(",") if x.strip())]
        if backend not in ("ray", "inprocess"):
            raise UserError(f"--backend {backend!r} is not one of ray, inprocess; choose one of them")
        if not chosen and not centralised:
            raise UserError("nothing to run: give --methods or keep --centralised")
        levels = noise_levels(dp_noise)
        if levels and not dp_clip > 0:
            raise UserError("--dp-noise needs a clipping norm: give --dp-clip C > 0 (noise is scaled by C)")
        config = FederatedConfig(task=task, model=model, clients=clients, alpha=alpha, rounds=rounds,
                                 local_steps=local_steps, batch_size=batch_size, max_length=max_length,
                                 learning_rate=learning_rate, rank=rank, train_examples=train_examples,
                                 eval_examples=eval_examples, seed=seed, clipping_norm=dp_clip,
                                 noise_multiplier=max(levels, default=0.0)).validate()
        if levels and not chosen:
            raise UserError("--dp-noise applies to the federated methods; give --methods")
        if chosen:
            require_flower(backend)
        from asymlora.federated.experiment import compare
        from asymlora.federated.local import task_data
        from asymlora.federated.report import accuracy_plot, markdown

        with user_input():
            task_data(config)  # a split that cannot serve N clients fails here, before any training or output
        result = vars(compare(config, chosen, centralised, quiet=not verbose, backend=backend, noise_levels=levels))
        write_study_report(out_dir(out, "federated"), "federated", result, markdown, accuracy_plot,
                           "federated_accuracy.png")
