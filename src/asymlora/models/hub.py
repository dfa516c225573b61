"""The Hugging Face hub: whether it is switched off, and the one-line refusal when a model needs it."""

from __future__ import annotations

import os

from asymlora.models.packaged import PACKAGED
from asymlora.models.registry import ModelRef, resolve_model


def hub_offline() -> bool:
    """Whether the hub is switched off.

    Returns:
        bool: True when ``HF_HUB_OFFLINE`` is set to a true value (1, true, yes, on).
    """
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_hint(what: str) -> str:
    """The sentence that tells a user without hub access what to do instead.

    Args:
        what: the thing that needs the hub (``"model 'roberta-large' (FacebookAI/roberta-large)"``).

    Returns:
        str: ``"<what> comes from the Hugging Face hub, which is not reachable here"`` (+ the reason).
    """
    return (f"{what} comes from the Hugging Face hub, which is not reachable here"
            f"{' (HF_HUB_OFFLINE=1)' if hub_offline() else ''}")


def _in_hub_cache(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - a broken cache just means "not cached"
        return False


def check_reachable(ref_or_name: str | ModelRef) -> None:
    """Refuse a hub model while the hub is off and the model is not in the local hub cache.

    Args:
        ref_or_name: anything :func:`~asymlora.models.registry.resolve_model` takes.

    Raises:
        ValueError: one line with the fix (a local folder, or a packaged model).
    """
    ref = resolve_model(ref_or_name)
    if ref.source != "hub" or not hub_offline():
        return
    if not _in_hub_cache(ref.path_or_id):
        raise ValueError(f"{hub_hint(f'model {ref.name!r} ({ref.path_or_id})')}: download it where the hub is "
                         "reachable and pass its folder with --model /path/to/folder, or use a packaged model "
                         f"({', '.join(PACKAGED)})")
