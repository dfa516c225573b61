"""asymlora: asymmetric low-rank adapters (Zhu et al., ICML 2024).

Freeze A at a random orthonormal matrix, train only B: LoRA's accuracy with half the trainable
parameters. The public API is re-exported here; nothing else lives in this file.
"""

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.init import INITIALISERS
from asymlora.adapters.inject import (
    adapted_modules,
    disable_adapters,
    inject,
    merge,
    summary,
    total_parameters,
    trainable_parameters,
    unmerge,
)
from asymlora.adapters.combine import combine
from asymlora.adapters.io import fingerprint, load_adapter, read_adapter, save_adapter, save_merged
from asymlora.adapters.linear import AdaptedLinear
from asymlora.adapters.peft_interop import export_peft, import_peft
from asymlora.adapters.serving import adapter_rows, serve
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
    "disable_adapters", "export_peft", "fingerprint", "import_peft", "inject", "load_adapter", "merge",
    "read_adapter", "save_adapter", "save_merged", "serve", "summary", "total_parameters",
    "trainable_parameters", "unmerge", "__version__",
]
__all__ += ["load_for_causal_lm", "load_for_image_classification", "load_for_seq2seq",
            "load_for_sequence_classification", "load_tokenizer"]
