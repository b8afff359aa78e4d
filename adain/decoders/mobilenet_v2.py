"""A decoder mirroring MobileNetV2 from its AdaIN layer ``s16`` (96 channels, stride 16) back to RGB.

Same building blocks as the VGG decoder (reflection-padded 3×3 convs + ReLU, nearest ×2 upsampling, no
normalisation, a final conv to 3 channels); one upsampling per stride-2 stage of the encoder, with widths
that shrink as the resolution grows (a bit wider than the encoder's own 96/32/24/16, which are linear
bottlenecks, so that the decoder has room to paint texture)::

    s16: 96 → 128   ×2 up   s8: 128 → 64 → 64   ×2 up   s4: 64 → 48 → 48   ×2 up
    s2: 48 → 32     ×2 up   s1: 32 → 16 → 3

About 3.5 GMAC for a 512×512 output (the VGG decoder: about 63 GMAC).
"""

from __future__ import annotations

from adain.decoders.base import Decoder

__all__ = ["MOBILENET_V2_DECODER_SPEC", "MobileNetV2Decoder"]

MOBILENET_V2_DECODER_SPEC = (128, "U", 64, 64, "U", 48, 48, "U", 32, "U", 16, 3)


class MobileNetV2Decoder(Decoder):
    """``[B, 96, h, w]`` (``s16``) → ``[B, 3, 16h, 16w]``."""

    def __init__(self, encoder_name: str = "mobilenet_v2") -> None:
        super().__init__(encoder_name, 96, MOBILENET_V2_DECODER_SPEC)
