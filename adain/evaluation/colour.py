"""Do the outputs' colours follow their styles'? Colour statistics and nearest-style matching.

An image's colour statistics are the mean and the standard deviation of each RGB channel over its pixels,
a vector of 6 numbers (:func:`colour_stats`). For a grid of outputs (every content × every style) and the
styles themselves, :func:`colour_check` measures, with the Euclidean distance between these vectors:

* ``distance[c, s, t]``: output (content ``c``, style ``s``) to style ``t``;
* ``nearest_own[c, s]``: the nearest style of output ``(c, s)`` is its own style ``s`` (the fraction of
  such outputs is 1/S by chance when the outputs ignore the style, 1 when each follows its own);
* ``own[c, s]`` and ``others[c, s]``: the distance to the own style, the mean distance to the other styles;
* ``spread[c]``: for a fixed content, the mean pairwise distance between its outputs for the different
  styles (0 when every style gives the same picture), and ``style_spread``: the same for the style images
  themselves, the spread that outputs following their styles' colours exactly would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ColourCheck", "colour_check", "colour_stats"]


def colour_stats(images: Tensor) -> Tensor:
    """Mean and (population) standard deviation of each RGB channel.

    ``[..., 3, H, W]`` in [0, 1] → ``[..., 6]``: ``(μ_R, μ_G, μ_B, σ_R, σ_G, σ_B)``.
    """
    if images.dim() < 3 or images.shape[-3] != 3:
        raise ValueError(f"colour_stats needs [..., 3, H, W] images, got {tuple(images.shape)}")
    flat = images.flatten(-2).to(torch.float64)
    return torch.cat([flat.mean(-1), flat.std(-1, unbiased=False)], dim=-1)


@dataclass(frozen=True)
class ColourCheck:
    """Result of :func:`colour_check` (see the module doc); ``C`` contents, ``S`` styles."""

    distance: Tensor  # [C, S, S]: output (c, s) to style t
    own: Tensor  # [C, S]
    others: Tensor  # [C, S]: mean distance to the S − 1 other styles
    nearest_own: Tensor  # [C, S] bool
    spread: Tensor  # [C]
    style_spread: float

    def own_fraction(self) -> Tensor:
        """``[S]``: per style, the fraction of its outputs whose nearest style is their own."""
        return self.nearest_own.to(torch.float64).mean(0)


def _mean_pairwise(points: Tensor) -> Tensor:
    """``[..., S, D]`` → ``[...]``: mean Euclidean distance over the ``S (S − 1) / 2`` pairs."""
    s = points.shape[-2]
    d = torch.cdist(points, points)
    return d.sum((-2, -1)) / (s * (s - 1))


def colour_check(output_stats: Tensor, style_stats: Tensor) -> ColourCheck:
    """Compare outputs' colour statistics with their styles'.

    Args:
        output_stats: ``[C, S, D]``, the statistics of output (content ``c``, style ``s``).
        style_stats: ``[S, D]``, the statistics of the style images in the same order.

    Raises:
        ValueError: shapes that do not agree, or fewer than two styles (nothing to tell apart).
    """
    if output_stats.dim() != 3 or style_stats.dim() != 2 or output_stats.shape[1:] != style_stats.shape:
        raise ValueError(
            f"need output_stats [C, S, D] and style_stats [S, D], got {tuple(output_stats.shape)} and "
            f"{tuple(style_stats.shape)}"
        )
    n_styles = style_stats.shape[0]
    if n_styles < 2:
        raise ValueError(f"colour_check needs at least two styles, got {n_styles}")
    out, sty = output_stats.to(torch.float64), style_stats.to(torch.float64)
    distance = torch.cdist(out, sty.expand(out.shape[0], -1, -1))  # [C, S, S]
    eye = torch.eye(n_styles, dtype=torch.bool)
    own = distance.diagonal(dim1=1, dim2=2)
    others = distance.masked_fill(eye, 0.0).sum(-1) / (n_styles - 1)
    nearest_own = distance.argmin(-1) == torch.arange(n_styles)
    return ColourCheck(
        distance=distance,
        own=own,
        others=others,
        nearest_own=nearest_own,
        spread=_mean_pairwise(out),
        style_spread=float(_mean_pairwise(sty)),
    )
