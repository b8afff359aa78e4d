"""Per-channel feature statistics shared by the losses in :mod:`mmd` and by AdaIN in :mod:`adain.ops`.

Feature maps are ``[B, N, H, W]`` (``N`` channels, ``M = H*W`` positions) or already flattened
``[B, N, M]`` / ``[N, M]``. All functions are pure and differentiable.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["channel_mean_std", "flatten_positions", "positions_as_samples", "random_positions"]


def flatten_positions(feats: Tensor) -> Tensor:
    """Flatten the spatial dimensions of a feature map.

    Args:
        feats: ``[B, N, H, W]``, ``[B, N, M]`` or ``[N, M]``.

    Returns:
        ``[B, N, M]`` for batched input, ``[N, M]`` for unbatched ``[N, M]`` input.
    """
    if feats.dim() == 4:
        return feats.flatten(2)
    if feats.dim() in (2, 3):
        return feats
    raise ValueError(
        f"expected features of shape [B, N, H, W], [B, N, M] or [N, M]; got {tuple(feats.shape)}"
    )


def channel_mean_std(feats: Tensor, eps: float = 1e-5, unbiased: bool = True) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation over the spatial positions.

    ``std = sqrt(var + eps)``, so a flat (constant) channel gives ``std = sqrt(eps)`` rather than 0:
    the value and its gradient stay finite. With ``unbiased=True`` the variance divides by ``M - 1``
    (as the public PyTorch AdaIN port does); a single position (``M = 1``) falls back to dividing by
    ``M`` so that the variance is 0, not NaN.

    Args:
        feats: ``[B, N, H, W]``, ``[B, N, M]`` or ``[N, M]``.
        eps: added to the variance before the square root.
        unbiased: divide the variance by ``M - 1`` (default) or by ``M``.

    Returns:
        ``(mean, std)``, each shaped like ``feats`` with the spatial dimensions kept as size 1
        (``[B, N, 1, 1]``, ``[B, N, 1]`` or ``[N, 1]``), so they broadcast against ``feats``.
    """
    flat = flatten_positions(feats)
    m = flat.shape[-1]
    if m == 0:
        raise ValueError(f"features have no spatial positions: shape {tuple(feats.shape)}")
    correction = 1 if (unbiased and m > 1) else 0
    mean = flat.mean(dim=-1, keepdim=True)
    var = (flat - mean).pow(2).sum(dim=-1, keepdim=True) / (m - correction)
    std = (var + eps).sqrt()
    if feats.dim() == 4:
        mean = mean.unsqueeze(-1)
        std = std.unsqueeze(-1)
    return mean, std


def positions_as_samples(feats: Tensor) -> Tensor:
    """View a feature map as a set of ``M`` samples in ``R^N`` (the layout :func:`mmd.mmd2` takes).

    Args:
        feats: ``[B, N, H, W]``, ``[B, N, M]`` or ``[N, M]``.

    Returns:
        ``[B, M, N]`` (or ``[M, N]``): row ``i`` is the feature vector at position ``i``.
    """
    return flatten_positions(feats).transpose(-1, -2)


def random_positions(feats: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """A random subset of ``count`` spatial positions, the same for every map of the batch.

    Style statistics estimated from a subset cost less: a kernel MMD² is ``O(M²)`` in the number of
    positions, so at the early, large layers a few thousand positions are the affordable estimate. All
    the losses in :mod:`mmd` accept the result, since they flatten positions anyway. When ``count ≥ M``
    the map is returned flattened and whole (no randomness is drawn).

    Args:
        feats: ``[B, N, H, W]``, ``[B, N, M]`` or ``[N, M]``.
        count: how many positions to keep (≥ 1), drawn without replacement.
        generator: a CPU :class:`torch.Generator`, the only source of randomness.

    Returns:
        ``[B, N, min(count, M)]`` (or ``[N, min(count, M)]``).
    """
    if count < 1:
        raise ValueError(f"count must be ≥ 1; got {count}")
    flat = flatten_positions(feats)
    m = flat.shape[-1]
    if count >= m:
        return flat
    index = torch.randperm(m, generator=generator)[:count].to(flat.device)
    return flat.index_select(-1, index)
