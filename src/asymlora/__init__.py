"""asymlora: asymmetric low-rank adapters (Zhu et al., ICML 2024).

Freeze A at a random orthonormal matrix, train only B: LoRA's accuracy with half the trainable
parameters. The public API is re-exported here; nothing else lives in this file:

* adapters on any PyTorch model: :func:`inject` with an :class:`AdapterConfig`, the layer
  :class:`AdaptedLinear`, inspection (:func:`adapted_modules`, :func:`get_adapter_params`,
  :func:`summary`, parameter counts), merging, files (save / load / PEFT / merged export),
  :func:`combine`, :func:`merge_adapters` (task arithmetic, TIES, DARE on B) and batched serving
  (:func:`serve`, :func:`adapter_rows`);
* the paper's methods by name: :func:`get_method` (a :class:`MethodSpec`) and :func:`prepare`
  (make a freshly loaded model ready to train with a method: an adapter method, AdaLoRA, full
  fine-tuning or a linear probe);
* the packaged real models and tiny test models, one loader per task family
  (:func:`load_for_sequence_classification`, :func:`load_for_causal_lm`, :func:`load_for_seq2seq`,
  :func:`load_for_image_classification`) and :func:`load_tokenizer`.

Every other name in the package's modules is internal unless its module's docstring says otherwise.
"""

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.init import INITIALISERS
from asymlora.adapters.inject import (
    adapted_modules,
    disable_adapters,
    get_adapter_params,
    inject,
    merge,
    summary,
    total_parameters,
    trainable_parameters,
    unmerge,
)
from asymlora.adapters.combine import combine
from asymlora.adapters.engine_check import verify_for
from asymlora.adapters.engine_export import export_for
from asymlora.adapters.merge import merge_adapters
from asymlora.adapters.io import fingerprint, load_adapter, read_adapter, save_adapter, save_merged
from asymlora.adapters.linear import AdaptedLinear
from asymlora.adapters.peft_interop import export_peft, import_peft
from asymlora.adapters.serving import adapter_rows, serve
from asymlora.methods import MethodSpec, get_method, prepare
from asymlora.models import (
    load_for_causal_lm,
    load_for_image_classification,
    load_for_seq2seq,
    load_for_sequence_classification,
    load_tokenizer,
)

__version__ = "0.1.0"

__all__ = [
    "AdapterConfig", "AdaptedLinear", "INITIALISERS", "adapted_modules", "adapter_rows", "combine",
    "disable_adapters", "export_for", "export_peft", "fingerprint", "get_adapter_params", "import_peft", "inject", "load_adapter",
    "merge", "read_adapter", "save_adapter", "save_merged", "serve", "summary", "total_parameters",
    "trainable_parameters", "unmerge", "verify_for",
    "disable_adapters", "export_peft", "fingerprint", "get_adapter_params", "import_peft", "inject", "load_adapter",
    "merge", "merge_adapters", "read_adapter", "save_adapter", "save_merged", "serve", "summary", "total_parameters",
    "trainable_parameters", "unmerge",
    "MethodSpec", "get_method", "prepare",
    "load_for_causal_lm", "load_for_image_classification", "load_for_seq2seq", "load_for_sequence_classification",
    "load_tokenizer",
    "__version__",
]
