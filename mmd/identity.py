"""Numerical check of the identity  Gatys Gram loss = MMD²_b[F, S] / (4 N²)  under k(x, y) = (xᵀy)².

The kernel route computes the MMD² side as ``A + B − 2C`` with ``A = ‖C_F‖²``, ``B = ‖C_S‖²``,
``C = ⟨C_F, C_S⟩`` (``C = G/M``), each a sum of positive kernel values. When ``F`` and ``S`` are close
the result is far smaller than those terms and rounding error relative to the *terms* is all one can
ask for. So :meth:`IdentityCheck.holds` compares the absolute error with
``factor · eps(dtype) · sqrt(max(M_F, M_S) + N) · (A + B + 2|C|) / (4N²)``, not with the (tiny) value
itself. The square root is the usual random-walk model of rounding in a sum of ``K`` terms (error
``~ sqrt(K)·eps`` of the terms' magnitude); the longest sums are the ``M``-term Gram entries and the
``N``-term inner products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .estimators import DEFAULT_CHUNK_SIZE, Route, mmd2
from .gram import gram_style_loss
from .kernels import polynomial
from .stats import flatten_positions, positions_as_samples

__all__ = ["DEFAULT_TOLERANCE_FACTOR", "IdentityCheck", "cancelling_terms", "verify_identity"]

DEFAULT_TOLERANCE_FACTOR = 4.0
"""The modest factor of :meth:`IdentityCheck.tolerance`; the errors that ``experiments/verify_identity.py``
measures (its ``identity.csv``, column ``tolerance_used``) stay well below the tolerance it gives."""


@dataclass(frozen=True)
class IdentityCheck:
    """Both sides of the identity for one pair of feature maps (per batch element when batched).

    Attributes:
        gram_loss: ``[B]`` or ``[]``: ``1/(4N²) ‖G_F/M_F − G_S/M_S‖²``.
        mmd_loss: ``[B]`` or ``[]``: ``MMD²_b[F, S] / (4N²)`` with ``k(x, y) = (xᵀy)²``.
        abs_error: ``|gram_loss − mmd_loss|``.
        rel_error: ``abs_error / max(|gram_loss|, |mmd_loss|)`` (0 where both are 0).
        term_scale: ``[B]`` or ``[]``: ``(‖C_F‖² + ‖C_S‖² + 2|⟨C_F, C_S⟩|) / (4N²)``, the size of the
            terms that the kernel route cancels (``C = G/M``); ``term_scale / gram_loss`` is the
            condition number of the MMD² side.
        n_channels, m_generated, m_style: ``N``, ``M_F``, ``M_S``.
        route: how the MMD² side was computed (``"kernel"`` sums kernel matrices; it shares no code
            with the Gram side).
        dtype: the precision of the computation.
    """

    gram_loss: Tensor
    mmd_loss: Tensor
    abs_error: Tensor
    rel_error: Tensor
    term_scale: Tensor
    n_channels: int
    m_generated: int
    m_style: int
    route: str
    dtype: torch.dtype

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over the batch."""
        return float(self.rel_error.max())

    @property
    def condition(self) -> Tensor:
        """``term_scale / gram_loss`` (``inf`` where the loss is 0): how much the kernel route cancels."""
        return self.term_scale / self.gram_loss.abs().to(self.term_scale.dtype)

    @property
    def negative(self) -> bool:
        """Whether the kernel route returned a negative MMD² (impossible in exact arithmetic)."""
        return bool((self.mmd_loss < 0).any())

    def tolerance(self, factor: float = DEFAULT_TOLERANCE_FACTOR) -> Tensor:
        """``factor · eps(dtype) · sqrt(max(M_F, M_S) + N) · term_scale``, ``[B]`` or ``[]``."""
        length = max(self.m_generated, self.m_style) + self.n_channels
        return factor * torch.finfo(self.dtype).eps * math.sqrt(length) * self.term_scale

    def holds(self, rtol: float | None = None, factor: float = DEFAULT_TOLERANCE_FACTOR) -> bool:
        """Whether the two sides agree to rounding error relative to the terms that cancel.

        By default: ``abs_error ≤ tolerance(factor)`` for every batch element, which
        stays true as ``F → S`` (where the relative error of the kernel route grows without bound).
        With ``rtol`` given: every relative error ``≤ rtol`` instead (ill-conditioned checks fail).
        """
        if rtol is not None:
            return self.max_rel_error <= rtol
        return bool(torch.all(self.abs_error.to(self.term_scale.dtype) <= self.tolerance(factor)))

    def __str__(self) -> str:
        flag = " (MMD² side negative: cancellation)" if self.negative else ""
        return (
            f"Gram loss {self.gram_loss.max().item():.10g} vs MMD²/(4N²) {self.mmd_loss.max().item():.10g} "
            f"(N={self.n_channels}, M_F={self.m_generated}, M_S={self.m_style}, {self.dtype}, "
            f"route={self.route}): max relative error {self.max_rel_error:.3e}, "
            f"condition {self.condition.max().item():.3g}{flag}"
        )


def cancelling_terms(generated: Tensor, style: Tensor) -> Tensor:
    """``(‖C_F‖² + ‖C_S‖² + 2|⟨C_F, C_S⟩|) / (4N²)`` in float64, ``C = G/M``: the magnitude of the three
    kernel sums whose difference is the MMD² side of the identity.

    Args:
        generated: ``[B, N, H, W]``, ``[B, N, M_F]`` or ``[N, M_F]``.
        style: the same layout with ``M_S`` positions.

    Returns:
        ``[B]`` (or ``[]``), float64.
    """
    f = flatten_positions(generated).double()
    s = flatten_positions(style).double()
    n = f.shape[-2]
    c_f = f @ f.transpose(-1, -2) / f.shape[-1]
    c_s = s @ s.transpose(-1, -2) / s.shape[-1]
    a = c_f.pow(2).sum(dim=(-1, -2))
    b = c_s.pow(2).sum(dim=(-1, -2))
    c = (c_f * c_s).sum(dim=(-1, -2)).abs()
    return (a + b + 2 * c) / (4 * n * n)


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
        An :class:`IdentityCheck`. Its ``mmd_loss`` is the raw kernel-route value (not clamped at 0), so
        a negative value from cancellation shows (``check.negative``).
    """
    f = flatten_positions(generated).to(dtype)
    s = flatten_positions(style).to(dtype)
    n = f.shape[-2]
    gram_side = gram_style_loss(f, s)
    mmd_side = mmd2(
        positions_as_samples(f), positions_as_samples(s), polynomial(2), "biased", route, chunk_size, False
    ) / (4 * n * n)  # raw value, not clamped at 0
    abs_error = (gram_side - mmd_side).abs()
    scale = torch.maximum(gram_side.abs(), mmd_side.abs())
    rel_error = torch.where(scale > 0, abs_error / scale.clamp_min(torch.finfo(dtype).tiny), abs_error)
    return IdentityCheck(
        gram_loss=gram_side,
        mmd_loss=mmd_side,
        abs_error=abs_error,
        rel_error=rel_error,
        term_scale=cancelling_terms(f, s),
        n_channels=n,
        m_generated=f.shape[-1],
        m_style=s.shape[-1],
        route=route,
        dtype=dtype,
    )
