"""The catalogue of bad inputs: one typed :class:`Case` per mistake a user can make.

Each case builds its own fixture files in an empty folder (``setup``), then says how to make the
mistake through the command line (``cli``: the arguments after ``asymlora``) and through the Python
API (``api``: a call that must raise). ``tests/test_error_catalogue.py`` runs every case both ways
and checks the contract of docs/errors.md: the exit status, ONE line on stderr that names the
problem (``message``) and the fix (``fix``), no traceback, no file written or changed. Running this
file (``python tests/error_cases.py``) rewrites docs/errors.md from the catalogue; a test checks
that the committed table is up to date.

Exit statuses: 2 = bad input or usage (the user fixes the input), 1 = a failure at run time,
0 = a warning only (the input is still usable and nothing is lost).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"
AREAS = ("config", "data", "adapter", "run")

#: Small, fast training options for the cases that get as far as a training command.
SMALL = ["--max-steps", "1", "--train-limit", "16", "--eval-limit", "8", "--max-length", "16", "--batch-size", "8"]


@dataclass(frozen=True)
class Case:
    """One bad input. ``cli(folder) -> argv`` and ``api(folder) -> None`` (raises) after ``setup(folder)``."""

    id: str
    area: str                       # one of AREAS
    problem: str                    # what is wrong, for the table
    code: int                       # expected exit status
    message: str                    # fragment of the stderr line that names the problem
    fix: str                        # fragment of the same line that names the fix
    cli: Callable[[Path], list[str]] | None = None
    api: Callable[[Path], None] | None = None
    setup: Callable[[Path], None] | None = None
    subprocess: bool = False        # also run as a real ``python -m asymlora.cli`` process
    writes: tuple[str, ...] = ()    # names of the only files the failing command may create (a run's error.txt)
    env: tuple[tuple[str, str], ...] = ()  # environment variables set while the case runs (CLI and API)

    @property
    def how(self) -> str:
        return " + ".join(w for w, f in (("CLI", self.cli), ("API", self.api)) if f is not None)


# ------------------------------------------------------------------------------------ fixtures
_CACHE: dict[str, Path] = {}


def _cache_dir() -> Path:
    import tempfile

    if "root" not in _CACHE:
        _CACHE["root"] = Path(tempfile.mkdtemp(prefix="asymlora-error-cases-"))
    return _CACHE["root"]


def tiny_adapter() -> Path:
    """A B-only adapter (rank 2, query/value) saved from the registry's ``tiny-bert`` with the tweets
    task's 3-class head, built once per process."""
    if "adapter" not in _CACHE:
        from asymlora.adapters.io import save_adapter
        from asymlora.methods import prepare
        from asymlora.models import load_for_sequence_classification

        model = prepare(load_for_sequence_classification("tiny-bert", 3), "b_only", rank=2,
                        targets=["query", "value"], seed=0, head_modules=["classifier"])
        _CACHE["adapter"] = save_adapter(model, _cache_dir() / "adapter")
    return _CACHE["adapter"]


def fresh_base():
    from asymlora.models import load_for_sequence_classification

    return load_for_sequence_classification("tiny-bert", 3)


def _copy_adapter(folder: Path) -> Path:
    return Path(shutil.copytree(tiny_adapter(), folder / "adapter"))


def _edit_config(folder: Path, edit: Callable[[dict], None]) -> None:
    path = _copy_adapter(folder) / "adapter_config.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def _glue(folder: Path, edit: Callable[[Path], None] | None = None) -> None:
    from asymlora.tasks.fixtures import write_glue

    write_glue(folder / "glue", n_train=12, n_dev=6, tasks=("sst2",))
    if edit is not None:
        edit(folder / "glue" / "SST-2")


def _yaml(text: str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        (folder / "grid.yaml").write_text(text)
    return setup


GRID = "name: grid\nmodel: tiny-bert\ntasks: [tweets]\nmethods: [b_only]\nranks: [2]\nseeds: [0]\n"


def _results(lines: list[str]) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        (folder / "results.jsonl").write_bytes("".join(lines).encode())
    return setup


def _record(run_id: str) -> str:
    return json.dumps({"run_id": run_id, "fingerprint": "f", "experiment": "e", "task": "tweets", "method": "b_only",
                       "rank": 2, "seed": 0, "main_metric": "accuracy", "metrics": {"accuracy": 50.0},
                       "trainable_params": 1, "trainable_percent": 0.1, "adapter_bytes": 1}) + "\n"


def _sweep_record(learning_rate: float, epochs: int) -> str:
    """A results line of a sweep run: b_only r=2 seed 0 at ``learning_rate`` trained ``epochs`` epochs."""
    identity = {"task": "tweets", "method": "b_only", "rank": 2, "seed": 0, "learning_rate": learning_rate,
                "epochs": epochs}
    return json.dumps({"run_id": "tweets/b_only-r2-s0", "task": "tweets", "method": "b_only", "rank": 2, "seed": 0,
                       "main_metric": "accuracy", "metrics": {"accuracy": 50.0}, "identity": identity,
                       "best_eval": {"metrics": {"accuracy": 51.0}}, "resolved": {"learning_rate": learning_rate}}) + "\n"


def _choose_lr(folder: Path) -> None:
    from asymlora.experiments.lr_choice import choose
    from asymlora.experiments.store import read_results

    choose(read_results(folder / "results.jsonl"))


# ------------------------------------------------------------------------------------ calls
def _train(*extra: str, task: str = "tweets", model: str = "tiny-bert", method: str = "b_only"):
    """``asymlora train`` with tiny settings and ``--out <folder>/run``, overridable by ``extra``."""
    def argv(folder: Path) -> list[str]:
        return ["train", "--task", task, "--model", model, "--method", method, "--rank", "2",
                "--out", str(folder / "run"), *SMALL, *extra]
    return argv


def _train_on(data: str, task: str = "sst2"):
    """``asymlora train`` on the case folder's ``data`` (``--data-dir``)."""
    def argv(folder: Path) -> list[str]:
        return _train("--data-dir", str(folder / data), task=task)(folder)
    return argv


def _validate(**options) -> Callable[[Path], None]:
    """``training.runner.validate(TrainConfig(...))`` with the tiny defaults, overridden by ``options``."""
    def call(folder: Path) -> None:
        from asymlora.training.config import TrainConfig
        from asymlora.training.runner import validate

        settings = dict(task="tweets", model="tiny-bert", method="b_only", rank=2, out=str(folder / "run"))
        settings.update(options)
        validate(TrainConfig(**settings))
    return call


def _adapter_config(**fields) -> Callable[[Path], None]:
    def call(folder: Path) -> None:
        from asymlora.adapters.config import AdapterConfig

        AdapterConfig(**fields)
    return call


def _adapter_config_from_dict(data: dict) -> Callable[[Path], None]:
    def call(folder: Path) -> None:
        from asymlora.adapters.config import AdapterConfig

        AdapterConfig.from_dict(data)
    return call


def _inject(**fields) -> Callable[[Path], None]:
    def call(folder: Path) -> None:
        from asymlora.adapters.config import AdapterConfig
        from asymlora.adapters.inject import inject

        inject(fresh_base(), AdapterConfig(**fields))
    return call


def _saved_gptq(folder: Path) -> None:
    """A model folder whose config says GPTQ saved it (gptqmodel is not installed)."""
    (folder / "gptq-model").mkdir()
    (folder / "gptq-model" / "config.json").write_text(json.dumps(
        {"model_type": "llama", "quantization_config": {"quant_method": "gptq", "bits": 4}}))


def _check_saved_gptq(folder: Path) -> None:
    from asymlora.models.quantized import check_saved_quantization

    check_saved_quantization(folder / "gptq-model")


def _inject_unsupported_quantized(folder: Path) -> None:
    import torch
    from torch import nn

    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import inject

    packed = type("QuantLinear", (nn.Module,), {"__module__": "auto_gptq.nn_modules.qlinear"})()
    packed.weight = nn.Parameter(torch.zeros(8, 8, dtype=torch.int8), requires_grad=False)
    inject(nn.Sequential(nn.Linear(8, 8), packed), AdapterConfig(rank=2, targets="all-linear"))


def _merge_quantized(folder: Path) -> None:
    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import inject, merge
    from asymlora.models.quantized import load_quantized_causal_lm

    merge(inject(load_quantized_causal_lm("tiny-llama", 8, "torchao"), AdapterConfig(rank=2, targets="all-linear")))


def _load_spec(folder: Path) -> None:
    from asymlora.experiments.spec import load_spec

    load_spec(folder / "grid.yaml")


def _require_compile(folder: Path) -> None:
    from asymlora.adapters.compiled import require_compile

    require_compile("cpu")


def _unknown_mask_stream(folder: Path) -> None:
    from asymlora import AdapterConfig

    AdapterConfig(dropout=0.1, mask_stream="v3")


def _reproduce(*extra: str):
    def argv(folder: Path) -> list[str]:
        return ["reproduce", str(folder / "grid.yaml"), "--out", str(folder / "out"), "--max-steps", "1", *extra]
    return argv


def _glue_load(folder: Path, data: str = "glue") -> None:
    from asymlora.tasks import get_task

    get_task("sst2").load(str(folder / data), 0)


def _verify(folder: Path) -> list[str]:
    return ["verify", str(folder / "adapter"), "--model", "tiny-bert", "--task", "tweets"]


def _load_adapter(folder: Path) -> None:
    from asymlora.adapters.io import load_adapter

    load_adapter(fresh_base(), folder / "adapter")


def _store():
    from asymlora.experiments import store

    return store


def _parse_shard(text: str) -> None:
    from asymlora.experiments.grid import parse_shard

    parse_shard(text)


def _read_results(folder: Path) -> None:
    from asymlora.experiments.store import read_results

    read_results(folder / "results.jsonl")


def _report(folder: Path) -> list[str]:
    return ["report", str(folder / "results.jsonl"), "--out", str(folder / "report")]


# ------------------------------------------------------------------------------------ setups
def _drop_label_column(sst: Path) -> None:
    path = sst / "train.tsv"
    path.write_text("\n".join(line.split("\t")[0] for line in path.read_text().splitlines()) + "\n")


def _header_only_dev(sst: Path) -> None:
    (sst / "dev.tsv").write_text("sentence\tlabel\n")


def _label_out_of_range(sst: Path) -> None:
    path = sst / "train.tsv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\t7"
    path.write_text("\n".join(lines) + "\n")


def _not_utf8(sst: Path) -> None:
    path = sst / "train.tsv"
    path.write_bytes(path.read_bytes().replace(b"the", b"th\xff", 1))


def _truncate_weights(folder: Path) -> None:
    path = _copy_adapter(folder) / "adapter.safetensors"
    path.write_bytes(path.read_bytes()[:-100])


def _corrupt_weights_consistently(folder: Path) -> None:
    """Garbage in the tensor file AND its SHA-256 updated in the config: only the parser can tell."""
    import hashlib

    adapter = _copy_adapter(folder)
    garbage = b"\x08\x00\x00\x00\x00\x00\x00\x00{not json"
    (adapter / "adapter.safetensors").write_bytes(garbage)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["weights"]["sha256"] = hashlib.sha256(garbage).hexdigest()
    (adapter / "adapter_config.json").write_text(json.dumps(config))


def _tamper_frozen_hash(data: dict) -> None:
    module = next(iter(data["modules"].values()))
    module["frozen"]["A"]["sha256"] = "0" * 64


def _other_base_adapter(folder: Path) -> None:
    """An adapter saved from a tiny BERT of the same shapes but other weights (seed 1)."""
    import torch

    from asymlora.adapters.io import save_adapter
    from asymlora.methods import prepare
    from asymlora.models import load_for_sequence_classification

    model = load_for_sequence_classification("tiny-bert", 3)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    save_adapter(prepare(model, "b_only", rank=2, targets=["query", "value"], seed=0, head_modules=["classifier"]),
                 folder / "adapter")


def _peft_bin_only(folder: Path) -> None:
    adapter = folder / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4,
                                                             "target_modules": ["query"]}))
    (adapter / "adapter_model.bin").write_bytes(b"\x80\x04pickle")


def _import_peft(folder: Path) -> None:
    from asymlora.adapters.peft_interop import import_peft

    import_peft(fresh_base(), folder / "adapter")


def _engine_folder(edit: dict | None = None, paths: str = "model.layers") -> Callable[[Path], None]:
    """setup: a PEFT LoRA folder (rank 2) for q_proj of tiny-llama's layer 0 under ``paths``, config edited."""
    def setup(folder: Path) -> None:
        import torch
        from safetensors.torch import save_file

        adapter = folder / "adapter"
        adapter.mkdir()
        config = {"peft_type": "LORA", "r": 2, "lora_alpha": 2, "target_modules": ["q_proj"], "bias": "none",
                  "use_rslora": False, "task_type": "CAUSAL_LM", **(edit or {})}
        (adapter / "adapter_config.json").write_text(json.dumps(config))
        module = f"base_model.model.{paths}.0.self_attn.q_proj"
        save_file({f"{module}.lora_A.weight": torch.zeros(2, 32), f"{module}.lora_B.weight": torch.zeros(32, 2)},
                  adapter / "adapter_model.safetensors")
    return setup


def _verify_for(engine: str, *extra: str) -> Callable[[Path], list[str]]:
    def argv(folder: Path) -> list[str]:
        return ["verify", str(folder / "adapter"), "--for", engine, *extra]
    return argv


def _check_for(engine: str, on_model: bool = False, served: tuple[str, ...] | None = None) -> Callable[[Path], None]:
    def api(folder: Path) -> None:
        from asymlora.adapters.engine_check import verify_for
        from asymlora.models.meta import empty_model, read_config

        model = empty_model(read_config("tiny-llama"), "causal_lm") if on_model else None
        verify_for(folder / "adapter", engine, model, served_targets=served)
    return api


def _export(*extra: str) -> Callable[[Path], list[str]]:
    def argv(folder: Path) -> list[str]:
        return ["export", str(folder / "adapter"), "--model", "tiny-bert", "--task", "tweets", "--out",
                str(folder / "out"), *extra]
    return argv


def _export_with_head(folder: Path) -> None:
    from asymlora.adapters.engine_export import export_for
    from asymlora.adapters.io import load_adapter

    export_for(load_adapter(fresh_base(), folder / "adapter"), "vllm", folder / "out")


def _pad_rank_12(folder: Path) -> None:
    from asymlora.adapters.engine_export import export_rank
    from asymlora.adapters.engines import get_engine

    export_rank([2], get_engine("vllm"), 12)


def _merge_pair(folder: Path, **fields) -> None:
    """Two B-only tiny-bert adapters: ``a0`` (rank 2, seed 0) and ``a1`` (the same, then ``fields``)."""
    from asymlora.adapters.io import save_adapter
    from asymlora.methods import prepare

    shutil.copytree(tiny_adapter(), folder / "a0")
    options = {"rank": 2, "targets": ["query", "value"], "seed": 0, **fields}
    method = options.pop("method", "b_only")
    save_adapter(prepare(fresh_base(), method, head_modules=["classifier"], **options), folder / "a1")


def _merge_setup(**fields) -> Callable[[Path], None]:
    return lambda folder: _merge_pair(folder, **fields)


def _merge_other_base(folder: Path) -> None:
    _other_base_adapter(folder)
    shutil.copytree(tiny_adapter(), folder / "a0")
    (folder / "adapter").rename(folder / "a1")


def _merge_cli(*extra: str, weights: str = "0.5,0.5"):
    def argv(folder: Path) -> list[str]:
        return ["merge", str(folder / "a0"), str(folder / "a1"), "--weights", weights, "--out",
                str(folder / "merged"), *extra]
    return argv


def _merge_api(weights=(0.5, 0.5), **options):
    def call(folder: Path) -> None:
        from asymlora.adapters.merge import merge_adapters

        merge_adapters([folder / "a0", folder / "a1"], list(weights), out=folder / "merged", **options)
    return call


def _file_as_parent(folder: Path) -> None:
    (folder / "blocker").write_text("a file, not a folder\n")


def _finished_run(folder: Path) -> None:
    (folder / "run").mkdir()
    (folder / "run" / "metrics.json").write_text("{}\n")


def _tweets_without_text(folder: Path) -> None:
    (folder / "tweets.csv").write_text("sentiment,confidence\npositive,1\nnegative,1\n", encoding="latin-1")


def _tweets_load(folder: Path) -> None:
    from asymlora.tasks import get_task

    get_task("tweets").load(str(folder / "tweets.csv"), 0)


def _failing_grid(folder: Path) -> None:
    """A grid over local SST-2 data with a bad label, and a results file holding an earlier run."""
    _glue(folder, _label_out_of_range)
    (folder / "grid.yaml").write_text(GRID.replace("[tweets]", "[sst2]") + f"data_dir: {folder / 'glue'}\n"
                                      "overrides: {train_limit: 16, eval_limit: 8, max_length: 16, batch_size: 8}\n")
    (folder / "out").mkdir()
    _results([_record("earlier/run")])(folder / "out")


def _not_utf8_results(folder: Path) -> None:
    (folder / "results.jsonl").write_bytes(b'{"run_id": "\xff\xfe"}\n')


def _broken_image(folder: Path) -> None:
    (folder / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")


def _open_broken_image(folder: Path) -> None:
    from asymlora.tasks.families.image_classification import to_rgb

    to_rgb(str(folder / "digit.png"))


def _without_flower(folder: Path) -> None:
    """``asymlora federated``'s Flower check with ``flwr`` hidden from the import system."""
    import importlib.util
    from unittest import mock

    from asymlora.commands.federated import require_flower

    real = importlib.util.find_spec
    with mock.patch("importlib.util.find_spec", lambda name, *a: None if name == "flwr" else real(name, *a)):
        require_flower()


def _too_many_clients(folder: Path) -> None:
    from asymlora.federated.config import FederatedConfig

    FederatedConfig(clients=300, train_examples=2000).validate()


def _split_cannot_serve(folder: Path) -> None:
    from asymlora.federated.splits import dirichlet_split

    dirichlet_split([0] * 20 + [1] * 20, 4, 0.01, seed=0, min_size=9, attempts=5)


def _dp_noise_without_clip(folder: Path) -> None:
    from asymlora.federated.config import FederatedConfig

    FederatedConfig(noise_multiplier=1.0).validate()


# ------------------------------------------------------------------------------------ the catalogue
CASES: list[Case] = [
    # ---- configs: command-line options, experiment YAML, AdapterConfig
    Case("unknown-config-key", "config", "experiment YAML has a misspelt key", 2,
         "unknown config key 'seed'", "did you mean 'seeds'",
         cli=_reproduce(), api=_load_spec, setup=_yaml(GRID + "seed: [0]\n")),
    Case("unknown-override", "config", "experiment YAML override is misspelt", 2,
         "unknown override 'learning_rat'", "did you mean 'learning_rate'",
         cli=_reproduce(), api=_load_spec, setup=_yaml(GRID + "overrides: {learning_rat: 0.001}\n")),
    Case("wrong-type", "config", "an override has the wrong type", 2,
         "override max_steps='ten' has the wrong type", "expected int",
         cli=_reproduce(), api=_load_spec, setup=_yaml(GRID + "overrides: {max_steps: ten}\n")),
    Case("adapter-field-unknown", "config", "AdapterConfig field is misspelt", 2,
         "unknown AdapterConfig field 'rnak'", "did you mean 'rank'",
         api=_adapter_config_from_dict({"rnak": 4})),
    Case("malformed-yaml", "config", "experiment YAML does not parse", 2,
         "malformed YAML at line 2", "fix the YAML syntax",
         cli=_reproduce(), api=_load_spec, setup=_yaml("name: [unclosed\n")),
    Case("yaml-python-tag", "config", "experiment YAML carries a Python object tag", 2,
         "refused YAML tag", "plain YAML only, no Python objects",
         cli=_reproduce(), api=_load_spec, setup=_yaml("name: !!python/object/apply:os.system ['echo pwned']\n"),
         subprocess=True),
    Case("name-escapes-out", "config", "experiment name would place runs outside runs/", 2,
         "name '../../escape' is not a plain name", "letters, digits",
         cli=lambda folder: ["reproduce", str(folder / "grid.yaml"), "--dry-run"], api=_load_spec,
         setup=_yaml(GRID.replace("name: grid", "name: ../../escape"))),
    Case("rank-zero", "config", "rank 0", 2, "--rank must be an integer >= 1", "integer >= 1",
         cli=_train("--rank", "0"), api=_validate(rank=0)),
    Case("negative-alpha", "config", "negative alpha", 2, "alpha=-2.0 is out of range", "must be > 0",
         cli=_train("--alpha", "-2"), api=_validate(alpha=-2.0)),
    Case("dropout-one", "config", "dropout 1.0", 2, "dropout must be in [0, 1)", "[0, 1)",
         cli=_train("--dropout", "1.0"), api=_validate(dropout=1.0)),
    Case("unknown-init", "config", "unknown initialiser", 2, "init_A='orthonormall' is invalid",
         "did you mean 'orthonormal'", api=_adapter_config(init_A="orthonormall")),
    Case("unknown-method", "config", "unknown method", 2, "unknown method 'b_onyl'", "did you mean 'b_only'",
         cli=_train(method="b_onyl"), api=_validate(method="b_onyl"), subprocess=True),
    Case("unknown-task", "config", "unknown task", 2, "unknown task 'tweet'", "did you mean 'tweets'",
         cli=_train(task="tweet"), api=_validate(task="tweet")),
    Case("unknown-model", "config", "unknown model name", 2, "tiny-brt", "did you mean 'tiny-bert'",
         cli=_train(model="tiny-brt"), api=_validate(model="tiny-brt")),
    Case("target-matches-nothing", "config", "a target that matches no module", 2,
         "no module matches targets=['qkv']", "linear layers in this model are named",
         cli=_train("--targets", "qkv"), api=_inject(targets=["qkv"])),
    Case("target-not-linear", "config", "a target that is not a linear layer", 2,
         "is a BertSelfAttention, not a linear layer", "name a linear layer",
         cli=_train("--targets", "self"), api=_inject(targets=["self"])),
    Case("quantized-package-missing", "config", "a base saved quantized by a package that is not installed", 2,
         "needs the gptqmodel package, which is not installed", "pip install gptqmodel",
         cli=lambda f: ["bench", "quantized", "--model", str(f / "gptq-model"), "--no-rows", "--quality",
                        "--out", str(f / "out")], api=_check_saved_gptq, setup=_saved_gptq),
    Case("quantized-layer-unsupported", "config", "a quantized layer type asymlora has no kind for", 2,
         "a quantized layer type asymlora cannot adapt", "load the base unquantized or with one of the supported",
         api=_inject_unsupported_quantized),
    Case("merge-quantized", "adapter", "merging into a quantized base weight without dequantising", 2,
         "has a quantized base weight", "pass dequantize=True", api=_merge_quantized),
    Case("rank-too-large", "config", "rank larger than a layer allows", 2,
         "rank is 64 and d_in is 32", "use rank <= 32",
         cli=_train("--rank", "64"), api=_inject(rank=64)),
    Case("bad-target-regex", "config", "target regex does not compile", 2, "the regex does not compile",
         "give a valid regular expression", cli=_train("--targets", "re:(query"), api=_adapter_config(targets="re:(query")),
    Case("bad-shard", "config", "--shard outside 0..n-1", 2, "--shard 3/2", "need 0 <= i < n",
         cli=_reproduce("--shard", "3/2"), api=lambda folder: _parse_shard("3/2"), setup=_yaml(GRID)),
    # ---- data
    Case("data-folder-missing", "data", "--data-dir does not exist", 2, "data folder not found",
         "--data-dir", cli=_train_on("nowhere"),
         api=lambda folder: _glue_load(folder, "nowhere")),
    Case("data-file-missing", "data", "a split file is missing", 2, "dev.tsv: file not found",
         "put it there",
         cli=_train_on("glue"), api=_glue_load,
         setup=lambda folder: _glue(folder, lambda sst: (sst / "dev.tsv").unlink())),
    Case("data-column-missing", "data", "a column is missing", 2, "missing column(s) ['label']",
         "add the column",
         cli=_train_on("glue"), api=_glue_load,
         setup=lambda folder: _glue(folder, _drop_label_column)),
    Case("data-split-empty", "data", "a split has no rows", 2, "header only, no data rows", "add data rows",
         cli=_train_on("glue"), api=_glue_load,
         setup=lambda folder: _glue(folder, _header_only_dev)),
    Case("data-label-out-of-range", "data", "a label outside the task's classes", 2, "label '7' is not one of [0, 1]",
         "fix the label", cli=_train_on("glue"),
         api=_glue_load, setup=lambda folder: _glue(folder, _label_out_of_range)),
    Case("data-not-utf8", "data", "undecodable text", 2, "not UTF-8 text", "save the file as UTF-8",
         cli=_train_on("glue"), api=_glue_load,
         setup=lambda folder: _glue(folder, _not_utf8)),
    Case("tweets-column-missing", "data", "tweets CSV without a text column", 2, "missing column(s) ['text']",
         "add the column", cli=_train_on("tweets.csv", task="tweets"),
         api=_tweets_load, setup=_tweets_without_text),
    Case("image-does-not-open", "data", "an image file that does not open", 2, "does not open as an image",
         "replace or remove", api=_open_broken_image, setup=_broken_image),
    # ---- adapter files
    Case("adapter-missing", "adapter", "adapter folder missing", 2, "does not exist", "give the folder",
         cli=_verify, api=_load_adapter, subprocess=True),
    Case("adapter-weights-missing", "adapter", "adapter.safetensors missing", 2, "adapter.safetensors is missing",
         "copy the whole adapter folder", cli=_verify, api=_load_adapter,
         setup=lambda folder: (_copy_adapter(folder) / "adapter.safetensors").unlink()),
    Case("adapter-truncated", "adapter", "truncated tensor file", 2, "is truncated or corrupt",
         "copy or save the adapter again", cli=_verify, api=_load_adapter, setup=_truncate_weights),
    Case("adapter-corrupt", "adapter", "corrupt safetensors (hash updated to match)", 2,
         "not a readable safetensors file", "copy or save the adapter again", cli=_verify, api=_load_adapter,
         setup=_corrupt_weights_consistently, subprocess=True),
    Case("adapter-format-version", "adapter", "unknown format version", 2, "has format version 99",
         "upgrade asymlora", cli=_verify, api=_load_adapter,
         setup=lambda folder: _edit_config(folder, lambda d: d.update(format_version=99))),
    Case("adapter-base-mismatch", "adapter", "adapter trained on another base model", 2, "base model mismatch",
         "load it onto the model it was trained on", cli=_verify, api=_load_adapter, setup=_other_base_adapter),
    Case("adapter-frozen-hash", "adapter", "tampered frozen-factor hash", 2, "does not match the saved SHA-256",
         "store_frozen=True", cli=_verify, api=_load_adapter,
         setup=lambda folder: _edit_config(folder, _tamper_frozen_hash)),
    Case("adapter-path-escapes", "adapter", "config names a tensor file outside the folder", 2,
         "'../../secret.safetensors' is not a file name inside", "adapter.safetensors", cli=_verify,
         api=_load_adapter,
         setup=lambda folder: _edit_config(folder, lambda d: d["weights"].update(file="../../secret.safetensors"))),
    Case("peft-pickle-only", "adapter", "PEFT folder with only adapter_model.bin (pickle)", 2,
         "asymlora never loads pickle files", "safe_serialization=True", cli=_verify, api=_import_peft,
         setup=_peft_bin_only),
    Case("export-trained-head", "adapter", "export for vLLM of an adapter with a trained head (modules_to_save)", 2,
         "which vLLM cannot load (vLLM issue 9280)", "export --for peft, or serve the merged model",
         cli=_export("--for", "vllm"), api=_export_with_head, setup=_copy_adapter),
    Case("export-pad-rank", "adapter", "--pad-rank that is not one of vLLM's --max-lora-rank values", 2,
         "--pad-rank 12 is not a vLLM --max-lora-rank value", "choose one of 8, 16",
         cli=_export("--for", "vllm", "--pad-rank", "12"), api=_pad_rank_12, setup=_copy_adapter),
    Case("engine-modules-to-save", "adapter", "PEFT folder with modules_to_save, for vLLM", 2,
         "vLLM refuses or drops a trained head (vLLM issue 9280)", "serve the merged model",
         cli=_verify_for("vllm"), api=_check_for("vllm"), setup=_engine_folder({"modules_to_save": ["lm_head"]})),
    Case("engine-rslora-vllm", "adapter", "PEFT folder with use_rslora, for vLLM", 2,
         "vLLM serves it with lora_alpha/r", "re-export with asymlora export --for vllm",
         cli=_verify_for("vllm"), api=_check_for("vllm"), setup=_engine_folder({"use_rslora": True})),
    Case("engine-rslora-sglang", "adapter", "PEFT folder with use_rslora, for SGLang (issue 40835)", 2,
         "SGLang serves it with lora_alpha/r", "re-export with asymlora export --for sglang",
         cli=_verify_for("sglang"), api=_check_for("sglang"), setup=_engine_folder({"use_rslora": True})),
    Case("engine-patterns-vllm", "adapter", "PEFT folder with alpha_pattern, for vLLM (dropped by its loader)", 2,
         "alpha_pattern set: vLLM applies one lora_alpha/r", "re-export with asymlora export --for vllm",
         cli=_verify_for("vllm"), api=_check_for("vllm"), setup=_engine_folder({"alpha_pattern": {"q_proj": 8}})),
    Case("engine-module-paths", "adapter", "PEFT folder whose module paths are another model class's (vLLM 34186)", 2,
         "base model without a warning (vLLM issue 34186)", "export from the model class the engine serves",
         cli=_verify_for("vllm", "--model", "tiny-llama"), api=_check_for("vllm", on_model=True),
         setup=_engine_folder(paths="model.language_model.layers")),
    Case("engine-served-targets", "adapter", "server --lora-target-modules that leave the adapter out (vLLM 55193)",
         2, "the base model is served (vLLM issue 55193)", "serve with --lora-target-modules covering",
         cli=_verify_for("vllm", "--model", "tiny-llama", "--lora-target-modules", "o_proj"),
         api=_check_for("vllm", on_model=True, served=("o_proj",)), setup=_engine_folder()),
    Case("merge-different-a", "adapter", "merging adapters drawn from different frozen A (another seed)", 2,
         "have different frozen A", "train them from the same frozen factor", cli=_merge_cli(), api=_merge_api(),
         setup=_merge_setup(seed=1)),
    Case("merge-different-rank", "adapter", "merging adapters of different ranks", 2, "rank 2 vs 4",
         "merge only adapters with the same rank", cli=_merge_cli(), api=_merge_api(), setup=_merge_setup(rank=4)),
    Case("merge-different-targets", "adapter", "merging adapters on different target modules", 2,
         "adapt different modules", "merge only adapters with the same targets", cli=_merge_cli(), api=_merge_api(),
         setup=_merge_setup(targets=["query"])),
    Case("merge-different-base", "adapter", "merging adapters trained on different base models", 2,
         "trained on different base models", "merge only adapters trained on the same base model",
         cli=_merge_cli(), api=_merge_api(), setup=_merge_other_base),
    Case("merge-lora", "adapter", "merging LoRA adapters (both factors trained) exactly", 2,
         "trains both factors (LoRA)", "train them B-only from the same frozen A", cli=_merge_cli(),
         api=_merge_api(), setup=_merge_setup(method="lora")),
    Case("merge-weight-count", "adapter", "merge with a weight count that differs from the adapters'", 2,
         "2 adapters but 3 weights", "give one weight per adapter", cli=_merge_cli(weights="0.5,0.5,1"),
         api=_merge_api(weights=(0.5, 0.5, 1.0)), setup=_merge_setup()),
    # ---- runs
    Case("out-not-writable", "run", "--out cannot be created (a file is in the way)", 2, "cannot create --out",
         "choose a writable folder",
         cli=lambda folder: ["train", "--task", "tweets", "--model", "tiny-bert", "--out",
                             str(folder / "blocker" / "run"), *SMALL], setup=_file_as_parent),
    Case("out-holds-finished-run", "run", "--out already holds a finished run", 2, "already holds a finished run",
         "--overwrite", cli=_train(), setup=_finished_run),
    Case("results-torn-last-line", "run", "results file whose last line was cut by a crash", 0,
         "line 2 is incomplete", "skipped", cli=_report, api=_read_results,
         setup=_results([_record("a"), _record("b")[:40]]), subprocess=True),
    Case("results-bad-middle-line", "run", "results file with a malformed line before the last", 2,
         ":2: not a JSON line", "repair or remove that line", cli=_report, api=_read_results,
         setup=_results([_record("a"), "{oops\n", _record("c")])),
    Case("results-not-utf8", "run", "results file that is not UTF-8", 2, "not valid utf-8 text", "UTF-8",
         cli=_report, api=_read_results, setup=_not_utf8_results),
    Case("results-missing", "run", "results file does not exist", 2, "results file not found",
         "run asymlora reproduce first", cli=_report,
         api=lambda folder: _store().read_results(folder / "results.jsonl", missing_ok=False)),
    Case("ood-report-nothing-scored", "run", "asymlora report of an ood.jsonl where no run was scored", 2,
         "no scores to report", "score runs first",
         cli=lambda folder: ["report", str(folder / "ood" / "ood.jsonl")]),
    Case("lr-sweep-not-one-sweep", "run", "asymlora choose-lr on runs that differ in more than learning rate and seed",
         2, "differ in epochs (1 vs 2)", "give results of one sweep",
         cli=lambda folder: ["choose-lr", str(folder / "results.jsonl"), "--out", str(folder / "choice")],
         api=_choose_lr, setup=_results([_sweep_record(1e-3, 1), _sweep_record(3e-4, 2)])),
    Case("grid-run-fails", "run", "one run of a grid fails at run time (its data is bad)", 1,
         "1 run(s) failed, first: sst2/b_only-r2-s0", "fix the label", cli=_reproduce("--no-report"),
         setup=_failing_grid, writes=("error.txt", "spec.json")),
    Case("max-steps-zero", "run", "--max-steps 0", 2, "--max-steps must be >= 1 (got 0)", ">= 1",
         cli=_reproduce("--max-steps", "0"), api=_validate(max_steps=0), setup=_yaml(GRID)),
    Case("federated-no-flower", "run", "asymlora federated without the Flower package", 2,
         "needs the 'flwr' package", "pip install 'flwr[simulation]==1.42.0'", api=_without_flower),
    Case("federated-too-many-clients", "run", "more federated clients than the training examples allow", 2,
         "--clients 300 needs at least 2400 training examples", "lower --clients or raise --train-examples",
         cli=lambda folder: ["federated", "--clients", "300", "--train-examples", "2000", "--out", str(folder / "out")],
         api=_too_many_clients),
    Case("federated-split-cannot-serve", "run", "no Dirichlet label split gives every client a batch", 2,
         "no Dirichlet draw in 5 gave every client 9 examples", "raise --alpha", api=_split_cannot_serve),
    Case("federated-dp-noise-without-clip", "run", "federated DP noise without a clipping norm", 2,
         "--dp-noise needs a clipping norm", "give --dp-clip C > 0",
         cli=lambda folder: ["federated", "--dp-noise", "1", "--out", str(folder / "out")],
         api=_dp_noise_without_clip),
    Case("compile-unavailable", "run", "torch.compile asked where inductor cannot build (here: no C++ compiler)", 2,
         "torch.compile on the CPU (inductor) needs a C++ compiler", "install g++ or point CXX at a C++ compiler",
         cli=lambda folder: ["bench", "sweep", "--workloads", "tiny_bert", "--configurations", "b_only_compiled",
                             "--out", str(folder / "out")],
         api=_require_compile,
         env=(("CXX", "/nonexistent/c++"),)),
    Case("mask-stream-unknown", "config", "an unknown dropout mask-stream version", 2,
         "AdapterConfig.mask_stream='v3' is invalid", "allowed values are v1, v2",
         api=_unknown_mask_stream),
]


# ------------------------------------------------------------------------------------ the table
def render() -> str:
    """docs/errors.md, from :data:`CASES`."""
    lines = ["# Errors: the catalogue of bad inputs", "",
             "Generated by `python tests/error_cases.py` from the catalogue in `tests/error_cases.py`; "
             "`tests/test_error_catalogue.py` runs every case and fails when this file is out of date.", "",
             "Every case is checked through the command line (in process; the ones marked *subprocess* also as a "
             "real `python -m asymlora.cli` process) and through the Python API, with the same contract:", "",
             "* the exit status is **2** for bad input or usage, **1** for a failure at run time, **0** for a "
             "warning (the input stays usable);",
             "* stderr holds **one line** that names the problem and the fix, and no traceback (`--debug` shows "
             "it);",
             "* nothing is half-written: no file is created or changed (a folder may be created empty), existing "
             "results stay intact; a run that fails at run time leaves only its `error.txt` (the traceback) and "
             "the grid's `spec.json`; a warning lets the command go on and write its outputs;",
             "* the API raises `ValueError` (or `FileNotFoundError`; a warning case warns); "
             "`asymlora.errors.UserError` is a `ValueError`.", "",
             f"{len(CASES)} cases.", ""]
    for area in AREAS:
        lines += [f"## {area.capitalize()}", "", "| Case | Problem | Through | Exit | The line names | The fix |",
                  "|---|---|---|---|---|---|"]
        for case in (c for c in CASES if c.area == area):
            how = case.how.replace("CLI", "CLI, subprocess") if case.subprocess else case.how
            code = str(case.code) if case.cli is not None else "(raises)"
            fix = case.fix.replace("|", "\\|")
            lines.append(f"| `{case.id}` | {case.problem} | {how} | {code} | `{case.message}` | `{fix}` |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC} ({len(CASES)} cases)", file=sys.stderr)
