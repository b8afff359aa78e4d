"""mmd: style losses as pure tensor maths, and the Gram = MMD² identity.

The Gatys Gram style loss at a layer with ``N`` channels equals ``MMD²_b / (4N²)`` between the sets of
position-wise feature vectors under the kernel ``k(x, y) = (xᵀy)²``; see ``notes/gram_mmd_identity.md``.
No I/O here: tensors in, tensors out.
"""

from . import kernels
from .covariance import channel_covariance, mean_covariance_loss
from .estimators import mmd2
from .gram import gram_matrix, gram_style_loss
from .identity import IdentityCheck, verify_identity
from .losses import (
    GramLoss,
    MeanCovLoss,
    MeanStdLoss,
    MMDLoss,
    SlicedWassersteinLoss,
    StyleLoss,
    layered_style_loss,
    style_loss,
)
from .meanstd import mean_std_loss
from .objective import StyleObjective, content_mse
from .registry import (
    StyleLossSpec,
    build_kernel,
    build_style_loss,
    kernel_names,
    register_kernel,
    register_style_loss,
    style_loss_names,
)
from .sliced import random_directions, sliced_wasserstein_loss
from .stats import channel_mean_std, flatten_positions, positions_as_samples, random_positions

__all__ = [
    "GramLoss",
    "IdentityCheck",
    "MMDLoss",
    "MeanCovLoss",
    "MeanStdLoss",
    "SlicedWassersteinLoss",
    "StyleLoss",
    "StyleLossSpec",
    "StyleObjective",
    "build_kernel",
    "build_style_loss",
    "channel_covariance",
    "channel_mean_std",
    "content_mse",
    "flatten_positions",
    "gram_matrix",
    "gram_style_loss",
    "kernel_names",
    "kernels",
    "layered_style_loss",
    "mean_covariance_loss",
    "mean_std_loss",
    "mmd2",
    "positions_as_samples",
    "random_directions",
    "random_positions",
    "register_kernel",
    "register_style_loss",
    "sliced_wasserstein_loss",
    "style_loss",
    "style_loss_names",
    "verify_identity",
]
