"""VGG-19 from torchvision (``vgg19().features``) with ImageNet mean/std normalisation.

Taps (indices into torchvision's ``vgg19().features``, checked against its module list)::

    relu1_1   1   64 channels  stride 1
    relu2_1   6  128           stride 2
    relu3_1  11  256           stride 4
    relu4_1  20  512           stride 8    <- adain_layer
    conv4_2  21  512           stride 8    (pre-activation, as in Gatys et al.'s content layer)
    relu4_2  22  512           stride 8    (Li et al.'s content layer)
    relu5_1  29  512           stride 16

Zero padding and floor-mode pooling, so a tap at stride ``s`` has ``floor(H / s)`` rows.
Weights: ``VGG19_Weights.IMAGENET1K_V1`` via the torch hub cache, or a torchvision-layout state dict
(``features.N.weight`` …; ``classifier.*`` keys are ignored if present).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from adain.encoders.base import IMAGENET_MEAN, IMAGENET_STD, FeatureEncoder, Tap
from adain.encoders.registry import register_encoder
from adain.encoders.weights import torchvision_state_dict

__all__ = ["TAPS", "VGG19Encoder", "vgg19_features"]

#: The layer table of torchvision's ``vgg19().features`` layout (shared by every VGG-19 in this package
#: that uses it): name, index, channels, stride.
TAPS = (
    Tap("relu1_1", 1, 64, 1),
    Tap("relu2_1", 6, 128, 2),
    Tap("relu3_1", 11, 256, 4),
    Tap("relu4_1", 20, 512, 8),
    Tap("conv4_2", 21, 512, 8),
    Tap("relu4_2", 22, 512, 8),
    Tap("relu5_1", 29, 512, 16),
)


def vgg19_features() -> nn.Sequential:
    """torchvision's VGG-19 convolutional part (configuration "E"), initialised as torchvision does."""
    features = make_layers(cfgs["E"], batch_norm=False)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return features


@register_encoder("vgg19")
class VGG19Encoder(FeatureEncoder):
    """torchvision VGG-19 features; input ``[B, 3, H, W]`` RGB in [0, 1], normalised internally."""

    ignored_weight_prefixes = ("classifier.",)
    weights_enum = VGG19_Weights.IMAGENET1K_V1

    def __init__(self) -> None:
        super().__init__(
            name="vgg19",
            body=vgg19_features(),
            body_attr="features",
            taps=TAPS,
            adain_layer="relu4_1",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )

    def pretrained_state_dict(self, *, progress: bool = False) -> tuple[dict[str, Tensor], str]:
        """``VGG19_Weights.IMAGENET1K_V1`` from the torch hub cache (downloaded into it if possible)."""
        state = torchvision_state_dict(self.weights_enum, network=self.name, progress=progress)
        return state, str(self.weights_enum.url)
