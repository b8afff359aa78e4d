"""adain.evaluation (colour statistics vs styles, checkerboard and border checks) and the bootstrap median."""

from __future__ import annotations

import statistics

import pytest
import torch

from adain.evaluation import border_step, checkerboard_prominence, colour_check, colour_stats
from experiments.default_model_report import gatys_subset
from experiments.intervals import bootstrap_median


def _smooth(h: int, w: int, seed: int) -> torch.Tensor:
    """A smooth random image ``[3, h, w]`` in [0, 1] (bilinear upsampling of coarse noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]


def test_colour_stats_are_channel_means_and_stds() -> None:
    image = torch.zeros(3, 4, 4)
    image[0] = 1.0
    image[2, :2] = 1.0  # half the pixels: mean 0.5, std 0.5
    stats = colour_stats(image)
    assert torch.allclose(stats, torch.tensor([1.0, 0.0, 0.5, 0.0, 0.0, 0.5], dtype=torch.float64))
    assert colour_stats(torch.rand(2, 5, 3, 8, 8)).shape == (2, 5, 6)
    with pytest.raises(ValueError, match="3, H, W"):
        colour_stats(torch.rand(4, 8, 8))


def test_colour_check_tells_outputs_that_follow_their_styles_from_ones_that_do_not() -> None:
    g = torch.Generator().manual_seed(0)
    styles = torch.rand(4, 6, generator=g, dtype=torch.float64)
    following = styles.expand(3, 4, 6) + 0.01 * torch.randn(3, 4, 6, generator=g, dtype=torch.float64)
    check = colour_check(following, styles)
    assert check.nearest_own.all() and torch.all(check.own < check.others)
    assert torch.allclose(check.spread, torch.full((3,), check.style_spread, dtype=torch.float64), rtol=0.1)
    assert check.own_fraction().tolist() == [1.0] * 4
    same = styles[0].expand(3, 4, 6)  # every style gives style 0's colours
    check = colour_check(same, styles)
    assert check.own_fraction().tolist() == [1.0, 0.0, 0.0, 0.0]
    assert torch.all(check.spread == 0) and check.style_spread > 0
    assert torch.allclose(check.distance[0, 1], torch.linalg.vector_norm(styles[0] - styles, dim=-1))
    with pytest.raises(ValueError, match="at least two styles"):
        colour_check(torch.rand(2, 1, 6), torch.rand(1, 6))


def test_checkerboard_prominence_is_low_for_clean_images_and_high_with_a_2px_pattern() -> None:
    for seed in range(3):
        clean = _smooth(96, 128, seed)
        noise = torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(seed))
        board = ((torch.arange(96)[:, None] + torch.arange(128)[None]) % 2).float() * 0.06 - 0.03
        assert checkerboard_prominence(clean) < 2 and checkerboard_prominence(noise) < 2
        assert checkerboard_prominence((clean + board).clamp(0, 1)) > 20
        assert checkerboard_prominence((noise + board).clamp(0, 1)) > 3
        period4 = (((torch.arange(96)[:, None] // 2) + (torch.arange(128)[None] // 2)) % 2).float() * 0.06
        assert checkerboard_prominence((clean + period4).clamp(0, 1), periods=(4,)) > 20
    with pytest.raises(ValueError, match="too small"):
        checkerboard_prominence(torch.rand(3, 16, 16))


def test_border_step_is_low_for_clean_images_and_high_with_a_dark_border() -> None:
    clean = _smooth(64, 80, 1)
    framed = clean.clone()
    framed[:, :3], framed[:, -3:], framed[:, :, :3], framed[:, :, -3:] = 0, 0, 0, 0
    assert border_step(clean) < 0.06
    assert border_step(framed) > 0.15
    one_side = clean.clone()
    one_side[:, :, -4:] *= 0.3
    assert border_step(one_side) > 0.05
    half = torch.full((3, 64, 64), 0.5)  # a top band dark on the left, bright on the right: its mean is 0.5
    half[:, :4, :32], half[:, :4, 32:] = 0.0, 1.0
    assert border_step(half) == pytest.approx(0.5 / 4)  # profiles along the edge, not band means
    with pytest.raises(ValueError, match="band"):
        border_step(clean, band=0)


def test_bootstrap_median_brackets_the_median_and_is_seeded() -> None:
    values = [float(v) for v in torch.rand(40, generator=torch.Generator().manual_seed(3))]
    m = bootstrap_median(values, resamples=500, seed=1)
    assert m.median == pytest.approx(statistics.median(values))
    assert m.low < m.median < m.high and m.n == 40
    assert bootstrap_median(values, resamples=500, seed=1) == m
    assert bootstrap_median([2.0] * 5).low == 2.0
    with pytest.raises(ValueError):
        bootstrap_median([])


def test_gatys_subset_spreads_over_styles_without_repeats() -> None:
    assert gatys_subset(11, 8, 8) == [(i, i) for i in range(8)]
    assert [s for _, s in gatys_subset(3, 2, 4)] == [0, 1, 0, 1]
    full = gatys_subset(4, 2, 8)
    assert len(set(full)) == 8
    with pytest.raises(ValueError, match="gatys_pairs"):
        gatys_subset(2, 2, 5)


def test_bootstrap_mean_of_outcomes_is_the_fraction() -> None:
    """A fraction of 0/1 outcomes is bootstrapped as a mean (its median would be 0 or 1)."""
    from experiments.intervals import bootstrap_median

    result = bootstrap_median([0, 0, 1, 1, 1], resamples=500, statistic="mean")
    assert result.median == pytest.approx(0.6)
    assert 0 <= result.low < 0.6 < result.high <= 1
    with pytest.raises(ValueError, match="statistic"):
        bootstrap_median([1.0], statistic="mode")


@pytest.mark.parametrize("value", [-1, 5, 1.5, True])
def test_report_refuses_bad_gatys_pairs_before_writing(tmp_path, write_random_images, value) -> None:
    from adain.errors import AdainError
    from experiments.default_model_report import run_report

    write_random_images(tmp_path / "paper" / "content", 2, 5)
    write_random_images(tmp_path / "work" / "heldout_style", 2, 6)
    config = {
        "data": {"paper": str(tmp_path / "paper"), "work": str(tmp_path / "work")},
        "report": {"gatys_pairs": value},
    }
    with pytest.raises(AdainError, match=r"gatys_pairs is .*must be an integer in \[0, 4\].*0: no Gatys"):
        run_report(config, tmp_path / "model.pth", tmp_path / "out")
    assert not (tmp_path / "out").exists()
