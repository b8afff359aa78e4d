"""Numerical check of the identity  Gatys Gram loss = MMD²_b[F, S] / (4 N²)  under k(x, y) = (xᵀy)²."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .estimators import DEFAULT_CHUNK_SIZE, Route, mmd2
from .gram import gram_style_loss
from .kernels import polynomial
from .stats import flatten_positions, positions_as_samples

__all__ = ["IdentityCheck", "verify_identity"]


@dataclass(frozen=True)
class IdentityCheck:
    """Both sides of the identity for one pair of feature maps (per batch element when batched).

    Attributes:
        gram_loss: ``[B]`` or ``[]``: ``1/(4N²) ‖G_F/M_F − G_S/M_S‖²``.
        mmd_loss: ``[B]`` or ``[]``: ``MMD²_b[F, S] / (4N²)`` with ``k(x, y) = (xᵀy)²``.
        abs_error: ``|gram_loss − mmd_loss|``.
        rel_error: ``abs_error / max(|gram_loss|, |mmd_loss|)`` (0 where both are 0).
        n_channels, m_generated, m_style: ``N``, ``M_F``, ``M_S``.
        route: how the MMD² side was computed (``"kernel"`` sums kernel matrices; it shares no code
            with the Gram side).
        dtype: the precision of the computation.
    """

    gram_loss: Tensor
    mmd_loss: Tensor
    abs_error: Tensor
    rel_error: Tensor
    n_channels: int
    m_generated: int
    m_style: int
    route: str
    dtype: torch.dtype

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over the batch."""
        return float(self.rel_error.max())

    def holds(self, rtol: float | None = None) -> bool:
        """Whether every relative error is within ``rtol`` (default: 1e-10 in float64, 1e-4 otherwise)."""
        if rtol is None:
            rtol = 1e-10 if self.dtype == torch.float64 else 1e-4
        return self.max_rel_error <= rtol

    def __str__(self) -> str:
        return (
            f"Gram loss {self.gram_loss.max().item():.10g} vs MMD²/(4N²) {self.mmd_loss.max().item():.10g} "
            f"(N={self.n_channels}, M_F={self.m_generated}, M_S={self.m_style}, {self.dtype}, "
            f"route={self.route}): max relative error {self.max_rel_error:.3e}"
        )


def verify_identity(
    generated: Tensor,
    style: Tensor,
    dtype: torch.dtype = torch.float64,
    route: Route = "kernel",
    chunk_size: int | None = DEFAULT_CHUNK_SIZE,
) -> IdentityCheck:
    """Compute the Gatys Gram loss and ``MMD²_b / (4N²)`` under ``k(x, y) = (xᵀy)²`` and compare them.

    Args:
        generated: ``[B, N, H, W]``, ``[B, N, M_F]`` or ``[N, M_F]`` features ``F``.
        style: the same layout, ``M_S`` positions (may differ from ``M_F``; see
            :func:`mmd.gram_style_loss` for the per-``M`` normalisation that keeps the identity exact).
        dtype: precision of both computations (inputs are converted).
        route: route of the MMD² side; the default ``"kernel"`` is independent of the Gram code.
        chunk_size: block size of the kernel route.

    Returns:
        An :class:`IdentityCheck`.
    """
    f = flatten_positions(generated).to(dtype)
    s = flatten_positions(style).to(dtype)
    n = f.shape[-2]
    gram_side = gram_style_loss(f, s)
    mmd_side = mmd2(
        positions_as_samples(f), positions_as_samples(s), polynomial(2), "biased", route, chunk_size
    ) / (4 * n * n)
    abs_error = (gram_side - mmd_side).abs()
    scale = torch.maximum(gram_side.abs(), mmd_side.abs())
    rel_error = torch.where(scale > 0, abs_error / scale.clamp_min(torch.finfo(dtype).tiny), abs_error)
    return IdentityCheck(
        gram_loss=gram_side,
        mmd_loss=mmd_side,
        abs_error=abs_error,
        rel_error=rel_error,
        n_channels=n,
        m_generated=f.shape[-1],
        m_style=s.shape[-1],
        route=route,
        dtype=dtype,
    )
