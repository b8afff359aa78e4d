"""Frozen ImageNet feature encoders with named taps, picked by name.

>>> encoder = build_encoder("mobilenet_v2")            # pretrained weights from the torch hub cache
>>> feats = encoder(images, layers=("s2", encoder.adain_layer))   # images: [B, 3, H, W] RGB in [0, 1]

Networks: ``vgg19`` (torchvision), ``vgg19_normalised`` (the original AdaIN release's layout; needs
``weights=PATH``) and ``mobilenet_v2`` (torchvision). See each module for its taps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType

from adain.encoders.base import FeatureEncoder
from adain.encoders.mobilenet_v2 import MobileNetV2Encoder, build_classifier_head
from adain.encoders.vgg19 import VGG19Encoder
from adain.encoders.vgg19_normalised import VGG19NormalisedEncoder

__all__ = [
    "FeatureEncoder",
    "MobileNetV2Encoder",
    "VGG19Encoder",
    "VGG19NormalisedEncoder",
    "available_encoders",
    "build_classifier_head",
    "build_encoder",
]

_REGISTRY: Mapping[str, Callable[[], FeatureEncoder]] = MappingProxyType(
    {
        "vgg19": VGG19Encoder,
        "vgg19_normalised": VGG19NormalisedEncoder,
        "mobilenet_v2": MobileNetV2Encoder,
    }
)


def available_encoders() -> tuple[str, ...]:
    """Names accepted by :func:`build_encoder`."""
    return tuple(_REGISTRY)


def build_encoder(
    name: str,
    pretrained: bool = True,
    weights: str | os.PathLike[str] | None = None,
    *,
    progress: bool = False,
) -> FeatureEncoder:
    """Build a frozen encoder (on the CPU, in eval mode).

    Args:
        name: one of :func:`available_encoders`.
        pretrained: with ``weights=None``, load the default pretrained weights (torch hub cache, downloaded
            once if online). ``False`` gives a randomly initialised network — the only way to get one.
        weights: path to a state dict: torchvision key layout for ``vgg19`` / ``mobilenet_v2`` (classifier
            keys may be absent), the original ``vgg_normalised.pth`` layout for ``vgg19_normalised``.
        progress: show a progress bar while downloading.

    Raises:
        ValueError: unknown ``name``, or ``weights`` given with ``pretrained=False``.
        WeightsError: weights missing (offline and not cached), unreadable, or not matching the network.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown encoder {name!r}; available: {', '.join(_REGISTRY)}")
    if weights is not None and not pretrained:
        raise ValueError("pretrained=False asks for a random network but weights=PATH was given; pick one")
    encoder = _REGISTRY[name]()
    if weights is not None:
        encoder.load_weights_file(weights)
    elif pretrained:
        encoder.load_pretrained(progress=progress)
    return encoder
