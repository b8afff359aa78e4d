"""The encoder–AdaIN–decoder model (Huang & Belongie, ICCV 2017): arbitrary style transfer in one pass.

>>> model = AdaINModel(build_encoder("vgg19_normalised", weights="vgg_normalised.pth"), decoder)
>>> out = model.stylize(content, style)                           # [3, H, W] or [B, 3, H, W] in [0, 1]
>>> out = model.stylize(content, [s1, s2], weights=[1, 2])        # interpolation
>>> out = model.stylize(content, [s1, s2], masks=[m, 1 - m])      # spatial control
>>> out = model.stylize(content, style, preserve_color="coral")   # or "luminance"
>>> stats = model.encode_style(style)                             # encode a style once …
>>> outs = [model.stylize(c, stats) for c in contents]            # … reuse it for many contents

Pipeline: encode the content (and each style) up to the encoder's ``adain_layer``, build the target features
with :func:`adain.ops.style_transfer_features` (AdaIN, interpolation weights, α, masks), decode, clamp to
[0, 1] and fit to the content's size (:func:`fit_to_size`).

**Sizes.** Content and styles may all have different sizes (only the styles' per-channel statistics enter).
The decoder upsamples by its stride ``s`` (8 for VGG, 16 for MobileNetV2), so its output is
``s · h × s · w`` for features of ``h × w``, which differs from the content's ``H × W`` when ``H`` or ``W`` is
not a multiple of ``s``: ``floor`` pooling (torchvision VGG) gives a smaller output, ``ceil`` pooling /
padded stride-2 convs (``vgg19_normalised``, MobileNetV2) a larger one. :func:`fit_to_size` crops the excess
at the bottom/right (those rows come from the encoder's padding beyond the image, so cropping keeps the
geometry exact) and resizes bilinearly where the output is smaller (a stretch of less than ``s`` pixels).

**Borders.** The encoder zero-pads its convolutions, so the features of the outermost few pixels differ from
the interior's and a decoder paints a frame there (lines a few pixels in from the edges, marks at the
corners). ``stylize(..., context_padding=p)`` reflects ``p`` pixels of the content outwards on every side
before encoding and cuts them from the output, so that frame falls outside the picture (masks are fitted to
the content and padded the same way). ``adain stylize`` uses 32 pixels; the default here, 0, is the paper's
pipeline.

**Precision.** ``precision="bf16"`` / ``"fp16"`` runs the encoder and decoder under ``torch.autocast`` on the
model's device (CPU autocast supports both; bf16 is fast with AMX, native but slower than fp32
with AVX512-BF16 alone, and emulated and much slower on AVX2-only CPUs:
:func:`adain.devices.resolve_precision` picks). The statistics, AdaIN, colour preservation and the output
are float32 (colour ops run with autocast disabled).

**Memory format.** By default (``channels_last=True``) the networks and their inputs use the channels-last
layout, which is what oneDNN (CPU) and cuDNN tensor cores are fastest with; results are the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adain.decoders import Decoder
from adain.encoders import FeatureEncoder
from adain.errors import ImageTooSmallError
from adain.ops import (
    MaskInterpolation,
    StyleStats,
    luminance_only_inputs,
    match_color,
    resize_masks,
    style_stats,
    style_transfer_features,
    transfer_luminance,
)

__all__ = [
    "PRECISIONS",
    "AdaINModel",
    "Precision",
    "PreserveColor",
    "autocast_context",
    "context_padding_amounts",
    "fit_to_size",
    "preserve_color_mode",
]

Precision = Literal["fp32", "bf16", "fp16"]
PreserveColor = Literal["coral", "luminance"] | bool | None
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device``'s type for ``"bf16"`` / ``"fp16"``; a no-op for ``"fp32"``.

    Raises:
        ValueError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=_AUTOCAST_DTYPES[precision])


def preserve_color_mode(preserve_color: PreserveColor) -> str | None:
    """Normalise a ``preserve_color`` argument: ``False``/``None`` → ``None``, ``True`` → ``"coral"``.

    Raises:
        ValueError: anything other than those and ``"coral"`` / ``"luminance"``.
    """
    if preserve_color is None or preserve_color is False:
        return None
    if preserve_color is True:
        return "coral"
    if preserve_color in ("coral", "luminance"):
        return str(preserve_color)
    raise ValueError(f"preserve_color must be False, 'coral' or 'luminance'; got {preserve_color!r}")


def fit_to_size(images: Tensor, size: Sequence[int]) -> Tensor:
    """Crop and/or resize decoder output ``[B, 3, h, w]`` to ``size = (H, W)``.

    Along each axis where the output is longer it is cropped at the end (bottom/right), where it is
    shorter the result is resized bilinearly (``align_corners=False``) to the target. Returns
    ``[B, 3, H, W]`` (the input itself if it already has that size).
    """
    th, tw = int(size[0]), int(size[1])
    if tuple(images.shape[-2:]) == (th, tw):
        return images
    out = images[..., : min(th, images.shape[-2]), : min(tw, images.shape[-1])]
    if tuple(out.shape[-2:]) != (th, tw):
        out = F.interpolate(out, size=(th, tw), mode="bilinear", align_corners=False)
    return out


def context_padding_amounts(size: Sequence[int], padding: int) -> tuple[int, int]:
    """``(vertical, horizontal)`` reflection padding for an image of ``size = (H, W)``: ``padding`` on each
    axis, limited to ``H − 1`` and ``W − 1`` (a reflection cannot be wider than the image).

    Raises:
        ValueError: ``padding`` negative or not an integer.
    """
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"context_padding must be a non-negative number of pixels, got {padding!r}")
    height, width = int(size[0]), int(size[1])
    return min(padding, max(height - 1, 0)), min(padding, max(width - 1, 0))


def _as_batch(image: Tensor, what: str) -> tuple[Tensor, bool]:
    """``[3, H, W]`` or ``[B, 3, H, W]`` float → (``[B, 3, H, W]``, whether the input was unbatched)."""
    if not isinstance(image, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor image; got {type(image).__name__}")
    if image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"{what} must have shape [3, H, W] or [B, 3, H, W] (RGB); got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{what} must be a float image in [0, 1]; got dtype {image.dtype}")
    return (image[None], True) if image.dim() == 3 else (image, False)


StyleArg = Tensor | StyleStats


def _style_list(styles: StyleArg | Sequence[StyleArg]) -> list[StyleArg]:
    if isinstance(styles, (Tensor, StyleStats)):
        return [styles]
    if isinstance(styles, (str, bytes)) or not isinstance(styles, Sequence):
        raise TypeError("styles must be an image tensor, a StyleStats, or a sequence of them")
    out = list(styles)
    if not out:
        raise ValueError("at least one style is needed")
    return out


class AdaINModel(nn.Module):
    """A frozen encoder and a decoder; :meth:`stylize` does AdaIN style transfer with every control.

    Args:
        encoder: a :class:`~adain.encoders.FeatureEncoder`; AdaIN is applied at its ``adain_layer``.
        decoder: a :class:`~adain.decoders.Decoder` whose ``in_channels`` and ``stride`` are the encoder's
            at that layer.
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (autocast for the networks; see module
            doc). May be changed later through the attribute.
        channels_last: use the channels-last memory format for the networks and their inputs.

    Raises:
        ValueError: the decoder does not fit the encoder, or an unknown precision.
    """

    def __init__(
        self,
        encoder: FeatureEncoder,
        decoder: Decoder,
        *,
        precision: Precision = "fp32",
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        layer = encoder.adain_layer
        if decoder.in_channels != encoder.channels[layer] or decoder.stride != encoder.strides[layer]:
            raise ValueError(
                f"decoder ({decoder.in_channels} channels, stride {decoder.stride}, built for "
                f"{decoder.encoder_name!r}) does not fit encoder {encoder.name!r} at {layer!r} "
                f"({encoder.channels[layer]} channels, stride {encoder.strides[layer]})"
            )
        autocast_context("cpu", precision)  # validates
        self.encoder = encoder
        self.decoder = decoder
        self.precision: str = precision
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    # ---- helpers -----------------------------------------------------------------------------------------

    @property
    def encoder_name(self) -> str:
        """Registry name of the encoder."""
        return self.encoder.name

    @property
    def device(self) -> torch.device:
        """Device of the decoder's parameters."""
        return next(self.decoder.parameters()).device

    def _layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast_context(self.device, self.precision)

    @contextlib.contextmanager
    def _exact(self) -> Iterator[None]:
        """Autocast disabled (for colour and statistics code even if the caller enabled autocast)."""
        with torch.autocast(device_type=self.device.type, enabled=False):
            yield

    # ---- building blocks -------------------------------------------------------------------------------

    def _encode(self, images: Tensor) -> Tensor:
        """AdaIN-layer features ``[B, C, h, w]`` of ``[B, 3, H, W]``, any non-empty size (styles)."""
        x = self._layout(images.to(self.device))
        with self._autocast():
            return self.encoder(x, layers=self.encoder.adain_layer)[self.encoder.adain_layer]

    def encode(self, images: Tensor) -> Tensor:
        """AdaIN-layer features: images ``[B, 3, H, W]`` in [0, 1] → ``[B, C, h, w]``.

        Under ``precision`` bf16/fp16 the features are in that dtype. Differentiable w.r.t. ``images``.

        Raises:
            ImageTooSmallError: too small for the encoder (or for the decoder: the features need at least
                2×2 positions for its reflection padding).
        """
        feats = self._encode(images)
        h, w = feats.shape[-2:]
        if h < 2 or w < 2:
            raise ImageTooSmallError(
                f"an input of {images.shape[-2]}×{images.shape[-1]} pixels gives {h}×{w} features at "
                f"{self.encoder.adain_layer!r} of {self.encoder.name!r}; the decoder needs at least 2×2 "
                f"(use images of at least {2 * self.decoder.stride} pixels per side)"
            )
        return feats

    def decode(self, features: Tensor, size: Sequence[int] | None = None) -> Tensor:
        """Features ``[B, C, h, w]`` → float32 images ``[B, 3, H, W]`` clamped to [0, 1].

        ``size = (H, W)`` fits the output to that size (:func:`fit_to_size`); ``None`` keeps the decoder's
        ``stride · h × stride · w``.
        """
        with self._autocast():
            out = self.decoder(self._layout(features))
        out = out.float().clamp(0.0, 1.0)
        if size is not None:
            out = fit_to_size(out, size)
        return out.contiguous()

    def encode_style(self, style: Tensor) -> StyleStats:
        """Per-channel statistics of a style image's AdaIN-layer features, to reuse across contents.

        Args:
            style: ``[3, H, W]`` or ``[B_s, 3, H, W]`` in [0, 1], any size for which the encoder's AdaIN
                layer is non-empty (a style never goes through the decoder).

        Returns:
            :class:`~adain.ops.StyleStats`, float32 ``[B_s, C, 1, 1]`` each (the public port's convention:
            unbiased variance + eps). Pass it to :meth:`stylize` in place of the image (not combinable with
            ``preserve_color``, which recolours the style for each content).
        """
        s, _ = _as_batch(style, "style")
        with torch.no_grad():
            feats = self._encode(s)  # only statistics are taken: no decoder size limit
            with self._exact():
                stats = style_stats(feats)
        return StyleStats(stats.mean.float(), stats.std.float())

    # ---- stylization -------------------------------------------------------------------------------------

    def stylize(
        self,
        content: Tensor,
        styles: StyleArg | Sequence[StyleArg],
        alpha: float = 1.0,
        weights: Sequence[float] | Tensor | None = None,
        masks: Tensor | Sequence[Tensor] | None = None,
        preserve_color: PreserveColor = False,
        *,
        mask_interpolation: MaskInterpolation = "nearest",
        context_padding: int = 0,
    ) -> Tensor:
        """Stylize ``content`` with one or more styles (no gradients).

        Args:
            content: ``[3, H, W]`` or ``[B, 3, H, W]``, RGB in [0, 1].
            styles: one style or a sequence of ``K``; each an image ``[3, H_k, W_k]`` / ``[B_k, 3, H_k, W_k]``
                (``B_k`` 1 or ``B``; sizes may differ from the content and from each other) or
                :class:`~adain.ops.StyleStats` from :meth:`encode_style`.
            alpha: content–style trade-off in [0, 1] (0 reconstructs the content through the decoder).
            weights: ``K`` interpolation weights (normalised to sum 1; default equal).
            masks: one mask per style for spatial control (values in [0, 1], soft allowed, any resolution,
                e.g. the content's ``[H, W]``); see :func:`adain.ops.style_transfer_features`.
            preserve_color: ``False`` (default); ``"coral"`` (or ``True``): recolour each style to the
                content's colour mean and covariance before encoding (:func:`adain.ops.match_color`);
                ``"luminance"``: stylise the luminance only and keep the content's chroma
                (:func:`adain.ops.luminance_only_inputs`, :func:`adain.ops.transfer_luminance`).
            mask_interpolation: how masks are resized to the feature resolution.
            context_padding: pixels of the content reflected outwards on every side before encoding and
                cut from the output (:func:`context_padding_amounts`); moves the frame that the encoder's
                zero padding makes a decoder paint out of the picture (module doc). Masks are then first
                fitted to the content's ``H × W`` with ``mask_interpolation`` and padded the same way.

        Returns:
            float32 ``[3, H, W]`` (unbatched content) or ``[B, 3, H, W]``, the content's size, in [0, 1].

        Raises:
            ValueError: bad shapes, alpha, weights or masks (from :mod:`adain.ops`), StyleStats given
                together with ``preserve_color``, or a negative ``context_padding``.
            ImageTooSmallError: an image is too small for the encoder/decoder.
        """
        c, unbatched = _as_batch(content, "content")
        c = c.to(self.device)
        pad_h, pad_w = context_padding_amounts(c.shape[-2:], context_padding)
        items = _style_list(styles)
        mode = preserve_color_mode(preserve_color)
        if mode is not None and any(isinstance(s, StyleStats) for s in items):
            raise ValueError(
                "preserve_color needs the style images (they are recoloured for each content); "
                "pass images instead of precomputed StyleStats"
            )
        with torch.no_grad():
            content_in = c
            style_in: list[StyleArg] = [
                s if isinstance(s, StyleStats) else _as_batch(s, f"style {i}")[0].to(self.device)
                for i, s in enumerate(items)
            ]
            with self._exact():
                if mode == "coral":
                    style_in = [match_color(s, c) for s in style_in]  # type: ignore[arg-type]
                elif mode == "luminance":
                    pairs = [luminance_only_inputs(c, s) for s in style_in]  # type: ignore[arg-type]
                    content_in, style_in = pairs[0][0], [p[1] for p in pairs]
            stats = [s if isinstance(s, StyleStats) else self.encode_style(s) for s in style_in]
            if pad_h or pad_w:
                box = (pad_w, pad_w, pad_h, pad_h)
                content_in = F.pad(content_in, box, mode="reflect")
                if masks is not None:
                    fitted = resize_masks(masks, (c.shape[-2], c.shape[-1]), mode=mask_interpolation)
                    masks = F.pad(fitted, box, mode="reflect")
            feats = self.encode(content_in)
            with self._exact():
                target = style_transfer_features(
                    feats,
                    stats,
                    alpha=alpha,
                    weights=weights,
                    masks=masks,
                    mask_interpolation=mask_interpolation,
                )
            out = self.decode(target, size=content_in.shape[-2:])
            out = out[..., pad_h : pad_h + c.shape[-2], pad_w : pad_w + c.shape[-1]].contiguous()
            if mode == "luminance":
                with self._exact():
                    out = transfer_luminance(out, c)
        return out[0] if unbatched else out
