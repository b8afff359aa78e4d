"""Tests of :mod:`adain.ops`: statistics, AdaIN, interpolation / trade-off / masks, colour preservation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adain.ops import (
    StyleStats,
    adain_from_stats,
    adaptive_instance_norm,
    calc_mean_std,
    gray_to_rgb,
    interpolate_style_stats,
    luminance_only_inputs,
    masked_mean_std,
    match_color,
    match_luminance,
    normalize_style_weights,
    resize_masks,
    rgb_to_luminance,
    rgb_to_yiq,
    style_stats,
    style_transfer_features,
    transfer_luminance,
    yiq_to_rgb,
)

EPS = 1e-5
FAST = settings(max_examples=25, deadline=None)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _feat(b: int, c: int, h: int, w: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """float64 features with per-channel scales/shifts so that channels differ."""
    g = _gen(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    ch_scale = torch.rand(1, c, 1, 1, generator=g, dtype=torch.float64) * 2 + 0.5
    ch_shift = torch.randn(1, c, 1, 1, generator=g, dtype=torch.float64)
    return x * ch_scale * scale + ch_shift + shift


def _port_mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """The public PyTorch port's convention, written independently: unbiased var + eps."""
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    return flat.mean(2).view(n, c, 1, 1), (flat.var(2) + eps).sqrt().view(n, c, 1, 1)


def _region_adain(content: torch.Tensor, region: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Lua spatial control for one region (boolean ``[H, W]``): gather the region's positions, AdaIN them
    with the whole style, return the values at those positions ``[B, C, n]``."""
    b, c = content.shape[:2]
    gathered = content.reshape(b, c, -1)[:, :, region.flatten()]
    out = adaptive_instance_norm(gathered.unsqueeze(-1), style)
    return out.squeeze(-1)


# --------------------------------------------------------------------------------------- statistics


def test_calc_mean_std_follows_the_public_port() -> None:
    x = _feat(2, 5, 6, 7, seed=0)
    mean, std = calc_mean_std(x)
    ref_mean, ref_std = _port_mean_std(x)
    assert mean.shape == std.shape == (2, 5, 1, 1)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(std, ref_std)
    _, std_b = calc_mean_std(x, unbiased=False)
    torch.testing.assert_close(
        std_b, (x.reshape(2, 5, -1).var(2, unbiased=False) + EPS).sqrt().view(2, 5, 1, 1)
    )


def test_calc_mean_std_rejects_bad_shapes_and_upcasts_half() -> None:
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        calc_mean_std(torch.zeros(3, 4, 5))
    mean, std = calc_mean_std(torch.randn(1, 3, 4, 4).to(torch.bfloat16))
    assert mean.dtype == std.dtype == torch.float32


def test_masked_mean_std_reduces_to_calc_mean_std() -> None:
    x = _feat(2, 4, 6, 5, seed=1)
    ones = torch.ones(6, 5, dtype=torch.float64)
    for unbiased in (True, False):
        got = masked_mean_std(x, ones, unbiased=unbiased)
        ref = calc_mean_std(x, unbiased=unbiased)
        torch.testing.assert_close(got[0], ref[0])
        torch.testing.assert_close(got[1], ref[1])
    # A binary mask: the statistics of the selected positions only; scaling the mask changes nothing.
    region = torch.rand(6, 5, generator=_gen(2)) > 0.4
    selected = x.reshape(2, 4, -1)[:, :, region.flatten()].unsqueeze(-1)
    ref = calc_mean_std(selected)
    for scale in (1.0, 0.3):
        got = masked_mean_std(x, region.double() * scale)
        torch.testing.assert_close(got[0], ref[0])
        torch.testing.assert_close(got[1], ref[1])


def test_masked_mean_std_degenerate_masks_are_finite() -> None:
    x = _feat(1, 3, 4, 4, seed=3).requires_grad_()
    empty = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    single = torch.zeros(4, 4, dtype=torch.float64)
    single[1, 2] = 1.0
    mean, std = masked_mean_std(x, empty)
    assert torch.equal(mean, torch.zeros_like(mean))
    torch.testing.assert_close(std, torch.full_like(std, EPS**0.5))
    (mean.sum() + std.sum()).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(empty.grad).all()
    mean, std = masked_mean_std(x, single)  # one position: biased fallback, variance 0
    torch.testing.assert_close(mean, x[:, :, 1:2, 2:3])
    torch.testing.assert_close(std, torch.full_like(std, EPS**0.5))


# --------------------------------------------------------------------------------------------- AdaIN


@FAST
@given(
    b=st.integers(1, 3),
    c=st.integers(1, 6),
    hc=st.integers(2, 9),
    wc=st.integers(2, 9),
    hs=st.integers(2, 9),
    ws=st.integers(2, 9),
    style_batch_one=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_adain_output_has_the_style_statistics(
    b: int, c: int, hc: int, wc: int, hs: int, ws: int, style_batch_one: bool, seed: int
) -> None:
    content = _feat(b, c, hc, wc, seed)
    style = _feat(1 if style_batch_one else b, c, hs, ws, seed + 1, scale=3.0, shift=2.0)
    out = adaptive_instance_norm(content, style)
    assert out.shape == content.shape and out.dtype == content.dtype
    s_mean, s_std = calc_mean_std(style)
    _, c_std = calc_mean_std(content)
    o_mean, _ = calc_mean_std(out)
    torch.testing.assert_close(o_mean, s_mean.expand_as(o_mean), atol=1e-9, rtol=1e-9)
    # Exactly (unbiased convention, eps on both sides): var(out) = σ_s² · var(x) / (var(x) + eps).
    c_var = c_std.square() - EPS
    o_var = out.reshape(b, c, -1).var(2).view(b, c, 1, 1)
    torch.testing.assert_close(o_var, s_std.square() * c_var / (c_var + EPS), atol=1e-9, rtol=1e-9)
    # And the port's formula, written independently.
    pm, ps = _port_mean_std(content)
    sm, ss = _port_mean_std(style)
    torch.testing.assert_close(out, (content - pm) / ps * ss + sm)


def test_adain_std_is_the_styles_for_non_flat_features() -> None:
    content = _feat(2, 8, 16, 16, seed=4, scale=2.0)
    style = _feat(2, 8, 12, 20, seed=5, scale=5.0, shift=3.0)
    _, o_std = calc_mean_std(adaptive_instance_norm(content, style))
    _, s_std = calc_mean_std(style)
    torch.testing.assert_close(o_std, s_std, rtol=1e-5, atol=1e-6)


def test_adain_shape_errors() -> None:
    content = torch.randn(2, 4, 5, 5)
    with pytest.raises(ValueError, match="batch size 3"):
        adaptive_instance_norm(content, torch.randn(3, 4, 5, 5))
    with pytest.raises(ValueError, match="channels"):
        adaptive_instance_norm(content, torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        adaptive_instance_norm(content, torch.randn(4, 5, 5))


@pytest.mark.parametrize("flat", ["content", "style", "both"])
def test_flat_features_give_finite_output_and_gradients(flat: str) -> None:
    content = _feat(2, 3, 6, 6, seed=6)
    style = _feat(1, 3, 5, 7, seed=7)
    if flat in ("content", "both"):
        content = torch.full_like(content, 0.7)
    if flat in ("style", "both"):
        style = torch.full_like(style, -1.3)
    content.requires_grad_()
    style.requires_grad_()
    masks = torch.stack([torch.ones(12, 12), torch.zeros(12, 12)]).double()
    masks[0, :6] = 0.4
    outs = [
        adaptive_instance_norm(content, style),
        style_transfer_features(content, [style, style * 2], weights=[0.3, 0.7], alpha=0.5),
        style_transfer_features(content, [style, style * 2], masks=masks),
    ]
    for out in outs:
        assert torch.isfinite(out).all()
        content.grad = style.grad = None
        (out * torch.randn_like(out)).sum().backward()
        assert torch.isfinite(content.grad).all() and torch.isfinite(style.grad).all()
    if flat in ("content", "both"):  # a flat content becomes the style's mean
        s_mean, _ = calc_mean_std(style.detach())
        torch.testing.assert_close(outs[0].detach(), s_mean.expand_as(outs[0]))


def test_float32_matches_float64() -> None:
    content = _feat(2, 16, 20, 20, seed=18, scale=4.0, shift=10.0)
    style = _feat(1, 16, 9, 30, seed=19, scale=0.1, shift=-3.0)
    masks = torch.rand(2, 20, 20, generator=_gen(19), dtype=torch.float64)
    for kwargs in ({}, {"alpha": 0.3}, {"masks": masks}):
        ref = style_transfer_features(content, [style, style * 3], **kwargs)
        out = style_transfer_features(content.float(), [style.float(), style.float() * 3], **kwargs)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_reduced_precision_input_keeps_its_dtype() -> None:
    content = torch.randn(1, 16, 12, 12, generator=_gen(8))
    style = torch.randn(1, 16, 9, 9, generator=_gen(9)) * 2 + 1
    ref = adaptive_instance_norm(content, style)
    out = adaptive_instance_norm(content.bfloat16(), style.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


# ------------------------------------------------------------------------ interpolation and alpha


def test_alpha_zero_returns_the_content_exactly() -> None:
    content = _feat(2, 4, 5, 6, seed=10)
    styles = [_feat(1, 4, 7, 3, seed=11), _feat(1, 4, 4, 9, seed=12)]
    masks = torch.rand(2, 10, 12, generator=_gen(13)).double()
    for kwargs in ({}, {"weights": [2.0, 1.0]}, {"masks": masks}):
        out = style_transfer_features(content, styles, alpha=0.0, **kwargs)
        assert torch.equal(out, content) and out is not content


@FAST
@given(alpha=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_alpha_interpolates_between_content_and_adain(alpha: float, seed: int) -> None:
    content = _feat(2, 3, 5, 4, seed)
    style = _feat(1, 3, 6, 6, seed + 1, scale=2.0)
    out = style_transfer_features(content, style, alpha=alpha)
    expected = alpha * adaptive_instance_norm(content, style) + (1 - alpha) * content
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_out_of_range(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        style_transfer_features(torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3), alpha=alpha)


def test_single_style_is_adain() -> None:
    content = _feat(2, 4, 6, 6, seed=14)
    style = _feat(2, 4, 3, 8, seed=15)
    torch.testing.assert_close(
        style_transfer_features(content, style), adaptive_instance_norm(content, style)
    )
    torch.testing.assert_close(
        style_transfer_features(content, [style_stats(style)]), adaptive_instance_norm(content, style)
    )


@FAST
@given(w=st.floats(-1.0, 2.0), alpha=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_interpolation_is_linear_in_the_weights(w: float, alpha: float, seed: int) -> None:
    # Content and styles all of different sizes.
    content = _feat(2, 5, 7, 9, seed)
    style_a = _feat(1, 5, 4, 11, seed + 1, scale=2.0, shift=1.0)
    style_b = _feat(2, 5, 13, 6, seed + 2, scale=0.5, shift=-1.0)
    out = style_transfer_features(content, [style_a, style_b], weights=[w, 1 - w], alpha=alpha)
    out_a = style_transfer_features(content, style_a, alpha=alpha)
    out_b = style_transfer_features(content, style_b, alpha=alpha)
    torch.testing.assert_close(out, w * out_a + (1 - w) * out_b)
    # ... and equals one AdaIN with the linearly blended statistics.
    blended = interpolate_style_stats([style_stats(style_a), style_stats(style_b)], [w, 1 - w])
    expected = alpha * adain_from_stats(content, *blended) + (1 - alpha) * content
    torch.testing.assert_close(out, expected)


def test_interpolation_of_three_styles_and_weight_normalisation() -> None:
    content = _feat(1, 4, 8, 8, seed=16)
    styles = [_feat(1, 4, 3 + i, 5 + 2 * i, seed=17 + i, scale=1.0 + i) for i in range(3)]
    singles = [adaptive_instance_norm(content, s) for s in styles]
    raw = [2.0, 1.0, 5.0]
    expected = sum(r / 8.0 * o for r, o in zip(raw, singles, strict=True))
    for weights in (raw, [0.25, 0.125, 0.625], torch.tensor(raw) * 3):
        torch.testing.assert_close(style_transfer_features(content, styles, weights=weights), expected)
    # Default weights are equal.
    torch.testing.assert_close(style_transfer_features(content, styles), sum(singles) / 3)
    # Precomputed statistics give the same result as features.
    torch.testing.assert_close(
        style_transfer_features(content, [style_stats(s) for s in styles], weights=raw), expected
    )


def test_normalize_style_weights() -> None:
    torch.testing.assert_close(
        normalize_style_weights([1, 3], 2), torch.tensor([0.25, 0.75], dtype=torch.float64)
    )
    torch.testing.assert_close(
        normalize_style_weights([1.5, -0.5], 2), torch.tensor([1.5, -0.5], dtype=torch.float64)
    )
    w = torch.tensor([1.0, 1.0], requires_grad=True)
    normalize_style_weights(w, 2)[0].backward()  # a tensor keeps its graph
    assert w.grad is not None
    with pytest.raises(ValueError, match="sum to zero"):
        normalize_style_weights([1.0, -1.0], 2)
    with pytest.raises(ValueError, match="sum to zero"):
        normalize_style_weights([0.0, 0.0], 2)
    with pytest.raises(ValueError, match="2 style weight"):
        normalize_style_weights([1.0], 2)
    with pytest.raises(ValueError, match="finite"):
        normalize_style_weights([1.0, float("inf")], 2)
    with pytest.raises(ValueError, match="sum to zero"):
        style_transfer_features(torch.randn(1, 2, 3, 3), [torch.randn(1, 2, 3, 3)] * 2, weights=[2, -2])


def test_style_input_errors() -> None:
    content = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="at least one style"):
        style_transfer_features(content, [])
    with pytest.raises(ValueError, match="style 1"):
        style_transfer_features(content, [torch.randn(1, 3, 4, 4), torch.randn(1, 5, 4, 4)])
    with pytest.raises(ValueError, match="style 0"):
        style_transfer_features(content, StyleStats(torch.zeros(1, 3), torch.ones(1, 3)))


# ------------------------------------------------------------------------------------------- masks


def test_all_ones_mask_reproduces_single_style_adain() -> None:
    content = _feat(2, 4, 6, 7, seed=20)
    style = _feat(1, 4, 9, 5, seed=21, scale=2.0)
    for mask in (torch.ones(1, 6, 7), torch.ones(1, 48, 56), torch.ones(2, 1, 3, 3, dtype=torch.bool)):
        out = style_transfer_features(content, style, masks=mask)
        torch.testing.assert_close(out, adaptive_instance_norm(content, style))


def test_all_ones_masks_with_weights_are_plain_interpolation() -> None:
    content = _feat(1, 3, 6, 6, seed=22)
    styles = [_feat(1, 3, 5, 5, seed=23), _feat(1, 3, 8, 4, seed=24, scale=3.0)]
    ones = torch.ones(2, 6, 6)
    interp = style_transfer_features(content, styles, weights=[0.7, 0.3])
    torch.testing.assert_close(
        style_transfer_features(content, styles, weights=[0.7, 0.3], masks=ones), interp
    )
    # Overlapping masks summing to 2 are normalised: equal shares.
    torch.testing.assert_close(
        style_transfer_features(content, styles, masks=ones), style_transfer_features(content, styles)
    )


@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_complementary_binary_masks_reproduce_the_lua_spatial_control(alpha: float) -> None:
    content = _feat(2, 5, 6, 8, seed=25)
    fg_style = _feat(1, 5, 7, 7, seed=26, scale=3.0, shift=2.0)
    bg_style = _feat(1, 5, 4, 10, seed=27, scale=0.5, shift=-1.0)
    fg = torch.rand(6, 8, generator=_gen(28)) > 0.5
    # The mask is given at 4× the feature resolution (each feature position a 4×4 block): nearest
    # neighbour brings it back exactly.
    mask_hr = fg.repeat_interleave(4, 0).repeat_interleave(4, 1).float()
    out = style_transfer_features(content, [fg_style, bg_style], masks=[mask_hr, 1 - mask_hr], alpha=alpha)
    flat_out = out.reshape(2, 5, -1)
    flat_content = content.reshape(2, 5, -1)
    for region, style in ((fg, fg_style), (~fg, bg_style)):
        idx = region.flatten()
        expected = alpha * _region_adain(content, region, style) + (1 - alpha) * flat_content[:, :, idx]
        torch.testing.assert_close(flat_out[:, :, idx], expected)


def test_uncovered_positions_keep_the_content() -> None:
    content = _feat(1, 3, 6, 6, seed=29)
    styles = [_feat(1, 3, 5, 5, seed=30), _feat(1, 3, 5, 5, seed=31)]
    masks = torch.zeros(2, 6, 6)
    masks[0, :2] = 1.0
    masks[1, 2:4] = 0.8
    out = style_transfer_features(content, styles, masks=masks)
    assert torch.equal(out[:, :, 4:], content[:, :, 4:])
    assert not torch.allclose(out[:, :, :4], content[:, :, :4])
    # A style whose mask is empty has no effect and causes no NaN.
    masks[1] = 0.0
    out = style_transfer_features(content, styles, masks=masks)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(
        out[:, :, :2], _region_adain(content, masks[0] > 0, styles[0]).view(1, 3, 2, 6)
    )


def test_uniform_soft_mask_blends_with_the_content() -> None:
    content = _feat(2, 4, 5, 5, seed=32)
    style = _feat(1, 4, 6, 3, seed=33)
    out = style_transfer_features(content, style, masks=torch.full((1, 5, 5), 0.25))
    torch.testing.assert_close(out, 0.25 * adaptive_instance_norm(content, style) + 0.75 * content)


@FAST
@given(seed=st.integers(0, 2**16), hm=st.integers(1, 40), wm=st.integers(1, 40))
def test_soft_masks_mix_the_region_stylisations(seed: int, hm: int, wm: int) -> None:
    content = _feat(2, 3, 6, 7, seed)
    styles = [_feat(1, 3, 4, 9, seed + 1, scale=2.0), _feat(2, 3, 8, 5, seed + 2, shift=1.0)]
    soft = torch.rand(1, hm, wm, generator=_gen(seed + 3), dtype=torch.float64)
    masks = torch.cat([soft, 1 - soft])  # any resolution; sum to 1
    out = style_transfer_features(content, styles, masks=masks, mask_interpolation="bilinear")
    assert out.shape == content.shape and torch.isfinite(out).all()
    m = resize_masks(masks, (6, 7), mode="bilinear")
    parts = []
    for k in range(2):
        c_mean, c_std = masked_mean_std(content, m[:, k : k + 1])
        s_mean, s_std = calc_mean_std(styles[k])
        parts.append((content - c_mean) / c_std * s_std + s_mean)
    torch.testing.assert_close(out, m[:, :1] * parts[0] + m[:, 1:] * parts[1])
    lo, hi = torch.minimum(*parts), torch.maximum(*parts)
    assert ((out >= lo - 1e-9) & (out <= hi + 1e-9)).all()


def test_soft_masks_are_differentiable() -> None:
    content = _feat(1, 3, 5, 5, seed=34).requires_grad_()
    style = _feat(1, 3, 4, 4, seed=35).requires_grad_()
    masks = torch.rand(2, 9, 9, generator=_gen(36), dtype=torch.float64)
    masks[1, :4] = 0.0
    masks.requires_grad_()
    out = style_transfer_features(
        content, [style, style.flip(-1) * 2], masks=masks, mask_interpolation="area"
    )
    out.square().sum().backward()
    for t in (content, style, masks):
        assert t.grad is not None and torch.isfinite(t.grad).all()


def test_mask_errors() -> None:
    content = torch.randn(2, 3, 4, 4)
    styles = [torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)]
    with pytest.raises(ValueError, match="1 mask"):
        style_transfer_features(content, styles, masks=torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        style_transfer_features(content, styles, masks=torch.full((2, 4, 4), 255.0))
    with pytest.raises(ValueError, match="non-negative"):
        style_transfer_features(content, styles, masks=torch.ones(2, 4, 4), weights=[1.5, -0.5])
    with pytest.raises(ValueError, match="batch size 3"):
        style_transfer_features(content, styles, masks=torch.ones(3, 2, 4, 4))
    with pytest.raises(ValueError, match="interpolation"):
        resize_masks(torch.ones(2, 4, 4), (2, 2), mode="bicubic")  # type: ignore[arg-type]


def test_resize_masks() -> None:
    binary = torch.zeros(16, 16, dtype=torch.bool)
    binary[:, :6] = True
    soft = torch.rand(5, 7, generator=_gen(37))
    out = resize_masks([binary, soft], (4, 4))
    assert out.shape == (1, 2, 4, 4) and out.dtype == torch.float32
    assert set(out[0, 0].unique().tolist()) <= {0.0, 1.0}  # nearest keeps binary masks binary
    area = resize_masks(binary.float()[None], (4, 4), mode="area")
    torch.testing.assert_close(area[0, 0, 0], torch.tensor([1.0, 0.5, 0.0, 0.0]))  # covered fraction
    bil = resize_masks(torch.rand(2, 3, 33, 17, generator=_gen(38)), (5, 6), mode="bilinear")
    assert bil.shape == (2, 3, 5, 6) and bil.min() >= 0 and bil.max() <= 1


# ----------------------------------------------------------------------------------------- colour


def _pixel_stats(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[3]`` and covariance ``[3, 3]`` of an image's pixels, divided by its own pixel count."""
    x = img.double().reshape(3, -1)
    xc = x - x.mean(1, keepdim=True)
    return x.mean(1), xc @ xc.T / x.shape[1]


def _random_image(h: int, w: int, seed: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """A correlated colour image in [lo, hi]."""
    g = _gen(seed)
    base = torch.rand(3, h, w, generator=g, dtype=torch.float64)
    mix = torch.eye(3, dtype=torch.float64) + 0.5 * torch.rand(3, 3, generator=g, dtype=torch.float64)
    img = torch.einsum("ij,jhw->ihw", mix / mix.sum(1, keepdim=True), base)
    return lo + (hi - lo) * img


@FAST
@given(sizes=st.lists(st.integers(2, 40), min_size=4, max_size=4), seed=st.integers(0, 2**16))
def test_match_color_matches_mean_and_covariance_across_sizes(sizes: list[int], seed: int) -> None:
    hs, ws, hc, wc = sizes
    style = _random_image(hs, ws, seed)
    content = _random_image(hc, wc, seed + 1)
    out = match_color(style, content, clamp=False)
    assert out.shape == style.shape and out.dtype == style.dtype
    mean, cov = _pixel_stats(out)
    c_mean, c_cov = _pixel_stats(content)
    torch.testing.assert_close(mean, c_mean, atol=1e-9, rtol=0)
    # The covariance matches exactly where the documented contract says so: every style colour direction
    # has variance above the eigenvalue floor (a 2x2 style can have one below it; see the test after).
    assume(torch.linalg.eigvalsh(_pixel_stats(style)[1]).min() >= 10 * 1e-5)
    torch.testing.assert_close(cov, c_cov, atol=1e-9, rtol=0)


def test_match_color_floors_near_flat_style_directions() -> None:
    # A 2x2 style (4 pixels) whose smallest colour variance (5.7e-8) is under the floor eps = 1e-5: that
    # direction is not blown up to the content's variance; the mean still matches and the output is finite.
    style, content = _random_image(2, 2, seed=52), _random_image(2, 2, seed=53)
    assert torch.linalg.eigvalsh(_pixel_stats(style)[1]).min() < 1e-5
    out = match_color(style, content, clamp=False)
    mean, cov = _pixel_stats(out)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(mean, _pixel_stats(content)[0], atol=1e-9, rtol=0)
    assert torch.linalg.eigvalsh(cov).min() < torch.linalg.eigvalsh(_pixel_stats(content)[1]).min()
    # With the floor lowered below that variance, the covariance is matched again.
    exact = match_color(style, content, eps=1e-9, clamp=False)
    torch.testing.assert_close(_pixel_stats(exact)[1], _pixel_stats(content)[1], atol=1e-9, rtol=0)


def test_match_color_float32_very_different_sizes_with_clamping() -> None:
    # Mid-range images: the recoloured style stays inside [0, 1], so clamping changes nothing.
    style = _random_image(64, 48, seed=40, lo=0.3, hi=0.6).float()
    content = _random_image(9, 13, seed=41, lo=0.35, hi=0.65).float()
    out = match_color(style, content)
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    mean, cov = _pixel_stats(out)
    c_mean, c_cov = _pixel_stats(content)
    torch.testing.assert_close(mean, c_mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(cov, c_cov, atol=1e-5, rtol=0)
    # A wide-range case gets clamped into [0, 1].
    wide = match_color(_random_image(8, 8, seed=42), _random_image(8, 8, seed=43) * 3 - 1)
    assert wide.min() >= 0 and wide.max() <= 1


def test_match_color_batched_with_broadcast_content() -> None:
    styles = torch.stack([_random_image(10, 12, seed=44 + i) for i in range(3)])
    content = _random_image(7, 5, seed=50)
    out = match_color(styles, content[None], clamp=False)
    assert out.shape == (3, 3, 10, 12)
    for i in range(3):
        torch.testing.assert_close(out[i], match_color(styles[i], content, clamp=False))
        torch.testing.assert_close(_pixel_stats(out[i])[1], _pixel_stats(content)[1])


def test_match_color_flat_images_are_finite() -> None:
    flat_style = torch.full((3, 8, 6), 0.4)
    content = _random_image(5, 9, seed=51).float()
    out = match_color(flat_style, content)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, _pixel_stats(content)[0].float().view(3, 1, 1).expand_as(out))
    flat_content = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1).expand(3, 7, 7)
    out = match_color(_random_image(6, 6, seed=52).float(), flat_content)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, flat_content[:, :6, :6], atol=1e-3, rtol=0)
    grey_style = torch.rand(1, 6, 6, generator=_gen(53)).expand(3, 6, 6)  # rank-1 covariance
    assert torch.isfinite(match_color(grey_style, content)).all()
    assert torch.isfinite(match_color(flat_style, flat_content)).all()


def test_colour_space_round_trip_and_luminance() -> None:
    img = _random_image(5, 6, seed=54)
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(img)), img)
    grey = torch.rand(2, 1, 4, 4, generator=_gen(55), dtype=torch.float64)
    rgb = gray_to_rgb(grey)
    assert rgb.shape == (2, 3, 4, 4)
    torch.testing.assert_close(rgb_to_luminance(rgb), grey)
    torch.testing.assert_close(rgb_to_yiq(rgb)[:, 1:], torch.zeros(2, 2, 4, 4, dtype=torch.float64))


def test_match_luminance_mean_std_across_sizes() -> None:
    style = _random_image(30, 20, seed=56, lo=0.1, hi=0.9)
    content = _random_image(7, 11, seed=57, lo=0.3, hi=0.6)
    y = match_luminance(style, content)
    assert y.shape == (1, 30, 20)
    yc = rgb_to_luminance(content)
    torch.testing.assert_close(y.mean(), yc.mean())
    torch.testing.assert_close(y.std(unbiased=False), yc.std(unbiased=False))
    # The map is affine and increasing: the ordering of the style's luminance is kept.
    ys = rgb_to_luminance(style)
    assert torch.equal(y.flatten().argsort(), ys.flatten().argsort())


def test_match_luminance_histogram() -> None:
    style = _random_image(6, 8, seed=58)
    content = _random_image(12, 4, seed=59)  # same pixel count, different shape
    y = match_luminance(style, content, method="histogram")
    yc = rgb_to_luminance(content)
    torch.testing.assert_close(y.flatten().sort().values, yc.flatten().sort().values)
    ys = rgb_to_luminance(style)
    assert torch.equal(y.flatten().argsort(), ys.flatten().argsort())
    # Different sizes: quantiles are interpolated, values stay within the content's range.
    y2 = match_luminance(_random_image(17, 3, seed=60), content, method="histogram")
    assert y2.min() >= yc.min() - 1e-12 and y2.max() <= yc.max() + 1e-12
    # Flat images: finite (a flat style maps to the content's median).
    flat = torch.full((3, 5, 5), 0.3, dtype=torch.float64)
    for method in ("mean_std", "histogram"):
        assert torch.isfinite(match_luminance(flat, content, method=method)).all()
        assert torch.isfinite(match_luminance(style, flat, method=method)).all()
    torch.testing.assert_close(
        match_luminance(flat, content, method="histogram"),
        yc.flatten().median().expand(1, 5, 5),
        atol=1e-3,
        rtol=0,
    )
    with pytest.raises(ValueError, match="method"):
        match_luminance(style, content, method="cdf")  # type: ignore[arg-type]


def test_luminance_only_transfer() -> None:
    content = _random_image(16, 12, seed=61, lo=0.35, hi=0.65)
    style = _random_image(9, 20, seed=62)
    content_gray, style_gray = luminance_only_inputs(content, style)
    assert content_gray.shape == content.shape and style_gray.shape == style.shape
    torch.testing.assert_close(rgb_to_luminance(content_gray), rgb_to_luminance(content))
    torch.testing.assert_close(rgb_to_yiq(style_gray)[1:], torch.zeros(2, 9, 20, dtype=torch.float64))
    # Stand-in for the network's output: some grey image of the content's size.
    stylized = gray_to_rgb(0.4 + 0.2 * torch.rand(1, 16, 12, generator=_gen(63), dtype=torch.float64))
    out = transfer_luminance(stylized, content)
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
    yiq = rgb_to_yiq(out)
    torch.testing.assert_close(yiq[:1], rgb_to_luminance(stylized))
    torch.testing.assert_close(yiq[1:], rgb_to_yiq(content)[1:])
    # A decoder output a few pixels off the content size: the chroma is resized.
    odd = transfer_luminance(stylized[:, :15, :11].unsqueeze(0), content)
    assert odd.shape == (1, 3, 15, 11) and torch.isfinite(odd).all()
    torch.testing.assert_close(rgb_to_luminance(odd)[0], rgb_to_luminance(stylized[:, :15, :11]))
