"""The merging study's parts on tiny-bert: asymlora's and PEFT's merged deltas, the scorer, the table."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from asymlora.adapters.io import load_adapter, read_adapter, save_adapter  # noqa: E402
from asymlora.adapters.merge import delta_weights  # noqa: E402
from asymlora.experiments.merging import MergeStudy, asymlora_bodies, exactness, peft_bodies  # noqa: E402
from asymlora.experiments.merging_report import merging_table  # noqa: E402
from asymlora.methods import prepare  # noqa: E402
from asymlora.models import load_for_sequence_classification  # noqa: E402

STUDY = MergeStudy(tasks=("tweets", "aclsum_aspect"), seeds=(0,), model="tiny-bert", rank=2)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    folders = []
    for index in range(2):
        model = prepare(load_for_sequence_classification("tiny-bert", 3, seed=index), "b_only", rank=2,
                        targets=["query", "value"], seed=0, head_modules=["classifier"])
        generator = torch.Generator().manual_seed(10 + index)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if parameter.requires_grad:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator))
        folders.append(save_adapter(model, root / f"t{index}"))
    return folders


def test_peft_cat_is_exact_and_peft_linear_is_n_times_off(adapters):
    singles = [delta_weights(read_adapter(a)) for a in adapters]
    bodies = {**asymlora_bodies(STUDY, adapters, 0), **peft_bodies(STUDY, adapters, 0)}
    errors = {row["body"]: row["max_relative_error"] for row in exactness(bodies, singles, 0)}
    assert errors["asymlora linear"] < 1e-6 and errors["asymlora linear mean"] < 1e-6
    assert errors["peft cat"] < 1e-5
    # with one A and one scaling s, PEFT's linear is (Σ√(ws))(Σ√(ws)Bᵢ)A = n·w·s ΣBᵢA: n = 2 times too large
    # at weight 1 (target s ΣBᵢA) and at weight 1/2 (target s ΣBᵢA / 2)
    assert errors["peft linear"] == pytest.approx(1.0, abs=1e-5)
    assert errors["peft linear mean"] == pytest.approx(1.0, abs=1e-5)
    assert set(bodies) >= {"asymlora ties", "asymlora dare_linear", "asymlora dare_ties", "peft ties",
                           "peft dare_linear"}


def test_scorer_equals_the_loaded_adapter(adapters):
    from asymlora.experiments.merging_eval import TaskScorer

    state = read_adapter(adapters[0])
    scorer = TaskScorer.build("tweets", "tiny-bert", 32, 24, list(state.meta.modules), batch_size=8)
    head = {key: state.tensors[key] for key in state.meta.modules_to_save}
    model = load_adapter(load_for_sequence_classification("tiny-bert", 3), adapters[0]).eval()
    with torch.no_grad():
        logits = torch.cat([model(**{k: v for k, v in b.items() if k != "labels"}).logits for b in scorer.batches])
    labels = torch.cat([b["labels"] for b in scorer.batches])
    expected = 100.0 * (logits.argmax(-1) == labels).double().mean().item()
    assert scorer.score(delta_weights(state), head) == pytest.approx(expected)
    # the base weights are put back after scoring
    assert all(torch.equal(scorer.model.get_submodule(m).weight, w) for m, w in scorer.pretrained.items())


def test_table_reports_mean_and_sd_per_task():
    scores = [{"seed": s, "body": "single tweets", "source": "single", "method": "tweets", "task": t,
               "accuracy": 50.0 + s + (10 if t == "tweets" else 0)} for s in (0, 2) for t in STUDY.tasks]
    result = {"study": {"tasks": list(STUDY.tasks), "seeds": [0, 2]}, "scores": scores,
              "exactness": [{"seed": 0, "body": "peft cat", "max_relative_error": 3e-8}]}
    table = merging_table(result)
    assert "| single tweets | 61.0 ± 1.4 | 51.0 ± 1.4 | 56.0 |" in table
    assert "| peft cat | 3.00e-08 |" in table
    one = merging_table({**result, "study": {"tasks": list(STUDY.tasks), "seeds": [0]},
                         "scores": [r for r in scores if r["seed"] == 0]})
    assert "| single tweets | 60.0 | 50.0 | 55.0 |" in one and "one seed (0)" in one
