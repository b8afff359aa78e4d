"""The convolutional decoder shared by every architecture: a plain ``nn.Sequential`` built from a layer list.

A layer list (like torchvision's VGG ``cfgs``) is a sequence of output channel counts and ``"U"`` markers:

* an int ``c`` adds ``ReflectionPad2d(1)``, ``Conv2d(c_in, c, 3)`` and ``ReLU()`` (three modules);
* ``"U"`` adds ``Upsample(scale_factor=2, mode="nearest")`` (one module);
* the last entry is the RGB output conv: ``ReflectionPad2d(1)``, ``Conv2d(c_in, 3, 3)``, no activation.

There is no normalisation anywhere. Because the module *is* the sequential, its state-dict keys are the bare
module indices (``1.weight``, ``1.bias``, ``5.weight``, …), as in the public PyTorch AdaIN port.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Decoder", "LayerSpec", "decoder_layers"]

LayerSpec = Sequence[int | str]


def decoder_layers(in_channels: int, spec: LayerSpec) -> list[nn.Module]:
    """The module list for ``spec`` (see the module docstring); the last entry must be ``3``."""
    if not spec or spec[-1] != 3:
        raise ValueError(f"a decoder layer list must end with the RGB conv (3 channels); got {list(spec)}")
    layers: list[nn.Module] = []
    channels = int(in_channels)
    for i, item in enumerate(spec):
        if item == "U":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            continue
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ValueError(f"decoder layer list entry {i} must be a channel count or 'U'; got {item!r}")
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, item, kernel_size=3)]
        if i < len(spec) - 1:
            layers.append(nn.ReLU())
        channels = item
    return layers


class Decoder(nn.Sequential):
    """Features at an encoder's AdaIN layer → an RGB image.

    ``forward``: ``[B, in_channels, h, w]`` → ``[B, 3, h · stride, w · stride]`` (unbounded values; the
    model clamps them to [0, 1]).

    Attributes:
        encoder_name: the encoder (registry name) whose AdaIN-layer features it decodes.
        in_channels: channels of those features.
        stride: total upsampling factor (``2 ** number of "U"``), the encoder's stride at that layer.
        spec: the layer list it was built from.
    """

    def __init__(self, encoder_name: str, in_channels: int, spec: LayerSpec) -> None:
        super().__init__(*decoder_layers(in_channels, spec))
        self.encoder_name = encoder_name
        self.in_channels = int(in_channels)
        self.spec = tuple(spec)
        self.stride = 2 ** sum(1 for item in spec if item == "U")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation (``kaiming_normal_``, fan-in, ReLU gain) for the convolutions followed by a ReLU,
        zero biases; the last convolution gets a linear-gain He init scaled by 0.1 and a mid-grey bias (0.5).

        Signal-preserving: PyTorch's default conv init (``kaiming_uniform_`` with ``a=√5``, a gain of 1/3)
        shrinks the signal ~2.5× per layer, so a 9-conv VGG decoder starts with outputs ~1000× smaller than
        its input's variations (``python -m experiments.decoder_health``), and under Adam at lr 5e-4 most of
        its ReLUs died within a few hundred iterations (see notes/default_model.md). This init only changes
        where training starts; the architecture and the port's weight layout are unchanged.
        """
        convs = [m for m in self if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            for conv in convs[:-1]:
                nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
                if conv.bias is not None:
                    conv.bias.zero_()
            last = convs[-1]
            nn.init.kaiming_normal_(last.weight, mode="fan_in", nonlinearity="linear")
            last.weight.mul_(0.1)
            if last.bias is not None:
                last.bias.fill_(0.5)

    def forward(self, features: Tensor) -> Tensor:
        """``[B, in_channels, h, w]`` → ``[B, 3, h · stride, w · stride]``."""
        if features.dim() != 4 or features.shape[1] != self.in_channels:
            raise ValueError(
                f"the {self.encoder_name} decoder expects features of shape [B, {self.in_channels}, h, w]; "
                f"got {tuple(features.shape)}"
            )
        return super().forward(features)
