"""Optimisation-based style transfer and texture synthesis (Gatys et al.) with any :mod:`mmd` style loss.

Not AdaIN: this module uses the shared network and image layer (an encoder from :mod:`adain.encoders`) and
the :class:`mmd.StyleObjective`, nothing of the AdaIN model, its decoders or its training.

The pixels of one image are optimised so that its features under a frozen encoder match the *content*
image's features at one layer and the *style* image's statistics at several layers::

    total = content_weight · L_c + style_weight · Σ_l w_l · L_s,l + tv_weight · L_tv

* ``L_c = ‖F_l(x) − F_l(c)‖² / ‖F_l(c)‖²`` at the content layer (a relative squared error; with
  ``normalise="none"`` the plain mean squared error ``mean (F_l(x) − F_l(c))²``). Texture synthesis is the
  case ``content_layer=None``: no content term, no content image needed.
* ``L_s,l = loss(F_l(x), F_l(s)) / ref_l`` for any :class:`mmd.StyleLoss` (``gram``, ``meanstd``, ``mmd``
  under any kernel), see *Normalisation* below.
* ``L_tv = mean (x[i+1, j] − x[i, j])² + mean (x[i, j+1] − x[i, j])²`` over pixels and channels (optional).

Normalisation (``normalise="reference"``, the default). The raw style losses live on unrelated scales:
Gram and polynomial MMD grow with the fourth power of the feature magnitudes, mean/std matching with
the second, a Gaussian-kernel MMD² is bounded by 2, and each differs from layer to layer. Each layer's
style loss is therefore divided by its own value at a fixed *reference* image,
``ref_l = loss(F_l(r), F_l(s))``, where ``r`` is the content image for style transfer, and for texture
synthesis the seeded uniform-noise image (the one ``init="noise"`` starts from). At the reference image
every normalised layer term equals 1, so ``style_weight · Σ_l w_l`` is the style term's size at the
start of a content-initialised transfer *whatever the loss*, and a given ``style_weight`` asks every loss
to remove the same fraction of its own content-to-style distance: it means comparable strength across
losses and layers. The normalisers are computed once, without gradient, and do not depend on ``init``;
any constant factor of a loss cancels (so ``mmd`` with ``polynomial(2)`` follows the same trajectory as
``gram`` whatever its ``scale``). ``normalise="none"`` uses the raw losses (``ref_l = 1``).

Pixels stay in [0, 1] (``parametrisation``):

* ``"sigmoid"`` (default): optimise an unconstrained ``u`` with ``x = sigmoid(u)``, initialised at
  ``logit(clamp(x0, 1e-3, 1 − 1e-3))``. Smooth, so L-BFGS's curvature history stays valid.
* ``"clamp"``: optimise the pixels directly and clamp them to [0, 1] after every optimiser step.

Convergence (``tolerance > 0``): ``iterations`` is a cap; the run stops early once the objective's
relative decrease over the last ``window`` iterations,
``(total[i − window] − total[i]) / |total[i − window]|``, falls below ``tolerance``
(:func:`has_converged`). The objective of an image is recorded when the next step evaluates it, so the
check before step ``k`` sees the images after steps ``0 … k − 2``: a run stops one step after the first
image that met the criterion. The result records why it stopped (``"converged"`` or ``"max_iterations"``)
and after how many steps. ``tolerance = 0`` runs every iteration.

Repeats: ``init_jitter > 0`` adds seeded Gaussian noise of that standard deviation to the initial image
(clamped to [0, 1]), so a content-initialised transfer depends on ``seed`` and repeats over seeds measure
how much the result depends on the starting point (with ``init_jitter = 0`` only ``init="noise"`` does).

Everything is deterministic given ``seed``: the noise images come from private
:class:`torch.Generator` objects; no global random state is read or changed.

>>> encoder = build_encoder("mobilenet_v2")
>>> settings = OptimizeSettings(content_layer="s16", style_layers={"s2": 1, "s4": 1, "s8": 1, "s16": 1})
>>> result = optimize_image(encoder, mmd.build_style_loss({"name": "gram"}), style, content, settings)
>>> result.image            # [3, H, W] in [0, 1];  result.history["total"]: one value per iteration
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from mmd.losses import StyleLoss
from mmd.objective import StyleObjective, content_mse

__all__ = [
    "Init",
    "Normalise",
    "OptimizeResult",
    "OptimizeSettings",
    "Optimizer",
    "Parametrisation",
    "content_loss",
    "has_converged",
    "optimize_image",
    "relative_decrease",
    "style_normalisers",
    "texture_reference",
    "total_variation",
]

Init = Literal["content", "noise", "style"]
Optimizer = Literal["lbfgs", "adam"]
Parametrisation = Literal["sigmoid", "clamp"]
Normalise = Literal["reference", "none"]

_LOGIT_EPS = 1e-3


@dataclass(frozen=True)
class OptimizeSettings:
    """What to optimise and how.

    Attributes:
        style_layers: encoder tap → weight ``w_l`` of its style term (e.g. ``{"s2": 0.25, ...}``).
        content_layer: tap of the content term; ``None`` for texture synthesis (no content term).
        content_weight, style_weight, tv_weight: weights of the three terms (``tv_weight=0``: no TV term).
        init: start from the content image, uniform noise (seeded) or the style image (resized to the
            output size).
        optimizer: ``"lbfgs"`` (strong-Wolfe line search, one L-BFGS iteration per step) or ``"adam"``.
        iterations: optimiser steps (the cap when ``tolerance > 0``).
        tolerance, window: stop once the relative decrease of the objective over the last ``window``
            iterations is below ``tolerance`` (0: never stop early); see :func:`has_converged`.
        init_jitter: standard deviation of seeded Gaussian noise added to the initial image (0: none).
        lr: learning rate (Adam) or initial step length (L-BFGS).
        parametrisation: how pixels are kept in [0, 1]; see the module docstring.
        normalise: ``"reference"`` or ``"none"``; see the module docstring.
        size: output ``(H, W)`` for texture synthesis (default: the style image's size); transfer uses
            the content image's size.
        seed: seed of the private generator (noise image).
    """

    style_layers: Mapping[str, float]
    content_layer: str | None = None
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 0.0
    init: Init = "content"
    optimizer: Optimizer = "lbfgs"
    iterations: int = 100
    lr: float = 1.0
    parametrisation: Parametrisation = "sigmoid"
    normalise: Normalise = "reference"
    size: tuple[int, int] | None = None
    seed: int = 0
    tolerance: float = 0.0
    window: int = 20
    init_jitter: float = 0.0

    def __post_init__(self) -> None:
        if not self.style_layers:
            raise ValueError("style_layers is empty: name at least one encoder layer")
        choices = {
            "init": ("content", "noise", "style"),
            "optimizer": ("lbfgs", "adam"),
            "parametrisation": ("sigmoid", "clamp"),
            "normalise": ("reference", "none"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.content_layer is None and self.init == "content":
            raise ValueError("texture synthesis (content_layer=None) needs init='noise' or 'style'")
        if self.iterations < 0 or self.lr <= 0:
            raise ValueError(f"need iterations >= 0 and lr > 0, got {self.iterations} and {self.lr}")
        if min(self.content_weight, self.style_weight, self.tv_weight) < 0:
            raise ValueError("content_weight, style_weight and tv_weight must be >= 0")
        if self.tolerance < 0 or self.window < 1 or self.init_jitter < 0:
            raise ValueError(
                f"need tolerance >= 0, window >= 1 and init_jitter >= 0, got {self.tolerance}, "
                f"{self.window} and {self.init_jitter}"
            )

    @property
    def texture(self) -> bool:
        """Texture synthesis: no content term."""
        return self.content_layer is None


@dataclass
class OptimizeResult:
    """Output of :func:`optimize_image`.

    Attributes:
        image: ``[3, H, W]`` in [0, 1], detached.
        history: ``"total"``, ``"content"``, ``"style"``, ``"tv"`` and ``"style/<layer>"`` (normalised,
            unweighted per-layer terms) → one float per iteration: entry ``i`` is the image *before*
            step ``i``; the last entry (``iterations + 1`` in all) is the final image. ``content`` and
            ``style`` are the unweighted terms; ``total`` is the weighted sum that is minimised.
        normalisers: ``ref_l`` per style layer and ``"content"`` (all 1 with ``normalise="none"``).
        seconds: wall time of the optimisation (normalisers and initialisation included).
        evaluations: objective evaluations (L-BFGS line searches evaluate more than once per step).
        restarts: L-BFGS restarts: a step that left the image unchanged drops the curvature history.
        stop_reason: ``"converged"`` (the tolerance was met) or ``"max_iterations"`` (the cap was reached).
        steps: optimiser steps taken (``len(history["total"]) - 1``).
    """

    image: Tensor
    history: dict[str, list[float]]
    normalisers: dict[str, float]
    seconds: float
    evaluations: int = 0
    restarts: int = 0
    settings: OptimizeSettings | None = field(default=None, repr=False)
    stop_reason: str = "max_iterations"
    steps: int = 0


def relative_decrease(totals: list[float], window: int) -> float | None:
    """``(totals[-1 − window] − totals[-1]) / |totals[-1 − window]|``; None with fewer than ``window + 1``
    values. Negative when the objective rose over the window."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if len(totals) <= window:
        return None
    before, now = totals[-1 - window], totals[-1]
    return (before - now) / max(abs(before), 1e-30)


def has_converged(totals: list[float], window: int, tolerance: float) -> bool:
    """True when ``tolerance > 0`` and the relative decrease over the last ``window`` values (see
    :func:`relative_decrease`) is below ``tolerance``. Non-finite objectives never count as converged."""
    if tolerance <= 0 or not totals or totals[-1] != totals[-1] or abs(totals[-1]) == float("inf"):
        return False
    decrease = relative_decrease(totals, window)
    return decrease is not None and decrease < tolerance


def total_variation(images: Tensor) -> Tensor:
    """Mean squared differences of vertically and horizontally adjacent pixels. ``[B, C, H, W]`` → ``[B]``."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).pow(2).flatten(1).mean(dim=1)
    dw = (images[..., :, 1:] - images[..., :, :-1]).pow(2).flatten(1).mean(dim=1)
    return dh + dw


def content_loss(generated: Tensor, target: Tensor) -> Tensor:
    """Mean squared feature error: ``[B, N, H, W]``, ``[B|1, N, H, W]`` → ``[B]`` (``mmd.content_mse``)."""
    return content_mse(generated, target)


def texture_reference(size: tuple[int, int], seed: int, *, like: Tensor) -> Tensor:
    """The seeded uniform-noise image ``[1, 3, *size]`` that textures start from and are normalised by.

    Drawn on the CPU in float32 from a private generator, then moved to ``like``'s dtype and device, so it
    is the same image on every device and in every dtype (the optimiser and the evaluator both call this).
    """
    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.rand((1, 3, *size), generator=generator, dtype=torch.float32)
    return noise.to(dtype=like.dtype, device=like.device)


def style_normalisers(
    loss: StyleLoss,
    reference: Mapping[str, Tensor],
    style: Mapping[str, Tensor],
    layers: list[str] | tuple[str, ...],
) -> dict[str, Tensor]:
    """``ref_l = loss(reference[l], style[l])`` per layer (scalar tensors, no gradient); see
    :meth:`mmd.StyleObjective.normalisers`.

    Raises:
        ValueError: a normaliser is not positive and finite (e.g. the reference image *is* the style).
    """
    return StyleObjective(loss, dict.fromkeys(layers, 1.0)).normalisers(reference, style)


def _as_batch(image: Tensor, what: str) -> Tensor:
    """``[3, H, W]`` or ``[1, 3, H, W]`` → ``[1, 3, H, W]``."""
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"{what} image must be [3, H, W] or [1, 3, H, W], got {tuple(image.shape)}")
    return image


def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """``[1, 3, H, W]`` → ``[1, 3, *size]`` (bilinear with antialiasing; unchanged if already that size)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = nn.functional.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.clamp(0, 1)


class _Objective:
    """The weighted loss of an image ``[1, 3, H, W]``, with its terms for the history."""

    def __init__(
        self,
        encoder: nn.Module,
        objective: StyleObjective,
        settings: OptimizeSettings,
        style_feats: Mapping[str, Tensor],
        content_feats: Mapping[str, Tensor] | None,
        normalisers: Mapping[str, Tensor],
    ) -> None:
        self.encoder, self.objective, self.settings = encoder, objective, settings
        self.style_feats, self.content_feats, self.normalisers = style_feats, content_feats, normalisers

    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        s, obj = self.settings, self.objective
        feats = self.encoder(image, layers=obj.layers)  # the encoder fixes the gradient layout (base.py)
        raw = obj.style_terms(feats, self.style_feats, self.normalisers)
        per_layer = {layer: value.sum() for layer, value in raw.items()}
        terms: dict[str, Tensor] = {f"style/{layer}": term for layer, term in per_layer.items()}
        style = obj.weighted(per_layer)
        content = image.new_zeros(())
        if self.content_feats is not None and obj.content_layer is not None:
            content = obj.content(feats, self.content_feats).sum() / self.normalisers["content"]
        tv = total_variation(image).sum() if s.tv_weight > 0 else image.new_zeros(())
        total = s.content_weight * content + s.style_weight * style + s.tv_weight * tv
        terms.update(total=total, content=content, style=style, tv=tv)
        return total, terms


def _record(history: dict[str, list[float]], terms: Mapping[str, Tensor]) -> None:
    for key, value in terms.items():
        history.setdefault(key, []).append(float(value.detach()))


def optimize_image(
    encoder: nn.Module,
    loss: StyleLoss,
    style_image: Tensor,
    content_image: Tensor | None,
    settings: OptimizeSettings,
) -> OptimizeResult:
    """Optimise an image's pixels to match ``content_image``'s features and ``style_image``'s statistics.

    Args:
        encoder: a frozen :class:`adain.encoders.FeatureEncoder` (any module with
            ``forward(images [B, 3, H, W] in [0, 1], layers) -> {layer: [B, N, h, w]}``), in the dtype and on
            the device of the images.
        loss: any :class:`mmd.StyleLoss`.
        style_image: ``[3, H', W']`` (or ``[1, 3, H', W']``) in [0, 1].
        content_image: ``[3, H, W]`` in [0, 1]; required unless ``settings.content_layer`` is None
            (texture synthesis), where it is ignored.
        settings: see :class:`OptimizeSettings`.

    Returns:
        :class:`OptimizeResult` with the image ``[3, H, W]`` and the per-iteration loss history.
    """
    start = time.perf_counter()
    s = settings
    style_b = _as_batch(style_image, "style").detach()
    if s.texture:
        content_b = None
        shape = s.size if s.size is not None else style_b.shape[-2:]
        size: tuple[int, int] = (int(shape[0]), int(shape[1]))
    else:
        if content_image is None:
            raise ValueError(f"content_layer={s.content_layer!r} needs a content image (None for textures)")
        content_b = _as_batch(content_image, "content").detach().to(style_b)
        size = (content_b.shape[-2], content_b.shape[-1])
    noise = texture_reference(size, s.seed, like=style_b)
    objective = StyleObjective(loss, s.style_layers, content_layer=s.content_layer)

    layers = objective.style_layers
    with torch.no_grad():
        style_feats = encoder(style_b, layers=layers)
        objective = objective.with_targets(style_feats)  # e.g. a median bandwidth, fixed once per layer
        content_feats = None if content_b is None else encoder(content_b, layers=[s.content_layer])
        if s.normalise == "reference":
            reference = noise if content_b is None else content_b
            ref_feats = encoder(reference, layers=layers)
            normalisers = objective.normalisers(ref_feats, style_feats, content_feats)
        else:
            normalisers = {layer: style_b.new_ones(()) for layer in [*layers, "content"]}
    normalisers.setdefault("content", style_b.new_ones(()))
    run_objective = _Objective(encoder, objective, s, style_feats, content_feats, normalisers)

    init = {"content": content_b, "noise": noise, "style": None}[s.init]
    if s.init == "style":
        init = _resize(style_b, size)
    assert init is not None  # init="content" needs a content image (checked above)
    if s.init_jitter > 0:
        init = (init + s.init_jitter * _jitter(init, s.seed)).clamp(0, 1)
    param = _to_parameter(init, s.parametrisation)
    image_of = torch.sigmoid if s.parametrisation == "sigmoid" else (lambda p: p)

    history: dict[str, list[float]] = {}
    evaluations = restarts = 0
    if s.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam([param], lr=s.lr)
    else:
        optimizer = torch.optim.LBFGS(
            [param], lr=s.lr, max_iter=1, history_size=50, line_search_fn="strong_wolfe", tolerance_grad=0.0
        )

    stop_reason, steps = "max_iterations", 0
    for _ in range(s.iterations):
        if has_converged(history.get("total", []), s.window, s.tolerance):
            stop_reason = "converged"
            break
        steps += 1
        first = True

        def closure() -> Tensor:
            nonlocal first, evaluations
            optimizer.zero_grad(set_to_none=True)
            total, terms = run_objective(image_of(param))
            total.backward()
            evaluations += 1
            if first:  # the image at the start of this step (line searches evaluate more)
                _record(history, terms)
                first = False
            return total

        before = param.detach().clone() if s.optimizer == "lbfgs" else None
        optimizer.step(closure)  # type: ignore[arg-type]  # a closure returning the loss tensor
        if before is not None and torch.equal(before, param.detach()):
            # the line search made no progress (a noisy curvature pair can give a useless direction, and
            # L-BFGS would then repeat the same failed step forever): drop the history and restart
            optimizer.state[param].clear()
            restarts += 1
        if s.parametrisation == "clamp":
            with torch.no_grad():
                param.clamp_(0, 1)

    with torch.no_grad():
        image = image_of(param).detach()
        _record(history, run_objective(image)[1])
    return OptimizeResult(
        image=image[0],
        history=history,
        normalisers={k: float(v) for k, v in normalisers.items()},
        seconds=time.perf_counter() - start,
        evaluations=evaluations,
        restarts=restarts,
        settings=s,
        stop_reason=stop_reason,
        steps=steps,
    )


def _jitter(like: Tensor, seed: int) -> Tensor:
    """Seeded standard Gaussian noise of ``like``'s shape (drawn on the CPU in float32, then moved), from a
    generator distinct from :func:`texture_reference`'s (seed offset by a constant)."""
    generator = torch.Generator().manual_seed(int(seed) + 7_919)
    noise = torch.randn(tuple(like.shape), generator=generator, dtype=torch.float32)
    return noise.to(dtype=like.dtype, device=like.device)


def _to_parameter(init: Tensor, parametrisation: Parametrisation) -> Tensor:
    """The leaf tensor to optimise for an initial image ``[1, 3, H, W]`` in [0, 1]."""
    x = init.detach().clone().clamp(0, 1)
    if parametrisation == "sigmoid":
        x = torch.logit(x.clamp(_LOGIT_EPS, 1 - _LOGIT_EPS))
    return x.requires_grad_(True)
