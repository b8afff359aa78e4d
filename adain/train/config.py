"""The training config: a frozen, validated dataclass (saved in checkpoints and model files as plain data)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mmd
from adain.devices import PRECISION_CHOICES

__all__ = ["LAYER_NORMALISATIONS", "RUN_FIELDS", "TrainConfig", "legacy_style_loss_spec"]

#: fields a resumed run may change (they do not change what is learnt from a given state; ``lr`` so that a
#: diverged run can be resumed from its last good checkpoint with a smaller rate; ``ema_decay`` only
#: changes the running average kept beside the weights)
RUN_FIELDS = (
    "output",
    "iterations",
    "checkpoint_every",
    "workers",
    "device",
    "progress",
    "lr",
    "cache_images",
    "ema_decay",
)

_INTS = (
    "batch_size",
    "iterations",
    "image_size",
    "crop_size",
    "workers",
    "seed",
    "checkpoint_every",
    "num_samples",
)
_FLOATS = ("style_weight", "content_weight", "tv_weight", "pixel_weight", "lr", "lr_decay", "ema_decay")
_STRS = (
    "content_dir",
    "style_dir",
    "output",
    "encoder",
    "layer_weighting",
    "layer_normalisation",
    "device",
    "precision",
)
LAYER_NORMALISATIONS = ("none", "initial")
_FLOAT32_MAX = 3.4028234663852886e38
_LEGACY_LOSS_KEYS = ("kernel", "degree", "gamma", "c", "sigma", "median_scales")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Validated on construction (``ValueError`` naming the field).

    ``style_loss`` is an :mod:`mmd` style-loss spec (:class:`mmd.StyleLossSpec`; a dict such as
    ``{"name": "mmd", "kernel": {"name": "gaussian", "sigma": "median"}}`` or a bare name is converted).
    ``layers=None`` means the encoder's taps up to and including its ``adain_layer``. ``layer_weighting``:
    ``"channels"`` weighs each style layer by ``1/N_l``, ``"ones"`` by 1, ``"auto"`` is ``"channels"`` for
    ``meanstd`` (the public port's MSE of means and stds, the paper's recipe) and ``"ones"`` otherwise (Gram
    and MMD are already scaled by ``1/(4N²)``). ``layer_normalisation="initial"`` divides each style layer's
    term by its value ``ref_l`` at the starting decoder (after init or ``init_decoder``) on the run's first
    batch, computed once without gradient, stored in the checkpoint and reused on resume; with it ``"auto"``
    weighting means equal weights, so every loss gives every layer the same share at the start and the style
    term starts at ``Σ_l w_l`` (the number of layers): one layer-weighting convention for every loss (the
    decoder ablation's). ``"none"`` (default) is the paper's recipe. ``layer_scales`` (e.g.
    ``{"relu1_1": 4}``) multiplies the named style layers' weights after all of that (a layer not named
    keeps factor 1), to shift the style term toward some scales. ``style_positions``: the style losses
    see that many random positions per layer, redrawn each iteration from ``(seed, iteration)``.
    ``pretrained=False`` gives a random encoder (tests and benchmarks only). ``style_augment`` draws style
    crops through :class:`adain.augment.StyleAugment` (crops at several scales, hue and saturation changes);
    ``cache_images`` keeps decoded, resized images in memory; ``channels_last`` runs the networks in that
    memory format (faster convolutions on the CPU); ``init_decoder`` starts the decoder from a model file
    or a training checkpoint (a warm start: the next stage of a staged schedule). ``reconstruction`` trains
    the decoder to invert the encoder (target ``t = E(c)``, no AdaIN and no style term; the style images
    are drawn but not encoded), with ``pixel_weight · mean (D(E(c)) − c)²`` in place of the style term: the
    reconstruction warm start of a staged schedule. ``pixel_weight`` needs ``reconstruction``.
    ``tv_weight`` adds ``tv_weight · L_tv`` (:func:`adain.gatys.total_variation` of the decoded batch, mean
    squared differences of adjacent pixels in ``[0, 1]`` units) to the AdaIN objective, against
    high-frequency artefacts. ``forked_from``: the checkpoint whose whole training state a forked run
    started from (``adain train --fork``), ``None`` otherwise. ``ema_decay`` ``d > 0`` keeps an exponential
    moving average of the decoder weights, ``ema ← d·ema + (1 − d)·w`` after every step (Polyak averaging
    over about ``1/(1 − d)`` iterations), saved in the checkpoint and as the model file ``decoder_ema.pth``;
    it does not change the training itself, so a resumed run may turn it on (the average then starts at the
    resumed weights).
    """

    content_dir: str
    style_dir: str
    output: str = "runs/train"
    encoder: str = "vgg19_caffe_normalised"
    encoder_weights: str | None = None
    pretrained: bool = True
    style_loss: mmd.StyleLossSpec = field(default_factory=lambda: mmd.StyleLossSpec("meanstd"))
    style_weight: float = 10.0
    content_weight: float = 1.0
    layers: tuple[str, ...] | None = None
    layer_weighting: str = "auto"
    layer_normalisation: str = "none"
    layer_scales: Mapping[str, float] | None = None
    style_positions: int | None = None
    batch_size: int = 8
    lr: float = 1e-4
    lr_decay: float = 5e-5
    iterations: int = 160_000
    image_size: int = 512
    crop_size: int = 256
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 1000
    device: str = "auto"
    precision: str = "auto"
    num_samples: int = 4
    progress: bool = True
    style_augment: bool = False
    cache_images: bool = False
    channels_last: bool = False
    init_decoder: str | None = None
    reconstruction: bool = False
    pixel_weight: float = 0.0
    tv_weight: float = 0.0
    forked_from: str | None = None
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.style_loss, mmd.StyleLossSpec):
            if not isinstance(self.style_loss, (str, Mapping)):
                raise ValueError(f"style_loss must be a spec table or a name; got {self.style_loss!r}")
            object.__setattr__(self, "style_loss", mmd.StyleLossSpec.from_dict(self.style_loss))
        if self.layers is not None:
            if isinstance(self.layers, str) or not all(isinstance(v, str) for v in self.layers):
                raise ValueError(f"layers must be a list of layer names; got {self.layers!r}")
            object.__setattr__(self, "layers", tuple(self.layers))
        self._check_types()
        self._check_layer_scales()
        for name in ("batch_size", "iterations", "image_size", "crop_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1; got {getattr(self, name)}")
        if self.crop_size > self.image_size:
            raise ValueError(f"crop_size {self.crop_size} > image_size {self.image_size}")
        if self.workers < 0 or self.num_samples < 0:
            raise ValueError("workers and num_samples must be ≥ 0")
        if self.layer_weighting not in ("auto", "channels", "ones"):
            raise ValueError(f"layer_weighting must be auto, channels or ones; got {self.layer_weighting!r}")
        if self.layer_normalisation not in LAYER_NORMALISATIONS:
            raise ValueError(
                f"layer_normalisation must be {' or '.join(LAYER_NORMALISATIONS)}; got "
                f"{self.layer_normalisation!r}"
            )
        if self.layer_normalisation != "none" and (self.reconstruction or self.layer_weighting == "channels"):
            raise ValueError(
                f"layer_normalisation {self.layer_normalisation!r} gives every style layer an equal share; "
                "it needs a style term (not reconstruction) and layer_weighting auto or ones (not channels)"
            )
        if self.precision not in PRECISION_CHOICES:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISION_CHOICES)}; got {self.precision!r}"
            )
        if self.style_positions is not None and self.style_positions < 1:
            raise ValueError(f"style_positions must be ≥ 1 (or None for all); got {self.style_positions}")
        if not (0 < self.lr <= _FLOAT32_MAX) or not (0 <= self.lr_decay < math.inf):
            raise ValueError(
                f"need 0 < lr ≤ {_FLOAT32_MAX:.3g} (the float32 range of the weights) and a finite "
                f"lr_decay ≥ 0; got lr {self.lr:g}, lr_decay {self.lr_decay:g}"
            )
        for name in ("style_weight", "content_weight", "tv_weight", "pixel_weight"):
            if not (0 <= getattr(self, name) < math.inf):
                raise ValueError(f"{name} must be finite and ≥ 0; got {getattr(self, name)}")
        if self.pixel_weight and not self.reconstruction:
            raise ValueError(
                f"pixel_weight {self.pixel_weight:g} needs reconstruction=True (a pixel target exists only "
                "when the decoder inverts the encoder)"
            )
        if not (0 <= self.ema_decay < 1):
            raise ValueError(f"ema_decay must be in [0, 1) (0: no average); got {self.ema_decay}")
        if self.tv_weight and self.reconstruction:
            raise ValueError(
                f"tv_weight {self.tv_weight:g} applies to the AdaIN objective, not to reconstruction"
            )

    def _check_types(self) -> None:
        def bad(name: str, kind: str) -> ValueError:
            value = getattr(self, name)
            return ValueError(f"{name} must be {kind}; got {value!r} ({type(value).__name__})")

        for name in _INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad(name, "an integer")
        for name in _FLOATS:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise bad(name, "a number")
            object.__setattr__(self, name, float(value))
        for name in _STRS:
            if not isinstance(getattr(self, name), str):
                raise bad(name, "a string")
        for name in (
            "pretrained",
            "progress",
            "style_augment",
            "cache_images",
            "channels_last",
            "reconstruction",
        ):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false")
        for name in ("encoder_weights", "init_decoder", "forked_from"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise bad(name, "a path or None")
        sp = self.style_positions
        if sp is not None and (not isinstance(sp, int) or isinstance(sp, bool)):
            raise bad("style_positions", "an integer or None")

    def _check_layer_scales(self) -> None:
        scales = self.layer_scales
        if scales is None:
            return
        if not isinstance(scales, Mapping) or not scales:
            raise ValueError(
                f"layer_scales must be a non-empty table layer → factor, or None; got {scales!r}"
            )
        checked = {}
        for layer, factor in scales.items():
            ok = isinstance(factor, (int, float)) and not isinstance(factor, bool) and 0 < factor < math.inf
            if not isinstance(layer, str) or not ok:
                raise ValueError(
                    f"layer_scales: {layer!r} = {factor!r}; need a layer name and a finite factor > 0"
                )
            checked[layer] = float(factor)
        if self.reconstruction:
            raise ValueError("layer_scales weigh the style term; reconstruction has none")
        object.__setattr__(self, "layer_scales", checked)

    @property
    def second_weight(self) -> float:
        """The weight of the loss's second term: ``pixel_weight`` with ``reconstruction``, else
        ``style_weight``."""
        return self.pixel_weight if self.reconstruction else self.style_weight

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the style loss as its spec dict, lists for tuples."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["style_loss"] = self.style_loss.to_dict()
        out["layers"] = None if self.layers is None else list(self.layers)
        out["layer_scales"] = None if self.layer_scales is None else dict(self.layer_scales)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`. Configs written before the style-loss spec (flat ``kernel``,
        ``degree``, ``gamma``, ``c``, ``sigma``, ``median_scales`` keys) are converted.

        Raises:
            ValueError: unknown keys, missing folders or malformed values (the message names the key).
        """
        data = dict(data)
        if any(k in data for k in _LEGACY_LOSS_KEYS) and isinstance(data.get("style_loss", "meanstd"), str):
            data["style_loss"] = legacy_style_loss_spec(data)
            for key in _LEGACY_LOSS_KEYS:
                data.pop(key, None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        missing = sorted(k for k in ("content_dir", "style_dir") if k not in data)
        if missing:
            raise ValueError(f"missing training config keys: {', '.join(missing)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def legacy_style_loss_spec(data: Mapping[str, Any]) -> dict[str, Any]:
    """The style-loss spec of a config with the old flat keys (``style_loss`` a name, ``kernel`` "poly" …)."""
    name = data.get("style_loss", "meanstd")
    if name != "mmd":
        return {"name": name}
    kernel = data.get("kernel", "poly")
    if kernel in ("poly", "polynomial"):
        spec = {"name": "polynomial", "degree": data.get("degree", 2), "gamma": data.get("gamma", 1.0)}
        spec["c"] = data.get("c", 0.0)
    elif kernel == "gaussian":
        spec = {"name": "gaussian", "sigma": data.get("sigma", "median")}
        spec["scales"] = list(data.get("median_scales", [1.0]))
    else:
        spec = {"name": kernel}
    return {"name": "mmd", "kernel": spec}
