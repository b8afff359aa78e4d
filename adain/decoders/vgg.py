"""The decoder of the original AdaIN release for VGG-19 ``relu4_1`` features (512 channels, stride 8).

Its layer list is exactly that of the public PyTorch port's ``decoder`` (checked against the port's
``net.py``): 29 modules, conv weights at indices ``1, 5, 8, 11, 14, 18, 21, 25, 28``::

    512 → 256, ×2 up, 256 → 256 ×3, 256 → 128, ×2 up, 128 → 128, 128 → 64, ×2 up, 64 → 64, 64 → 3

every conv 3×3 after ``ReflectionPad2d(1)`` and followed by ``ReLU`` except the last; nearest-neighbour
upsampling; no normalisation. So the port's ``decoder.pth`` (keys ``1.weight``, ``1.bias``, ``5.weight``,
…, ``28.bias``) loads with ``strict=True``. (The port writes ``UpsamplingNearest2d(scale_factor=2)``, the
same operation as ``Upsample(scale_factor=2, mode="nearest")``; neither has parameters.)
"""

from __future__ import annotations

from adain.decoders.base import Decoder

__all__ = ["VGG_DECODER_SPEC", "VGGDecoder"]

VGG_DECODER_SPEC = (256, "U", 256, 256, 256, 128, "U", 128, 64, "U", 64, 3)


class VGGDecoder(Decoder):
    """``[B, 512, h, w]`` (``relu4_1``) → ``[B, 3, 8h, 8w]``; for ``vgg19`` and ``vgg19_normalised``."""

    def __init__(self, encoder_name: str = "vgg19_normalised") -> None:
        super().__init__(encoder_name, 512, VGG_DECODER_SPEC)
