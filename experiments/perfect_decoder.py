"""The perfect-decoder reference of the decoder ablation: the AdaIN target inverted by optimisation.

A trained decoder ``D`` is judged by how close ``E(D(t))`` comes to the AdaIN target
``t = AdaIN(E(c), E(s))`` at the AdaIN layer. The best any decoder could do is an image ``x*`` with
``E(x*) = t``; :func:`invert_features` approximates it by optimising pixels::

    x* = argmin_x ‖E_l(x) − t‖² / ‖t‖²        (mean over channels and positions; l = the AdaIN layer)

with L-BFGS on ``x = sigmoid(u)`` (pixels stay in [0, 1]), starting from the content image, until the
relative decrease of the objective over ``window`` iterations is below ``tolerance``
(:func:`adain.gatys.has_converged`) or ``iterations`` is reached. :class:`PerfectDecoder` wraps it with
a ``stylize(content, style)`` method, so it can stand in a comparison wherever a trained decoder does
(``[decoders] perfect = "invert"`` in an optimize/compare config).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from adain.gatys import has_converged
from adain.ops.normalization import adaptive_instance_norm

__all__ = ["Inversion", "PerfectDecoder", "invert_features", "target_error"]


@dataclass
class Inversion:
    """``image`` ``[3, H, W]`` in [0, 1]; ``history``: the objective before each step and at the end;
    ``stop_reason``: ``"converged"`` or ``"max_iterations"``."""

    image: Tensor
    history: list[float]
    stop_reason: str


def target_error(features: Tensor, target: Tensor) -> Tensor:
    """The inversion's objective ``mean (features − target)² / mean target²`` (a scalar).

    Args:
        features, target: ``[1, N, h, w]`` of the same shape.

    Raises:
        ValueError: the shapes differ.
    """
    if features.shape != target.shape:
        raise ValueError(f"target {tuple(target.shape)} does not match the features {tuple(features.shape)}")
    return (features - target).pow(2).mean() / target.pow(2).mean().clamp_min(1e-12)


def invert_features(
    encoder: nn.Module,
    target: Tensor,
    layer: str,
    init: Tensor,
    *,
    iterations: int = 500,
    tolerance: float = 1e-4,
    window: int = 20,
    lr: float = 1.0,
) -> Inversion:
    """Pixels whose features at ``layer`` match ``target`` (see the module docstring).

    Args:
        encoder: ``forward(images [1, 3, H, W], layers) -> {layer: [1, N, h, w]}``, frozen.
        target: ``[1, N, h, w]`` (the feature map size of ``init`` at ``layer``).
        init: ``[3, H, W]`` in [0, 1], the starting image.
    """
    if iterations < 0 or tolerance < 0 or window < 1:
        raise ValueError(
            f"need iterations >= 0, tolerance >= 0, window >= 1; got {iterations}, {tolerance}, {window}"
        )
    target = target.detach()
    param = torch.logit(init.detach()[None].clamp(1e-3, 1 - 1e-3)).requires_grad_(True)
    optimizer = torch.optim.LBFGS([param], lr=lr, max_iter=1, history_size=50, line_search_fn="strong_wolfe")
    history: list[float] = []

    def objective() -> Tensor:
        return target_error(encoder(torch.sigmoid(param), layers=[layer])[layer], target)

    stop_reason = "max_iterations"
    for _ in range(iterations):
        if has_converged(history, window, tolerance):
            stop_reason = "converged"
            break
        first = True

        def closure() -> Tensor:
            nonlocal first
            optimizer.zero_grad(set_to_none=True)
            value = objective()
            value.backward()
            if first:
                history.append(float(value.detach()))
                first = False
            return value

        optimizer.step(closure)  # type: ignore[arg-type]
    with torch.no_grad():
        history.append(float(objective()))
        image = torch.sigmoid(param).detach()[0]
    return Inversion(image, history, stop_reason)


class PerfectDecoder:
    """``stylize(content, style)``: the AdaIN target of (content, style) inverted by :func:`invert_features`
    at the encoder's AdaIN layer, from the content image."""

    def __init__(
        self, encoder: nn.Module, *, iterations: int = 500, tolerance: float = 1e-4, window: int = 20
    ):
        self.encoder, self.iterations, self.tolerance, self.window = encoder, iterations, tolerance, window
        self.layer: str = encoder.adain_layer  # type: ignore[assignment]

    def target(self, content: Tensor, style: Tensor) -> Tensor:
        """``[3, H, W]``, ``[3, H', W']`` in [0, 1] → the AdaIN target ``[1, N, h, w]`` at the AdaIN layer."""
        with torch.no_grad():
            c = self.encoder(content[None], layers=[self.layer])[self.layer]
            s = self.encoder(style[None], layers=[self.layer])[self.layer]
            return adaptive_instance_norm(c, s)

    def error(self, image: Tensor, content: Tensor, style: Tensor) -> float:
        """How far ``image`` ``[3, H, W]`` (e.g. a trained decoder's output for the pair) is from the pair's
        target: :func:`target_error` of its features, the inversion's objective."""
        with torch.no_grad():
            return float(target_error(self.encoder(image[None], layers=[self.layer])[self.layer],
                                      self.target(content, style)))  # fmt: skip

    def invert(self, content: Tensor, style: Tensor) -> Inversion:
        """``[3, H, W]``, ``[3, H', W']`` in [0, 1] → the :class:`Inversion` (image ``[3, H, W]``, objective
        history, stop reason)."""
        return invert_features(
            self.encoder, self.target(content, style), self.layer, content,
            iterations=self.iterations, tolerance=self.tolerance, window=self.window,
        )  # fmt: skip

    def stylize(self, content: Tensor, style: Tensor) -> Tensor:
        """``[3, H, W]``, ``[3, H', W']`` in [0, 1] → ``[3, H, W]`` (the image of :meth:`invert`)."""
        return self.invert(content, style).image
