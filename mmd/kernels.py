"""Positive-definite kernels on feature vectors, for :func:`mmd.mmd2`.

A kernel takes two sets of samples ``x: [..., M_x, N]`` and ``y: [..., M_y, N]`` (one feature vector
per row; leading batch dimensions broadcast) and returns the kernel matrix ``[..., M_x, M_y]``.

Kernels whose MMD² has a closed form in low-order moments (the linear kernel and polynomials of
degree 1 or 2) also expose it through :meth:`Kernel.moment_mmd2`; :func:`mmd.mmd2` uses it for its
``"moment"`` route, which costs ``O(M N²)`` instead of the kernel route's ``O(M² N)``.

Build kernels with the factories :func:`linear`, :func:`polynomial` and :func:`gaussian`.

Bandwidths and optimisation. ``gaussian("median")`` (and ``gaussian("rms")``) recomputes its bandwidth
from the pooled samples of every :func:`mmd.mmd2` call, without gradient: the value then depends on the
generated samples through ``σ`` but the gradient treats ``σ`` as a constant, so value and gradient
disagree (finite differences and autograd can differ in sign). Use it to *score*, not to optimise. To
optimise, fix the bandwidth once per layer from the style target: :func:`gaussian_from_target` (or
``kernel.for_target(y)``, which works for every kernel) returns a kernel whose value and gradient agree,
and whose bandwidth is the same for every output scored against that target.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .gaussian_sum import gaussian_kernel_sum
from .registry import register_kernel

__all__ = [
    "Gaussian",
    "Kernel",
    "Polynomial",
    "gaussian",
    "gaussian_from_target",
    "linear",
    "median_distance",
    "polynomial",
    "rms_distance",
]

#: the data-dependent bandwidth heuristics of :func:`gaussian` (``sigma=<name>``)
HEURISTICS = ("median", "rms")


class Kernel:
    """Interface of a kernel ``k(x, y)`` on ``R^N``."""

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """Kernel matrix. ``x: [..., M_x, N]``, ``y: [..., M_y, N]`` → ``[..., M_x, M_y]``."""
        raise NotImplementedError

    def diag(self, x: Tensor) -> Tensor:
        """``k(x_i, x_i)`` for every row. ``x: [..., M, N]`` → ``[..., M]``."""
        return self.paired(x, x)

    def paired(self, a: Tensor, b: Tensor) -> Tensor:
        """``k(a_i, b_i)`` row by row (no matrix). ``a, b: [..., P, N]`` → ``[..., P]``."""
        raise NotImplementedError

    def bind(self, x: Tensor, y: Tensor) -> Kernel:
        """Fix any data-dependent parameter (e.g. a median-heuristic bandwidth) for these samples.

        ``x: [..., M_x, N]``, ``y: [..., M_y, N]``. Kernels without such parameters return ``self``.
        """
        return self

    def for_target(self, y: Tensor) -> Kernel:
        """This kernel with every data-dependent parameter fixed from the target samples ``y`` alone.

        ``y: [..., M_y, N]`` (e.g. the style features of one layer, ``mmd.positions_as_samples(S)``).
        Call it once per style target and reuse the result for every generated image scored against
        that target: the returned kernel has no data-dependent parameter left, so ``mmd2``'s value and
        gradient agree. Kernels without such parameters return ``self``.
        """
        return self

    def pair_sum(self, a: Tensor, b: Tensor) -> Tensor:
        """``Σ_{i,j} k(a_i, b_j)``: ``a: [..., P, N]``, ``b: [..., Q, N]`` → ``[...]``."""
        return self(a, b).sum(dim=(-1, -2))

    @property
    def pair_sum_is_lean(self) -> bool:
        """Whether :meth:`pair_sum` keeps nothing larger than its inputs for the backward pass (then
        :func:`mmd.mmd2` does not need activation checkpointing to bound its memory)."""
        return False

    @property
    def has_moment_route(self) -> bool:
        """Whether :meth:`moment_mmd2` gives MMD² in closed form."""
        return False

    def moment_mmd2(self, x: Tensor, y: Tensor, unbiased: bool) -> Tensor:
        """MMD² from moments of ``x: [..., M_x, N]`` and ``y: [..., M_y, N]`` → ``[...]``."""
        raise NotImplementedError(f"{self!r} has no closed-form (moment) MMD²; use route='kernel'")


def _sq_norms(x: Tensor) -> Tensor:
    """``‖x_i‖²`` per row. ``[..., M, N]`` → ``[..., M]``."""
    return x.pow(2).sum(dim=-1)


@dataclass(frozen=True)
class Polynomial(Kernel):
    """``k(x, y) = (gamma · xᵀy + c) ** degree``; the linear kernel is ``degree=1, gamma=1, c=0``.

    With ``degree=2, gamma=1, c=0`` this is the kernel under which the Gatys Gram loss is a scaled
    MMD² (see ``notes/gram_mmd_identity.md``).
    """

    degree: int = 2
    gamma: float = 1.0
    c: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.degree, int) or self.degree < 1:
            raise ValueError(f"polynomial degree must be a positive integer, got {self.degree!r}")
        if self.c < 0:
            raise ValueError(f"polynomial offset c must be >= 0 for a positive-definite kernel, got {self.c}")

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return (self.gamma * (x @ y.transpose(-1, -2)) + self.c).pow(self.degree)

    def diag(self, x: Tensor) -> Tensor:
        return (self.gamma * _sq_norms(x) + self.c).pow(self.degree)

    def paired(self, a: Tensor, b: Tensor) -> Tensor:
        return (self.gamma * (a * b).sum(dim=-1) + self.c).pow(self.degree)

    @property
    def has_moment_route(self) -> bool:
        return self.degree <= 2

    def moment_mmd2(self, x: Tensor, y: Tensor, unbiased: bool) -> Tensor:
        """Closed form in the means ``μ`` and second moments ``C = XᵀX / M`` of each sample set.

        Biased (V-statistic)::

            degree 1:  γ ‖μ_x − μ_y‖²
            degree 2:  γ² ‖C_x − C_y‖_F² + 2γc ‖μ_x − μ_y‖²

        The unbiased (U-statistic) value drops the ``i = j`` terms of the within-set sums; each set
        then adds ``(E_{i,j} k − E_i k(x_i, x_i)) / (M − 1)`` to the biased value (the ``c^d``
        constants cancel). Cost ``O(M N²)`` time and ``O(N²)`` extra memory.
        """
        if not self.has_moment_route:
            return super().moment_mmd2(x, y, unbiased)
        g, c = self.gamma, self.c
        mu_x, mu_y = x.mean(dim=-2), y.mean(dim=-2)
        mean_term = (mu_x - mu_y).pow(2).sum(dim=-1)
        if self.degree == 1:
            value = g * mean_term
        else:
            cov_x = x.transpose(-1, -2) @ x / x.shape[-2]
            cov_y = y.transpose(-1, -2) @ y / y.shape[-2]
            value = g * g * (cov_x - cov_y).pow(2).sum(dim=(-1, -2)) + 2 * g * c * mean_term
        if unbiased:
            value = value + self._unbiased_correction(x) + self._unbiased_correction(y)
        return value

    def _unbiased_correction(self, x: Tensor) -> Tensor:
        """``(mean_{i,j} k(x_i, x_j) − mean_i k(x_i, x_i)) / (M − 1)`` without the ``c^d`` constants."""
        m = x.shape[-2]
        g, c = self.gamma, self.c
        mu = x.mean(dim=-2)
        norms = _sq_norms(x)
        if self.degree == 1:
            full = g * mu.pow(2).sum(dim=-1)
            diag = g * norms.mean(dim=-1)
        else:
            cov = x.transpose(-1, -2) @ x / m
            full = g * g * cov.pow(2).sum(dim=(-1, -2)) + 2 * g * c * mu.pow(2).sum(dim=-1)
            diag = (g * g * norms.pow(2) + 2 * g * c * norms).mean(dim=-1)
        return (full - diag) / (m - 1)


def median_distance(x: Tensor, y: Tensor | None = None, max_samples: int = 1024) -> Tensor:
    """Median pairwise Euclidean distance over the pooled samples (the median heuristic).

    Uses at most ``max_samples`` rows of the pooled set, taken at an even stride (deterministic, no
    random state), and excludes the zero self-distances. Computed without gradient (the result is a
    constant to autograd).

    Args:
        x: ``[..., M_x, N]``.
        y: ``[..., M_y, N]``, pooled with ``x``; ``None`` for the median over ``x`` alone.
        max_samples: cap on the rows used (cost ``O(max_samples² N)``).

    Returns:
        ``[...]``: one median per batch element; a tiny positive value where all samples coincide.
    """
    with torch.no_grad():
        pooled = x if y is None else torch.cat(_broadcast_batch(x, y), dim=-2)
        m = pooled.shape[-2]
        if m > max_samples:
            idx = torch.linspace(0, m - 1, max_samples, device=pooled.device).round().long()
            pooled = pooled.index_select(-2, idx)
            m = max_samples
        if m < 2:
            return torch.ones(pooled.shape[:-2], dtype=pooled.dtype, device=pooled.device)
        dist = torch.cdist(pooled, pooled)
        off_diagonal = ~torch.eye(m, dtype=torch.bool, device=pooled.device)
        med = torch.quantile(dist[..., off_diagonal], 0.5, dim=-1)
        return med.clamp_min(torch.finfo(pooled.dtype).eps)


def rms_distance(x: Tensor, y: Tensor | None = None) -> Tensor:
    """Root-mean-square pairwise Euclidean distance over the pooled samples (Li et al.'s bandwidth).

    ``sqrt(mean_{i≠j} ‖z_i − z_j‖²)`` over the pooled rows ``z``, self-distances excluded. Computed in
    closed form, ``mean_{i≠j} ‖z_i − z_j‖² = 2/(M − 1) · Σ_i ‖z_i − z̄‖²`` (centred first, so no
    cancellation), in ``O(M N)`` over every row: no subsampling is needed, and the result is
    deterministic. Without gradient (a constant to autograd).

    Args:
        x: ``[..., M_x, N]``.
        y: ``[..., M_y, N]``, pooled with ``x``; ``None`` for the RMS distance over ``x`` alone.

    Returns:
        ``[...]``: one RMS distance per batch element; a tiny positive value where all samples coincide
        (1 with fewer than two samples, as :func:`median_distance`).
    """
    with torch.no_grad():
        pooled = x if y is None else torch.cat(_broadcast_batch(x, y), dim=-2)
        m = pooled.shape[-2]
        if m < 2:
            return torch.ones(pooled.shape[:-2], dtype=pooled.dtype, device=pooled.device)
        centred = pooled - pooled.mean(dim=-2, keepdim=True)
        mean_sq = 2.0 * centred.pow(2).sum(dim=(-1, -2)) / (m - 1)
        return mean_sq.sqrt().clamp_min(torch.finfo(pooled.dtype).eps)


_DISTANCES = {"median": median_distance, "rms": rms_distance}


def _broadcast_batch(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Broadcast the leading (batch) dimensions of ``x: [..., M_x, N]`` and ``y: [..., M_y, N]``."""
    batch = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    return x.expand(*batch, *x.shape[-2:]), y.expand(*batch, *y.shape[-2:])


@dataclass(frozen=True)
class Gaussian(Kernel):
    """``k(x, y) = mean_s exp(−‖x − y‖² / (2 σ_s²))`` over one or several bandwidths ``σ_s``.

    Averaging (rather than summing) over bandwidths keeps ``k(x, x) = 1`` whatever their number.
    ``sigmas`` is a tuple of floats, or a tensor ``[..., S]`` with one row per batch element (as
    :meth:`bind` and :meth:`for_target` produce). With ``heuristic="median"`` (or ``"rms"``) the
    bandwidths are ``scales × median`` (or root-mean-square) ``pairwise distance``, recomputed without
    gradient at every call of :func:`mmd.mmd2` by :meth:`bind` (value and gradient then disagree; see the
    module docstring), or fixed once from a style target by :meth:`for_target`.
    """

    sigmas: tuple[float, ...] | Tensor = (1.0,)
    heuristic: str | None = None
    scales: tuple[float, ...] = field(default=(1.0,))

    def __post_init__(self) -> None:
        if self.heuristic is not None and self.heuristic not in HEURISTICS:
            raise ValueError(f"bandwidth heuristic must be one of {HEURISTICS} or None: {self.heuristic!r}")

    def _bandwidths(self, like: Tensor) -> Tensor:
        """``[..., S]`` bandwidths (a leading-dims-broadcastable tensor) on ``like``'s device/dtype."""
        if self.heuristic is not None:
            raise RuntimeError(
                f"a {self.heuristic}-heuristic Gaussian kernel must be bound to data first (bind(x, y) or "
                "for_target(y))"
            )
        return torch.as_tensor(self.sigmas, dtype=like.dtype, device=like.device)

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        sigmas = self._bandwidths(x)
        sq_dist = _sq_norms(x).unsqueeze(-1) + _sq_norms(y).unsqueeze(-2) - 2 * (x @ y.transpose(-1, -2))
        sq_dist = sq_dist.clamp_min(0)
        inv = 1.0 / (2 * sigmas.pow(2))  # [..., S]
        # [..., M_x, M_y, 1] * [..., 1, 1, S] -> mean over S
        return torch.exp(-sq_dist.unsqueeze(-1) * inv[..., None, None, :]).mean(dim=-1)

    def diag(self, x: Tensor) -> Tensor:
        return torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device)

    def pair_sum(self, a: Tensor, b: Tensor) -> Tensor:
        """``Σ_{i,j} k(a_i, b_j)`` → ``[...]``, through :func:`mmd.gaussian_sum.gaussian_kernel_sum` (an
        analytic backward pass, 2–3× faster than autograd in ``bench_mmd``) unless the bandwidths need a
        gradient."""
        sigmas = self._bandwidths(a)
        if sigmas.requires_grad:
            return super().pair_sum(a, b)
        return gaussian_kernel_sum(a, b, sigmas)

    @property
    def pair_sum_is_lean(self) -> bool:
        return not (isinstance(self.sigmas, Tensor) and self.sigmas.requires_grad)

    def paired(self, a: Tensor, b: Tensor) -> Tensor:
        sigmas = self._bandwidths(a)
        sq_dist = (a - b).pow(2).sum(dim=-1)  # [..., P]
        inv = 1.0 / (2 * sigmas.pow(2))  # [..., S]
        return torch.exp(-sq_dist.unsqueeze(-1) * inv.unsqueeze(-2)).mean(dim=-1)

    def bind(self, x: Tensor, y: Tensor) -> Kernel:
        if self.heuristic is None:
            return self
        if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
            warnings.warn(
                f"gaussian({self.heuristic!r}) recomputes its bandwidth from the samples at every call "
                "without gradient, so the MMD²'s gradient does not match its value; to optimise, fix the "
                "bandwidth once per style target with mmd.kernels.gaussian_from_target(style_samples) or "
                "kernel.for_target(style_samples)",
                stacklevel=3,
            )
        return self._with_distance(_DISTANCES[self.heuristic](x, y))

    def for_target(self, y: Tensor) -> Kernel:
        if self.heuristic is None:
            return self
        return self._with_distance(_DISTANCES[self.heuristic](y))

    def _with_distance(self, dist: Tensor) -> Gaussian:
        """Fixed bandwidths ``dist[..., None] × scales`` → a Gaussian without data-dependent parameters."""
        scales = torch.as_tensor(self.scales, dtype=dist.dtype, device=dist.device)
        return Gaussian(sigmas=dist.unsqueeze(-1) * scales, heuristic=None, scales=self.scales)


@register_kernel("linear")
def linear() -> Polynomial:
    """The linear kernel ``k(x, y) = xᵀy``; its MMD² is ``‖mean(x) − mean(y)‖²``."""
    return Polynomial(degree=1, gamma=1.0, c=0.0)


@register_kernel("polynomial", aliases=("poly",))
def polynomial(degree: int = 2, gamma: float = 1.0, c: float = 0.0) -> Polynomial:
    """The polynomial kernel ``k(x, y) = (gamma · xᵀy + c) ** degree``.

    ``polynomial()`` (degree 2, ``c = 0``) is the kernel of the Gram/MMD identity; ``c > 0`` adds a
    mean-matching term ``2·gamma·c·‖μ_x − μ_y‖²`` to the second-moment term.
    """
    return Polynomial(degree=degree, gamma=gamma, c=c)


@register_kernel("gaussian")
def gaussian(sigma: float | Sequence[float] | str = "median", scales: Sequence[float] = (1.0,)) -> Gaussian:
    """The Gaussian (RBF) kernel with one or several bandwidths.

    Args:
        sigma: a bandwidth, a sequence of bandwidths (the kernel is their average), ``"median"`` for the
            median heuristic: ``σ_s = scales[s] × median pairwise distance`` of the pooled samples of each
            :func:`mmd.mmd2` call (per batch element, without gradient), or ``"rms"``: ``σ_s = scales[s] ×
            root-mean-square pairwise distance`` (:func:`rms_distance`), the same way. Li et al.'s
            ``exp(−‖x − y‖² / d2)`` with ``d2`` the mean squared distance is ``"rms"`` with
            ``scales=(1/√2,)``. ``kernel.for_target(y)`` fixes either from the style target alone.
        scales: multipliers of the median or RMS distance; only used with ``sigma="median"|"rms"``.
    """
    if isinstance(sigma, str):
        if sigma not in HEURISTICS:
            raise ValueError(
                f"sigma must be a number, a sequence of numbers, 'median' or 'rms', got {sigma!r}"
            )
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"{sigma} scales must be positive, got {tuple(scales)}")
        return Gaussian(sigmas=(), heuristic=sigma, scales=tuple(float(s) for s in scales))
    sigmas = (float(sigma),) if isinstance(sigma, (int, float)) else tuple(float(s) for s in sigma)
    if not sigmas or any(s <= 0 for s in sigmas):
        raise ValueError(f"Gaussian bandwidths must be positive, got {sigmas}")
    return Gaussian(sigmas=sigmas)


def gaussian_from_target(
    target: Tensor, scales: Sequence[float] = (1.0,), max_samples: int = 1024, *, sigma: str = "median"
) -> Gaussian:
    """A Gaussian kernel whose bandwidths are fixed from the style target alone (computed once).

    ``σ_s = scales[s] × median pairwise distance of the target samples`` (at most ``max_samples``
    rows, even stride, no gradient), or with ``sigma="rms"`` the root-mean-square pairwise distance (all
    rows, closed form: :func:`rms_distance`). Build it once per layer and style, then score every
    generated image of a run with it: the bandwidth no longer moves with the generated samples, so the
    MMD²'s value and gradient agree (what L-BFGS and decoder training need), and all outputs of a run are
    scored under the same kernel.

    Args:
        target: style samples ``[M, N]`` or ``[B, M, N]`` (``mmd.positions_as_samples(S)``); a batch
            gives one set of bandwidths per element (``[B, S]``), which broadcasts against generated
            batches like the target does.
        scales: positive multipliers of the distance.
        max_samples: cap on the rows used for the median (the RMS distance uses every row).
        sigma: ``"median"`` or ``"rms"``.

    Returns:
        A :class:`Gaussian` with tensor ``sigmas`` (``[S]`` or ``[B, S]``) on the target's device/dtype.
    """
    if target.dim() < 2:
        raise ValueError(f"target samples must be [..., M, N]; got shape {tuple(target.shape)}")
    if sigma not in HEURISTICS:
        raise ValueError(f"sigma must be one of {HEURISTICS}, got {sigma!r}")
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"{sigma} scales must be positive, got {tuple(scales)}")
    scales = tuple(float(s) for s in scales)
    if sigma == "median":
        distance = median_distance(target, None, max_samples)
    else:
        distance = rms_distance(target)
    return Gaussian(sigmas=(), heuristic=sigma, scales=scales)._with_distance(distance)
