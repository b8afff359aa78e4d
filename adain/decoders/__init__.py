"""Decoders from an encoder's AdaIN-layer features back to RGB images, picked by encoder name.

>>> decoder = build_decoder("vgg19_normalised")   # the original release's layout: decoder.pth loads as is
>>> image = decoder(features)                      # [B, 512, h, w] → [B, 3, 8h, 8w]

* ``vgg19_caffe`` / ``vgg19_caffe_normalised`` / ``vgg19`` / ``vgg19_normalised``: :class:`VGGDecoder`
  (exactly the public PyTorch port's ``decoder``, the mirror of VGG-19 up to ``relu4_1``).
* ``mobilenet_v2``: :class:`MobileNetV2Decoder` (mirror of MobileNetV2 from ``s16``).

Decoders are randomly initialised (PyTorch's default init); weights come from a model file
(:mod:`adain.modelfile`) or from training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from adain.decoders.base import Decoder, LayerSpec, decoder_layers
from adain.decoders.mobilenet_v2 import MOBILENET_V2_DECODER_SPEC, MobileNetV2Decoder
from adain.decoders.vgg import VGG_DECODER_SPEC, VGGDecoder

__all__ = [
    "MOBILENET_V2_DECODER_SPEC",
    "VGG_DECODER_SPEC",
    "Decoder",
    "LayerSpec",
    "MobileNetV2Decoder",
    "VGGDecoder",
    "build_decoder",
    "decoder_layers",
    "decoder_names",
]

_REGISTRY: Mapping[str, Callable[[], Decoder]] = MappingProxyType(
    {
        "vgg19_caffe": lambda: VGGDecoder("vgg19_caffe"),
        "vgg19_caffe_normalised": lambda: VGGDecoder("vgg19_caffe_normalised"),
        "vgg19": lambda: VGGDecoder("vgg19"),
        "vgg19_normalised": lambda: VGGDecoder("vgg19_normalised"),
        "mobilenet_v2": MobileNetV2Decoder,
    }
)


def decoder_names() -> tuple[str, ...]:
    """Encoder names :func:`build_decoder` has a decoder for."""
    return tuple(_REGISTRY)


def build_decoder(encoder_name: str) -> Decoder:
    """A randomly initialised decoder for the AdaIN layer of encoder ``encoder_name`` (on the CPU).

    Raises:
        ValueError: no decoder for that encoder name.
    """
    if encoder_name not in _REGISTRY:
        raise ValueError(f"no decoder for encoder {encoder_name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[encoder_name]()
