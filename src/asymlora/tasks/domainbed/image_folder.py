"""DomainBed's image-folder datasets: ``<root>/<dataset folder>/<environment>/<class>/*.jpg|png``.

As in DomainBed's ``MultipleEnvironmentImageFolder``, the environments are the sub-folders of the
dataset folder in sorted order and each environment's classes are its sub-folders in sorted order
(so label ``y`` is the ``y``-th class name). Stricter than DomainBed, which would silently give
labels different meanings: every expected environment must be there and every environment must
hold the same class folders; a missing one is an error naming it. Every image file (``.jpg``,
``.jpeg``, ``.png``, any case) is checked when the dataset is loaded (PIL ``verify``: the header and
structure), so an unreadable file fails before training with its path in the message. Images are
opened lazily, in RGB; the ViT image processor resizes (224×224 for the paper's model) and
normalises them. DomainBed's training augmentation is not applied (``data_augmentation`` off).

Folder names are DomainBed's (its ``download.py``): ``VLCS`` (Caltech101, LabelMe, SUN09, VOC2007),
``PACS`` (art_painting, cartoon, photo, sketch), ``office_home`` (Art, Clipart, Product, Real World),
``terra_incognita`` (location_100, location_38, location_43, location_46).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetSpec, Environment, MultiDomainData, register_dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _open_rgb(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise ValueError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None


def check_image(path: Path) -> None:
    """ValueError naming ``path`` when PIL cannot identify or verify it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_folder(root: str | Path, folder: str, expected_envs: tuple[str, ...], name: str,
                verify: bool = True) -> MultiDomainData:
    """Read ``root/folder`` as a multi-environment image dataset (see the module docstring)."""
    base = Path(root) / folder
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: no {name} folder (expected <data-dir>/{folder}/<environment>/<class>/*.jpg)")
    envs = _subfolders(base)
    missing = [e for e in expected_envs if e not in envs]
    if missing:
        raise FileNotFoundError(f"{base}: environment folder(s) {missing} missing (found {envs})")
    envs = [e for e in envs if e in expected_envs]
    classes = _subfolders(base / envs[0])
    if not classes:
        raise FileNotFoundError(f"{base / envs[0]}: no class folders")
    environments = []
    for env in envs:
        here = _subfolders(base / env)
        if here != classes:
            lacking = sorted(set(classes) - set(here)) or sorted(set(here) - set(classes))
            raise FileNotFoundError(f"{base / env}: class folder(s) {lacking} differ from {envs[0]}'s classes")
        paths, labels = [], []
        for y, cls in enumerate(classes):
            files = sorted(p for p in (base / env / cls).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if verify:
                for p in files:
                    check_image(p)
            paths += files
            labels += [y] * len(files)
        if not paths:
            raise FileNotFoundError(f"{base / env}: no .jpg or .png images")
        environments.append(Environment(env, np.asarray(labels, dtype=np.int64),
                                        lambda idx, paths=tuple(paths): [_open_rgb(paths[int(i)]) for i in idx]))
    return MultiDomainData(name, tuple(environments), tuple(classes))


FOLDERS = {  # name -> (folder under --data-dir, environment folders in DomainBed's order)
    "VLCS": ("VLCS", ("Caltech101", "LabelMe", "SUN09", "VOC2007")),
    "PACS": ("PACS", ("art_painting", "cartoon", "photo", "sketch")),
    "OfficeHome": ("office_home", ("Art", "Clipart", "Product", "Real World")),
    "TerraIncognita": ("terra_incognita", ("location_100", "location_38", "location_43", "location_46")),
}


def _folder_spec(name: str) -> DatasetSpec:
    folder, envs = FOLDERS[name]

    def load(data_dir: str | None, seed: int = 0) -> MultiDomainData:
        if data_dir is None:
            raise ValueError(f"{name} needs --data-dir: a folder holding {folder}/<environment>/<class>/*.jpg "
                             "(DomainBed's download layout)")
        return load_folder(data_dir, folder, envs, name)

    return register_dataset(DatasetSpec(name, envs, load, steps=5001, checkpoint_freq=300, needs_data_dir=True,
                                        description=f"{name} from <data-dir>/{folder}/ (DomainBed layout)"))


for _name in FOLDERS:
    _folder_spec(_name)
