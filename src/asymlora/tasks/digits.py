"""``digits``: real 8×8 handwritten digits (UCI optdigits test set, shipped with scikit-learn).

scikit-learn's ``load_digits`` holds 1,797 grey images of 8×8 pixels with values 0–16 and labels
0–9, installed with scikit-learn itself (no download). Images are scaled to 0–255 (``v · 255 / 16``)
as 8-bit grey PIL images; the image family converts them to RGB and the model's image processor
resizes them. Split: fixed stratified 80 / 10 / 10 (``SPLIT_SEED``, independent of the run seed):
train 1,438 / validation 179 / test 180. A small real image task for end-to-end checks of the image
family; the out-of-distribution vision work uses MNIST-derived domains.
Settings (ours): lr 1e-3, 10 epochs, batch 8, metric accuracy.
"""

from __future__ import annotations

import numpy as np

from .base import Hyper, Task, register
from .metrics import metric_suite
from .split import stratified_split

SPLIT_SEED = 20240607
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
LABELS = tuple(str(d) for d in range(10))


def load(data_dir: str | None = None, seed: int = 0):
    """``{train, validation, test}`` with columns ``image`` (PIL, 8×8 grey) and ``label``."""
    import datasets
    from PIL import Image
    from sklearn.datasets import load_digits

    del seed
    if data_dir is not None:
        raise ValueError("the digits task has no local-folder option (it ships with scikit-learn)")
    bunch = load_digits()
    images = [Image.fromarray(np.round(im * 255.0 / 16.0).astype(np.uint8), mode="L") for im in bunch.images]
    labels = [int(y) for y in bunch.target]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(LABELS))})
    parts = stratified_split(labels, FRACTIONS, SPLIT_SEED)
    return datasets.DatasetDict({split: datasets.Dataset.from_dict(
        {"image": [images[i] for i in idx], "label": [labels[i] for i in idx]}, features=features)
        for split, idx in parts.items()})


DIGITS_TASK = register(Task(name="digits", text_fields=(), num_labels=10, metric_names=("accuracy",),
                            hyper=Hyper(learning_rate=1e-3, epochs=10, batch_size=8, max_length=128),  # max_length: unused by images
                            label_names=LABELS, load=load, compute_metrics=metric_suite(("accuracy",)),
                            description="8x8 handwritten digits (scikit-learn's optdigits copy), 10 classes",
                            family="image_classification"))
