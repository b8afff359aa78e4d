"""Channel statistics and adaptive instance normalisation (Huang & Belongie, ICCV 2017).

Shapes: feature maps are ``[B, C, H, W]``; statistics are ``[B, C, 1, 1]`` (or ``[1, C, 1, 1]``, which
broadcasts over the batch).

Convention (the default everywhere in :mod:`adain.ops`): the statistics follow the public PyTorch AdaIN
port, so that decoders trained with it give the same images here: per-channel mean over the ``H*W``
positions and ``std = sqrt(var + eps)`` with the *unbiased* variance (divide by ``H*W - 1``), for the
content *and* the style features, ``eps = 1e-5``. (The original Lua code differs slightly: biased
variance, and no ``eps`` on the style side.) ``unbiased=False`` gives the biased variance. The statistics
themselves come from :func:`mmd.stats.channel_mean_std`, the one implementation in the project; the
mask-weighted variant :func:`masked_mean_std` reduces to it for an all-ones mask.

Reduced-precision inputs (``float16``/``bfloat16``) have their statistics computed and returned in
``float32``; the AdaIN output is cast back to the content's dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mmd.stats import channel_mean_std

__all__ = [
    "StyleStats",
    "adain_from_stats",
    "adaptive_instance_norm",
    "calc_mean_std",
    "masked_mean_std",
    "style_stats",
]

# Smallest total mask weight treated as non-empty (guards divisions; keeps gradients finite).
_MIN_WEIGHT = 1e-12


class StyleStats(NamedTuple):
    """Precomputed per-channel statistics of a style's features (reuse them across content images).

    ``mean`` and ``std`` are ``[B_s, C, 1, 1]`` with ``B_s`` 1 (broadcasts) or the content batch size;
    ``std`` already includes ``eps`` (as returned by :func:`calc_mean_std`).
    """

    mean: Tensor
    std: Tensor


def _stat_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype the statistics are computed in: at least float32, float64 kept."""
    return torch.promote_types(dtype, torch.float32)


def _check_features(name: str, feat: object) -> Tensor:
    if not isinstance(feat, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [B, C, H, W]; got {type(feat).__name__}")
    if feat.dim() != 4:
        raise ValueError(f"{name} must have shape [B, C, H, W]; got {tuple(feat.shape)}")
    if feat.shape[-1] * feat.shape[-2] == 0:
        raise ValueError(f"{name} has no spatial positions: shape {tuple(feat.shape)}")
    return feat


def _check_stats(name: str, mean: Tensor, std: Tensor, batch: int, channels: int) -> None:
    for what, t in (("mean", mean), ("std", std)):
        if not isinstance(t, Tensor) or t.dim() != 4 or t.shape[-2:] != (1, 1):
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} {what} must have shape [B, C, 1, 1]; got {shape}")
        if t.shape[1] != channels:
            raise ValueError(f"{name} has {t.shape[1]} channels but the content features have {channels}")
        if t.shape[0] not in (1, batch):
            raise ValueError(
                f"{name} has batch size {t.shape[0]}; expected 1 (shared by every content image) or {batch}"
            )


def calc_mean_std(feat: Tensor, eps: float = 1e-5, *, unbiased: bool = True) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation of a feature map, as the public PyTorch AdaIN port.

    ``std = sqrt(var + eps)`` with the unbiased variance (``unbiased=True``, the port's convention; a
    1×1 map falls back to the biased variance 0), so a flat channel has ``std = sqrt(eps)`` and finite
    gradients. Built on :func:`mmd.stats.channel_mean_std`.

    Args:
        feat: ``[B, C, H, W]``.
        eps: added to the variance before the square root.
        unbiased: divide the variance by ``H*W - 1`` (default) or by ``H*W``.

    Returns:
        ``(mean, std)``, each ``[B, C, 1, 1]``, in ``float32`` for half/bfloat16 input, else in
        ``feat``'s dtype.
    """
    _check_features("feat", feat)
    return channel_mean_std(feat.to(_stat_dtype(feat.dtype)), eps=eps, unbiased=unbiased)


def style_stats(style_feat: Tensor, eps: float = 1e-5, *, unbiased: bool = True) -> StyleStats:
    """:func:`calc_mean_std` of a style's features as :class:`StyleStats` (``[B_s, C, 1, 1]`` each)."""
    mean, std = calc_mean_std(style_feat, eps, unbiased=unbiased)
    return StyleStats(mean, std)


def _as_mask4d(mask: Tensor, feat: Tensor) -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor; got {type(mask).__name__}")
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() == 3:
        mask = mask[None]
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != feat.shape[-2:]:
        raise ValueError(
            f"mask must have shape [H, W], [1, H, W] or [B, 1, H, W] with H, W = {tuple(feat.shape[-2:])} "
            f"(the feature resolution; see resize_masks); got {tuple(mask.shape)}"
        )
    if mask.shape[0] not in (1, feat.shape[0]):
        raise ValueError(
            f"mask batch size {mask.shape[0]} is neither 1 nor the feature batch size {feat.shape[0]}"
        )
    return mask


def masked_mean_std(
    feat: Tensor, mask: Tensor, eps: float = 1e-5, *, unbiased: bool = True
) -> tuple[Tensor, Tensor]:
    """Mask-weighted per-channel mean and standard deviation (soft masks allowed).

    With weights ``w = mask`` (in ``[0, 1]``), ``V1 = Σ w`` and ``V2 = Σ w²``::

        mean = Σ w·x / V1
        var  = Σ w·(x - mean)² / (V1 - V2 / V1)     (unbiased=True: reliability weights)
        var  = Σ w·(x - mean)² / V1                 (unbiased=False, or when V1 - V2/V1 ≈ 0)
        std  = sqrt(var + eps)

    For a binary mask this is exactly :func:`calc_mean_std` of the selected positions (``V1 - V2/V1 =
    n - 1``); the unbiased form is invariant to scaling the mask, and a region of effective size 1
    falls back to the biased variance 0 (as :func:`mmd.stats.channel_mean_std` does for one position).
    An empty mask (``Σ w ≈ 0``) gives ``mean = 0``, ``std = sqrt(eps)``: finite values and gradients.

    Args:
        feat: ``[B, C, H, W]``.
        mask: ``[H, W]``, ``[1, H, W]`` or ``[B_m, 1, H, W]`` (``B_m`` 1 or ``B``) at the feature
            resolution, values in ``[0, 1]``.
        eps: added to the variance before the square root.
        unbiased: see above.

    Returns:
        ``(mean, std)``, each ``[B, C, 1, 1]`` (dtype as :func:`calc_mean_std`).
    """
    _check_features("feat", feat)
    mask = _as_mask4d(mask, feat)
    dt = _stat_dtype(feat.dtype)
    x = feat.to(dt)
    w = mask.to(dt)
    dims = (-2, -1)
    v1 = w.sum(dims, keepdim=True)
    v1_safe = v1.clamp_min(_MIN_WEIGHT)
    mean = (w * x).sum(dims, keepdim=True) / v1_safe
    dev2 = (w * (x - mean).square()).sum(dims, keepdim=True)
    denom = v1_safe
    if unbiased:
        corrected = v1 - (w * w).sum(dims, keepdim=True) / v1_safe
        denom = torch.where(corrected > 1e-6 * v1_safe, corrected, v1_safe).clamp_min(_MIN_WEIGHT)
    std = (dev2 / denom + eps).sqrt()
    return mean, std


def _scale_shift(c_mean: Tensor, c_std: Tensor, s_mean: Tensor, s_std: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel ``(g, b)`` with ``(x - c_mean) / c_std * s_std + s_mean == x * g + b``."""
    g = s_std / c_std
    return g, s_mean - c_mean * g


def _renormalize(
    feat: Tensor, c_mean: Tensor, c_std: Tensor, s_mean: Tensor, s_std: Tensor, alpha: float = 1.0
) -> Tensor:
    """``α · ((feat - c_mean) / c_std · s_std + s_mean) + (1 - α) · feat`` in the statistics' dtype (not
    cast back), as one fused pass ``feat · g' + b'`` over the feature map."""
    g, b = _scale_shift(c_mean, c_std, s_mean, s_std)
    if alpha != 1.0:
        g, b = alpha * g + (1.0 - alpha), alpha * b
    return torch.addcmul(b, feat.to(c_mean.dtype), g)


def adain_from_stats(
    content_feat: Tensor,
    style_mean: Tensor,
    style_std: Tensor,
    eps: float = 1e-5,
    *,
    unbiased: bool = True,
) -> Tensor:
    """AdaIN with precomputed style statistics: ``(x - μ(x)) / σ(x) · style_std + style_mean``.

    Args:
        content_feat: ``[B, C, H, W]``.
        style_mean, style_std: ``[B_s, C, 1, 1]`` with ``B_s`` 1 (broadcast) or ``B``, e.g. from
            :func:`calc_mean_std` / :func:`style_stats` (``style_std`` includes ``eps``).
        eps, unbiased: convention of the content statistics (see module docstring).

    Returns:
        ``[B, C, H, W]`` in ``content_feat``'s dtype.
    """
    _check_features("content_feat", content_feat)
    b, c = content_feat.shape[:2]
    _check_stats("style statistics", style_mean, style_std, b, c)
    c_mean, c_std = calc_mean_std(content_feat, eps, unbiased=unbiased)
    out = _renormalize(content_feat, c_mean, c_std, style_mean.to(c_mean.dtype), style_std.to(c_mean.dtype))
    return out.to(content_feat.dtype)


def adaptive_instance_norm(
    content_feat: Tensor, style_feat: Tensor, eps: float = 1e-5, *, unbiased: bool = True
) -> Tensor:
    """Adaptive instance normalisation: the content features with the style's channel mean and std.

    ``AdaIN(x, y) = σ(y) · (x - μ(x)) / σ(x) + μ(y)``, statistics per sample and channel over the
    spatial positions, with the public PyTorch port's convention (unbiased variance + ``eps`` on both
    sides; see module docstring). Content and style may have different ``H, W``.

    Args:
        content_feat: ``[B, C, H, W]``.
        style_feat: ``[B_s, C, H_s, W_s]`` with ``B_s`` 1 (one style for every content image) or ``B``.
        eps: added to both variances.
        unbiased: unbiased (default, as the port) or biased variance.

    Returns:
        ``[B, C, H, W]`` in ``content_feat``'s dtype. Its unbiased per-channel mean is the style's mean
        and its std (without eps) is ``σ(y) · sqrt(var(x) / (var(x) + eps))`` ≈ ``σ(y)``.
    """
    _check_features("content_feat", content_feat)
    _check_features("style_feat", style_feat)
    s_mean, s_std = calc_mean_std(style_feat, eps, unbiased=unbiased)
    return adain_from_stats(content_feat, s_mean, s_std, eps, unbiased=unbiased)
