"""Parity with lm-evaluation-harness: our ``harness`` format gives the harness's own per-question
log-likelihoods, choices and accuracies (per subject and the size-weighted group), and our ``cloze``
format gives its ``mmlu_continuation`` ``acc_norm`` choices — offline, on the fixture CSVs, with a
tiny random Llama. The task YAMLs are the installed harness's own (template + per-subject
description), only pointed at local JSON files instead of the hub."""

import csv
import json
from pathlib import Path

import pytest
import yaml

lm_eval = pytest.importorskip("lm_eval")

from asymlora.evaluation.mmlu.aggregate import aggregate  # noqa: E402
from asymlora.evaluation.mmlu.model import load_causal_lm  # noqa: E402
from asymlora.evaluation.mmlu.run import MMLUOptions, evaluate_mmlu  # noqa: E402
from asymlora.tasks.mmlu import HARNESS_CATEGORIES, LETTERS, SUBJECTS, load_local  # noqa: E402
from mmlu_fixtures import FIXTURES, save_tiny_bpe_llama  # noqa: E402

SUBJECTS_HERE = ("anatomy", "astronomy", "philosophy")
VARIANTS = {"harness": ("default", "_default_template_yaml", ""),
            "cloze": ("continuation", "_continuation_template_yaml", "_continuation")}


def _harness_root() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent / "mmlu"


def _write_tasks(folder: Path) -> None:
    """The harness's mmlu and mmlu_continuation task YAMLs, reading the fixtures as local JSON."""
    for subject in SUBJECTS_HERE:
        files = {}
        for split in ("dev", "test"):
            with open(FIXTURES / split / f"{subject}_{split}.csv", newline="", encoding="utf-8") as stream:
                rows = list(csv.reader(stream))
            files[split] = str(folder / f"{subject}_{split}.jsonl")
            Path(files[split]).write_text("".join(json.dumps({"question": r[0], "choices": r[1:5],
                                                              "answer": LETTERS.index(r[5])}) + "\n" for r in rows))
        for name, (sub, template, suffix) in VARIANTS.items():
            base = yaml.safe_load((_harness_root() / sub / template).read_text())
            own = yaml.safe_load((_harness_root() / sub / f"mmlu_{subject}.yaml").read_text())
            base.update(task=f"fx_{name}_{subject}", description=own["description"], dataset_path="json",
                        dataset_kwargs={"data_files": files})
            (folder / f"fx_{name}_{subject}.yaml").write_text(yaml.safe_dump(base))
    for name in VARIANTS:
        (folder / f"fx_{name}_group.yaml").write_text(yaml.safe_dump({
            "group": f"fx_{name}", "task": [f"fx_{name}_{s}" for s in SUBJECTS_HERE],
            "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}]}))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("harness")
    model_dir = save_tiny_bpe_llama(root / "model", max_positions=512)
    (root / "tasks").mkdir()
    _write_tasks(root / "tasks")
    return model_dir, root / "tasks"


def _harness(model_dir, tasks, name, shots, max_length):
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=model_dir, batch_size=3, device="cpu", max_length=max_length)
    return lm_eval.simple_evaluate(model=lm, tasks=[f"fx_{name}"], num_fewshot=shots, log_samples=True,
                                   task_manager=TaskManager(include_path=str(tasks)))


@pytest.mark.parametrize("name,shots,max_length", [("harness", 5, 400), ("harness", 0, None), ("cloze", 2, None)])
def test_matches_lm_eval(setup, name, shots, max_length):
    model_dir, tasks = setup
    theirs = _harness(model_dir, tasks, name, shots, max_length)
    model, tokenizer = load_causal_lm(model_dir)
    data = load_local(FIXTURES)
    run = evaluate_mmlu(model, tokenizer, data, MMLUOptions(format=name, shots=shots, max_length=max_length,
                                                            batch_size=3))
    metric = "acc" if name == "harness" else "acc_norm"
    ours = {(p.subject, p.index): p for p in run.predictions}
    questions = {s: len(q) for s, q in data.test.items()}
    for subject in SUBJECTS_HERE:
        samples = sorted(theirs["samples"][f"fx_{name}_{subject}"], key=lambda s: s["doc_id"])
        assert len(samples) == questions[subject]
        for sample in samples:
            mine = ours[(subject, sample["doc_id"])]
            loglik = [r[0] for r in sample["filtered_resps"]]
            lengths = [len(c) for c in sample["doc"]["choices"]] if name == "cloze" else [1] * 4
            assert [s * n for s, n in zip(mine.scores, lengths)] == pytest.approx(loglik, abs=2e-4)
            assert mine.correct == bool(sample[metric])
        accuracy = sum(ours[(subject, i)].correct for i in range(questions[subject])) / questions[subject]
        assert accuracy == pytest.approx(theirs["results"][f"fx_{name}_{subject}"][f"{metric},none"])
    if name == "harness":
        total = aggregate(run.predictions, "harness")["Average"].micro
        assert total == pytest.approx(100 * theirs["results"]["fx_harness"]["acc,none"])


def test_some_parity_inputs_are_truncated_and_some_are_not(setup):
    """The 5-shot parity case at 400 tokens covers both the left-truncated and the cached path."""
    model_dir, _ = setup
    model, tokenizer = load_causal_lm(model_dir)
    run = evaluate_mmlu(model, tokenizer, load_local(FIXTURES), MMLUOptions(format="harness", shots=5, max_length=400))
    assert 0 < run.truncated < len(run.predictions)
    assert run.stats.prefix > 0


def test_category_map_is_the_harness_own():
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", _harness_root() / "_generate_configs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = {"stem": "STEM", "humanities": "Humanities", "social_sciences": "Social sciences", "other": "Other"}
    assert {s: names[c] for s, c in module.SUBJECTS.items()} == HARNESS_CATEGORIES
    assert sorted(module.SUBJECTS) == list(SUBJECTS)
