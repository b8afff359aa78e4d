"""Gram matrices and the Gatys et al. (2016) Gram style loss."""

from __future__ import annotations

from torch import Tensor

from .stats import flatten_positions

__all__ = ["gram_matrix", "gram_style_loss"]


def gram_matrix(feats: Tensor) -> Tensor:
    """Unnormalised Gram matrix ``G = F Fᵀ`` over the spatial positions.

    Args:
        feats: ``[B, N, H, W]``, ``[B, N, M]`` or ``[N, M]``.

    Returns:
        ``[B, N, N]`` (or ``[N, N]`` for ``[N, M]`` input); ``G[c, d] = Σ_m F[c, m] F[d, m]``.
    """
    flat = flatten_positions(feats)
    return flat @ flat.transpose(-1, -2)


def gram_style_loss(generated: Tensor, style: Tensor) -> Tensor:
    """Per-layer Gatys style loss between generated features ``F`` and style features ``S``.

    With ``N`` channels and ``M_F``, ``M_S`` positions::

        L = 1/(4 N²) · ‖ G_F / M_F − G_S / M_S ‖_F²

    Each Gram matrix is divided by its own number of positions, so images of different sizes can be
    compared. When ``M_F = M_S = M`` this is exactly Gatys' ``1/(4 N² M²) · Σ (G_F − G_S)²``, and in
    every case it equals ``MMD²_b[F, S] / (4 N²)`` under ``k(x, y) = (xᵀy)²`` (see
    :func:`mmd.verify_identity` and ``notes/gram_mmd_identity.md``).

    Args:
        generated: ``[B, N, H, W]``, ``[B, N, M_F]`` or ``[N, M_F]``.
        style: ``[B, N, H', W']``, ``[B, N, M_S]`` or ``[N, M_S]``; a batch of 1 broadcasts.

    Returns:
        ``[B]`` per-sample losses (a 0-d tensor for unbatched input).
    """
    f, s = flatten_positions(generated), flatten_positions(style)
    if f.shape[-2] != s.shape[-2]:
        raise ValueError(f"channel counts differ: generated has {f.shape[-2]}, style has {s.shape[-2]}")
    n = f.shape[-2]
    g_f = gram_matrix(f) / f.shape[-1]
    g_s = gram_matrix(s) / s.shape[-1]
    return (g_f - g_s).pow(2).sum(dim=(-1, -2)) / (4 * n * n)
