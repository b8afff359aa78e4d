"""MobileNetV2 from torchvision (``mobilenet_v2().features``) with ImageNet mean/std normalisation.

Taps are the outputs of the last block at each resolution (indices into ``features``)::

    s2    1    16 channels  stride 2   (first inverted-residual block)
    s4    3    24           stride 4
    s8    6    32           stride 8
    s16  13    96           stride 16   <- adain_layer
    s32  18  1280           stride 32   (final 1×1 conv + ReLU6: the input of the classifier)

``s2 … s16`` play the roles of VGG's ``relu1_1 … relu4_1`` (four style levels, shallow to deep), so ``s16``
is the AdaIN layer: the deepest of the four, with the most semantic features (96 channels); ``s32`` is the
classifier's input and mainly useful for checks. Block outputs are linear (MobileNetV2's bottlenecks
have no activation at the end), so ``s2 … s16`` can be negative. Stride-2 convolutions use padding 1, so
a tap at stride ``s`` has ``ceil(H / s)`` rows and every input size of at least 1 pixel works.

Weights: ``MobileNet_V2_Weights.IMAGENET1K_V1`` via the torch hub cache, or a torchvision-layout state dict
(``features.*``; ``classifier.*`` keys are ignored by the encoder). :func:`build_classifier_head` gives the
matching ImageNet classifier for the ``s32`` features.
"""

from __future__ import annotations

import os

from torch import Tensor, nn
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

from adain.encoders.base import IMAGENET_MEAN, IMAGENET_STD, FeatureEncoder
from adain.encoders.weights import load_checked, load_state_dict_file, torchvision_state_dict

__all__ = ["ClassifierHead", "MobileNetV2Encoder", "build_classifier_head"]

TAPS = {"s2": 1, "s4": 3, "s8": 6, "s16": 13, "s32": 18}
CHANNELS = {"s2": 16, "s4": 24, "s8": 32, "s16": 96, "s32": 1280}
STRIDES = {"s2": 2, "s4": 4, "s8": 8, "s16": 16, "s32": 32}
WEIGHTS = MobileNet_V2_Weights.IMAGENET1K_V1


class MobileNetV2Encoder(FeatureEncoder):
    """torchvision MobileNetV2 features; input ``[B, 3, H, W]`` RGB in [0, 1], normalised internally."""

    ignored_weight_prefixes = ("classifier.",)
    weights_enum = WEIGHTS

    def __init__(self) -> None:
        super().__init__(
            name="mobilenet_v2",
            body=mobilenet_v2(weights=None).features,
            body_attr="features",
            taps=TAPS,
            channels=CHANNELS,
            strides=STRIDES,
            adain_layer="s16",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )

    def load_pretrained(self, *, progress: bool = False) -> None:
        """Load ``MobileNet_V2_Weights.IMAGENET1K_V1`` from the torch hub cache (downloading if possible)."""
        state = torchvision_state_dict(self.weights_enum, network=self.name, progress=progress)
        self.load_weights(state, source=str(self.weights_enum.url))


class ClassifierHead(nn.Module):
    """torchvision's MobileNetV2 classifier after global average pooling, frozen.

    ``forward``: ``[B, 1280, h, w]`` (the encoder's ``s32`` tap) → ``[B, 1000]`` ImageNet logits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.classifier = mobilenet_v2(weights=None).classifier  # Dropout(0.2), Linear(1280, 1000)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> ClassifierHead:
        """Always in eval mode (dropout off)."""
        return super().train(False)

    def forward(self, features: Tensor) -> Tensor:
        return self.classifier(features.mean(dim=(2, 3)))


def build_classifier_head(
    pretrained: bool = True, weights: str | os.PathLike[str] | None = None
) -> ClassifierHead:
    """The ImageNet classifier matching :class:`MobileNetV2Encoder`'s ``s32`` tap.

    Args:
        pretrained: load ``IMAGENET1K_V1`` from the hub cache when ``weights`` is not given.
        weights: a torchvision-layout state dict file (must contain ``classifier.1.weight/bias``).

    Raises:
        WeightsError: as for the encoder; also when the file lacks the classifier keys.
    """
    head = ClassifierHead()
    if weights is not None:
        state, source = load_state_dict_file(weights), str(weights)
    elif pretrained:
        state, source = torchvision_state_dict(WEIGHTS, network="mobilenet_v2"), WEIGHTS.url
    else:
        return head
    load_checked(
        head, state, source=source, network="mobilenet_v2 classifier", ignore_prefixes=("features.",)
    )
    return head
