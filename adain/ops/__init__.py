"""Pure tensor operations of the AdaIN model: statistics, AdaIN, interpolation / trade-off / spatial
control, and colour preservation.

* :mod:`adain.ops.normalization` — :func:`calc_mean_std`, :func:`masked_mean_std`,
  :func:`adaptive_instance_norm`, :func:`adain_from_stats`, :class:`StyleStats`, :func:`style_stats`.
  Statistics follow the public PyTorch AdaIN port (unbiased variance + eps on content and style).
* :mod:`adain.ops.blending` — :func:`style_transfer_features` (several styles with weights, α, masks),
  :func:`normalize_style_weights`, :func:`interpolate_style_stats`, :func:`resize_masks`.
* :mod:`adain.ops.color` — :func:`match_color` (CORAL), luminance-only transfer
  (:func:`luminance_only_inputs`, :func:`match_luminance`, :func:`transfer_luminance`) and the
  colour-space helpers :func:`rgb_to_yiq`, :func:`yiq_to_rgb`, :func:`rgb_to_luminance`, :func:`gray_to_rgb`.

Feature maps are ``[B, C, H, W]``, statistics ``[B, C, 1, 1]``, images ``[3, H, W]`` or ``[B, 3, H, W]``.
"""

from __future__ import annotations

from .blending import (
    MaskInterpolation,
    StyleInput,
    interpolate_style_stats,
    normalize_style_weights,
    resize_masks,
    style_transfer_features,
)
from .color import (
    gray_to_rgb,
    luminance_only_inputs,
    match_color,
    match_luminance,
    rgb_to_luminance,
    rgb_to_yiq,
    transfer_luminance,
    yiq_to_rgb,
)
from .normalization import (
    StyleStats,
    adain_from_stats,
    adaptive_instance_norm,
    calc_mean_std,
    masked_mean_std,
    style_stats,
)

__all__ = [
    "MaskInterpolation",
    "StyleInput",
    "StyleStats",
    "adain_from_stats",
    "adaptive_instance_norm",
    "calc_mean_std",
    "gray_to_rgb",
    "interpolate_style_stats",
    "luminance_only_inputs",
    "masked_mean_std",
    "match_color",
    "match_luminance",
    "normalize_style_weights",
    "resize_masks",
    "rgb_to_luminance",
    "rgb_to_yiq",
    "style_stats",
    "style_transfer_features",
    "transfer_luminance",
    "yiq_to_rgb",
]
