"""RSS of a fresh interpreter after the imports a bench-quantized row makes, before any model is loaded:
the runtime floor (``asymlora memory --device cpu`` measures the same floor itself:
asymlora.planning.runtime). Writes runtime_rss.json here."""

import json
import sys
from pathlib import Path

import bitsandbytes  # noqa: F401
import peft  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401
from transformers import AutoModelForCausalLM  # noqa: F401

from asymlora.bench.configs import build  # noqa: F401
from asymlora.measure import rss_bytes

out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent) / "runtime_rss.json"
out.write_text(json.dumps({"runtime_rss_bytes": rss_bytes(), "python": sys.version.split()[0]}, indent=2) + "\n")
print(out.read_text())
