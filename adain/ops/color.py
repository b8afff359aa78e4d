"""Colour preservation for style transfer (Gatys et al., "Preserving color in neural artistic style
transfer", 2016), on RGB images in ``[0, 1]``.

Two methods:

1. **Colour histogram matching** (:func:`match_color`, CORAL): recolour the style image so that its
   pixel mean and covariance equal the content's, then stylise with it as usual::

       style = match_color(style, content)

2. **Luminance-only transfer**: stylise only the luminance, keep the content's colours::

       content_y, style_y = luminance_only_inputs(content, style)   # grey RGB images
       stylized_y = <stylise content_y with style_y>
       output = transfer_luminance(stylized_y, content)             # Y of the result + IQ of content

   The style's luminance is first matched to the content's (:func:`match_luminance`, mean/std as in the
   paper, or full histogram matching).

Shapes: images are ``[3, H, W]`` or ``[B, 3, H, W]``; a batch of 1 broadcasts against a batch of ``B``.
Style and content may have different sizes: every statistic is normalised by *its own image's* pixel
count (the public implementations divide both covariances by one image's size, which is wrong when the
sizes differ). Everything is computed in ``float64`` and returned in the style/stylised image's dtype.
Returned images are clamped to ``[0, 1]`` (``clamp=False`` to get the exact affine result, whose mean and
covariance match exactly but which may leave ``[0, 1]``).

These are preprocessing/postprocessing steps: :func:`match_color` and :func:`match_luminance` run under
``torch.no_grad()`` (an eigendecomposition has no finite gradient for repeated eigenvalues, e.g. a flat
image), and their outputs carry no gradient. The colour-space conversions are differentiable.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "gray_to_rgb",
    "luminance_only_inputs",
    "match_color",
    "match_luminance",
    "rgb_to_luminance",
    "rgb_to_yiq",
    "transfer_luminance",
    "yiq_to_rgb",
]

# NTSC YIQ (rows: Y, I, Q).
_RGB_TO_YIQ = (
    (0.299, 0.587, 0.114),
    (0.595716, -0.274453, -0.321263),
    (0.211456, -0.522591, 0.311135),
)


def _check_image(name: str, img: object, channels: int | None = 3) -> Tensor:
    if not isinstance(img, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(img).__name__}")
    if img.dim() not in (3, 4):
        raise ValueError(f"{name} must have shape [C, H, W] or [B, C, H, W]; got {tuple(img.shape)}")
    if channels is not None and img.shape[-3] != channels:
        raise ValueError(f"{name} must have {channels} channels (RGB); got shape {tuple(img.shape)}")
    if img.shape[-1] * img.shape[-2] == 0:
        raise ValueError(f"{name} has no pixels: shape {tuple(img.shape)}")
    return img


def _batched_pair(style: Tensor, content: Tensor) -> tuple[Tensor, Tensor, int]:
    """Both as 4-D with broadcastable batches; returns the output batch size."""
    s = style if style.dim() == 4 else style[None]
    c = content if content.dim() == 4 else content[None]
    bs, bc = s.shape[0], c.shape[0]
    if bs != bc and 1 not in (bs, bc):
        raise ValueError(f"batch sizes {bs} (style) and {bc} (content) do not broadcast")
    return s, c, max(bs, bc)


def _out_dtype(img: Tensor) -> torch.dtype:
    return img.dtype if img.is_floating_point() else torch.float32


def _color_matrix(dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.tensor(_RGB_TO_YIQ, dtype=dtype, device=device)


def _apply_matrix(mat: Tensor, img: Tensor) -> Tensor:
    return torch.einsum("ij,...jhw->...ihw", mat, img)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """RGB → YIQ (NTSC). ``[..., 3, H, W]`` → ``[..., 3, H, W]`` (Y, I, Q); differentiable."""
    _check_image("image", image)
    x = image.to(_out_dtype(image))
    return _apply_matrix(_color_matrix(x.dtype, x.device), x)


def yiq_to_rgb(image: Tensor) -> Tensor:
    """YIQ → RGB, the exact inverse of :func:`rgb_to_yiq` (not clamped). ``[..., 3, H, W]``."""
    _check_image("image", image)
    x = image.to(_out_dtype(image))
    inv = torch.linalg.inv(_color_matrix(torch.float64, x.device)).to(x.dtype)
    return _apply_matrix(inv, x)


def rgb_to_luminance(image: Tensor) -> Tensor:
    """Luminance ``Y = 0.299 R + 0.587 G + 0.114 B``: ``[..., 3, H, W]`` → ``[..., 1, H, W]``."""
    return rgb_to_yiq(image)[..., :1, :, :]


def gray_to_rgb(luminance: Tensor) -> Tensor:
    """A grey RGB image from a luminance map (Y replicated): ``[..., 1, H, W]`` → ``[..., 3, H, W]``.

    Its luminance is the input and its chroma (I, Q) is 0; this is how a luminance-only image is fed to
    an RGB encoder.
    """
    _check_image("luminance", luminance, channels=1)
    return luminance.expand(*luminance.shape[:-3], 3, *luminance.shape[-2:]).clone()


def _flat_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x``: ``[B, C, N]`` float64 → mean ``[B, C, 1]``, covariance ``[B, C, C]`` (divided by N)."""
    mean = x.mean(dim=-1, keepdim=True)
    xc = x - mean
    return mean, xc @ xc.transpose(-1, -2) / x.shape[-1]


def _sym_power(cov: Tensor, power: float, floor: float) -> Tensor:
    """Symmetric ``cov ** power`` via eigendecomposition, eigenvalues floored at ``floor``."""
    evals, evecs = torch.linalg.eigh(cov)
    evals = evals.clamp_min(floor).pow(power)
    return (evecs * evals.unsqueeze(-2)) @ evecs.transpose(-1, -2)


def _coral(source: Tensor, target: Tensor, eps: float) -> Tensor:
    """``source`` ``[B, C, N_s]``, ``target`` ``[B|1, C, N_t]`` (float64) → recoloured source ``[B, C, N_s]``.

    ``Σ_t^{1/2} Σ_s^{-1/2} (x − μ_s) + μ_t`` (see :func:`match_color`).
    """
    mu_s, cov_s = _flat_stats(source)
    mu_t, cov_t = _flat_stats(target)
    transform = _sym_power(cov_t, 0.5, 0.0) @ _sym_power(cov_s, -0.5, eps)
    return transform @ (source - mu_s) + mu_t


def match_color(
    style_image: Tensor, content_image: Tensor, eps: float = 1e-5, *, clamp: bool = True
) -> Tensor:
    """Recolour the style image so its pixel mean and covariance are the content image's (CORAL).

    ``out = Σ_c^{1/2} Σ_s^{-1/2} (x_s − μ_s) + μ_c`` per pixel, with ``μ``/``Σ`` each image's own colour
    mean and covariance (divided by its own pixel count), symmetric matrix square roots by
    eigendecomposition in ``float64``. The style's covariance eigenvalues are floored at ``eps`` before
    the inverse root: any colour direction with variance ≥ ``eps`` is matched exactly, and flat
    (zero-variance) images give finite output (a flat style becomes the content's mean colour).

    Args:
        style_image: ``[3, H_s, W_s]`` or ``[B, 3, H_s, W_s]``, RGB in ``[0, 1]``.
        content_image: ``[3, H_c, W_c]`` or ``[B_c, 3, H_c, W_c]`` (any size; batches 1 and ``B``
            broadcast).
        eps: eigenvalue floor of the style covariance.
        clamp: clamp the result to ``[0, 1]`` (default); the statistics then match exactly only if no
            value was clamped.

    Returns:
        The recoloured style image, ``[3, H_s, W_s]`` if both inputs are unbatched, else
        ``[B, 3, H_s, W_s]``; in the style image's dtype; no gradient.
    """
    _check_image("style_image", style_image)
    _check_image("content_image", content_image)
    with torch.no_grad():
        s, c, batch = _batched_pair(style_image, content_image)
        hs, ws = s.shape[-2:]
        src = s.to(torch.float64).flatten(2).expand(batch, -1, -1)
        tgt = c.to(device=s.device, dtype=torch.float64).flatten(2)
        out = _coral(src, tgt, eps).view(batch, 3, hs, ws)
        if clamp:
            out = out.clamp(0.0, 1.0)
        out = out.to(_out_dtype(style_image))
    return out if (style_image.dim() == 4 or content_image.dim() == 4) else out[0]


def _histogram_match_1d(source: Tensor, target_sorted: Tensor) -> Tensor:
    """Map ``source`` ``[N_s]`` values to the quantiles of ``target_sorted`` ``[N_t]`` (ties kept equal)."""
    _, inverse, counts = torch.unique(source, sorted=True, return_inverse=True, return_counts=True)
    mid_rank = counts.cumsum(0).to(torch.float64) - (counts.to(torch.float64) + 1.0) / 2.0
    n_s, n_t = source.numel(), target_sorted.numel()
    q = mid_rank / (n_s - 1) if n_s > 1 else torch.full_like(mid_rank, 0.5)
    pos = q * (n_t - 1)
    lo = pos.floor().long().clamp(0, n_t - 1)
    hi = (lo + 1).clamp(max=n_t - 1)
    frac = pos - lo.to(torch.float64)
    mapped = target_sorted[lo] * (1.0 - frac) + target_sorted[hi] * frac
    return mapped[inverse]


def match_luminance(
    style_image: Tensor,
    content_image: Tensor,
    eps: float = 1e-5,
    *,
    method: Literal["mean_std", "histogram"] = "mean_std",
    clamp: bool = True,
) -> Tensor:
    """The style image's luminance, matched to the content image's luminance.

    ``"mean_std"`` (the paper's luminance matching): ``Y_s' = σ_c / σ_s · (Y_s − μ_s) + μ_c``, each
    image's mean and (population) std over its own pixels; ``σ_s²`` is floored at ``eps`` (a flat style
    gives the content's mean luminance). ``"histogram"``: exact histogram matching — each style pixel
    gets the content luminance at the same quantile (linear interpolation; equal style values stay
    equal, at their mid-rank).

    Args:
        style_image: ``[3, H_s, W_s]`` or ``[B, 3, H_s, W_s]``, RGB in ``[0, 1]``.
        content_image: ``[3, H_c, W_c]`` or ``[B_c, 3, H_c, W_c]`` (any size; batches broadcast).
        eps: variance floor (``"mean_std"``).
        method: ``"mean_std"`` (default) or ``"histogram"``.
        clamp: clamp the result to ``[0, 1]`` (default).

    Returns:
        Matched luminance ``[1, H_s, W_s]`` (or ``[B, 1, H_s, W_s]`` if either input is batched), in the
        style image's dtype; no gradient. Use :func:`gray_to_rgb` to feed it to an RGB encoder.
    """
    _check_image("style_image", style_image)
    _check_image("content_image", content_image)
    if method not in ("mean_std", "histogram"):
        raise ValueError(f"unknown luminance matching method {method!r}; use 'mean_std' or 'histogram'")
    with torch.no_grad():
        s, c, batch = _batched_pair(style_image, content_image)
        hs, ws = s.shape[-2:]
        ys = rgb_to_luminance(s.to(torch.float64)).flatten(2).expand(batch, -1, -1)
        yc = rgb_to_luminance(c.to(device=s.device, dtype=torch.float64)).flatten(2)
        if method == "mean_std":
            out = _coral(ys, yc, eps)
        else:
            yc_sorted = yc.sort(dim=-1).values
            out = torch.stack(
                [_histogram_match_1d(ys[i, 0], yc_sorted[i % yc.shape[0], 0])[None] for i in range(batch)]
            )
        out = out.view(batch, 1, hs, ws)
        if clamp:
            out = out.clamp(0.0, 1.0)
        out = out.to(_out_dtype(style_image))
    return out if (style_image.dim() == 4 or content_image.dim() == 4) else out[0]


def luminance_only_inputs(
    content_image: Tensor,
    style_image: Tensor,
    eps: float = 1e-5,
    *,
    method: Literal["mean_std", "histogram"] = "mean_std",
) -> tuple[Tensor, Tensor]:
    """The two grey RGB images to stylise for luminance-only transfer.

    Args:
        content_image: ``[3, H_c, W_c]`` or ``[B, 3, H_c, W_c]``, RGB in ``[0, 1]``.
        style_image: ``[3, H_s, W_s]`` or ``[B_s, 3, H_s, W_s]``.
        eps, method: see :func:`match_luminance`.

    Returns:
        ``(content_gray, style_gray)``: the content's luminance as a grey image (shape of
        ``content_image``) and the style's luminance matched to it (:func:`match_luminance`) as a grey
        image (``[.., 3, H_s, W_s]``); both clamped to ``[0, 1]``. Stylise the first with the second, then
        call :func:`transfer_luminance`.
    """
    content_gray = gray_to_rgb(rgb_to_luminance(content_image).clamp(0.0, 1.0))
    style_gray = gray_to_rgb(match_luminance(style_image, content_image, eps, method=method))
    return content_gray, style_gray


def transfer_luminance(stylized_image: Tensor, content_image: Tensor, *, clamp: bool = True) -> Tensor:
    """Combine the stylised image's luminance with the content image's chroma (YIQ).

    ``out = yiq_to_rgb([Y(stylized), I(content), Q(content)])``. If the sizes differ (a decoder's output
    can be a few pixels off), the content's I and Q are resized to the stylised size (bilinear,
    antialiased, ``align_corners=False``).

    Args:
        stylized_image: ``[3, H, W]`` or ``[B, 3, H, W]``, RGB (a grey stylised image works as well, since
            only its luminance is used).
        content_image: ``[3, H_c, W_c]`` or ``[B_c, 3, H_c, W_c]`` (batches 1 and ``B`` broadcast).
        clamp: clamp the result to ``[0, 1]`` (default).

    Returns:
        RGB ``[3, H, W]`` (``[B, 3, H, W]`` if either input is batched), in the stylised image's dtype.
        Differentiable with respect to ``stylized_image``.
    """
    _check_image("stylized_image", stylized_image)
    _check_image("content_image", content_image)
    s, c, batch = _batched_pair(stylized_image, content_image)
    dt = torch.promote_types(_out_dtype(stylized_image), torch.float32)
    y = rgb_to_luminance(s.to(dt))
    chroma = rgb_to_yiq(c.to(device=s.device, dtype=dt))[:, 1:]
    if chroma.shape[-2:] != y.shape[-2:]:
        chroma = F.interpolate(
            chroma, size=y.shape[-2:], mode="bilinear", align_corners=False, antialias=True
        )
    yiq = torch.cat([y.expand(batch, -1, -1, -1), chroma.expand(batch, -1, -1, -1)], dim=1)
    out = yiq_to_rgb(yiq)
    if clamp:
        out = out.clamp(0.0, 1.0)
    out = out.to(_out_dtype(stylized_image))
    return out if (stylized_image.dim() == 4 or content_image.dim() == 4) else out[0]
