"""The frozen feature-encoder interface shared by every network in :mod:`adain.encoders`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from adain.encoders.shapes import min_input_length
from adain.encoders.weights import load_checked, load_state_dict_file
from adain.errors import ImageTooSmallError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "FeatureEncoder", "Tap"]

#: ImageNet channel statistics (RGB, for inputs in [0, 1]) used by torchvision's classification models.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Tap(NamedTuple):
    """One named feature tap of a network: the output of ``body[index]``.

    ``stride`` is the nominal downsampling factor (exact for inputs divisible by it).
    """

    name: str
    index: int
    channels: int
    stride: int


class FeatureEncoder(nn.Module):
    """A frozen CNN with named feature taps.

    The network is an ``nn.Sequential`` ``body``; tap ``name`` is the output of ``body[taps[name]]``.
    Parameters never require gradients and the module stays in eval mode even if ``.train()`` is called
    (batch-norm statistics are frozen); gradients still flow to the input images.

    Attributes:
        name: registry name of the network.
        layer_names: the taps, shallow to deep.
        adain_layer: the tap that plays the role of VGG's ``relu4_1`` (where AdaIN is applied).
        channels: tap → number of channels.
        strides: tap → nominal downsampling factor (exact for inputs divisible by it).
    """

    #: Prefixes of checkpoint keys that are ignored when loading weights (e.g. a classifier head).
    ignored_weight_prefixes: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        name: str,
        body: nn.Sequential,
        body_attr: str,
        taps: Sequence[Tap],
        adain_layer: str,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        """
        Args:
            name: registry name.
            body: the network, run module by module.
            body_attr: attribute name for ``body`` (fixes the state-dict key prefix, e.g. ``"features"``).
            taps: the network's layer table, one :class:`Tap` per named output.
            adain_layer: one of the taps.
            mean, std: per-channel input normalisation applied to [0, 1] RGB input; ``None`` for none.
        """
        super().__init__()
        names = [tap.name for tap in taps]
        if len(set(names)) != len(names) or adain_layer not in names:
            raise ValueError(f"{name}: duplicate tap names, or adain_layer {adain_layer!r} is not a tap")
        self.name = name
        self._body_attr = body_attr
        self.add_module(body_attr, body)
        for module in body.modules():  # a tap must not be overwritten by a later in-place op
            if hasattr(module, "inplace"):
                module.inplace = False
        self.tap_table: tuple[Tap, ...] = tuple(sorted(taps, key=lambda tap: tap.index))
        self._taps = {tap.name: tap.index for tap in self.tap_table}
        self.layer_names: tuple[str, ...] = tuple(self._taps)
        self.adain_layer = adain_layer
        self.channels: dict[str, int] = {tap.name: tap.channels for tap in self.tap_table}
        self.strides: dict[str, int] = {tap.name: tap.stride for tap in self.tap_table}
        if mean is not None and std is not None:
            self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        else:
            self.mean = self.std = None
        self._min_sizes = {
            layer: max(min_input_length(body[: idx + 1], axis) for axis in (0, 1))
            for layer, idx in self._taps.items()
        }
        self.requires_grad_(False)
        self.train(False)

    @property
    def body(self) -> nn.Sequential:
        """The underlying sequential network."""
        return getattr(self, self._body_attr)

    @property
    def taps(self) -> dict[str, int]:
        """Tap name → index into :attr:`body` whose output it is (shallow to deep)."""
        return dict(self._taps)

    def train(self, mode: bool = True) -> FeatureEncoder:
        """Stay in eval mode whatever ``mode`` is: the encoder is frozen, batch norm included."""
        return super().train(False)

    # ---- sizes -------------------------------------------------------------------------------------------

    def min_input_size(self, layer: str | None = None) -> int:
        """Smallest input height and width for which ``layer``'s feature map is non-empty.

        Computed by propagating side lengths through the layers (convolution, pooling with its ceil mode,
        reflection padding that needs an input longer than the pad). ``None`` means the deepest tap.
        """
        layer = self.layer_names[-1] if layer is None else layer
        self._check_layer_names([layer])
        return self._min_sizes[layer]

    def check_input_size(self, height: int, width: int, layers: Iterable[str] | None = None) -> None:
        """Raise :class:`ImageTooSmallError` if a ``height × width`` input is too small for ``layers``."""
        names = self._resolve_layers(layers)
        worst = max(names, key=lambda n: self._min_sizes[n])
        need = self._min_sizes[worst]
        if height < need or width < need:
            raise ImageTooSmallError(
                f"an input of {height}×{width} pixels is too small for layer {worst!r} of encoder "
                f"{self.name!r}: it needs at least {need}×{need} pixels (its feature map would be empty)"
            )

    # ---- forward -----------------------------------------------------------------------------------------

    def _check_layer_names(self, names: Iterable[str]) -> None:
        unknown = [n for n in names if n not in self._taps]
        if unknown:
            raise ValueError(
                f"encoder {self.name!r} has no layer(s) {unknown}; its layers are {list(self.layer_names)}"
            )

    def _resolve_layers(self, layers: Iterable[str] | str | None) -> tuple[str, ...]:
        """Requested taps, deduplicated, shallow to deep."""
        if layers is None:
            return self.layer_names
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names:
            raise ValueError("layers is empty; pass None for all layers")
        self._check_layer_names(names)
        return tuple(n for n in self.layer_names if n in set(names))

    def normalise(self, images: Tensor) -> Tensor:
        """Map RGB images in [0, 1] ``[B, 3, H, W]`` to the network's input convention (same shape)."""
        if self.mean is None:
            return images
        return (images - self.mean) / self.std

    def forward(self, images: Tensor, layers: Iterable[str] | str | None = None) -> dict[str, Tensor]:
        """Feature maps of ``images`` at the requested taps.

        Args:
            images: ``[B, 3, H, W]`` RGB floats in [0, 1].
            layers: tap names (any order; a single name is accepted), ``None`` for all taps.

        Returns:
            tap → ``[B, channels[tap], h, w]``, ordered shallow to deep; the pass stops at the deepest
            requested tap.

        Raises:
            ValueError: wrong input shape/dtype or unknown layer names.
            ImageTooSmallError: the input is too small for a requested tap.
        """
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"encoder {self.name!r} expects RGB images of shape [B, 3, H, W]; got {shape}")
        if not images.is_floating_point():
            raise ValueError(f"encoder {self.name!r} expects float images in [0, 1]; got {images.dtype}")
        names = self._resolve_layers(layers)
        self.check_input_size(images.shape[-2], images.shape[-1], names)
        wanted = {self._taps[n]: n for n in names}
        last = max(wanted)
        x = self.normalise(images)
        features: dict[str, Tensor] = {}
        for idx, module in enumerate(self.body):
            x = module(x)
            if idx in wanted:
                features[wanted[idx]] = x
            if idx == last:
                break
        for feat in features.values():
            if feat.requires_grad:
                feat.register_hook(_grad_in_layout_of(feat))
        return features

    # ---- weights -----------------------------------------------------------------------------------------

    def weights_target(self) -> nn.Module:
        """The module a weights file is loaded into (``self`` by default: torchvision key layout)."""
        return self

    def load_weights(self, state_dict: Mapping[str, Tensor], *, source: str) -> None:
        """Load ``state_dict`` with exact key and shape checks (see :func:`.weights.load_checked`)."""
        load_checked(
            self.weights_target(),
            state_dict,
            source=source,
            network=self.name,
            ignore_prefixes=self.ignored_weight_prefixes,
        )

    def load_weights_file(self, path: str | os.PathLike[str]) -> None:
        """Load a state-dict file (read with ``weights_only=True``)."""
        self.load_weights(load_state_dict_file(path), source=str(path))

    def pretrained_state_dict(self, *, progress: bool = False) -> tuple[dict[str, Tensor], str]:
        """The network's default pretrained weights and where they came from; each network implements it.

        Raises:
            WeightsError: the weights cannot be had; the message says how to get them.
        """
        raise NotImplementedError(f"encoder {self.name!r} has no default pretrained weights")

    def load_pretrained(self, *, progress: bool = False) -> None:
        """Load the default pretrained weights (:meth:`pretrained_state_dict`), checked key by key."""
        state, source = self.pretrained_state_dict(progress=progress)
        self.load_weights(state, source=source)


def _grad_in_layout_of(feat: Tensor):
    """A backward hook that hands the encoder a gradient in the memory layout of its own output ``feat``.

    Losses that view features as ``[B, M, N]`` samples (the ``mmd`` losses) send back a channels-last
    gradient for a contiguous ``[B, N, H, W]`` map. On the CPU, eval-mode ``BatchNorm2d`` backward in
    torch 2.15 returns wrong input gradients for such a mixed layout (seen with ``B = 1``), which would
    silently corrupt every optimisation and training run through MobileNetV2. Matching the layout of the
    forward tensor is always correct and costs one copy only when the layouts differ.
    """
    channels_last = (
        feat.dim() == 4 and not feat.is_contiguous() and feat.is_contiguous(memory_format=torch.channels_last)
    )
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def hook(grad: Tensor) -> Tensor:
        return grad.contiguous(memory_format=layout)

    return hook
