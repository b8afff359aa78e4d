"""Style-image augmentation for decoder training: more distinct styles out of few paintings.

Pure functions of an image and a seeded :class:`torch.Generator` (so a training run stays exactly
resumable), composed by :class:`StyleAugment`:

* :func:`random_scale_crop`: a square crop whose side is drawn log-uniformly between the output size and
  the image's shorter side, resized to the output size: the same painting at several scales of its
  brush strokes.
* :func:`rotate_hue`: a rotation of the chroma plane (YIQ), which keeps luminance and saturation and turns
  one palette into another.
* :func:`scale_saturation`: chroma scaled about the luminance axis.

Images are ``[3, H, W]`` RGB float tensors in [0, 1]; outputs are clamped to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["StyleAugment", "random_scale_crop", "rotate_hue", "scale_saturation"]

# RGB → YIQ (NTSC); its inverse is computed once per call from this matrix.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=torch.float64,
)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def random_scale_crop(image: Tensor, size: int, generator: torch.Generator, max_scale: float = 4.0) -> Tensor:
    """``[3, H, W]`` → ``[3, size, size]``: a square crop of side ``s`` (log-uniform in
    ``[size, min(H, W, max_scale · size)]``) at a random position, resized (antialiased) to ``size``.

    Raises:
        ValueError: the image is smaller than ``size``.
    """
    h, w = image.shape[-2:]
    if min(h, w) < size:
        raise ValueError(f"cannot crop {size}×{size} from an image of {h}×{w}")
    largest = min(h, w, int(max_scale * size))
    side = round(math.exp(_uniform(generator, math.log(size), math.log(largest))))
    side = max(size, min(side, largest))
    top = int(torch.randint(0, h - side + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - side + 1, (1,), generator=generator))
    crop = image[..., top : top + side, left : left + side]
    if side == size:
        return crop.contiguous()
    resized = F.interpolate(
        crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized[0].clamp(0, 1)


def _in_yiq(image: Tensor, transform: Tensor) -> Tensor:
    """Apply the 3×3 ``transform`` to the YIQ coordinates of ``image`` ``[3, H, W]``."""
    to_yiq = _RGB_TO_YIQ
    matrix = torch.linalg.inv(to_yiq) @ transform @ to_yiq
    out = torch.einsum("ij,jhw->ihw", matrix.to(image.dtype), image)
    return out.clamp(0, 1)


def rotate_hue(image: Tensor, angle: float) -> Tensor:
    """Rotate the hue of ``[3, H, W]`` by ``angle`` radians (a rotation of the I–Q plane)."""
    c, s = math.cos(angle), math.sin(angle)
    transform = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)
    return _in_yiq(image, transform)


def scale_saturation(image: Tensor, factor: float) -> Tensor:
    """Scale the chroma (I and Q) of ``[3, H, W]`` by ``factor`` (0: grey, 1: unchanged)."""
    transform = torch.diag(torch.tensor([1.0, factor, factor], dtype=torch.float64))
    return _in_yiq(image, transform)


@dataclass(frozen=True)
class StyleAugment:
    """Random scale crop, then (with probability ``colour_p``) a hue rotation of up to ``± max_hue``
    radians and a saturation factor in ``[1 / max_saturation, max_saturation]``.

    ``augment(image, size, generator)``: ``[3, H, W]`` → ``[3, size, size]``, all draws from ``generator``.
    """

    max_scale: float = 4.0
    colour_p: float = 0.5
    max_hue: float = math.pi
    max_saturation: float = 1.5

    def __post_init__(self) -> None:
        if self.max_scale < 1 or not 0 <= self.colour_p <= 1 or self.max_hue < 0 or self.max_saturation < 1:
            raise ValueError(
                "need max_scale ≥ 1, 0 ≤ colour_p ≤ 1, max_hue ≥ 0 and max_saturation ≥ 1; got "
                f"{self.max_scale}, {self.colour_p}, {self.max_hue}, {self.max_saturation}"
            )

    def __call__(self, image: Tensor, size: int, generator: torch.Generator) -> Tensor:
        out = random_scale_crop(image, size, generator, self.max_scale)
        recolour = _uniform(generator, 0.0, 1.0) < self.colour_p
        angle = _uniform(generator, -self.max_hue, self.max_hue)
        log_sat = _uniform(generator, -math.log(self.max_saturation), math.log(self.max_saturation))
        if recolour:
            out = scale_saturation(rotate_hue(out, angle), math.exp(log_sat))
        return out.contiguous()
