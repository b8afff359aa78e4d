"""The squared maximum mean discrepancy between two sample sets, by two routes.

``route="kernel"`` sums kernel matrices block by block (``chunk_size`` rows and columns at a time),
so memory stays ``O(chunk_size²)`` per batch element however many samples there are; with gradients
enabled each block is recomputed in the backward pass (activation checkpointing), so the backward pass
is bounded too. ``route="moment"`` uses a kernel's closed form in low-order moments (linear and
degree-≤2 polynomial kernels), ``O(M N²)``. ``route="auto"`` takes the moment route where it exists.

Three estimators: ``"biased"`` (V-statistic; the Gram identity's), ``"unbiased"`` (U-statistic) and
``"linear"`` (Gretton et al.'s linear-time statistic, ``O(M N)``, the one Li et al. 2017 offer beside
the quadratic one).

Cancellation. The kernel route forms MMD² as the difference of three large sums; when the two sample
sets are close, the result is much smaller than the sums and its relative rounding error grows like
the *square* of their ratio (see ``notes/gram_mmd_identity.md``). A biased value, which is ``≥ 0`` in
exact arithmetic, can then come out slightly negative: :func:`mmd2` clamps it at 0 (``clamp=True``,
the default) and :func:`mmd.verify_identity` reports the raw value.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .kernels import Kernel

__all__ = ["Estimator", "Route", "kernel_sum", "mmd2"]

Estimator = Literal["biased", "unbiased", "linear"]
Route = Literal["auto", "kernel", "moment"]

DEFAULT_CHUNK_SIZE = 2048


def mmd2(
    x: Tensor,
    y: Tensor,
    kernel: Kernel,
    estimator: Estimator = "biased",
    route: Route = "auto",
    chunk_size: int | None = DEFAULT_CHUNK_SIZE,
    clamp: bool = True,
    *,
    target_sum: Tensor | None = None,
) -> Tensor:
    """Squared MMD between the empirical distributions of ``x`` and ``y`` under ``kernel``.

    Biased (V-statistic, what the Gram identity needs)::

        MMD²_b = mean_{i,j} k(x_i, x_j) + mean_{i,j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j)

    Unbiased (U-statistic): the within-set means leave out ``i = j``; it needs ``M ≥ 2`` per set and
    can be negative. The biased value is ``≥ 0`` for a positive-definite kernel.

    Linear-time (Gretton et al. 2012, JMLR, Lemma 14): with ``P = min(M_x, M_y) // 2`` pairs of
    consecutive rows ``(x_{2p}, x_{2p+1})`` and ``(y_{2p}, y_{2p+1})``::

        MMD²_l = mean_p  k(x_2p, x_2p+1) + k(y_2p, y_2p+1) − k(x_2p, y_2p+1) − k(x_2p+1, y_2p)

    Unbiased, ``O(P N)`` time and memory, higher variance; it uses only the first ``2P`` rows of each
    set and pairs neighbours, so shuffle or subsample rows that are spatially ordered (e.g. with
    :func:`mmd.random_positions`) if neighbours are correlated. It needs ``M ≥ 2`` per set and can be
    negative; the ``route`` must be ``"auto"`` or ``"kernel"`` (it evaluates the kernel on row pairs).

    Args:
        x: ``[M_x, N]`` or batched ``[..., M_x, N]``: one sample (feature vector) per row.
        y: ``[M_y, N]`` or ``[..., M_y, N]``; leading dimensions broadcast against ``x``'s.
        kernel: from :mod:`mmd.kernels`.
        estimator: ``"biased"``, ``"unbiased"`` or ``"linear"``.
        route: ``"kernel"`` (kernel matrices), ``"moment"`` (closed form; only for kernels with
            ``has_moment_route``) or ``"auto"``.
        chunk_size: rows/columns per kernel block on the kernel route; ``None`` forms whole matrices.
        clamp: clamp the biased estimate at 0 (a negative value is rounding error from cancellation;
            its gradient is then 0). The unbiased and linear estimates are never clamped.
        target_sum: ``[...]``, ``Σ_{i,j} k(y_i, y_j)`` computed beforehand with :func:`kernel_sum` for a
            fixed target ``y`` (it does not depend on ``x``; for a Gaussian kernel at a shallow layer it
            is about a third of the work). Kernel route only, and only for a kernel without a
            data-dependent parameter (one returned by ``for_target``), whose sum cannot move with ``x``.

    Returns:
        ``[...]``: the broadcast leading dimensions (a 0-d tensor for unbatched input).
    """
    _check_samples(x, y)
    if estimator not in ("biased", "unbiased", "linear"):
        raise ValueError(f"estimator must be 'biased', 'unbiased' or 'linear', got {estimator!r}")
    if route not in ("auto", "kernel", "moment"):
        raise ValueError(f"route must be 'auto', 'kernel' or 'moment', got {route!r}")
    unbiased = estimator == "unbiased"
    if estimator != "biased" and min(x.shape[-2], y.shape[-2]) < 2:
        raise ValueError(
            f"the {estimator} estimator needs at least 2 samples per set, "
            f"got M_x={x.shape[-2]}, M_y={y.shape[-2]}"
        )
    if estimator == "linear":
        if route == "moment":
            raise ValueError("the linear-time estimator has no moment route; use route='kernel' or 'auto'")
        return _linear_time(x, y, kernel.bind(x, y))
    if route == "auto":
        route = "moment" if kernel.has_moment_route else "kernel"
    bound = kernel.bind(x, y)
    if target_sum is not None and (route != "kernel" or bound is not kernel):
        raise ValueError(
            "target_sum needs the kernel route and a kernel without data-dependent parameters "
            f"(route={route!r}, kernel={kernel!r}); fix the kernel with kernel.for_target(y) first"
        )
    kernel = bound
    if route == "moment":
        if not kernel.has_moment_route:
            raise ValueError(f"{kernel!r} has no closed-form MMD²; use route='kernel' or 'auto'")
        value = kernel.moment_mmd2(x, y, unbiased)
    else:
        value = _kernel_route(x, y, kernel, unbiased, chunk_size, target_sum)
    return value.clamp_min(0) if clamp and not unbiased else value


def _check_samples(x: Tensor, y: Tensor) -> None:
    if x.dim() < 2 or y.dim() < 2:
        raise ValueError(f"samples must be [..., M, N]; got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"samples must have the same dimension N; got {x.shape[-1]} (x) and {y.shape[-1]} (y)"
        )
    if x.shape[-2] == 0 or y.shape[-2] == 0:
        raise ValueError(f"empty sample set: shapes {tuple(x.shape)} and {tuple(y.shape)}")


def _linear_time(x: Tensor, y: Tensor, kernel: Kernel) -> Tensor:
    """Gretton's linear-time statistic on ``P = min(M_x, M_y) // 2`` row pairs → ``[...]``."""
    pairs = min(x.shape[-2], y.shape[-2]) // 2
    x0, x1 = x[..., 0 : 2 * pairs : 2, :], x[..., 1 : 2 * pairs : 2, :]
    y0, y1 = y[..., 0 : 2 * pairs : 2, :], y[..., 1 : 2 * pairs : 2, :]
    h = kernel.paired(x0, x1) + kernel.paired(y0, y1) - kernel.paired(x0, y1) - kernel.paired(x1, y0)
    return h.mean(dim=-1)


def kernel_sum(y: Tensor, kernel: Kernel, chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> Tensor:
    """``Σ_{i,j} k(y_i, y_j)`` over one sample set ``y: [..., M, N]`` → ``[...]``, in blocks of
    ``chunk_size`` (the ``target_sum`` of :func:`mmd2` for a fixed target)."""
    _check_samples(y, y)
    return _kernel_sum(y, y, kernel, chunk_size, symmetric=True)


def _kernel_route(
    x: Tensor, y: Tensor, kernel: Kernel, unbiased: bool, chunk_size: int | None, target_sum: Tensor | None
) -> Tensor:
    m_x, m_y = x.shape[-2], y.shape[-2]
    k_xx = _kernel_sum(x, x, kernel, chunk_size, symmetric=True)
    k_yy = _kernel_sum(y, y, kernel, chunk_size, symmetric=True) if target_sum is None else target_sum
    k_xy = _kernel_sum(x, y, kernel, chunk_size, symmetric=False)
    if unbiased:
        within_x = (k_xx - kernel.diag(x).sum(dim=-1)) / (m_x * (m_x - 1))
        within_y = (k_yy - kernel.diag(y).sum(dim=-1)) / (m_y * (m_y - 1))
    else:
        within_x = k_xx / (m_x * m_x)
        within_y = k_yy / (m_y * m_y)
    return within_x + within_y - 2 * k_xy / (m_x * m_y)


def _block_sum(kernel: Kernel, a: Tensor, b: Tensor) -> Tensor:
    """``Σ_{i,j} k(a_i, b_j)``: ``a: [..., P, N]``, ``b: [..., Q, N]`` → ``[...]``."""
    return kernel.pair_sum(a, b)


def _kernel_sum(a: Tensor, b: Tensor, kernel: Kernel, chunk_size: int | None, symmetric: bool) -> Tensor:
    """``Σ_{i,j} k(a_i, b_j)`` in blocks of ``chunk_size``; with ``symmetric`` (``a is b``) only the
    blocks on and above the diagonal are formed. ``a: [..., P, N]``, ``b: [..., Q, N]`` → ``[...]``."""
    if chunk_size is None or (a.shape[-2] <= chunk_size and b.shape[-2] <= chunk_size):
        return _block_sum(kernel, a, b)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive or None, got {chunk_size}")
    needs_grad = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
    use_checkpoint = needs_grad and not kernel.pair_sum_is_lean
    a_blocks = a.split(chunk_size, dim=-2)
    b_blocks = b.split(chunk_size, dim=-2)
    total = None
    for i, a_blk in enumerate(a_blocks):
        for j, b_blk in enumerate(b_blocks):
            if symmetric and j < i:
                continue
            if use_checkpoint:
                part = checkpoint(_block_sum, kernel, a_blk, b_blk, use_reentrant=False)
            else:
                part = _block_sum(kernel, a_blk, b_blk)
            if symmetric and j > i:
                part = 2 * part
            total = part if total is None else total + part
    return total
