"""Run a spec's grid: every run not yet in ``<out>/results.jsonl`` is trained and appended.

Layout under ``out``::

    results.jsonl                 one JSON line per finished run (see :func:`result_record`)
    runs/<task>/<method>-r<rank>-s<seed>/   each run's own folder (metrics.json, adapter/)
    spec.json                     the validated spec of the last invocation

An unfinished run whose folder holds a complete checkpoint stamped with the same identity (the run
was stopped part-way, e.g. at the end of a sitting) resumes from that checkpoint, bit for bit as if
never stopped; checkpoints of any other run in that folder are removed and the run starts from step 0.
A failing run is reported on one line, its traceback saved to ``<run dir>/error.txt``, and the grid
goes on; :func:`reproduce` returns the failures (the command then exits non-zero).
Under ``torchrun`` every process walks the same list (decided once, before any run) and only
rank 0 appends to the results file.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import traceback
from pathlib import Path

from asymlora.experiments.grid import Run, expand, shard
from asymlora.experiments.spec import Spec
from asymlora.experiments.store import append_result, done_keys, fingerprint
from asymlora.run_folder import grid_folder


def train_config(spec: Spec, run: Run, out: Path, max_steps: int | None = None, progress: bool = False):
    """The :class:`~asymlora.training.TrainConfig` of one run of the grid (``progress``: Trainer
    progress bars and per-step log lines; quiet by default)."""
    from asymlora.training import TrainConfig

    options = {k: v for k, v in spec.overrides.items() if v is not None}
    if max_steps is not None:
        options["max_steps"] = int(max_steps)
    return TrainConfig(task=run.task, model=spec.model, method=run.method, rank=max(run.rank, 1), seed=run.seed,
                       adapter_seed=run.adapter_seed, out=str(grid_folder(out, run.run_id)), data_dir=spec.data_dir,
                       progress=progress, **options)


def prepare_run_folder(config, main_process: bool = True) -> str | None:
    """Decide how an unfinished run starts: the name of the checkpoint it resumes from, or None (a
    fresh start; the main process removes checkpoints that another run left in its folder). Every
    process of a distributed grid reaches the same answer: removal happens only when none matches."""
    import shutil

    from asymlora.run_folder import CHECKPOINTS_DIR
    from asymlora.training.resume import checkpoint_matches, last_checkpoint

    folder = Path(config.out)
    if checkpoint_matches(config, folder):
        return Path(last_checkpoint(folder / CHECKPOINTS_DIR)).name
    if main_process:
        shutil.rmtree(folder / CHECKPOINTS_DIR, ignore_errors=True)
    return None


def run_fingerprint(config) -> str:
    from asymlora.training.config import identity

    return fingerprint(identity(config))


def result_record(spec: Spec, run: Run, config, record: dict) -> dict:
    """The line appended for one run: the run's metrics.json record (its validation ``history``
    included, for ``asymlora curves``) plus where it came from."""
    out = {"run_id": run.run_id, "fingerprint": run_fingerprint(config), "experiment": spec.name}
    out.update(record)
    out["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return out


def plan(spec: Spec, out: Path, seeds: list[int] | None = None, part=None, max_steps: int | None = None,
         check_sources: bool = True):
    """``(todo, skipped)``: the runs of this shard still to do, and those already in the results.

    Every run still to do is validated (names, ranks, numbers; and, with ``check_sources``, that its
    model and data are reachable), so a bad setting fails before the first run starts."""
    from asymlora.training.plan import validate

    done = done_keys(Path(out) / "results.jsonl")
    todo, skipped = [], []
    for run in shard(expand(spec, seeds), part):
        config = train_config(spec, run, Path(out), max_steps)
        key = (run.run_id, run_fingerprint(config))
        if key not in done:
            validate(config, check_sources)
        (skipped if key in done else todo).append(run)
    return todo, skipped


def reproduce(spec: Spec, out: str | Path, seeds: list[int] | None = None, part=None,
              max_steps: int | None = None, echo=print, progress: bool = False) -> dict:
    """Train every pending run of the (sharded) grid; returns ``{"done", "skipped", "failed"}``."""
    from asymlora.atomic import atomic_write_text
    from asymlora.training import env, train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo, skipped = plan(spec, out, seeds, part, max_steps)
    if env.is_main_process():
        atomic_write_text(out / "spec.json", json.dumps(spec.to_dict(), indent=2) + "\n")
    echo(f"{spec.name}: {len(todo)} runs to do, {len(skipped)} already in {out / 'results.jsonl'}")
    finished, failed = [], []
    for number, run in enumerate(todo, 1):
        config = train_config(spec, run, out, max_steps, progress)
        resume_from = prepare_run_folder(config, env.is_main_process())
        if resume_from is not None:
            config = dataclasses.replace(config, resume=True)
        echo(f"[{number}/{len(todo)}] {run.run_id} (model {spec.model})"
             + (f", resuming from {resume_from}" if resume_from else ""))
        try:
            record = train(config)
        except KeyboardInterrupt:
            raise
        except Exception as err:  # one failing run does not stop the grid; its traceback is kept
            message = f"{type(err).__name__}: {err}".splitlines()[0]
            failed.append({"run_id": run.run_id, "error": message})
            Path(config.out).mkdir(parents=True, exist_ok=True)
            atomic_write_text(Path(config.out) / "error.txt", traceback.format_exc())
            echo(f"  failed: {message}")
            continue
        if env.is_main_process():
            append_result(out / "results.jsonl", result_record(spec, run, config, record))
        main = record["metrics"].get(record["main_metric"])
        echo(f"  {record['main_metric']} = {main:.2f}  ({record['samples_per_second'] or 0:.1f} samples/s, "
             f"{record['wall_seconds']:.0f} s)")
        finished.append(run.run_id)
    return {"done": finished, "skipped": [r.run_id for r in skipped], "failed": failed}
