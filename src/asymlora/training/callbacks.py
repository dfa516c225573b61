"""Trainer callbacks: AdaLoRA's rank reallocation, training throughput, best-evaluation tracking.

* :class:`AdaLoRACallback` calls PEFT's ``update_and_allocate(global_step)`` after EVERY optimiser
  step, before the gradients are zeroed (it scores importance from ``p.grad``). Without it AdaLoRA
  never reallocates its ranks (the bug of the paper authors' code).
* :class:`ThroughputCallback` times only the training steps (forward, backward, optimiser) — not
  evaluation or checkpointing — so ``samples_per_second`` compares methods fairly.
* :class:`MaskStateCallback` writes every adapted layer's dropout-mask stream position into each
  Trainer checkpoint (``asymlora_mask_state.json``), and :func:`restore_mask_state` puts it back
  when a run resumes, so a resumed run draws the same masks as an uninterrupted one.
* :class:`BestEvalCallback` keeps every evaluation and an in-memory copy of the TRAINABLE tensors
  at the best one (by the task's main metric), so the run can restore them at the end (like
  ``load_best_model_at_end`` without writing full checkpoints). Each Trainer checkpoint carries both
  (``asymlora_best.json``: the evaluations so far and which was best; ``asymlora_best.safetensors``:
  the best tensors), and :meth:`BestEvalCallback.restore` puts them back when a run resumes, so a
  resumed run selects its best evaluation among ALL of them, not only those after the resume.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from transformers import TrainerCallback


def _unwrap(model):
    """The PEFT / DDP-free model object: DDP's ``.module``, if any."""
    return getattr(model, "module", model)


class AdaLoRACallback(TrainerCallback):
    """Call ``model.base_model.update_and_allocate(step)`` after each optimiser step.

    ``calls`` counts the calls (tests check it equals the number of optimiser steps).
    """

    def __init__(self, model):
        self.model = model
        self.calls = 0

    def on_optimizer_step(self, args, state, control, **kwargs):
        peft_model = _unwrap(self.model)
        # state.global_step counts the steps completed BEFORE this one: 0-based, as in PEFT's example.
        peft_model.base_model.update_and_allocate(state.global_step)
        self.calls += 1
        return control


class ThroughputCallback(TrainerCallback):
    """Wall time of the training steps alone; ``samples`` is filled by the trainer (see runner)."""

    def __init__(self):
        self.step_seconds = 0.0
        self.steps = 0
        self.samples = 0
        self._start = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self._start is not None:
            self.step_seconds += time.perf_counter() - self._start
            self.steps += 1
            self._start = None
        return control

    @property
    def samples_per_second(self) -> float | None:
        return self.samples / self.step_seconds if self.step_seconds > 0 else None


def _checkpoint_folder(args, state) -> Path | None:
    """The Trainer checkpoint folder this ``on_save`` belongs to, on the main process only (None
    elsewhere, or if the Trainer did not write it)."""
    folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
    return folder if folder.is_dir() and state.is_world_process_zero else None


BEST_STATE_JSON = "asymlora_best.json"
BEST_STATE_TENSORS = "asymlora_best.safetensors"


class BestEvalCallback(TrainerCallback):
    """Record ``(step, epoch, metrics)`` of every evaluation; snapshot trainable tensors at the best.

    ``metric`` is the Trainer's key (``"eval_accuracy"``, ``"eval_loss"``); ``greater_is_better``
    says which way is better (the task family's rule).
    """

    def __init__(self, model, metric: str, greater_is_better: bool = True):
        self.model = model
        self.metric = metric
        self.greater_is_better = greater_is_better
        self.history: list[dict] = []
        self.best: dict | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def _trainable(self):
        return {n: p for n, p in _unwrap(self.model).named_parameters() if p.requires_grad}

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = dict(metrics or {})
        if not any(k.startswith("eval_") for k in metrics) or self.metric not in metrics:
            return control
        record = {"step": state.global_step, "epoch": state.epoch, "metrics": metrics}
        if self.history and self.history[-1]["step"] == state.global_step:
            self.history[-1] = record
        else:
            self.history.append(record)
        value = metrics[self.metric]
        best = None if self.best is None else self.best["metrics"][self.metric]
        if best is None or (value > best if self.greater_is_better else value < best):
            self.best = record
            self.best_state = {n: p.detach().to("cpu", copy=True) for n, p in self._trainable().items()}
        return control

    def on_save(self, args, state, control, **kwargs):
        """Write the history and the best snapshot into the checkpoint (before the mask-state file,
        which marks the checkpoint complete: this callback runs first)."""
        from asymlora.atomic import atomic_write_text
        from asymlora.training.checkpoints import save_tensors

        folder = _checkpoint_folder(args, state)
        if folder is None:
            return control
        if self.best_state is not None:
            save_tensors(folder / BEST_STATE_TENSORS, self.best_state)
        best_index = next((i for i, h in enumerate(self.history) if h is self.best), None)
        atomic_write_text(folder / BEST_STATE_JSON,
                          json.dumps({"history": self.history, "best": best_index}, default=float) + "\n")
        return control

    def restore(self, checkpoint: str | None) -> bool:
        """Load the history and best snapshot saved in ``checkpoint`` (if any); True if restored."""
        from asymlora.training.checkpoints import load_tensors

        if checkpoint is None or not (Path(checkpoint) / BEST_STATE_JSON).is_file():
            return False
        saved = json.loads((Path(checkpoint) / BEST_STATE_JSON).read_text(encoding="utf-8"))
        self.history = saved["history"]
        self.best = None if saved["best"] is None else self.history[saved["best"]]
        self.best_state = None if self.best is None else load_tensors(Path(checkpoint) / BEST_STATE_TENSORS)
        return True

    def restore_best(self) -> bool:
        """Copy the best snapshot back into the model; False if there is none."""
        if self.best_state is None:
            return False
        with torch.no_grad():
            for name, p in self._trainable().items():
                p.copy_(self.best_state[name].to(p.device))
        return True


MASK_STATE_FILE = "asymlora_mask_state.json"


def _adapted(model) -> dict:
    from asymlora.adapters.inject import adapted_modules

    return adapted_modules(_unwrap(model))


class MaskStateCallback(TrainerCallback):
    """Save ``{module name: AdaptedLinear.mask_state()}`` beside each Trainer checkpoint."""

    def __init__(self, model):
        self.model = model

    def on_save(self, args, state, control, **kwargs):
        from asymlora.atomic import atomic_write_text

        modules = _adapted(self.model)
        folder = _checkpoint_folder(args, state)
        # written last, atomically, for every run (``{}`` without adapters): it also marks the
        # checkpoint as complete (see asymlora.training.resume.last_checkpoint)
        if folder is not None:
            atomic_write_text(folder / MASK_STATE_FILE,
                              json.dumps({name: m.mask_state() for name, m in modules.items()}) + "\n")
        return control


def restore_mask_state(model, checkpoint: str | None) -> bool:
    """Load the mask-stream positions saved in ``checkpoint`` (if any); True if restored."""
    if checkpoint is None or not (Path(checkpoint) / MASK_STATE_FILE).is_file():
        return False
    saved = json.loads((Path(checkpoint) / MASK_STATE_FILE).read_text(encoding="utf-8"))
    for name, module in _adapted(model).items():
        if name in saved:
            module.load_mask_state(saved[name])
    return True
