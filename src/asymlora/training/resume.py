"""Resuming a run: the identity stamp of its checkpoints, the check that they are this run's, and the
last complete checkpoint.

``<out>/run_identity.json`` is written just before training starts::

    {<every identity field of the TrainConfig, as asymlora.training.config.identity gives it>,
     "resolved": {"learning_rate", "epochs", "batch_size", "max_length", "rank", ...}}

The identity fields are the fingerprint's input and say what was ASKED (``null`` = the task's
default); ``resolved`` says what the run really USED (task defaults filled in, ``rank`` 0 for
rankless methods). Only the identity fields decide whether checkpoints belong to a run: ``resolved``
follows from them, and stamps written before it existed (no ``resolved``) still match.
"""

from __future__ import annotations

import json
from pathlib import Path

from asymlora.errors import UserError
from asymlora.run_folder import CHECKPOINTS_DIR, IDENTITY_FILE
from asymlora.training import env
from asymlora.training.callbacks import MASK_STATE_FILE
from asymlora.training.config import TrainConfig, identity
#: Identity fields a ``--resume`` may change: how long the run goes on (extending a finished budget).
RUN_LENGTH = ("max_steps", "epochs")
#: The stamp's section of resolved values: a record of what the run used, never compared.
RESOLVED_KEY = "resolved"
_CHECKPOINT = "checkpoint-"


def last_checkpoint(folder: Path) -> str | None:
    """The newest COMPLETE checkpoint under ``folder``: its last file, ``asymlora_mask_state.json``
    (written atomically after the Trainer's own files), is there; a checkpoint that a kill cut short
    is skipped, never resumed from (a half-written ``trainer_state.json`` would break the resume).

    Args:
        folder: a run's ``checkpoints/`` folder (need not exist).

    Returns:
        The path of that checkpoint folder, or None when there is none.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    steps = []
    for child in folder.iterdir():
        name = child.name
        if child.is_dir() and name.startswith(_CHECKPOINT) and name[len(_CHECKPOINT):].isdigit():
            steps.append((int(name[len(_CHECKPOINT):]), child))
    for _, child in sorted(steps, reverse=True):
        if (child / MASK_STATE_FILE).is_file() and (child / "trainer_state.json").is_file():
            return str(child)
    return None


def identity_as_json(config: TrainConfig) -> dict:
    """The identity as it reads back from ``run_identity.json`` (tuples as lists, paths as text)."""
    return json.loads(json.dumps(identity(config), default=str))


def stamp_differences(config: TrainConfig, out: Path) -> list[str] | None:
    """The identity fields in which the run stamped in ``out/run_identity.json`` differs from ``config``.

    Args:
        config: the run about to start.
        out: its run folder.

    Returns:
        ``[]`` for the same run, the differing field names otherwise, or None when ``out`` holds no
        stamp or no complete checkpoint. The stamp's ``resolved`` section is not compared.
    """
    stamp = Path(out) / IDENTITY_FILE
    if not stamp.is_file() or last_checkpoint(Path(out) / CHECKPOINTS_DIR) is None:
        return None
    mine = identity_as_json(config)
    theirs = {k: v for k, v in json.loads(stamp.read_text(encoding="utf-8")).items() if k != RESOLVED_KEY}
    return sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))


def checkpoint_matches(config: TrainConfig, out: Path) -> bool:
    """True when ``out`` holds a complete checkpoint written by a run of exactly this config's identity
    (``out/run_identity.json``, stamped as that run's training started): a run that can be resumed."""
    return stamp_differences(config, out) == []


def check_resumable(config: TrainConfig, out: Path) -> None:
    """On ``--resume``, refuse checkpoints stamped (``out/run_identity.json``) by a different run:
    resuming them would mix two runs' optimiser states. A different length (:data:`RUN_LENGTH`:
    training a run on for longer) is a resume. Reads only; called before any data is loaded.

    Raises:
        UserError: ``config.resume`` is set and the stamped run differs in an identity field.
    """
    differ = [k for k in (stamp_differences(config, out) or []) if k not in RUN_LENGTH] if config.resume else []
    if differ:
        raise UserError(f"--resume: the checkpoints in {Path(out) / CHECKPOINTS_DIR} belong to a different run "
                        f"(differs in {', '.join(differ)}); resume with the same settings, or start "
                        "without --resume in another --out")


def stamp_identity(config: TrainConfig, out: Path, resolved: dict | None = None) -> None:
    """Record the run's identity in ``out/run_identity.json``, just before training starts (a run that
    fails while loading its data or model leaves no stamp): the checkpoints it writes are its own.

    Args:
        config: the run.
        out: its run folder.
        resolved: the values the run really uses (learning rate, batch size, length, rank, ...),
            stored under ``"resolved"`` beside the identity fields; None leaves the section out.
    """
    from asymlora.atomic import atomic_write_text

    if env.is_main_process():
        stamp = identity_as_json(config)
        if resolved is not None:
            stamp[RESOLVED_KEY] = json.loads(json.dumps(resolved, default=str))
        atomic_write_text(Path(out) / IDENTITY_FILE, json.dumps(stamp, indent=2) + "\n")
