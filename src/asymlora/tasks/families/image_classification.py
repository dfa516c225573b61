"""Image classification (ViT and other transformers vision models).

Model: ``AutoModelForImageClassification`` with ``task.num_labels`` outputs; head = the model's
classifier modules. Preprocessing is lazy (``Dataset.with_transform``): each batch's images (the
task's ``image_field``: PIL images or arrays) are converted to RGB and passed through the model's
image processor (resize + normalise) into ``pixel_values``, so large image sets are never held as
tensors. Loss: per-example cross-entropy, ``token_level_loss = False``. Scoring: the task's metric
suite over the logits (accuracy).
"""

from __future__ import annotations

import numpy as np

from .base import PreparedData, TrainerOptions, register_family
from .sequence_classification import SequenceClassification


def to_rgb(image):
    """A PIL image in RGB mode. Accepts a PIL image, an array (8-bit grey or RGB), a file path, raw
    bytes, or an undecoded ``datasets.Image`` cell (``{"path", "bytes"}``). A file that does not
    decode raises :class:`~asymlora.errors.UserError` naming it."""
    import io
    import os

    from PIL import Image, UnidentifiedImageError

    from asymlora.errors import UserError

    if isinstance(image, dict):  # an undecoded datasets.Image cell
        image = image.get("bytes") or image.get("path")
    if isinstance(image, (str, os.PathLike, bytes, bytearray)):
        name = "image bytes" if isinstance(image, (bytes, bytearray)) else f"image {os.fspath(image)}"
        source = io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else image
        try:
            with Image.open(source) as opened:
                opened.load()
                return opened.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(f"{name} does not open as an image ({reason}); replace or remove it") from None
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    return image.convert("RGB")


class ImageClassification(SequenceClassification):
    """Model loading, head and scoring as for text classification (the model registry picks
    ``AutoModelForImageClassification`` for image models); inputs are images."""

    name = "image_classification"
    description = "image -> class; AutoModelForImageClassification; accuracy"
    token_level_loss = False

    def preprocess(self, splits, processor, task, max_length):
        import datasets

        field = task.image_field

        def transform(batch):
            pixels = processor(images=[to_rgb(im) for im in batch[field]], return_tensors="pt")["pixel_values"]
            return {"pixel_values": pixels, "labels": batch["label"]}

        out = {}
        for split, ds in splits.items():
            missing = [c for c in (field, "label") if c not in ds.column_names]
            if missing:
                raise ValueError(f"split {split!r} of task {task.name!r} lacks column(s) {missing}")
            out[split] = ds.with_transform(transform)
        return PreparedData(datasets.DatasetDict(out))

    def collator(self, processor, model):
        import torch

        def collate(rows):
            return {"pixel_values": torch.stack([r["pixel_values"] for r in rows]),
                    "labels": torch.tensor([int(r["labels"]) for r in rows])}

        return collate

    def trainer_options(self, task, processor, config):
        # the transform needs the raw image column, which the Trainer would otherwise drop
        return TrainerOptions(arguments={"remove_unused_columns": False})


IMAGE_CLASSIFICATION = register_family(ImageClassification())
