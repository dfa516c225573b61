"""docs/paper.md §4: the subspace similarity and the run-folder loader."""

import csv
import json

import numpy as np
import pytest
import torch

from asymlora.analysis.similarity import (compare, find_run_dirs, load_run, module_label, orthonormal_basis,
                                          subspace_similarity)


def test_similarity_sees_subspaces_not_factorisations():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((40, 4))
    C = rng.standard_normal((4, 4)) + 3 * np.eye(4)                      # invertible
    assert subspace_similarity(B, B @ C) == pytest.approx(1.0, abs=1e-12)
    A = rng.standard_normal((4, 30))
    assert subspace_similarity(A.T, (np.linalg.inv(C) @ A).T) == pytest.approx(1.0, abs=1e-12)  # rows of A
    basis = np.linalg.qr(rng.standard_normal((40, 8)))[0]
    assert subspace_similarity(basis[:, :4], basis[:, 4:]) == pytest.approx(0.0, abs=1e-12)   # orthogonal
    # a subspace inside a bigger one: normalised by the smaller rank
    assert subspace_similarity(basis[:, :2], basis) == pytest.approx(1.0)
    # half overlap: 2 of 4 directions shared
    assert subspace_similarity(basis[:, :4], basis[:, 2:6]) == pytest.approx(0.5)


def test_similarity_is_symmetric_bounded_and_at_chance_for_random_subspaces():
    rng = np.random.default_rng(1)
    values = []
    for _ in range(200):
        x, y = rng.standard_normal((64, 4)), rng.standard_normal((64, 6))
        s = subspace_similarity(x, y)
        assert s == pytest.approx(subspace_similarity(y, x), abs=1e-12)
        assert 0.0 <= s <= 1.0
        values.append(subspace_similarity(x, rng.standard_normal((64, 4))))
    assert np.mean(values) == pytest.approx(4 / 64, rel=0.15)           # chance level r / n
    assert subspace_similarity(torch.ones(5, 2), torch.ones(5, 1)) == pytest.approx(1.0)  # tensors accepted


def test_rank_deficiency_and_empty_subspaces():
    rng = np.random.default_rng(2)
    v = rng.standard_normal((20, 1))
    repeated = np.hstack([v, 2 * v, -v])                                 # 3 columns, rank 1
    assert orthonormal_basis(repeated).shape == (20, 1)
    assert subspace_similarity(repeated, np.hstack([v, rng.standard_normal((20, 3))])) == pytest.approx(1.0)
    assert np.isnan(subspace_similarity(np.zeros((20, 3)), v))           # a zero factor spans nothing
    with pytest.raises(ValueError, match="same number of rows"):
        subspace_similarity(np.ones((5, 2)), np.ones((6, 2)))


# ---------------------------------------------------------------------------- run folders
def _write_run(root, tiny_model, task, method, seed, train="AB", init_A="kaiming", init_B="zero",
               task_subspace=None):
    """A run folder like ``asymlora reproduce`` writes, with 'learned' factors we choose."""
    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import adapted_modules, inject
    from asymlora.adapters.io import save_adapter

    model = inject(tiny_model("bert"), AdapterConfig(rank=2, train=train, init_A=init_A, init_B=init_B, seed=seed))
    gen = torch.Generator().manual_seed(100 + seed)
    for name, module in adapted_modules(model).items():
        with torch.no_grad():
            if "B" in train:  # B learned in a task-specific 2-d subspace, mixed per seed
                mix = torch.randn(2, 2, generator=gen) + 2 * torch.eye(2)
                module.B.copy_(task_subspace[name] @ mix)
            if "A" in train:  # A nudged slightly away from its initialisation
                module.A.add_(1e-3 * torch.randn(module.A.shape, generator=gen))
    folder = root / "runs" / task / f"{method}-r2-s{seed}"
    save_adapter(model, folder / "adapter")
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    return folder, model


def _subspaces(tiny_model, seed):
    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import adapted_modules, inject

    names = adapted_modules(inject(tiny_model("bert"), AdapterConfig(rank=2))).keys()
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.linalg.qr(torch.randn(32, 2, generator=gen))[0] for n in names}


def test_loader_regenerates_frozen_and_initial_factors(tmp_path, tiny_model):
    spaces = _subspaces(tiny_model, 7)
    folder, model = _write_run(tmp_path, tiny_model, "tweets", "b_only", 3, train="B", init_A="orthonormal",
                               task_subspace=spaces)
    run = load_run(folder)
    assert (run.task, run.method, run.seed, run.adapter_seed, run.rank) == ("tweets", "b_only", 3, 3, 2)
    from asymlora.adapters.inject import adapted_modules
    for name, module in adapted_modules(model).items():
        np.testing.assert_array_equal(run.factors[name]["A"], module.A.double().numpy())  # regenerated recipe
        np.testing.assert_allclose(run.factors[name]["B"], module.B.detach().double().numpy())
    assert module_label(name).startswith("L1.")
    (folder / "adapter" / "adapter.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="safetensors"):
        load_run(folder)


def test_study_relations_and_findings_on_fabricated_runs(tmp_path, tiny_model):
    spaces = {"tweets": _subspaces(tiny_model, 1), "aclsum_aspect": _subspaces(tiny_model, 2)}
    for task in spaces:
        for seed in (0, 1):
            _write_run(tmp_path, tiny_model, task, "lora", seed, task_subspace=spaces[task])
    runs = [load_run(p) for p in find_run_dirs([tmp_path])]
    assert len(runs) == 4
    result = compare(runs)
    summary = {(r["comparison"], r["factor"]): r["mean"] for r in result["summary"]}
    # B was built task-specific: identical subspaces within a task, unrelated across tasks
    assert summary[("same_task_diff_init", "B")] == pytest.approx(1.0)
    assert summary[("diff_task_same_init", "B")] < 0.5
    # A was barely moved: it matches its regenerated initialisation, and runs sharing a seed share A
    assert summary[("learned_vs_init", "A")] > 0.99
    assert summary[("diff_task_same_init", "A")] > 0.99
    assert summary[("diff_task_diff_init", "A")] < 0.5
    assert ("learned_vs_init", "B") not in summary        # B started at zero: nothing to compare
    assert len([p for p in result["pairs"] if p["factor"] in "AB"]) == 6 * 4 * 2  # 6 run pairs × 4 modules × A, B
    assert {p["factor"] for p in result["pairs"]} == {"A", "B", "ΔA"}  # B started at zero: no ΔB
    assert set(result["chance"].values()) == {2 / 32}


def test_similarity_command_writes_csv_json_and_heatmap(tmp_path, tiny_model, capsys):
    from asymlora.cli import main

    spaces = _subspaces(tiny_model, 1)
    for seed in (0, 1):
        _write_run(tmp_path / "study", tiny_model, "tweets", "swapped", seed, init_A="zero", init_B="orthonormal",
                   task_subspace=spaces)
    main(["similarity", str(tmp_path / "study"), "--out", str(tmp_path / "out")])
    out = tmp_path / "out"
    data = json.loads((out / "similarity.json").read_text())
    assert len(data["runs"]) == 2
    rows = list(csv.DictReader((out / "similarity_pairs.csv").open()))
    assert {r["relation"] for r in rows} == {"same_task_diff_init"}
    init_rows = list(csv.DictReader((out / "similarity_init.csv").open()))
    assert {r["factor"] for r in init_rows} == {"B"}       # A started at zero
    assert (out / "similarity_swapped.png").stat().st_size > 10_000
    with pytest.raises(SystemExit) as stop:
        main(["similarity", str(tmp_path / "empty_dir_missing"), "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_top_directions_only():
    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.standard_normal((30, 6)))[0]
    x = basis[:, :3] * np.array([10.0, 1.0, 0.5])                      # dominant direction basis[:, 0]
    y = basis[:, [0, 3, 4]] * np.array([5.0, 1.0, 1.0])
    assert subspace_similarity(x, y) == pytest.approx(1 / 3)
    assert subspace_similarity(x, y, top=1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="top"):
        subspace_similarity(x, y, top=0)
