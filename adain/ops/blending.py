"""Style interpolation, content–style trade-off and spatial control on top of AdaIN.

The target features fed to the decoder are, for content features ``f`` (``[B, C, H, W]``) and styles
``k = 1..K`` with statistics ``(μ_k, σ_k)``::

    t = α · T + (1 − α) · f                                    (content–style trade-off, α in [0, 1])

where ``T`` is

* without masks (interpolation, as the Lua original): ``T = Σ_k w_k · AdaIN(f; μ_k, σ_k)`` with the
  weights normalised to sum 1. AdaIN is affine in the style statistics, so this *equals* a single
  AdaIN with the blended statistics ``μ = Σ w_k μ_k``, ``σ = Σ w_k σ_k`` (which is how it is computed:
  one pass over ``f``), and the output is affine in the weights: ``T(w) = Σ_k w_k T(e_k)``. Note that
  it is *not* AdaIN with the statistics of the pooled style features. Negative weights are accepted
  (extrapolation, e.g. ``(1.5, -0.5)``); they can make a blended ``σ`` negative (channel flipped) —
  no clamping, so linearity holds. Weights summing to 0 raise ``ValueError``.
* with masks (spatial control; one mask ``m_k`` per style, soft values in ``[0, 1]``): each style is
  applied with the content statistics *of its own region*, ``A_k = (f − μ_f[m_k]) / σ_f[m_k] · σ_k +
  μ_k`` where ``μ_f[m_k], σ_f[m_k]`` are the ``m_k``-weighted content statistics
  (:func:`~adain.ops.normalization.masked_mean_std`), and the results are mixed per position::

      S = Σ_k m_k,   c_k = min(S, 1) · w_k m_k / Σ_j w_j m_j,   T = Σ_k c_k A_k + (1 − Σ_k c_k) · f

  so masks summing to more than 1 are normalised, positions no mask covers (``S = 0``) keep the content
  features, and partially covered positions blend towards the content. Without weights this is
  ``c_k = m_k / max(S, 1)``; with weights (which must then be ≥ 0) they only decide the mix where masks
  overlap (all-ones masks + weights = plain interpolation). With binary complementary masks this is the
  Lua original's spatial control: in each region the content features are normalised by that region's
  statistics and given the region's style statistics. The Lua code takes one binary mask for two styles
  (foreground → first style, background → second): pass ``[mask, 1 − mask]``.

Masks come at any resolution and are resized to the feature resolution by :func:`resize_masks`
(default nearest neighbour, as the Lua original's ``image.scale(..., 'simple')``, which keeps binary
masks binary; ``"area"`` or ``"bilinear"`` (antialiased) give soft region borders).

Content and styles may have any sizes: only the styles' per-channel statistics enter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .normalization import (
    StyleStats,
    _check_features,
    _check_stats,
    _renormalize,
    _stat_dtype,
    calc_mean_std,
    masked_mean_std,
)

__all__ = [
    "MaskInterpolation",
    "StyleInput",
    "interpolate_style_stats",
    "normalize_style_weights",
    "resize_masks",
    "style_transfer_features",
]

MaskInterpolation = Literal["nearest", "nearest-exact", "area", "bilinear"]
StyleInput = Tensor | StyleStats
_MASK_MODES = ("nearest", "nearest-exact", "area", "bilinear")


def normalize_style_weights(weights: Sequence[float] | Tensor, num_styles: int) -> Tensor:
    """Interpolation weights divided by their sum.

    Args:
        weights: ``K`` real numbers (a sequence or a ``[K]`` tensor; a tensor keeps its dtype, device and
            autograd graph, a sequence becomes ``float64``). Negative values are allowed.
        num_styles: ``K``, the number of styles they weight.

    Returns:
        ``[K]``, summing to 1.

    Raises:
        ValueError: wrong count, non-finite values, or a sum of (numerically) zero.
    """
    if isinstance(weights, Tensor):
        w = weights
    else:
        w = torch.tensor([float(v) for v in weights], dtype=torch.float64)
    if not w.is_floating_point():
        w = w.to(torch.float64)
    if w.dim() != 1 or w.numel() != num_styles:
        raise ValueError(f"expected {num_styles} style weight(s), one per style; got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"style weights must be finite; got {w.detach().tolist()}")
    total = w.sum()
    if abs(float(total.detach())) <= 1e-6 * float(w.detach().abs().sum()):
        raise ValueError(
            f"style weights {w.detach().tolist()} sum to zero; they are normalised to sum 1, "
            "so their sum must be non-zero"
        )
    return w / total


def _mask_to_float(mask: Tensor) -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"masks must be torch.Tensors; got {type(mask).__name__}")
    if mask.dtype != torch.float64:
        mask = mask.to(torch.float32)
    if mask.numel() == 0:
        raise ValueError(f"empty mask of shape {tuple(mask.shape)}")
    if not bool(torch.isfinite(mask.detach()).all()):
        raise ValueError("masks must be finite")
    lo, hi = float(mask.detach().min()), float(mask.detach().max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"mask values must lie in [0, 1]; got [{lo:g}, {hi:g}] (divide 8-bit masks by 255)")
    return mask


def _resize(m: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    if mode == "bilinear":
        return F.interpolate(m, size=size, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(m, size=size, mode=mode)


def resize_masks(
    masks: Tensor | Sequence[Tensor],
    size: tuple[int, int],
    *,
    mode: MaskInterpolation = "nearest",
) -> Tensor:
    """Stack masks given at any resolution and resize them to the feature resolution ``size``.

    Args:
        masks: one mask per style, values in ``[0, 1]`` (bool and integer 0/1 masks are accepted):
            a ``[K, H, W]`` tensor shared by the batch, a ``[B_m, K, H, W]`` tensor (``B_m`` 1 or the
            content batch), a single ``[H, W]`` mask (``K = 1``), or a sequence of ``K`` tensors, each
            ``[H_k, W_k]`` or ``[B_m, H_k, W_k]`` (sizes may differ between masks).
        size: ``(h, w)``, the feature resolution.
        mode: ``"nearest"`` (default; PyTorch's nearest-neighbour, as the Lua original's ``'simple'``
            scaling: binary stays binary), ``"nearest-exact"``, ``"area"`` (mean over each cell when
            downsampling: the fraction of the cell a binary mask covers) or ``"bilinear"`` (antialiased,
            ``align_corners=False``). The aspect ratio is not preserved: masks are stretched to ``size``.

    Returns:
        ``[B_m, K, h, w]``, ``float32`` (``float64`` for ``float64`` masks), clamped to ``[0, 1]``.
    """
    if mode not in _MASK_MODES:
        raise ValueError(f"unknown mask interpolation {mode!r}; choose one of {', '.join(_MASK_MODES)}")
    h, w = int(size[0]), int(size[1])
    if isinstance(masks, Tensor):
        m = _mask_to_float(masks)
        if m.dim() == 2:
            m = m[None, None]
        elif m.dim() == 3:
            m = m[None]
        elif m.dim() != 4:
            raise ValueError(
                f"masks must have shape [H, W], [K, H, W] or [B, K, H, W]; got {tuple(masks.shape)}"
            )
        return _resize(m, (h, w), mode).clamp(0.0, 1.0)
    if isinstance(masks, (str, bytes)) or not isinstance(masks, Sequence) or len(masks) == 0:
        raise ValueError("masks must be a tensor or a non-empty sequence of tensors, one per style")
    resized = []
    for i, mask in enumerate(masks):
        m = _mask_to_float(mask)
        if m.dim() == 2:
            m = m[None]
        if m.dim() != 3:
            raise ValueError(f"mask {i} must have shape [H, W] or [B, H, W]; got {tuple(mask.shape)}")
        resized.append(_resize(m[:, None], (h, w), mode))
    batch = max(r.shape[0] for r in resized)
    if any(r.shape[0] not in (1, batch) for r in resized):
        raise ValueError(f"mask batch sizes differ: {[r.shape[0] for r in resized]}")
    dtype = torch.promote_types(*(r.dtype for r in resized)) if len(resized) > 1 else resized[0].dtype
    return torch.cat([r.to(dtype).expand(batch, 1, h, w) for r in resized], dim=1).clamp(0.0, 1.0)


def _style_list(styles: StyleInput | Sequence[StyleInput]) -> list[StyleInput]:
    if isinstance(styles, (Tensor, StyleStats)):
        return [styles]
    if isinstance(styles, (str, bytes)) or not isinstance(styles, Sequence):
        raise TypeError("styles must be a feature tensor, a StyleStats, or a sequence of them")
    out = list(styles)
    if not out:
        raise ValueError("at least one style is needed")
    return out


def _stats_of(
    style: StyleInput, index: int, batch: int, channels: int, eps: float, unbiased: bool
) -> StyleStats:
    if isinstance(style, StyleStats):
        mean, std = style
    elif isinstance(style, Tensor):
        _check_features(f"style {index} features", style)
        mean, std = calc_mean_std(style, eps, unbiased=unbiased)
    else:
        raise TypeError(
            f"style {index} must be a [B, C, H, W] tensor or a StyleStats; got {type(style).__name__}"
        )
    _check_stats(f"style {index}", mean, std, batch, channels)
    return StyleStats(mean, std)


def interpolate_style_stats(stats: Sequence[StyleStats], weights: Sequence[float] | Tensor) -> StyleStats:
    """Blend style statistics linearly: ``(Σ w_k μ_k, Σ w_k σ_k)`` with the weights normalised to sum 1.

    AdaIN with the result equals the weighted sum of the single-style AdaIN outputs (see module
    docstring). ``stats[k]`` are ``[B_k, C, 1, 1]`` (``B_k`` 1 or a common ``B``); returns the broadcast
    shape, in the statistics' dtype.
    """
    if len(stats) == 0:
        raise ValueError("at least one style is needed")
    w = normalize_style_weights(weights, len(stats))
    dt = stats[0].mean.dtype
    w = w.to(device=stats[0].mean.device, dtype=dt if dt.is_floating_point else torch.float32)
    mean = sum(w[k] * s.mean for k, s in enumerate(stats))
    std = sum(w[k] * s.std for k, s in enumerate(stats))
    return StyleStats(mean, std)  # type: ignore[arg-type]


def _check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not (math.isfinite(a) and 0.0 <= a <= 1.0):
        raise ValueError(f"alpha (content–style trade-off) must lie in [0, 1]; got {alpha!r}")
    return a


def style_transfer_features(
    content_feat: Tensor,
    styles: StyleInput | Sequence[StyleInput],
    *,
    alpha: float = 1.0,
    weights: Sequence[float] | Tensor | None = None,
    masks: Tensor | Sequence[Tensor] | None = None,
    mask_interpolation: MaskInterpolation = "nearest",
    eps: float = 1e-5,
    unbiased: bool = True,
) -> Tensor:
    """Target features for the decoder: AdaIN with interpolation, trade-off α and spatial control.

    See the module docstring for the exact formulas.

    Args:
        content_feat: ``[B, C, H, W]``.
        styles: one style or a sequence of ``K``; each is either features ``[B_s, C, H_s, W_s]`` (any
            size; ``B_s`` 1 or ``B``) or precomputed :class:`~adain.ops.normalization.StyleStats`
            (``[B_s, C, 1, 1]`` each, e.g. from :func:`~adain.ops.normalization.style_stats`, to reuse a
            style across many contents).
        alpha: content–style trade-off in ``[0, 1]``: ``t = α · T + (1 − α) · content_feat``; ``0``
            returns (a copy of) ``content_feat`` exactly.
        weights: ``K`` interpolation weights, normalised to sum 1 (default: equal weights). Negative
            weights extrapolate (not allowed together with masks).
        masks: one mask per style (see :func:`resize_masks` for the accepted shapes), soft values in
            ``[0, 1]``, any resolution; ``None`` applies every style everywhere.
        mask_interpolation: how masks are resized to ``H, W`` (:func:`resize_masks`).
        eps, unbiased: statistics convention (see :mod:`adain.ops.normalization`).

    Returns:
        ``[B, C, H, W]`` in ``content_feat``'s dtype.

    Raises:
        ValueError: bad shapes, ``alpha`` outside ``[0, 1]``, weights of the wrong count, summing to 0,
            or negative with masks, mask count ≠ style count, mask values outside ``[0, 1]``.
    """
    _check_features("content_feat", content_feat)
    b, c, h, w = content_feat.shape
    a = _check_alpha(alpha)
    style_list = _style_list(styles)
    k = len(style_list)
    stats = [_stats_of(s, i, b, c, eps, unbiased) for i, s in enumerate(style_list)]
    wts = normalize_style_weights([1.0] * k if weights is None else weights, k)
    m = None
    if masks is not None:
        m = resize_masks(masks, (h, w), mode=mask_interpolation)
        if m.shape[1] != k:
            raise ValueError(f"got {m.shape[1]} mask(s) for {k} style(s); give one mask per style")
        if m.shape[0] not in (1, b):
            raise ValueError(f"mask batch size {m.shape[0]} is neither 1 nor the content batch size {b}")
        if bool((wts < 0).any()):
            raise ValueError("style weights must be non-negative when masks are given")
    if a == 0.0:
        return content_feat.clone()

    dt = _stat_dtype(content_feat.dtype)
    if m is None:
        blended = interpolate_style_stats(stats, wts)
        c_mean, c_std = calc_mean_std(content_feat, eps, unbiased=unbiased)
        # α folded into the per-channel scale and shift: one pass over the features.
        target = _renormalize(content_feat, c_mean, c_std, blended.mean.to(dt), blended.std.to(dt), a)
    else:
        x = content_feat.to(dt)
        m = m.to(device=x.device, dtype=dt)
        wts = wts.to(device=x.device, dtype=dt)
        coverage = m.sum(dim=1, keepdim=True)  # [B_m, 1, H, W]
        wm = m * wts.view(1, k, 1, 1)
        wm_sum = wm.sum(dim=1, keepdim=True)
        covered = wm_sum > 0
        share = coverage.clamp(max=1.0) * wm / wm_sum.clamp_min(1e-12)
        coef = torch.where(covered, share, torch.zeros_like(wm))  # [B_m, K, H, W]
        target = x * (1.0 - coef.sum(dim=1, keepdim=True))
        for i, st in enumerate(stats):
            c_mean, c_std = masked_mean_std(x, m[:, i : i + 1], eps, unbiased=unbiased)
            styled = _renormalize(x, c_mean, c_std, st.mean.to(dt), st.std.to(dt))
            target = target + coef[:, i : i + 1] * styled
        if a != 1.0:
            target = a * target + (1.0 - a) * x
    return target.to(content_feat.dtype)
