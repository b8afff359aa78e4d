"""Tests of experiments/training_data.py without the network: the Debian download is replaced by a folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import training_data


def _image(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def test_store_downscales_large_images_and_copies_small_ones(tmp_path) -> None:
    big = _image(tmp_path / "big.jpg", (900, 600), 0)
    small = _image(tmp_path / "small.jpg", (500, 300), 1)
    stored = training_data.store(big, tmp_path / "out_big.jpg", shorter_side=256)
    assert stored.suffix == ".png"
    with Image.open(stored) as im:
        assert im.size == (384, 256) and im.mode == "RGB"
    copied = training_data.store(small, tmp_path / "out_small.jpg", shorter_side=512)
    assert copied.read_bytes() == small.read_bytes()


def test_assemble_keeps_usable_unique_images_and_records_skips(tmp_path, monkeypatch) -> None:
    root = tmp_path / "unpacked" / "fake-backgrounds"
    _image(root / "usr/share/backgrounds/a.jpg", (800, 600), 0)
    _image(root / "usr/share/backgrounds/b.png", (300, 300), 1, mode="RGBA")
    backgrounds = root / "usr/share/backgrounds"
    (backgrounds / "copy_of_a.jpg").write_bytes((backgrounds / "a.jpg").read_bytes())
    _image(root / "usr/share/icons/icon.png", (64, 64), 2)
    (root / "usr/share/backgrounds/broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "usr/share/backgrounds/readme.txt").write_text("not an image")
    styles = tmp_path / "styles"
    _image(styles / "art.jpg", (600, 1200), 3)
    (styles / "thumb.jpg").write_bytes(b"junk")
    monkeypatch.setattr(training_data, "fetch_packages", lambda packages, work: {"fake-backgrounds": root})
    monkeypatch.setattr(training_data, "package_version", lambda package, work: "1.0-1")

    out = tmp_path / "data"
    manifest = training_data.assemble(out, ["fake-backgrounds"], styles, log=lambda msg: None)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "content/fake-backgrounds/a.png",  # 800×600 → 683×512, stored as PNG
        "content/fake-backgrounds/b.png",  # RGBA → RGB
        "manifest.json",
        "style/art.png",
    ]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["packages"] == {"fake-backgrounds": "1.0-1"}
    reasons = {Path(s["source"]).name: s["reason"] for s in manifest["skipped"]}
    assert reasons["copy_of_a.jpg"] == "duplicate of an earlier file"
    assert "smaller than 256" in reasons["icon.png"]
    assert reasons["broken.jpg"].startswith("not readable")
    assert reasons["thumb.jpg"].startswith("not readable")
    assert "readme.txt" not in reasons  # not a raster image file at all
    with Image.open(out / "content" / "fake-backgrounds" / "b.png") as im:
        assert im.mode == "RGB" and im.size == (300, 300)
    with Image.open(out / "style" / "art.png") as im:
        assert im.size == (512, 1024)
    (out / "content" / "stale.png").write_bytes(b"left over")  # a rebuild starts from scratch
    training_data.assemble(out, ["fake-backgrounds"], styles, log=lambda msg: None)
    assert not (out / "content" / "stale.png").exists()
    with pytest.raises(SystemExit, match="does not exist"):
        training_data.assemble(out, ["fake-backgrounds"], tmp_path / "nowhere", log=lambda msg: None)


def test_package_glob_keeps_only_matching_files_and_styles_none_skips_styles(tmp_path, monkeypatch) -> None:
    root = tmp_path / "unpacked" / "fake-doc"
    _image(root / "usr/share/doc/fake/examples/data/photo.jpg", (400, 300), 0)
    _image(root / "usr/share/doc/fake/examples/deeper/still.jpg", (400, 300), 1)  # * crosses folders
    _image(root / "usr/share/doc/fake/examples/data/diagram.png", (400, 300), 2)
    _image(root / "usr/share/doc/fake/html/figure.jpg", (400, 300), 3)
    fetched: list[list[str]] = []

    def fetch(packages: list[str], work: Path) -> dict[str, Path]:
        fetched.append(packages)
        return {"fake-doc": root}

    monkeypatch.setattr(training_data, "fetch_packages", fetch)
    monkeypatch.setattr(training_data, "package_version", lambda package, work: "2.0")
    out = tmp_path / "photos"
    manifest = training_data.assemble(out, ["fake-doc:usr/share/doc/fake/examples/*.jpg"], None, log=print)
    assert fetched == [["fake-doc"]]  # apt-get gets the package name, not the spec
    kept = sorted(entry["source"] for entry in manifest["content"])
    assert kept == [
        "fake-doc:/usr/share/doc/fake/examples/data/photo.jpg",
        "fake-doc:/usr/share/doc/fake/examples/deeper/still.jpg",
    ]
    assert manifest["patterns"] == {"fake-doc": "usr/share/doc/fake/examples/*.jpg"}
    assert manifest["style"] == [] and list((out / "style").iterdir()) == []


@pytest.mark.parametrize("spec", ["", ":glob", "pkg:"])
def test_malformed_package_spec_is_a_clear_error(spec: str) -> None:
    with pytest.raises(SystemExit, match="is not PACKAGE or PACKAGE:GLOB"):
        training_data.split_spec(spec)


def test_plain_package_spec_keeps_every_file() -> None:
    assert training_data.split_spec("gnome-backgrounds") == ("gnome-backgrounds", "*")
