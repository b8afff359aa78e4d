"""One style-loss interface for optimisation experiments and decoder training.

A style loss compares generated features with style features at one layer::

    loss(generated: [B, N, H, W], style: [B or 1, N, H', W']) -> [B]

Build one by name with :func:`style_loss` (``"gram"``, ``"meanstd"``, ``"mmd"``, ``"meancov"``,
``"sliced_wasserstein"``); sum it over layers with :func:`layered_style_loss`. The classes are thin
wrappers over the functions of :mod:`mmd`. ``loss.for_target(style)`` fixes any parameter that depends
on the data (the median-heuristic bandwidth) from the style target once, for a whole run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from .covariance import mean_covariance_loss
from .estimators import DEFAULT_CHUNK_SIZE, Estimator, Route, kernel_sum, mmd2
from .gram import gram_style_loss
from .kernels import Kernel, polynomial
from .meanstd import mean_std_loss
from .registry import construct_style_loss, register_style_loss
from .sliced import sliced_wasserstein_loss
from .stats import flatten_positions, positions_as_samples

__all__ = [
    "GramLoss",
    "MMDLoss",
    "MeanCovLoss",
    "MeanStdLoss",
    "SlicedWassersteinLoss",
    "StyleLoss",
    "layered_style_loss",
    "style_loss",
]


class StyleLoss:
    """Interface: ``__call__(generated [B, N, H, W], style [B|1, N, H', W']) -> [B]``."""

    name: str = "style"

    def __call__(self, generated: Tensor, style: Tensor) -> Tensor:
        raise NotImplementedError

    def for_target(self, style: Tensor) -> StyleLoss:
        """This loss with data-dependent parameters fixed from ``style [B|1, N, H, W]`` (default: itself)."""
        return self


@register_style_loss("gram")
@dataclass(frozen=True)
class GramLoss(StyleLoss):
    """Gatys Gram loss ``1/(4N²)·‖G_F/M_F − G_S/M_S‖²`` (:func:`mmd.gram_style_loss`)."""

    name: str = "gram"

    def __call__(self, generated: Tensor, style: Tensor) -> Tensor:
        return gram_style_loss(generated, style)


@register_style_loss("meanstd")
@dataclass(frozen=True)
class MeanStdLoss(StyleLoss):
    """Mean/std matching ``Σ_c (μ_F − μ_S)² + (σ_F − σ_S)²`` (:func:`mmd.mean_std_loss`)."""

    eps: float = 1e-5
    unbiased: bool = True
    name: str = "meanstd"

    def __call__(self, generated: Tensor, style: Tensor) -> Tensor:
        return mean_std_loss(generated, style, eps=self.eps, unbiased=self.unbiased)


@register_style_loss("mmd")
@dataclass(frozen=True)
class MMDLoss(StyleLoss):
    """``scale · MMD²[F, S]`` over the position-wise feature vectors, under any kernel.

    ``scale=None`` uses ``1/(4N²)``, the Gatys normalisation: with ``polynomial(2)`` and the biased
    estimator this loss *is* :class:`GramLoss`, value and gradient.
    """

    kernel: Kernel = field(default_factory=polynomial)
    estimator: Estimator = "biased"
    route: Route = "auto"
    chunk_size: int | None = DEFAULT_CHUNK_SIZE
    scale: float | None = None
    name: str = "mmd"
    #: the style tensor given to :meth:`for_target` and its ``Σ k(s_i, s_j)`` (kernel route), reused
    #: when the loss is called with that very tensor
    target: Tensor | None = field(default=None, repr=False, compare=False)
    target_sum: Tensor | None = field(default=None, repr=False, compare=False)

    def __call__(self, generated: Tensor, style: Tensor) -> Tensor:
        f, s = flatten_positions(generated), flatten_positions(style)
        n = f.shape[-2]
        value = mmd2(
            positions_as_samples(f),
            positions_as_samples(s),
            self.kernel,
            self.estimator,
            self.route,
            self.chunk_size,
            target_sum=self.target_sum if self._is_fitted_target(style) else None,
        )
        return value * (1.0 / (4 * n * n) if self.scale is None else self.scale)

    def _is_fitted_target(self, style: Tensor) -> bool:
        """``style`` is the tensor :meth:`for_target` summed, and no gradient is wanted through it."""
        return style is self.target and not (torch.is_grad_enabled() and style.requires_grad)

    def for_target(self, style: Tensor) -> MMDLoss:
        """The same loss with the kernel fixed from the style features (``kernel.for_target``): a
        median-heuristic bandwidth is computed once here, not at every call. ``style``: ``[B|1, N, H, W]``,
        ``[B|1, N, M]`` or ``[N, M]``; score generated features against this style only. On the kernel
        route the style's own kernel sum is computed here too and reused whenever the loss is called with
        this same ``style`` tensor (it does not depend on the generated features)."""
        samples = positions_as_samples(flatten_positions(style))
        kernel = self.kernel.for_target(samples)
        fitted = replace(self, kernel=kernel, target=None, target_sum=None)
        kernel_route = self.route == "kernel" or (self.route == "auto" and not kernel.has_moment_route)
        if self.estimator == "linear" or not kernel_route or kernel.bind(samples, samples) is not kernel:
            return fitted
        with torch.no_grad():
            total = kernel_sum(samples.detach(), kernel, self.chunk_size)
        return replace(fitted, target=style, target_sum=total)


@register_style_loss("meancov")
@dataclass(frozen=True)
class MeanCovLoss(StyleLoss):
    """Means and full covariances ``a‖μ_F − μ_S‖² + b‖Σ_F − Σ_S‖²`` (:func:`mmd.mean_covariance_loss`)."""

    mean_weight: float = 1.0
    cov_weight: float = 1.0
    unbiased: bool = True
    name: str = "meancov"

    def __call__(self, generated: Tensor, style: Tensor) -> Tensor:
        return mean_covariance_loss(generated, style, self.mean_weight, self.cov_weight, self.unbiased)


@register_style_loss("sliced_wasserstein")
@dataclass(frozen=True)
class SlicedWassersteinLoss(StyleLoss):
    """Squared sliced 2-Wasserstein distance over ``projections`` fixed directions
    (:func:`mmd.sliced_wasserstein_loss`)."""

    projections: int = 64
    seed: int = 0
    name: str = "sliced_wasserstein"

    def __call__(self, generated: Tensor, style: Tensor) -> Tensor:
        return sliced_wasserstein_loss(generated, style, projections=self.projections, seed=self.seed)


def style_loss(name: str, **params: Any) -> StyleLoss:
    """Build a registered style loss by name (``"gram"``, ``"meanstd"``, ``"mmd"``, …) from Python objects.

    ``kernel`` may be a :class:`~mmd.kernels.Kernel` or a kernel spec. For plain-data specs (configs,
    checkpoints) use :func:`mmd.build_style_loss`.
    """
    return construct_style_loss(name, params)


def layered_style_loss(
    loss: StyleLoss,
    generated: Mapping[str, Tensor],
    style: Mapping[str, Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """``Σ_layer w_layer · loss(generated[layer], style[layer])`` → ``[B]``.

    Args:
        loss: a :class:`StyleLoss`.
        generated, style: feature maps by layer name (``[B, N_l, H_l, W_l]`` and ``[B|1, N_l, H'_l, W'_l]``).
        layer_weights: weight per layer (default 1 for every layer of ``generated``); layers not named
            are skipped.
    """
    layers = list(generated) if layer_weights is None else list(layer_weights)
    if not layers:
        raise ValueError("no layers to compute a style loss on")
    total: Tensor | None = None
    for layer in layers:
        if layer not in generated or layer not in style:
            raise KeyError(f"layer {layer!r} missing from the generated or style features")
        weight = 1.0 if layer_weights is None else float(layer_weights[layer])
        term = weight * loss(generated[layer], style[layer])
        total = term if total is None else total + term
    assert total is not None  # layers is not empty
    return total
