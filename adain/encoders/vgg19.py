"""VGG-19 from torchvision (``vgg19().features``) with ImageNet mean/std normalisation.

Taps (indices into torchvision's ``vgg19().features``, checked against its module list)::

    relu1_1   1   64 channels  stride 1
    relu2_1   6  128           stride 2
    relu3_1  11  256           stride 4
    relu4_1  20  512           stride 8    <- adain_layer
    conv4_2  21  512           stride 8    (pre-activation, as in Gatys et al.'s content layer)
    relu5_1  29  512           stride 16

Zero padding and floor-mode pooling, so a tap at stride ``s`` has ``floor(H / s)`` rows.
Weights: ``VGG19_Weights.IMAGENET1K_V1`` via the torch hub cache, or a torchvision-layout state dict
(``features.N.weight`` …; ``classifier.*`` keys are ignored if present).
"""

from __future__ import annotations

from torch import nn
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from adain.encoders.base import IMAGENET_MEAN, IMAGENET_STD, FeatureEncoder
from adain.encoders.weights import torchvision_state_dict

__all__ = ["VGG19Encoder"]

TAPS = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "conv4_2": 21, "relu5_1": 29}
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "conv4_2": 512, "relu5_1": 512}
STRIDES = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8, "conv4_2": 8, "relu5_1": 16}


def _vgg19_features() -> nn.Sequential:
    """torchvision's VGG-19 convolutional part (configuration "E"), initialised as torchvision does."""
    features = make_layers(cfgs["E"], batch_norm=False)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return features


class VGG19Encoder(FeatureEncoder):
    """torchvision VGG-19 features; input ``[B, 3, H, W]`` RGB in [0, 1], normalised internally."""

    ignored_weight_prefixes = ("classifier.",)
    weights_enum = VGG19_Weights.IMAGENET1K_V1

    def __init__(self) -> None:
        super().__init__(
            name="vgg19",
            body=_vgg19_features(),
            body_attr="features",
            taps=TAPS,
            channels=CHANNELS,
            strides=STRIDES,
            adain_layer="relu4_1",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )

    def load_pretrained(self, *, progress: bool = False) -> None:
        """Load ``VGG19_Weights.IMAGENET1K_V1`` from the torch hub cache (downloading it if possible)."""
        state = torchvision_state_dict(self.weights_enum, network=self.name, progress=progress)
        self.load_weights(state, source=str(self.weights_enum.url))
