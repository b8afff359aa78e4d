"""Image I/O: every pixel mode, EXIF orientation, resizing, guards, errors, saving, folder listing."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from adain.encoders import build_encoder
from adain.errors import ImageError, ImageTooSmallError
from adain.io import (
    SkippedFileWarning,
    check_image_size,
    list_images,
    load_image,
    resize_image,
    save_image,
    target_size,
)

GRAY_8 = np.array([[0, 64], [128, 255]], dtype=np.uint8)
GRAY_16 = np.array([[0, 1000], [30000, 65535]], dtype=np.uint16)


def gray(t: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` with equal channels → ``[H, W]``."""
    assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])
    return t[0].numpy()


def opened(path: Path) -> tuple[str, dict]:
    """Mode and info of an image file as Pillow opens it."""
    with Image.open(path) as image:
        return image.mode, dict(image.info)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def write_png_rgb16(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (colour type 2, bit depth 16), written by hand: ``[H, W, 3]`` uint16."""
    h, w, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def vgg() -> torch.nn.Module:
    return build_encoder("vgg19", weights=None)


# ---- pixel modes -----------------------------------------------------------------------------------------


def test_mode_L(tmp_path: Path) -> None:
    path = tmp_path / "l.png"
    Image.fromarray(GRAY_8).save(path)
    t = load_image(path)
    assert t.shape == (3, 2, 2) and t.dtype == torch.float32
    np.testing.assert_allclose(gray(t), GRAY_8 / 255.0, atol=1e-7)


def test_mode_1(tmp_path: Path) -> None:
    path = tmp_path / "bits.png"
    Image.fromarray(np.array([[True, False], [False, True]])).convert("1").save(path)
    assert opened(path)[0] == "1"
    np.testing.assert_array_equal(gray(load_image(path)), [[1.0, 0.0], [0.0, 1.0]])


def test_mode_LA_composites_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    la = np.stack([np.full((1, 3), 100, np.uint8), np.array([[0, 255, 128]], np.uint8)], axis=-1)
    Image.fromarray(la, mode="LA").save(path)
    assert opened(path)[0] == "LA"
    a = np.array([0, 255, 128]) / 255.0
    np.testing.assert_allclose(gray(load_image(path))[0], 100 / 255.0 * a + (1 - a), atol=1e-6)


def test_mode_P(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putdata([0, 1])
    image.save(path)
    assert opened(path)[0] == "P" and "transparency" not in opened(path)[1]
    t = load_image(path)
    np.testing.assert_array_equal(t[:, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(t[:, 0, 1], [0.0, 0.0, 1.0])


def test_mode_P_with_transparency(tmp_path: Path) -> None:
    path = tmp_path / "p_trns.png"
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putdata([0, 1])
    image.save(path, transparency=1)
    assert opened(path)[1].get("transparency") == 1
    t = load_image(path)
    np.testing.assert_array_equal(t[:, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(t[:, 0, 1], [1.0, 1.0, 1.0])  # transparent → white


def test_mode_RGBA_composites_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    rgba = np.array([[[255, 0, 0, 255], [0, 0, 255, 0], [0, 255, 0, 51]]], dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(path)
    t = load_image(path)
    np.testing.assert_allclose(t[:, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(t[:, 0, 1], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(t[:, 0, 2], [0.8, 1.0, 0.8], atol=1e-6)


def test_mode_CMYK_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    cmyk = np.zeros((16, 32, 4), np.uint8)
    cmyk[:, :16] = (0, 255, 255, 0)  # red
    cmyk[:, 16:] = (255, 255, 0, 0)  # blue
    Image.fromarray(cmyk, mode="CMYK").save(path, quality=100)
    assert opened(path)[0] == "CMYK"
    t = load_image(path)
    assert t.shape == (3, 16, 32)
    np.testing.assert_allclose(t[:, 8, 4], [1.0, 0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(t[:, 8, 28], [0.0, 0.0, 1.0], atol=0.05)


def test_mode_I16_png_full_range(tmp_path: Path) -> None:
    path = tmp_path / "i16.png"
    Image.fromarray(GRAY_16).save(path)
    assert opened(path)[0] == "I;16"
    values = gray(load_image(path))
    np.testing.assert_allclose(values, GRAY_16 / 65535.0, rtol=1e-6)
    assert values[1, 0] == pytest.approx(30000 / 65535)  # not clipped at 255, not divided by 255


def test_mode_I16B_tiff(tmp_path: Path) -> None:
    path = tmp_path / "i16b.tif"
    Image.frombytes("I;16B", (2, 2), GRAY_16.astype(">u2").tobytes()).save(path)
    assert opened(path)[0] == "I;16B"
    np.testing.assert_allclose(gray(load_image(path)), GRAY_16 / 65535.0, rtol=1e-6)


def test_mode_I_and_F_tiff(tmp_path: Path) -> None:
    path_i = tmp_path / "i32.tif"
    Image.fromarray(GRAY_16.astype(np.int32), mode="I").save(path_i)
    assert opened(path_i)[0] == "I"
    np.testing.assert_allclose(gray(load_image(path_i)), GRAY_16 / 65535.0, rtol=1e-6)
    path_f = tmp_path / "f32.tif"
    Image.fromarray(np.array([[0.25, 2.0]], np.float32), mode="F").save(path_f)
    np.testing.assert_allclose(gray(load_image(path_f)), [[0.25, 1.0]])


def test_16bit_rgb_png_is_scaled_by_65535(tmp_path: Path) -> None:
    path = tmp_path / "rgb16.png"
    pixels = np.array([[[65535, 0, 30000], [257 * 7, 40000, 12345]]], dtype=np.uint16)
    write_png_rgb16(path, pixels)
    t = load_image(path)
    assert t.shape == (3, 1, 2)
    # Pillow decodes 16-bit colour PNGs at 8-bit precision; the scale must still be right
    np.testing.assert_allclose(t.permute(1, 2, 0).numpy(), pixels / 65535.0, atol=1 / 255)
    assert t.max() == 1.0


# ---- EXIF orientation ------------------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)  # H=20, W=40: left half red, right half blue
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes(), quality=95)
    t = load_image(path)
    assert t.shape == (3, 40, 20)
    np.testing.assert_allclose(t[:, 5, 10], [1.0, 0.0, 0.0], atol=0.1)  # top is the stored left (red)
    np.testing.assert_allclose(t[:, 35, 10], [0.0, 0.0, 1.0], atol=0.1)


# ---- errors ----------------------------------------------------------------------------------------------


def test_truncated_jpeg(tmp_path: Path) -> None:
    full = tmp_path / "full.jpg"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(full)
    data = full.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated image"):
        load_image(cut)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # no global Pillow setting was toggled


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        load_image(path)


def test_empty_missing_and_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png: the file is empty"):
        load_image(empty)
    with pytest.raises(ImageError, match=r"missing\.png: no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_max_pixels_guard(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 80)).save(path)
    message = r"big\.png: the image has 100×80 = 8,000 pixels, more than the limit of 5,000"
    with pytest.raises(ImageError, match=message):
        load_image(path, max_pixels=5000)
    with pytest.raises(ImageError, match="the resized image would have"):
        load_image(path, size=(1000, 1000), max_pixels=100_000)
    assert load_image(path, max_pixels=None).shape == (3, 80, 100)


def test_decompression_bomb_becomes_image_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)  # claims 400 Mpx: over Pillow's limit
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )
    with pytest.raises(ImageError, match=r"bomb\.png: rejected by Pillow's decompression-bomb guard"):
        load_image(path, max_pixels=None)
    with pytest.raises(ImageError, match="decompression-bomb"):
        load_image(path)  # Pillow refuses it while opening, before any of our checks


def test_image_too_small_for_relu4_1(tmp_path: Path, vgg: torch.nn.Module) -> None:
    path = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4), (10, 20, 30)).save(path)
    with pytest.raises(ImageTooSmallError, match=r"tiny\.png: image of 4×4 pixels.*'relu4_1'.*8×8"):
        load_image(path, encoder=vgg, layers=["relu1_1", "relu4_1"])
    with pytest.raises(ImageTooSmallError, match="relu5_1"):
        load_image(path, encoder=vgg)  # all layers: the deepest decides
    assert load_image(path, encoder=vgg, layers="relu3_1").shape == (3, 4, 4)
    assert load_image(path, size=8, encoder=vgg, layers="relu4_1").shape == (3, 8, 8)
    with pytest.raises(ImageTooSmallError):
        check_image_size((16, 7), vgg, "relu4_1")
    check_image_size(torch.zeros(1, 3, 8, 9), vgg, "relu4_1")


# ---- resizing --------------------------------------------------------------------------------------------


def test_target_sizes() -> None:
    assert target_size(40, 80, 20) == (20, 40)  # shorter side
    assert target_size(40, 80, longer_side=20) == (10, 20)
    assert target_size(40, 80, (7, 9)) == (7, 9)
    assert target_size(40, 80) == (40, 80)
    assert target_size(3, 1000, 1) == (1, 333)
    with pytest.raises(ValueError, match="not both"):
        target_size(40, 80, 20, longer_side=20)
    for bad in (0, -3, True, 2.5, "64", (1, 2, 3), (0, 5)):
        with pytest.raises(ValueError):
            target_size(40, 80, bad)  # type: ignore[arg-type]


def test_load_with_resizing(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (80, 40), (255, 128, 0)).save(path)
    assert load_image(path, 20).shape == (3, 20, 40)
    assert load_image(path, longer_side=20).shape == (3, 10, 20)
    assert load_image(path, (33, 17)).shape == (3, 33, 17)
    up = load_image(path, 100, interpolation="bilinear")
    assert up.shape == (3, 100, 200)
    np.testing.assert_allclose(up[:, 50, 100], [1.0, 128 / 255, 0.0], atol=1e-5)


def test_downscaling_is_antialiased() -> None:
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2
    image = checker.float().expand(3, 64, 64)
    small = resize_image(image, 8)
    assert small.shape == (3, 8, 8)
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.05)  # aliasing would give 0s and 1s
    batch = resize_image(image[None].repeat(2, 1, 1, 1), (5, 6), interpolation="bilinear")
    assert batch.shape == (2, 3, 5, 6) and batch.min() >= 0 and batch.max() <= 1


# ---- saving ----------------------------------------------------------------------------------------------


def test_save_png_round_trip_and_parent_folders(tmp_path: Path) -> None:
    image = torch.randint(0, 256, (3, 9, 13)).float() / 255.0
    path = save_image(image, tmp_path / "a" / "b" / "out.png")
    assert path.is_file()
    torch.testing.assert_close(load_image(path), image, rtol=0, atol=1e-6)


def test_save_clamps_and_accepts_batch_of_one_and_gray(tmp_path: Path) -> None:
    image = torch.tensor([-1.0, 0.5, 2.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    back = load_image(save_image(image, tmp_path / "clamped.png"))
    np.testing.assert_allclose(back[:, 0, 0], [0.0, 128 / 255, 1.0])
    g = load_image(save_image(torch.full((4, 5), 0.2), tmp_path / "gray.png"))
    assert g.shape == (3, 4, 5)


def test_save_jpeg(tmp_path: Path) -> None:
    image = torch.rand(3, 1, 1).expand(3, 16, 16).contiguous()
    back = load_image(save_image(image, tmp_path / "out.jpg"))
    assert back.shape == (3, 16, 16)
    assert (back - image).abs().max() < 0.05


def test_save_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="shape"):
        save_image(torch.rand(2, 3, 4, 4), tmp_path / "x.png")
    with pytest.raises(ImageError, match="NaN"):
        save_image(torch.full((3, 4, 4), float("nan")), tmp_path / "x.png")
    with pytest.raises(ImageError, match="suffix"):
        save_image(torch.rand(3, 4, 4), tmp_path / "x.unknown")
    assert not (tmp_path / "x.png").exists()


# ---- folders ---------------------------------------------------------------------------------------------


def test_list_images_recursive_with_warnings(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "sub" / "a.JPG", format="JPEG")
    Image.new("L", (4, 4)).save(tmp_path / "sub" / "deeper" / "c.tif")
    Image.new("RGB", (4, 4)).save(tmp_path / ".cache" / "hidden.png")
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "sub" / "fake.jpg").write_text("not an image")
    (tmp_path / "sub" / "empty.png").write_bytes(b"")
    with pytest.warns(SkippedFileWarning) as record:
        images = list_images(tmp_path)
    assert images == [tmp_path / "b.png", tmp_path / "sub" / "a.JPG", tmp_path / "sub" / "deeper" / "c.tif"]
    messages = {str(w.message).split(":")[0].removeprefix("skipping "): str(w.message) for w in record}
    assert len(record) == 3
    skipped = [tmp_path / "readme.txt", tmp_path / "sub" / "empty.png", tmp_path / "sub" / "fake.jpg"]
    assert sorted(messages) == sorted(str(p) for p in skipped)
    assert "suffix '.txt'" in messages[str(skipped[0])]
    assert "empty file" in messages[str(skipped[1])]
    assert "not a recognised image format" in messages[str(skipped[2])]


def test_list_images_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such folder"):
        list_images(tmp_path / "missing")
    file = tmp_path / "one.png"
    Image.new("RGB", (2, 2)).save(file)
    with pytest.raises(ImageError, match="not a folder"):
        list_images(file)


# ---- the paper's images ----------------------------------------------------------------------------------


def test_paper_images_all_load(paper_images) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        files = [f for folder in paper_images for f in list_images(folder)]
    assert len(list_images(paper_images.content)) == 11
    assert len(files) == 11 + 20 + 1
    for path in files:
        t = load_image(path, 32)
        assert t.dim() == 3 and t.shape[0] == 3 and min(t.shape[1:]) == 32, path
        assert t.min() >= 0 and t.max() <= 1 and torch.isfinite(t).all(), path
