"""The MMD² workloads that ``verify_identity`` and ``bench_mmd`` time and measure.

Module-level functions so that :func:`experiments.measure.peak_extra_memory` can run them in a
spawned process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

import mmd
from mmd import kernels

__all__ = [
    "AutogradGaussian",
    "gaussian_loss_step",
    "gaussian_losses",
    "gaussian_route",
    "kernel_route",
    "moment_route",
    "random_features",
    "random_samples",
]


def random_samples(
    n: int, m_x: int, m_y: int, dtype: str = "float32", seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Two sample sets ``[m_x, n]`` and ``[m_y, n]`` from different Gaussians (fixed seed)."""
    gen = torch.Generator().manual_seed(seed)
    dt = getattr(torch, dtype)
    x = torch.randn(m_x, n, generator=gen, dtype=dt)
    y = torch.randn(m_y, n, generator=gen, dtype=dt) * 1.5 + 0.25
    return x, y


def kernel_route(samples: tuple[Tensor, Tensor], chunk_size: int | None = 2048) -> Tensor:
    """Quadratic-kernel MMD² by summing kernel matrices."""
    return mmd.mmd2(*samples, kernels.polynomial(2), route="kernel", chunk_size=chunk_size)


def moment_route(samples: tuple[Tensor, Tensor]) -> Tensor:
    """Quadratic-kernel MMD² from second-moment matrices."""
    return mmd.mmd2(*samples, kernels.polynomial(2), route="moment")


def gaussian_route(samples: tuple[Tensor, Tensor]) -> Tensor:
    """Median-heuristic Gaussian MMD² (kernel route, chunked)."""
    return mmd.mmd2(*samples, kernels.gaussian("median"), route="kernel")


@dataclass(frozen=True)
class AutogradGaussian(kernels.Gaussian):
    """The Gaussian kernel summed through plain autograd, block by block under activation checkpointing:
    the path before :mod:`mmd.gaussian_sum`, kept as the benchmark's baseline."""

    def pair_sum(self, a: Tensor, b: Tensor) -> Tensor:
        return kernels.Kernel.pair_sum(self, a, b)

    @property
    def pair_sum_is_lean(self) -> bool:
        return False


def random_features(n: int, side: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Generated and style ReLU feature maps ``[1, n, side, side]`` (float32, fixed seed)."""
    gen = torch.Generator().manual_seed(seed)
    generated = torch.randn(1, n, side, side, generator=gen).relu()
    style = (torch.randn(1, n, side, side, generator=gen) * 1.5 + 0.25).relu()
    return generated, style


def gaussian_losses(style: Tensor) -> tuple[mmd.MMDLoss, mmd.MMDLoss]:
    """The median-bandwidth Gaussian MMD style loss fixed from ``style`` (as every optimisation fixes it)
    twice: with the fused kernel sum and the style's own sum computed once, and the baseline (autograd
    through checkpointed blocks, every sum formed at each call)."""
    fused = mmd.MMDLoss(kernel=kernels.gaussian("median")).for_target(style)
    assert isinstance(fused.kernel, kernels.Gaussian)
    baseline = replace(
        fused, kernel=AutogradGaussian(sigmas=fused.kernel.sigmas), target=None, target_sum=None
    )
    return fused, baseline


def gaussian_loss_step(loss: mmd.MMDLoss, features: tuple[Tensor, Tensor]) -> Tensor:
    """One value and gradient of ``loss`` on ``features = (generated, style)``."""
    generated, style = features
    x = generated.clone().requires_grad_(True)
    value = loss(x, style).sum()
    value.backward()
    return value.detach()
