"""The small ViT's pretraining (on a tiny Fashion-MNIST-format fixture) and the IDX reader."""

import gzip
import json

import numpy as np
import pytest

from asymlora.tasks.domainbed.idx import fashion_mnist, read_idx


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def make_fashion(folder, n=48, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        labels = rng.integers(0, 10, n)
        images = (rng.random((n, 28, 28)) * 40 + labels[:, None, None] * 20).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def test_idx_round_trip_and_errors(tmp_path):
    make_fashion(tmp_path / "f")
    images, labels = fashion_mnist("train", str(tmp_path / "f"))
    assert images.shape == (48, 28, 28) and labels.shape == (48,) and labels.dtype == np.int64
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as stream:
        stream.write(bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big") + b"\x00" * 3)
    with pytest.raises(ValueError, match="header says"):
        read_idx(bad)
    with pytest.raises(FileNotFoundError, match="no Fashion-MNIST folder"):
        fashion_mnist("train", str(tmp_path / "nowhere"))


def test_pretrain_saves_a_plain_vit_folder_without_head(tmp_path):
    from asymlora.experiments.domainbed.pretrain import pretrain
    from asymlora.models import load_for_sequence_classification, load_tokenizer, resolve_model

    data = make_fashion(tmp_path / "fashion")
    out = tmp_path / "vit"
    record = pretrain(out, epochs=1, seed=0, data_dir=str(data), batch_size=16, log=lambda *_: None)
    assert record["steps"] == 3 and 0.0 <= record["test_accuracy"] <= 1.0
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json",
                                                "pretrain.json"}
    assert json.loads((out / "pretrain.json").read_text())["backbone_parameters"] == record["backbone_parameters"]
    ref = resolve_model(str(out))
    assert ref.kind == "image" and ref.default_targets == ("q_proj", "v_proj")
    model = load_for_sequence_classification(ref, 7, seed=0)
    assert model.classifier.out_features == 7  # a fresh head for the downstream classes
    assert load_tokenizer(ref).size == {"height": 28, "width": 28}
    again = pretrain(tmp_path / "vit2", epochs=1, seed=0, data_dir=str(data), batch_size=16, log=lambda *_: None)
    assert again["final_loss"] == record["final_loss"]  # seeded
