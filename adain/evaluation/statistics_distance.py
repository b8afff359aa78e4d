"""The distance between two feature maps' per-channel statistics, split into a mean part and a std part.

For features ``x`` and ``y`` with ``C`` channels (any spatial sizes), with ``μ`` the per-channel mean and
``σ`` the per-channel standard deviation over positions (``torch.std``'s default: Bessel-corrected)::

    mean part = (1/C) Σ_c (μ_c(x) − μ_c(y))²      std part = (1/C) Σ_c (σ_c(x) − σ_c(y))²

Their sum over a network's taps is the numerator (against the style) and the denominator (content against
the style) of the held-out *style ratio* of ``../shared/tools/score_stylization.py``; split by tap and by
part, it says at which scale, and in which statistic, an output misses its style. Pure tensor functions.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["channel_mean_std", "statistics_distance"]


def channel_mean_std(features: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and (Bessel-corrected) standard deviation over positions.

    ``[B, C, H, W]`` → ``([B, C], [B, C])``, in float64.

    Raises:
        ValueError: not a 4-d tensor, or fewer than 2 positions (the std is undefined).
    """
    if features.dim() != 4:
        raise ValueError(f"features must be [B, C, H, W], got shape {tuple(features.shape)}")
    if features.shape[-2] * features.shape[-1] < 2:
        raise ValueError(f"features need >= 2 positions for a std, got {tuple(features.shape[-2:])}")
    flat = features.flatten(2).to(torch.float64)
    return flat.mean(-1), flat.std(-1)


def statistics_distance(x: Tensor, y: Tensor) -> Tensor:
    """Mean part and std part of the statistics distance between ``x`` and ``y`` (see the module doc).

    Args:
        x: ``[B, C, H, W]``.
        y: ``[B, C, H', W']`` or ``[1, C, H', W']`` (broadcast over the batch); its spatial size may differ.

    Returns:
        ``[B, 2]`` float64: ``(mean part, std part)`` per batch item.

    Raises:
        ValueError: shapes that are not ``[B, C, ·, ·]`` with equal ``C``, or batches that do not broadcast.
    """
    mx, sx = channel_mean_std(x)
    my, sy = channel_mean_std(y)
    if mx.shape[1] != my.shape[1] or my.shape[0] not in (1, mx.shape[0]):
        raise ValueError(
            "statistics_distance needs [B, C, ...] and [B or 1, C, ...]; "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return torch.stack([(mx - my).square().mean(1), (sx - sy).square().mean(1)], dim=1)
