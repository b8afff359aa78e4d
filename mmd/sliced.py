"""Sliced-Wasserstein style loss: match the 1-D distributions of random projections of the features."""

from __future__ import annotations

import torch
from torch import Tensor

from .stats import flatten_positions

__all__ = ["random_directions", "sliced_wasserstein_loss"]


def random_directions(
    n_channels: int, count: int, seed: int = 0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """``count`` unit directions in ``R^N``, uniform on the sphere, from a private CPU generator.

    Returns:
        ``[N, count]``: one unit-norm direction per column; the same for the same arguments.
    """
    if n_channels < 1 or count < 1:
        raise ValueError(f"need n_channels ≥ 1 and count ≥ 1; got {n_channels} and {count}")
    gen = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n_channels, count, generator=gen, dtype=torch.float64)
    return (dirs / dirs.norm(dim=0, keepdim=True)).to(dtype)


def _quantiles_at(sorted_values: Tensor, count: int) -> Tensor:
    """The empirical quantile function of ``sorted_values: [..., M]`` at the ``count`` mid-point levels
    ``(k + ½) / count``, by linear interpolation between order statistics → ``[..., count]``."""
    m = sorted_values.shape[-1]
    if m == count:
        return sorted_values
    pos = (torch.arange(count, dtype=torch.float64) + 0.5) * (m / count) - 0.5
    pos = pos.clamp(0, m - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(m - 1)
    w = (pos - lo).to(sorted_values.dtype).to(sorted_values.device)
    lo, hi = lo.to(sorted_values.device), hi.to(sorted_values.device)
    return sorted_values.index_select(-1, lo) * (1 - w) + sorted_values.index_select(-1, hi) * w


def sliced_wasserstein_loss(
    generated: Tensor,
    style: Tensor,
    projections: int = 64,
    seed: int = 0,
    directions: Tensor | None = None,
) -> Tensor:
    """Squared sliced 2-Wasserstein distance between the position-wise feature distributions::

        L = mean_θ  mean_k ( q_F,θ(u_k) − q_S,θ(u_k) )²,   u_k = (k + ½) / M_F,

    where ``q_X,θ`` is the empirical quantile function of the projections ``θᵀx`` of the feature
    vectors (columns) of ``X`` on a unit direction ``θ``. With ``M_F = M_S`` this is the exact squared
    1-D Wasserstein-2 distance per direction (sorted values matched one to one); otherwise the style's
    quantile function is interpolated linearly at the generated set's levels. It compares whole
    marginals along each direction, not just their first two moments. Sorting is differentiable
    almost everywhere; the gradient flows to both arguments.

    The directions are fixed by ``seed`` (the same for every call, so value and gradient belong to
    one function) or given explicitly; no global random state is touched.

    Args:
        generated: ``[B, N, H, W]``, ``[B, N, M_F]`` or ``[N, M_F]``.
        style: the same layout, any number of positions ``M_S``; a batch of 1 broadcasts.
        projections: number of random directions (ignored when ``directions`` is given).
        seed: seed of the directions.
        directions: ``[N, P]`` explicit directions (columns; not renormalised).

    Returns:
        ``[B]`` per-sample losses (a 0-d tensor for unbatched input).
    """
    f, s = flatten_positions(generated), flatten_positions(style)
    if f.shape[-2] != s.shape[-2]:
        raise ValueError(f"channel counts differ: generated has {f.shape[-2]}, style has {s.shape[-2]}")
    if f.shape[-1] == 0 or s.shape[-1] == 0:
        raise ValueError(f"features have no spatial positions: shapes {tuple(f.shape)} and {tuple(s.shape)}")
    n = f.shape[-2]
    if directions is None:
        directions = random_directions(n, projections, seed, dtype=f.dtype)
    elif directions.dim() != 2 or directions.shape[0] != n:
        raise ValueError(f"directions must be [N={n}, P]; got shape {tuple(directions.shape)}")
    directions = directions.to(dtype=f.dtype, device=f.device)
    proj_f = (directions.transpose(0, 1) @ f).sort(dim=-1).values  # [..., P, M_F]
    proj_s = (directions.transpose(0, 1) @ s).sort(dim=-1).values  # [..., P, M_S]
    q_s = _quantiles_at(proj_s, proj_f.shape[-1])
    return (proj_f - q_s).pow(2).mean(dim=(-1, -2))
