"""AdapterConfig validation: every bad field is a ValueError that names the field and the allowed values."""

import pytest

from asymlora import AdapterConfig


@pytest.mark.parametrize("field, value, words", [
    ("rank", 0, "rank"), ("rank", 2.5, "rank"), ("alpha", 0, "alpha"), ("alpha", -1.0, "alpha"),
    ("dropout", 1.0, "[0, 1)"), ("dropout", -0.1, "dropout"), ("train", "C", "A, B, AB"),
    ("init_A", "orthogonal", "did you mean 'orthonormal'"), ("init_B", "nope", "kaiming"),
    ("targets", [], "targets"), ("targets", "re:(", "regex"), ("rank_pattern", {"q": 0}, "rank_pattern"),
    ("seed", -1, "seed"),
])
def test_invalid_fields_name_the_field_and_choices(field, value, words):
    with pytest.raises(ValueError) as err:
        AdapterConfig(**{field: value})
    assert f"AdapterConfig.{field}" in str(err.value)
    assert words in str(err.value)


def test_scaling_and_rank_pattern():
    cfg = AdapterConfig(rank=8, alpha=16, rank_pattern={"value": 4, r"layer\.1\..*query": 2})
    assert cfg.scaling(8) == 2.0
    assert AdapterConfig(rank=16, alpha=16, use_rslora=True).scaling(16) == 4.0
    assert cfg.rank_for("encoder.layer.0.attention.self.value") == 4
    assert cfg.rank_for("encoder.layer.1.attention.self.query") == 2
    assert cfg.rank_for("encoder.layer.0.attention.self.query") == 8


def test_round_trip_and_unknown_key():
    cfg = AdapterConfig(rank=4, targets="all-linear", modules_to_save="classifier")
    assert AdapterConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="did you mean 'rank'"):
        AdapterConfig.from_dict({"rnak": 4})


def test_mask_stream_is_written_with_dropout_only_and_old_files_read_as_v1():
    plain, dropped = AdapterConfig(rank=4), AdapterConfig(rank=4, dropout=0.1)
    assert "mask_stream" not in plain.to_dict() and dropped.to_dict()["mask_stream"] == "v2"
    assert AdapterConfig.from_dict(dropped.to_dict()) == dropped
    old_file = {k: v for k, v in dropped.to_dict().items() if k != "mask_stream"}   # written before versions
    assert AdapterConfig.from_dict(old_file).mask_stream == "v1"
    with pytest.raises(ValueError, match="mask_stream='v3' is invalid: allowed values are v1, v2"):
        AdapterConfig(mask_stream="v3")
