"""Adapter-only saving for your own ``transformers.Trainer`` or TRL trainer on an injected model.

A ``Trainer`` saves a model by ``save_pretrained``: every checkpoint and every ``save_model`` of an
asymlora-injected SmolLM2 writes the whole base (about 540 MB in fp32), and the optimiser, scheduler
and RNG states as pickles. :class:`AdapterOnlyCheckpoints`, mixed in before the Trainer class,
replaces those writers::

    checkpoint-<step>/ (and save_model's folder)
        adapter_config.json + adapter.safetensors   asymlora's adapter folder (asymlora.save_adapter:
                                                    the trained factors, A as recipe + SHA-256)
        optimizer.safetensors + optimizer.json      optimiser and scheduler state (no pickle)
        rng_state.safetensors + rng_state.json      Python, NumPy and torch generator states
        trainer_state.json                          the Trainer's own

``asymlora.load_adapter(fresh_base, folder)`` reads any of these folders back, and
``trainer.train(resume_from_checkpoint=...)`` resumes from one (the trained factors are copied
into the model, nothing is unpickled).

Use (a plain Trainer, or TRL's ``SFTTrainer`` the same way)::

    trainer = asymlora.integrations.adapter_only(trl.SFTTrainer)(model=injected, args=..., ...)
    # or: class MyTrainer(AdapterOnlyCheckpoints, transformers.Trainer): ...

It serves asymlora-injected models only (a ``PeftModel`` already saves only its adapter).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from asymlora.adapters.adapter_file import CONFIG_FILE
from asymlora.adapters.inject import adapted_modules
from asymlora.adapters.io import assign_tensors, read_adapter, save_adapter
from asymlora.training import checkpoints


def _unwrapped(trainer):
    model = trainer.accelerator.unwrap_model(trainer.model, keep_torch_compile=False)
    if not adapted_modules(model):
        raise ValueError(f"{type(trainer).__name__} saves adapters only, but its model has no asymlora adapters "
                         f"(call asymlora.inject before building the trainer)")
    return model


class AdapterOnlyCheckpoints(checkpoints.PicklelessTrainerState):
    """Trainer mixin: checkpoints and ``save_model`` write the adapter folder, not the base model;
    optimiser, scheduler and RNG states are written without pickle
    (:class:`~asymlora.training.checkpoints.PicklelessTrainerState`).

    Put it first among the bases (``class T(AdapterOnlyCheckpoints, transformers.Trainer)``) so its
    methods override the Trainer's; see the module docstring for what a folder holds.
    """

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        if self.args.should_save:
            save_adapter(_unwrapped(self), output_dir or self.args.output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        if not Path(resume_from_checkpoint, CONFIG_FILE).is_file():
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        state = read_adapter(resume_from_checkpoint)
        trained = {f"{name}.{f}": state.tensors[f"{name}.{f}"] for name, entry in state.meta.modules.items()
                   for f in entry.trained}
        saved = {k: state.tensors[k] for k in state.meta.modules_to_save}
        assign_tensors(model or _unwrapped(self), {**trained, **saved}, state.meta.modules_to_save)


@lru_cache(maxsize=None)
def adapter_only(trainer_class: type) -> type:
    """``trainer_class`` with :class:`AdapterOnlyCheckpoints` mixed in (one class per input class).

    Args:
        trainer_class (type): ``transformers.Trainer``, ``Seq2SeqTrainer``, ``trl.SFTTrainer``, ...

    Returns:
        type: a subclass named ``AdapterOnly<Name>``.
    """
    return type(f"AdapterOnly{trainer_class.__name__}", (AdapterOnlyCheckpoints, trainer_class), {})
