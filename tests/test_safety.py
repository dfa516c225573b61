"""Safe files: an audit of the source for unsafe deserialisation and dynamic code, and the guards
that keep user files from running code or writing outside their folder (docs/safety.md).

The refusals themselves (a pickle-only PEFT folder, a YAML Python tag, an experiment name or an
adapter tensor path that escapes its folder) are cases of the bad-input catalogue
(tests/error_cases.py); this file checks the source as a whole and the round trip of the guards.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "asymlora"

#: ``module.function`` calls that unpickle or run code from data, and why each is refused.
FORBIDDEN_ATTRIBUTES = {
    ("torch", "load"): "torch.load unpickles; read tensors with safetensors",
    ("pickle", "load"): "unpickling runs code", ("pickle", "loads"): "unpickling runs code",
    ("dill", "load"): "unpickling runs code", ("joblib", "load"): "unpickling runs code",
    ("yaml", "load"): "use yaml.safe_load", ("yaml", "unsafe_load"): "use yaml.safe_load",
    ("yaml", "full_load"): "use yaml.safe_load", ("marshal", "loads"): "runs code",
}
FORBIDDEN_NAMES = {"eval": "no eval", "exec": "no exec", "compile": "no compile of strings",
                   "__import__": "no dynamic import of names from data"}


def _violations(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
            found.append((node.lineno, FORBIDDEN_NAMES[func.id]))
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            reason = FORBIDDEN_ATTRIBUTES.get((func.value.id, func.attr))
            if reason:
                found.append((node.lineno, reason))
        if isinstance(func, ast.Attribute) and func.attr == "load" and any(
                k.arg == "allow_pickle" and getattr(k.value, "value", False) is True for k in node.keywords):
            found.append((node.lineno, "numpy.load(allow_pickle=True) unpickles"))
        if any(k.arg == "weights_only" and getattr(k.value, "value", True) is False for k in node.keywords):
            found.append((node.lineno, "weights_only=False unpickles"))
    return found


def test_the_audit_finds_what_it_looks_for():
    sample = ("import torch, yaml, pickle, numpy as np\ntorch.load('x')\nyaml.load(s)\npickle.loads(b)\n"
              "eval('1')\nnp.load('a', allow_pickle=True)\nf(weights_only=False)\nyaml.safe_load(s)\nmodel.eval()\n")
    assert [line for line, _ in _violations(ast.parse(sample))] == [2, 3, 4, 5, 6, 7]


def test_no_unsafe_deserialisation_or_dynamic_code_in_the_source():
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        for line, reason in _violations(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            problems.append(f"{path.relative_to(SRC.parent)}:{line}: {reason}")
    assert not problems, "\n".join(problems)


def test_yaml_configs_are_read_with_safe_load_only():
    uses = [p for p in SRC.rglob("*.py") if "yaml." in p.read_text(encoding="utf-8")]
    assert uses, "the audit looks at the YAML readers"
    for path in uses:
        text = path.read_text(encoding="utf-8")
        assert "yaml.safe_load" in text or "yaml.YAMLError" in text or "yaml.safe_dump" in text, path


def test_a_python_tag_does_not_run(tmp_path):
    from asymlora.experiments.spec import load_spec

    marker = tmp_path / "ran"
    config = tmp_path / "grid.yaml"
    config.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\nmodel: tiny-bert\n")
    with pytest.raises(ValueError, match="refused YAML tag"):
        load_spec(config)
    assert not marker.exists()


@pytest.mark.parametrize("name, ok", [("table1_glue", True), ("demo.v2", True), ("a-b", True), ("../x", False),
                                      ("..", False), ("a/b", False), ("/abs", False), (".hidden", False),
                                      ("a\\b", False), ("", False)])
def test_experiment_names_are_plain_folder_names(name, ok):
    from asymlora.experiments.spec import validate

    data = {"name": name or None, "model": "tiny-bert", "tasks": ["tweets"], "methods": ["b_only"]}
    if ok:
        assert validate(data).name == name
    else:
        with pytest.raises(ValueError):
            validate(data)


def test_an_adapter_is_read_only_from_its_own_tensor_file(tmp_path):
    """The reader opens ``<folder>/adapter.safetensors`` and nothing else: a config that names another
    file (here a valid adapter one folder up) is refused, not followed."""
    import json
    import shutil

    from asymlora.adapters.io import read_adapter
    from error_cases import tiny_adapter

    shutil.copytree(tiny_adapter(), tmp_path / "adapter")
    shutil.copy(tiny_adapter() / "adapter.safetensors", tmp_path / "elsewhere.safetensors")
    config = tmp_path / "adapter" / "adapter_config.json"
    data = json.loads(config.read_text())
    data["weights"]["file"] = "../elsewhere.safetensors"
    config.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not a file name inside the adapter folder"):
        read_adapter(tmp_path / "adapter")
