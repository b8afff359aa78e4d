"""Decoder artefacts in one image: periodic (checkerboard) patterns and border bands.

**Checkerboard prominence** (:func:`checkerboard_prominence`). A decoder that upsamples by 2 three times
(VGG-19 to relu4_1) can leave a pattern that repeats every 2, 4 or 8 pixels. Such a pattern puts its
energy in the image's spectrum at the frequencies ``(k·H/p, l·W/p)`` (``p`` the period, not both 0),
exactly, when the image is cropped to a multiple of the periods (done here, from the top-left corner, the
decoder's grid origin). A natural image's spectrum is smooth there. So the measure is the power of the
mean-removed luminance at those bins divided by the power that their neighbours predict: the mean power
of the bins 1 and 2 steps away along the frequency axes (only along the line itself for a bin on an axis,
where the image's edges leak power). About 1 for an image without periodic pattern, whatever its
content; a visible 2-px checkerboard gives tens or more. Compare an output with its content image.

**Border step** (:func:`border_step`). A decoder with zero padding can darken or brighten a band of a few
pixels along the image's edges. For each side, the luminance of the outer ``band`` rows (or columns) is
averaged across the band's depth into a profile along the edge, the same for the next band in, and the
mean absolute difference of the two profiles is taken; the result is the mean over the four sides, in
luminance units (pixels in [0, 1]). Near 0 for a smooth image, ~0.3 for a 4-px black frame on a mid-grey
image; a textured image has a baseline of its own (compare with the content's).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["border_step", "checkerboard_prominence", "luminance"]


def luminance(image: Tensor) -> Tensor:
    """``[3, H, W]`` RGB (Rec. 601 weights) or ``[H, W]`` (returned as is) → ``[H, W]`` float64."""
    if image.dim() == 3 and image.shape[0] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64, device=image.device)
        return (image.to(torch.float64) * weights[:, None, None]).sum(0)
    if image.dim() == 2:
        return image.to(torch.float64)
    raise ValueError(f"need an image [3, H, W] or [H, W], got {tuple(image.shape)}")


def _peak_bins(h: int, w: int, periods: tuple[int, ...]) -> set[tuple[int, int]]:
    bins = set()
    for p in periods:
        for k in range(p):
            for m in range(p):
                if k or m:
                    bins.add((k * h // p, m * w // p))
    return bins


def checkerboard_prominence(image: Tensor, periods: tuple[int, ...] = (2, 4, 8)) -> float:
    """Power at the bins of patterns of the given periods over the power their neighbours predict.

    Args:
        image: ``[3, H, W]`` or ``[H, W]``, pixels in [0, 1].
        periods: pattern periods in pixels (each ≥ 2).

    Returns:
        The ratio (≈ 1: no periodic pattern; ≫ 1: one); see the module doc.

    Raises:
        ValueError: a period below 2, or an image smaller than 4 periods of the longest one.
    """
    if not periods or min(periods) < 2:
        raise ValueError(f"periods must be integers >= 2, got {periods}")
    lum = luminance(image)
    step = math.lcm(*periods)
    h, w = (lum.shape[0] // step) * step, (lum.shape[1] // step) * step
    if min(h, w) < 4 * step:
        raise ValueError(f"image {tuple(lum.shape)} too small for periods {periods}: need >= {4 * step} px")
    lum = lum[:h, :w]
    power = torch.fft.fft2(lum - lum.mean()).abs().pow(2)
    peaks = _peak_bins(h, w, periods)
    observed = expected = 0.0
    for u, v in peaks:
        along_v = [(u, (v + d) % w) for d in (-2, -1, 1, 2)]
        along_u = [((u + d) % h, v) for d in (-2, -1, 1, 2)]
        near = along_v if u == 0 else along_u if v == 0 else along_v + along_u
        near = [b for b in near if b not in peaks and b != (0, 0)]
        observed += float(power[u, v])
        expected += float(sum(power[b] for b in near)) / max(len(near), 1)
    return observed / max(expected, 1e-30)


def border_step(image: Tensor, band: int = 4) -> float:
    """Mean absolute luminance difference between the outer ``band`` pixels and the next band in.

    Args:
        image: ``[3, H, W]`` or ``[H, W]``, pixels in [0, 1].
        band: band width in pixels.

    Returns:
        The mean over the four sides (luminance units); see the module doc.

    Raises:
        ValueError: ``band < 1`` or an image narrower than two bands on a side.
    """
    lum = luminance(image)
    if band < 1 or min(lum.shape) < 2 * band:
        raise ValueError(f"need band >= 1 and an image of >= {2 * band} px, got {band}, {tuple(lum.shape)}")
    sides = (lum, lum.flip(0), lum.T, lum.T.flip(0))  # the top row first: top, bottom, left, right
    steps = [(side[:band].mean(0) - side[band : 2 * band].mean(0)).abs().mean() for side in sides]
    return float(torch.stack(steps).mean())
