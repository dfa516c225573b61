"""One DomainBed run (ERM with an adapter method) on a multi-environment dataset: :func:`train_run`.

The loop is DomainBed's ``train.py`` with its ``ERM`` algorithm, on the project's public pieces
(the image family's model loader, :func:`asymlora.methods.prepare`, the ViT image processor):

* every environment ``i`` is split into out (``int(N · holdout)``) and in by
  ``seed_hash(trial_seed, i)`` (:func:`.protocol.in_out_split`);
* hyperparameters: :func:`.protocol.trial_hparams` (hparams seed 0 = defaults);
* one step draws ``batch_size`` examples *from every training environment's in-split* (uniformly,
  with replacement, as DomainBed's ``InfiniteDataLoader``), concatenates them and takes one Adam step
  on the mean cross-entropy (``lr``, weight decay 0) over the trainable parameters: the adapter
  factors the method trains plus the fresh classification head (all parameters for ``full``, the
  head only for ``linear_probe``); adapter ``dropout`` from the hyperparameters;
* at every step with ``step % checkpoint_freq == 0`` and at the last step, every environment's in
  and out splits are evaluated (accuracy). With ``eval_examples`` set, each split is evaluated on a
  fixed subset: its first ``eval_examples`` keys in the split's own shuffled order (so the subset
  depends on the trial seed and the environment only, like the split).

The Hugging Face Trainer is not used: its single-dataset sampler cannot draw one minibatch per
environment per step. The run's seed is DomainBed's sweep seed ``seed_hash(dataset, variant,
[test_env], hparams_seed, trial_seed)``; it seeds torch, the dataset (RotatedMNIST's shuffle), the
fresh head, the adapter's random factors and the minibatch draws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .config import VARIANTS, SweepConfig
from .pretrain import pixel_values
from .protocol import get_space, in_out_split, seed_hash, trial_hparams
from .records import Checkpoint, RunKey, RunRecord


def run_seed(key: RunKey) -> int:
    """DomainBed ``sweep.py``: ``seed_hash(dataset, algorithm, test_envs, hparams_seed, trial_seed)``."""
    return seed_hash(key.dataset, key.variant, [key.test_env], key.hparams_seed, key.trial_seed)


@dataclass
class EvalSet:
    """A fixed evaluation split: its name (``env{i}_in`` / ``env{i}_out``), pixels and labels."""

    name: str
    pixels: torch.Tensor
    labels: torch.Tensor


def _pixels(processor, env, keys) -> torch.Tensor:
    return pixel_values(processor, env.images(list(keys)), chunk=256)


@torch.no_grad()
def accuracy(model, pixels: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> float:
    correct = 0
    for i in range(0, len(labels), batch):
        correct += int((model(pixel_values=pixels[i:i + batch]).logits.argmax(-1) == labels[i:i + batch]).sum())
    return correct / max(1, len(labels))


def train_run(key: RunKey, cfg: SweepConfig, data=None, hparams_seed_source: int | None = None, log=print) -> RunRecord:
    """Train and evaluate one run; returns its :class:`RunRecord` (nothing is written here).

    ``data``: an already loaded :class:`MultiDomainData` (for datasets whose content does not depend
    on the seed); ``hparams_seed_source``: for reused hyperparameters, the LoRA run they come from
    (recorded only)."""
    from asymlora.methods import get_method, prepare
    from asymlora.models import load_for_sequence_classification, load_tokenizer, resolve_model
    from asymlora.tasks.domainbed import get_dataset

    started = time.perf_counter()
    spec = get_dataset(key.dataset)
    variant = VARIANTS[key.variant]
    method = get_method(variant.method)
    hparams = trial_hparams(key.hparams_seed, key.trial_seed, get_space(cfg.space))
    seed = run_seed(key)
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    if data is None:
        data = spec.load(cfg.data_dir, seed)
    n_envs = len(data.environments)
    splits = in_out_split([len(e) for e in data.environments], key.trial_seed, cfg.holdout_fraction)
    ref = resolve_model(cfg.model)
    processor = load_tokenizer(ref)

    limit = cfg.eval_examples
    evals = []
    for env, split in zip(data.environments, splits):
        for part, keys in (("in", split.in_keys), ("out", split.out_keys)):
            keys = list(keys[:limit] if limit else keys)
            evals.append(EvalSet(f"env{split.env}_{part}", _pixels(processor, env, keys),
                                 torch.as_tensor(env.labels[keys], dtype=torch.long)))

    model = load_for_sequence_classification(ref, data.num_classes, seed=seed)
    rank = max(1, variant.rank_factor * cfg.rank)
    model = prepare(model, method, rank=rank, alpha=cfg.alpha, dropout=float(hparams["dropout"]),
                    targets=ref.default_targets, seed=seed, head_modules=ref.head)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=float(hparams["lr"]), weight_decay=0.0)

    steps = cfg.steps or spec.steps
    freq = cfg.checkpoint_freq or spec.checkpoint_freq
    batch = int(hparams["batch_size"])
    train_envs = [i for i in range(n_envs) if i != key.test_env]
    generator = torch.Generator().manual_seed(seed)
    checkpoints, losses, train_seconds, eval_seconds = [], [], 0.0, 0.0
    model.train()
    for step in range(steps):
        tick = time.perf_counter()
        images, labels = [], []
        for i in train_envs:
            pool = splits[i].in_keys
            picks = [pool[int(j)] for j in torch.randint(len(pool), (batch,), generator=generator)]
            images += data.environments[i].images(picks)
            labels += [int(data.environments[i].labels[k]) for k in picks]
        logits = model(pixel_values=pixel_values(processor, images)).logits
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        train_seconds += time.perf_counter() - tick
        if step % freq == 0 or step == steps - 1:
            tick = time.perf_counter()
            model.eval()
            accs = {f"{e.name}_acc": accuracy(model, e.pixels, e.labels) for e in evals}
            model.train()
            eval_seconds += time.perf_counter() - tick
            checkpoints.append(Checkpoint(step, accs, float(np.mean(losses))))
            losses = []
            log(f"{key.folder} step {step}: loss {checkpoints[-1].loss:.3f}, test env{key.test_env} in "
                f"{accs[f'env{key.test_env}_in_acc']:.3f}")
    info = {"seed": seed, "method": method.name, "rank": rank if method.uses_rank else 0, "alpha": cfg.alpha,
            "model": cfg.model, "steps": steps, "checkpoint_freq": freq, "eval_examples": limit,
            "holdout_fraction": cfg.holdout_fraction, "env_names": list(data.env_names),
            "env_sizes": [len(e) for e in data.environments],
            "eval_sizes": {e.name: len(e.labels) for e in evals},
            "trainable_params": int(sum(p.numel() for p in trainable)),
            "total_params": int(sum(p.numel() for p in model.parameters())),
            "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "wall_seconds": time.perf_counter() - started, "threads": torch.get_num_threads(),
            "hparams_from": hparams_seed_source, "space": cfg.space}
    return RunRecord(key, n_envs, hparams, tuple(checkpoints), info)
