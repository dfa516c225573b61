"""Models: the registry, where their files come from, and how they are loaded.

==================  ============================================================================
``registry``        names -> :class:`ModelRef`; THE table of targets and heads (``ARCHITECTURES``)
``cache``           the cache folder; folders built once, atomically
``packaged``        real weights from Python packages (``minilm``, ``smollm2`` from its GGUF)
``tiny``            tiny random test models (``tiny-<arch>``) and the tiny-config factory
``layouts``         random models at real shapes for benchmarks and planning (``llama-7b``, ``tiny-bert-64``)
``hub``             whether the hub is off; the one-line refusal when a model needs it
``loading``         one loader per task family, and the tokenizer
``benchmark``       a benchmark's model (a layout or anything ``loading`` takes)
``heads``           a model's head and adapter targets, found from the model itself
``meta``            configs and models without weights (meta device); a task's auto class
``quiet``           transformers' load report and progress bars silenced while loading
==================  ============================================================================

Cache: ``$ASYMLORA_CACHE`` or ``~/.cache/asymlora``. Imports flow one way: ``registry`` <- ``cache``,
``packaged``, ``tiny``, ``layouts`` <- ``hub``, ``loading`` <- ``meta``, ``benchmark``; nothing here
imports training, evaluation, experiments, bench or the commands. Everything public is re-exported
here, so ``from asymlora.models import X`` works for every name.
"""

from asymlora.models.benchmark import BenchmarkModel, default_model, load_for_benchmark
from asymlora.models.cache import cache_dir, materialise
from asymlora.models.heads import classifier_head, guess_targets, head_module_name, resolve_targets
from asymlora.models.hub import check_reachable, hub_hint, hub_offline
from asymlora.models.layouts import LAYOUT_ALIASES, LAYOUTS, layout_config
from asymlora.models.loading import (
    load_for_causal_lm,
    load_for_image_classification,
    load_for_seq2seq,
    load_for_sequence_classification,
    load_tokenizer,
    model_path,
)
from asymlora.models.meta import TASKS, auto_class, empty_model, read_config
from asymlora.models.packaged import PACKAGED, minilm_path, smollm2_path
from asymlora.models.quiet import quiet_load_report, quiet_transformers
from asymlora.models.registry import (
    ARCHITECTURES,
    HUB_NAME_PATTERNS,
    MODELS,
    ModelRef,
    guess_hub_type,
    ref_for_type,
    resolve_model,
)
from asymlora.models.tiny import TINY_SEED, save_tiny_bert_classifier, tiny_config, tiny_path

__all__ = [
    "ARCHITECTURES", "BenchmarkModel", "HUB_NAME_PATTERNS", "LAYOUTS", "LAYOUT_ALIASES", "MODELS", "ModelRef",
    "PACKAGED", "TASKS", "TINY_SEED", "auto_class", "cache_dir", "check_reachable", "classifier_head",
    "default_model", "empty_model", "guess_hub_type", "guess_targets", "head_module_name", "hub_hint",
    "hub_offline", "layout_config", "load_for_benchmark", "load_for_causal_lm", "load_for_image_classification",
    "load_for_seq2seq", "load_for_sequence_classification", "load_tokenizer", "materialise", "minilm_path",
    "model_path", "quiet_load_report", "quiet_transformers", "read_config", "ref_for_type", "resolve_model",
    "resolve_targets", "save_tiny_bert_classifier", "smollm2_path", "tiny_config", "tiny_path",
]
