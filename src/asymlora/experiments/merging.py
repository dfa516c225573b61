"""The merging study: B-only adapters of several tasks, trained from one frozen A, merged by
asymlora (exact in B) and by PEFT's ``add_weighted_adapter`` (factor-wise), scored per task.

For each seed ``s`` one B-only adapter per task is trained on the same base model with
``adapter_seed = s``, so all tasks of a seed share A bit for bit. A *body* is a set of per-module
weight deltas ``ΔW`` (d_out × d_in, fp32) on the frozen base:

* ``single <task>``: that task's own adapter, ``s B A``;
* ``asymlora <method>``: :func:`asymlora.adapters.merge.merge_adapters` of the task adapters
  (heads dropped), ``s · merge(B_i) · A``;
* ``peft <method>``: the adapters exported as PEFT LoRA folders (bodies only: PEFT refuses to merge
  adapters that save ``modules_to_save``), loaded into one ``PeftModel`` and merged with
  ``add_weighted_adapter(combination_type=method)``; ``ΔW = layer.get_delta_weight(merged)``.

Heads differ per task (a 3-way classifier trained with each task's adapter), so every body is scored
on task ``t`` with task ``t``'s own trained head: the base weights become ``W0 + ΔW``, the classifier
is the one saved in task ``t``'s adapter, and accuracy is measured on a fixed subset of ``t``'s test
split (the same rows for every body and seed). Weights are 1 for every adapter (task arithmetic and
TIES with λ = 1, DARE on task arithmetic); ``linear`` is also run with weights ``1/n`` (the mean),
where PEFT's factor-wise merge gives ``n`` times the mean of the deltas.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

#: (label, source, method, weights rule): the merges compared; "one" = weight 1, "mean" = 1/n.
MERGES = (
    ("asymlora linear", "asymlora", "linear", "one"),
    ("asymlora linear mean", "asymlora", "linear", "mean"),
    ("asymlora ties", "asymlora", "ties", "one"),
    ("asymlora dare_linear", "asymlora", "dare_linear", "one"),
    ("asymlora dare_ties", "asymlora", "dare_ties", "one"),
    ("asymlora magnitude", "asymlora", "magnitude", "one"),
    ("peft linear", "peft", "linear", "one"),
    ("peft linear mean", "peft", "linear", "mean"),
    ("peft ties", "peft", "ties", "one"),
    ("peft dare_linear", "peft", "dare_linear", "one"),
    ("peft cat", "peft", "cat", "one"),
)


@dataclass(frozen=True)
class MergeStudy:
    """The study's settings (all stated in the result file)."""

    tasks: tuple[str, ...] = ("tweets", "aclsum_aspect")
    seeds: tuple[int, ...] = (0, 1, 2)
    model: str = "minilm"
    rank: int = 8
    steps: int = 100
    learning_rate: float = 1e-3
    batch_size: int = 16
    max_length: int = 64
    train_limit: int = 2000
    eval_limit: int = 300
    threads: int = 1
    ties_density: float = 0.2
    dare_density: float = 0.1
    magnitude_density: float = 0.1


@dataclass
class Score:
    """One body scored on one task's test subset with that task's head."""

    seed: int
    body: str
    source: str
    method: str
    task: str
    accuracy: float


@dataclass
class StudyResult:
    study: MergeStudy
    scores: list[Score] = field(default_factory=list)
    exactness: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"study": asdict(self.study), "scores": [asdict(s) for s in self.scores], "exactness": self.exactness}


def train_adapters(study: MergeStudy, out: Path, say: Callable[[str], None] = print) -> dict[int, dict[str, Path]]:
    """Train (or reuse, when ``metrics.json`` is there) one B-only adapter per (seed, task);
    returns ``{seed: {task: adapter folder}}``."""
    from asymlora.training.config import TrainConfig
    from asymlora.training.runner import train_run

    folders: dict[int, dict[str, Path]] = {}
    for seed in study.seeds:
        for task in study.tasks:
            run = out / "runs" / f"{task}-s{seed}"
            if not (run / "metrics.json").is_file():
                say(f"training {task} seed {seed} ({study.steps} steps)")
                train_run(TrainConfig(task=task, model=study.model, method="b_only", rank=study.rank, seed=seed,
                                      adapter_seed=seed, out=str(run), max_steps=study.steps,
                                      learning_rate=study.learning_rate, batch_size=study.batch_size,
                                      max_length=study.max_length, train_limit=study.train_limit,
                                      eval_limit=study.eval_limit, evals_per_run=1, threads=study.threads,
                                      save_checkpoints=False))
            folders.setdefault(seed, {})[task] = run / "adapter"
    return folders


def _weights(rule: str, count: int) -> list[float]:
    return [1.0 / count if rule == "mean" else 1.0] * count


def _density(study: MergeStudy, method: str) -> float | None:
    return {"ties": study.ties_density, "magnitude": study.magnitude_density}.get(
        method, study.dare_density if method.startswith("dare") else None)


def asymlora_bodies(study: MergeStudy, adapters: list[Path], seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """``{label: {module: ΔW}}`` of every asymlora merge of ``adapters``."""
    from asymlora.adapters.merge import delta_weights, merge_adapters

    bodies = {}
    for label, source, method, rule in MERGES:
        if source == "asymlora":
            state = merge_adapters(adapters, _weights(rule, len(adapters)), method,
                                   density=_density(study, method), seed=seed, heads="drop")
            bodies[label] = delta_weights(state)
    return bodies


def peft_bodies(study: MergeStudy, adapters: list[Path], seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """``{label: {module: ΔW}}`` of every PEFT merge, through stock ``add_weighted_adapter``."""
    from peft import PeftModel

    from asymlora.adapters.io import load_adapter, read_adapter
    from asymlora.adapters.merge import merge_adapters
    from asymlora.adapters.peft_interop import export_peft
    from asymlora.models import load_for_sequence_classification

    modules = list(read_adapter(adapters[0]).meta.modules)
    names = [f"t{i}" for i in range(len(adapters))]
    with tempfile.TemporaryDirectory() as scratch:
        for name, folder in zip(names, adapters):
            merge_adapters([folder], [1.0], heads="drop", out=Path(scratch) / f"{name}-body")
            body = load_adapter(load_for_sequence_classification(study.model, 3), Path(scratch) / f"{name}-body")
            export_peft(body, Path(scratch) / name)
        model = PeftModel.from_pretrained(load_for_sequence_classification(study.model, 3), Path(scratch) / names[0],
                                          adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(Path(scratch) / name, adapter_name=name)
    bodies = {}
    for label, source, method, rule in MERGES:
        if source != "peft":
            continue
        merged = label.replace(" ", "_")
        torch.manual_seed(seed)  # PEFT's DARE draws from torch's global generator
        model.add_weighted_adapter(names, _weights(rule, len(names)), merged, combination_type=method,
                                   density=_density(study, method))
        inner = model.base_model.model
        bodies[label] = {m: inner.get_submodule(m).get_delta_weight(merged).detach().float() for m in modules}
    return bodies


def exactness(bodies: dict[str, dict[str, torch.Tensor]], singles: list[dict[str, torch.Tensor]], seed: int) -> list[dict]:
    """Per body that should equal a weighted sum of the deltas, the largest relative error
    ``max_module ‖ΔW_body − Σ w_i ΔW_i‖_F / ‖Σ w_i ΔW_i‖_F``."""
    rows = []
    for label, rule in (("asymlora linear", "one"), ("asymlora linear mean", "mean"), ("peft cat", "one"),
                        ("peft linear", "one"), ("peft linear mean", "mean")):
        weights = _weights(rule, len(singles))
        worst = 0.0
        for module, delta in bodies[label].items():
            target = sum(w * s[module] for w, s in zip(weights, singles))
            worst = max(worst, ((delta - target).norm() / target.norm()).item())
        rows.append({"seed": seed, "body": label, "max_relative_error": worst})
    return rows


def _heads(adapter: Path) -> dict[str, torch.Tensor]:
    from asymlora.adapters.io import read_adapter

    state = read_adapter(adapter)
    return {key: state.tensors[key] for key in state.meta.modules_to_save}


def run_study(study: MergeStudy, out: Path, say: Callable[[str], None] = print) -> StudyResult:
    """Train the adapters, merge them both ways, score every body on every task (see the module docstring)."""
    from asymlora.adapters.io import read_adapter
    from asymlora.adapters.merge import delta_weights
    from asymlora.experiments.merging_eval import TaskScorer

    folders = train_adapters(study, out, say)
    modules = list(read_adapter(folders[study.seeds[0]][study.tasks[0]]).meta.modules)
    scorers = {t: TaskScorer.build(t, study.model, study.max_length, study.eval_limit, modules) for t in study.tasks}
    result = StudyResult(study)
    for seed in study.seeds:
        adapters = [folders[seed][t] for t in study.tasks]
        singles = [delta_weights(read_adapter(a)) for a in adapters]
        say(f"merging seed {seed}")
        bodies = {f"single {t}": d for t, d in zip(study.tasks, singles)}
        bodies.update(asymlora_bodies(study, adapters, seed))
        bodies.update(peft_bodies(study, adapters, seed))
        result.exactness += exactness(bodies, singles, seed)
        for task, adapter in zip(study.tasks, adapters):
            head = _heads(adapter)
            result.scores.append(Score(seed, "base + head", "base", "none", task, scorers[task].score(None, head)))
            for label, deltas in bodies.items():
                source, _, method = label.partition(" ")
                result.scores.append(Score(seed, label, source, method, task, scorers[task].score(deltas, head)))
        say(f"scored seed {seed}")
    return result
