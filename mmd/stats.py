"""Per-channel feature statistics shared by the losses in :mod:`mmd` and by AdaIN in :mod:`adain.ops`.

Feature maps are ``[B, N, H, W]`` (``N`` channels, ``M = H*W`` positions) or already flattened
``[B, N, M]`` / ``[N, M]``. All functions are pure and differentiable.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["channel_mean_std", "flatten_positions", "positions_as_samples"]


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
