"""The MMD² workloads that ``verify_identity`` and ``bench_mmd`` time and measure.

Module-level functions so that :func:`experiments.measure.peak_extra_memory` can run them in a
spawned process.
"""

from __future__ import annotations

import torch
from torch import Tensor

import mmd
from mmd import kernels

__all__ = ["gaussian_route", "kernel_route", "moment_route", "random_samples"]


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
