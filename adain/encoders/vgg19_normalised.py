"""VGG-19 in the layout of the original AdaIN release (``vgg_normalised.pth`` of the PyTorch port).

The network is one ``nn.Sequential`` of 53 modules whose state-dict keys are exactly those of
``vgg_normalised.pth`` (``0.weight, 0.bias, 2.weight, 2.bias, 5.weight, …, 51.bias``), so such a file loads
with ``strict=True``:

* module ``0`` is ``Conv2d(3, 3, 1)``: in the released file it folds in Caffe's preprocessing, i.e. it maps
  RGB in [0, 1] to BGR in [0, 255] minus the ImageNet BGR mean. This encoder therefore feeds images in
  [0, 1] straight in (no further normalisation), exactly as the public PyTorch port does;
* every 3×3 convolution is preceded by ``ReflectionPad2d(1)`` and followed by ``ReLU``;
* max-pooling is 2×2, stride 2, ``ceil_mode=True`` (a tap at stride ``s`` has ``ceil(H / s)`` rows);
* the list runs to ``relu5_4`` (index 52); the weights are the "normalised" VGG-19 of Gatys et al.

Taps (indices into the sequential)::

    relu1_1   3   64 channels  stride 1
    relu2_1  10  128           stride 2
    relu3_1  17  256           stride 4
    relu4_1  30  512           stride 8    <- adain_layer
    conv4_2  32  512           stride 8    (pre-activation)
    relu4_2  33  512           stride 8
    relu5_1  43  512           stride 16

There is no torchvision entry for these weights: get ``vgg_normalised.pth`` from the PyTorch AdaIN port's
release (:data:`DOWNLOAD_URL`) and pass ``weights=PATH`` (``--encoder-weights PATH``), or
use ``vgg19_caffe_normalised`` (:mod:`.vgg19_caffe`), Gatys et al.'s normalisation of the same original
weights, built from an installed package.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.vgg import cfgs

from adain.encoders.base import FeatureEncoder
from adain.encoders.registry import register_encoder
from adain.encoders.vgg19 import TAPS as VGG19_TAPS
from adain.errors import WeightsError

__all__ = ["DOWNLOAD_URL", "VGG19NormalisedEncoder", "vgg_normalised_layers"]

#: Where the AdaIN PyTorch port publishes the file.
DOWNLOAD_URL = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/vgg_normalised.pth"

#: The VGG-19 layer table (:data:`adain.encoders.vgg19.TAPS`) at this sequential's indices.
TAPS = tuple(
    tap._replace(index=index)
    for tap, index in zip(
        VGG19_TAPS, (3, 10, 17, 30, 32, 33, 43), strict=True
    )  # relu1_1 relu2_1 relu3_1 relu4_1 conv4_2 relu4_2 relu5_1
)


def vgg_normalised_layers() -> nn.Sequential:
    """The 53-module sequential of ``vgg_normalised.pth`` (randomly initialised)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, kernel_size=1)]
    in_channels = 3
    for item in cfgs["E"]:  # VGG-19: 64, 64, M, 128, 128, M, 256 ×4, M, 512 ×4, M, 512 ×4, M
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True))
            continue
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(in_channels, int(item), kernel_size=3), nn.ReLU()]
        in_channels = int(item)
    layers.pop()  # the release stops at relu5_4: no final pooling
    return nn.Sequential(*layers)


@register_encoder("vgg19_normalised")
class VGG19NormalisedEncoder(FeatureEncoder):
    """The AdaIN release's VGG-19; input ``[B, 3, H, W]`` RGB in [0, 1], fed as is (see module doc)."""

    def __init__(self) -> None:
        super().__init__(
            name="vgg19_normalised",
            body=vgg_normalised_layers(),
            body_attr="net",
            taps=TAPS,
            adain_layer="relu4_1",
        )

    def weights_target(self) -> nn.Module:
        """``vgg_normalised.pth`` keys (``0.weight`` …) belong to the bare sequential."""
        return self.body

    def pretrained_state_dict(self, *, progress: bool = False) -> tuple[dict[str, Tensor], str]:
        """There is no built-in download: always raises :class:`WeightsError` explaining what to do."""
        raise WeightsError(
            "the vgg19_normalised encoder needs the AdaIN release's vgg_normalised.pth, which is not "
            f"downloaded automatically: get it from {DOWNLOAD_URL} and pass weights=PATH "
            "(--encoder-weights PATH on the command line), or use the encoder vgg19_caffe_normalised, "
            "the same network built from an installed package"
        )
