"""Style augmentation (adain.augment) and the training folder's augment/cache options."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from adain.augment import StyleAugment, random_scale_crop, rotate_hue, scale_saturation
from adain.data import ImageFolder


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_hue_rotation_keeps_luminance_and_full_turn_is_identity() -> None:
    image = torch.rand(3, 8, 9, generator=_gen(0)) * 0.5 + 0.25  # away from the clamp
    luminance = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    turned = rotate_hue(image, 1.0)
    torch.testing.assert_close((turned * luminance).sum(0), (image * luminance).sum(0), atol=1e-5, rtol=0)
    assert (turned - image).abs().max() > 0.01
    torch.testing.assert_close(rotate_hue(image, 2 * math.pi), image, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate_hue(rotate_hue(image, 0.7), -0.7), image, atol=1e-5, rtol=0)


def test_zero_saturation_is_grey() -> None:
    grey = scale_saturation(torch.rand(3, 5, 5, generator=_gen(1)), 0.0)
    torch.testing.assert_close(grey[0], grey[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(grey[1], grey[2], atol=1e-6, rtol=0)


def test_scale_crop_sizes_and_determinism() -> None:
    image = torch.rand(3, 100, 140, generator=_gen(2))
    a = random_scale_crop(image, 32, _gen(5))
    b = random_scale_crop(image, 32, _gen(5))
    assert a.shape == (3, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, random_scale_crop(image, 32, _gen(6)))
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    with pytest.raises(ValueError, match="cannot crop"):
        random_scale_crop(torch.rand(3, 20, 40), 32, _gen(0))


def test_scale_crop_draws_several_scales() -> None:
    """A 4× range of crop sides: smooth large-scale crops and sharp small-scale ones both occur."""
    stripes = (torch.arange(128) % 2).float().expand(3, 128, 128).contiguous()  # 1-pixel stripes
    contrasts = {round(float(random_scale_crop(stripes, 32, _gen(s)).std()), 2) for s in range(40)}
    assert max(contrasts) > 0.45 and min(contrasts) < 0.2


def test_style_augment_is_seeded_and_validated() -> None:
    image = torch.rand(3, 64, 64, generator=_gen(3))
    augment = StyleAugment(colour_p=1.0)
    assert torch.equal(augment(image, 32, _gen(9)), augment(image, 32, _gen(9)))
    with pytest.raises(ValueError, match="colour_p"):
        StyleAugment(colour_p=2.0)


def test_image_folder_with_augment_and_cache(tmp_path: Path, write_random_images) -> None:
    write_random_images(tmp_path / "imgs", 3, seed=0)
    plain = ImageFolder(tmp_path / "imgs", image_size=40, crop_size=24)
    cached = ImageFolder(tmp_path / "imgs", image_size=40, crop_size=24, cache=True)
    augmented = ImageFolder(
        tmp_path / "imgs", image_size=40, crop_size=24, augment=StyleAugment(), cache=True
    )
    for i in range(3):
        torch.testing.assert_close(cached[(i, 7)], plain[(i, 7)], atol=0.5 / 255, rtol=0)
        assert torch.equal(cached[(i, 7)], cached[(i, 7)])  # first (decoded) and second (cached) draw agree
        out = augmented[(i, 11)]
        assert out.shape == (3, 24, 24) and torch.equal(out, augmented[(i, 11)])
    assert len(cached._cache) == 3
