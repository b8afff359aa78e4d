"""Mean + full-covariance style matching (CORAL-like): first and all centred second moments."""

from __future__ import annotations

from torch import Tensor

from .stats import flatten_positions

__all__ = ["channel_covariance", "mean_covariance_loss"]


def channel_covariance(feats: Tensor, unbiased: bool = True) -> tuple[Tensor, Tensor]:
    """Channel means and the centred channel covariance over the spatial positions.

    Args:
        feats: ``[B, N, H, W]``, ``[B, N, M]`` or ``[N, M]``.
        unbiased: divide by ``M − 1`` (falls back to ``M`` when ``M = 1``) or by ``M``.

    Returns:
        ``(mean [B, N] or [N], cov [B, N, N] or [N, N])``.
    """
    f = flatten_positions(feats)
    m = f.shape[-1]
    if m == 0:
        raise ValueError(f"features have no spatial positions: shape {tuple(feats.shape)}")
    mean = f.mean(dim=-1)
    centred = f - mean.unsqueeze(-1)
    denom = m - 1 if (unbiased and m > 1) else m
    return mean, centred @ centred.transpose(-1, -2) / denom


def mean_covariance_loss(
    generated: Tensor,
    style: Tensor,
    mean_weight: float = 1.0,
    cov_weight: float = 1.0,
    unbiased: bool = True,
) -> Tensor:
    """Squared distance between channel means and between full channel covariances::

        L = mean_weight · ‖μ_F − μ_S‖² + cov_weight · ‖Σ_F − Σ_S‖_F²

    ``Σ`` is centred (unlike the Gram matrix ``C = Σ + μμᵀ``), so mean and spread are matched
    separately, and all cross-channel covariances are matched (unlike mean/std, which keeps only the
    diagonal of ``Σ``). CORAL (Sun & Saenko, 2016) is ``mean_weight=0, cov_weight=1/(4N²)``. With
    ``unbiased=False``, ``‖Σ_F − Σ_S‖²`` is ``MMD²_b`` under ``(xᵀy)²`` of the mean-centred features.

    Args:
        generated: ``[B, N, H, W]``, ``[B, N, M_F]`` or ``[N, M_F]``.
        style: the same layout, any number of positions; a batch of 1 broadcasts.
        mean_weight, cov_weight: non-negative weights of the two terms.
        unbiased: covariance divides by ``M − 1`` (as mean/std's variance does by default) or ``M``.

    Returns:
        ``[B]`` per-sample losses (a 0-d tensor for unbatched input).
    """
    if mean_weight < 0 or cov_weight < 0:
        raise ValueError(f"weights must be non-negative; got {mean_weight=}, {cov_weight=}")
    f, s = flatten_positions(generated), flatten_positions(style)
    if f.shape[-2] != s.shape[-2]:
        raise ValueError(f"channel counts differ: generated has {f.shape[-2]}, style has {s.shape[-2]}")
    mu_f, cov_f = channel_covariance(f, unbiased)
    mu_s, cov_s = channel_covariance(s, unbiased)
    return mean_weight * (mu_f - mu_s).pow(2).sum(dim=-1) + cov_weight * (cov_f - cov_s).pow(2).sum(
        dim=(-1, -2)
    )
