"""The style objective: one perceptual loss on feature maps, used by training, optimisation and evaluation.

Like pystiche's perceptual loss, one object holds every choice that defines "how far is this image from
the style and the content":

* the style loss (any :class:`~mmd.losses.StyleLoss`, e.g. from :func:`mmd.build_style_loss`),
* the style layers and their weights ``w_l``,
* the per-layer normalisers ``ref_l`` (``loss`` at a reference image, see :meth:`StyleObjective.normalisers`;
  1 when not given),
* the content layer and the content loss (mean squared feature error).

Everything works on feature dicts ``{layer: [B, N_l, H_l, W_l]}`` (no network, no image I/O)::

    style term   S(x) = Σ_l w_l · loss(F_l(x), F_l(s)) / ref_l         → [B]
    content term C(x) = mean (F_c(x) − target)² / ref_content          → [B]

The AdaIN trainer (:mod:`adain.train`), the Gatys optimiser (:mod:`adain.gatys`) and the evaluator
(``experiments/evaluate.py``) all call it, so a change to a layer weight or a normalisation is made here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .losses import StyleLoss

__all__ = ["StyleObjective", "content_mse"]


def content_mse(generated: Tensor, target: Tensor) -> Tensor:
    """Mean squared feature error per batch element: ``[B, N, H, W]``, ``[B|1, N, H, W]`` → ``[B]``.

    Computed in at least float32 (bf16 features from autocast are promoted).
    """
    dtype = torch.promote_types(torch.promote_types(generated.dtype, target.dtype), torch.float32)
    return (generated.to(dtype) - target.to(dtype)).pow(2).flatten(1).mean(dim=1)


@dataclass(frozen=True)
class StyleObjective:
    """Style loss per layer, layer weights, normalisation by reference values, content layer and loss.

    Attributes:
        style_loss: the per-layer style loss ``loss(F [B, N, H, W], S [B|1, N, H', W']) -> [B]``.
        layer_weights: style layer → weight ``w_l`` (order kept; at least one layer).
        content_layer: layer of the content term (``None``: no content term, e.g. texture synthesis).
    """

    style_loss: StyleLoss
    layer_weights: Mapping[str, float]
    content_layer: str | None = None
    layer_losses: Mapping[str, StyleLoss] | None = None

    def __post_init__(self) -> None:
        if not self.layer_weights:
            raise ValueError("a style objective needs at least one style layer")
        object.__setattr__(self, "layer_weights", {k: float(v) for k, v in self.layer_weights.items()})

    def with_targets(self, style: Mapping[str, Tensor]) -> StyleObjective:
        """This objective with each layer's loss fixed from that layer's style features
        (:meth:`~mmd.losses.StyleLoss.for_target`): a data-dependent parameter such as a median-heuristic
        Gaussian bandwidth is computed once per layer from the style target alone, so the loss is one
        smooth function of the generated features (its gradient agrees with its values) and every output
        scored against this style sees the same bandwidth. ``style``: ``{layer: [B|1, N, H, W]}``.
        """
        with torch.no_grad():
            losses = {layer: self.style_loss.for_target(style[layer]) for layer in self.layer_weights}
        return replace(self, layer_losses=losses)

    def loss_at(self, layer: str) -> StyleLoss:
        """The style loss used at ``layer`` (fixed from its target by :meth:`with_targets`, if called)."""
        return self.style_loss if self.layer_losses is None else self.layer_losses[layer]

    @property
    def style_layers(self) -> list[str]:
        """The style layers, in the order given."""
        return list(self.layer_weights)

    @property
    def layers(self) -> list[str]:
        """Every layer the objective reads: the style layers, then the content layer if it is not one."""
        content = self.content_layer
        extra = [] if content is None or content in self.layer_weights else [content]
        return self.style_layers + extra

    def style_terms(
        self,
        generated: Mapping[str, Tensor],
        style: Mapping[str, Tensor],
        normalisers: Mapping[str, Tensor | float] | None = None,
    ) -> dict[str, Tensor]:
        """Unweighted per-layer terms ``loss(F_l(x), F_l(s)) / ref_l`` → ``{layer: [B]}``."""
        out = {}
        for layer in self.layer_weights:
            if layer not in generated or layer not in style:
                raise KeyError(f"layer {layer!r} missing from the generated or style features")
            term = self.loss_at(layer)(generated[layer], style[layer])
            out[layer] = term if normalisers is None else term / normalisers[layer]
        return out

    def style(
        self,
        generated: Mapping[str, Tensor],
        style: Mapping[str, Tensor],
        normalisers: Mapping[str, Tensor | float] | None = None,
    ) -> Tensor:
        """The style term ``Σ_l w_l · loss_l / ref_l`` → ``[B]``."""
        terms = self.style_terms(generated, style, normalisers)
        return self.weighted(terms)

    def weighted(self, terms: Mapping[str, Tensor]) -> Tensor:
        """``Σ_l w_l · terms[l]`` over the style layers."""
        total: Tensor | None = None
        for layer, weight in self.layer_weights.items():
            value = weight * terms[layer]
            total = value if total is None else total + value
        assert total is not None  # at least one layer (checked in __post_init__)
        return total

    def content(
        self, generated: Mapping[str, Tensor] | Tensor, target: Mapping[str, Tensor] | Tensor
    ) -> Tensor:
        """The content term: mean squared error at the content layer → ``[B]``.

        ``generated`` and ``target`` are feature dicts (the content layer is read) or the content-layer
        maps themselves (``[B, N, H, W]`` and ``[B|1, N, H, W]``).
        """
        if self.content_layer is None:
            raise ValueError("this objective has no content layer")
        g = generated[self.content_layer] if isinstance(generated, Mapping) else generated
        t = target[self.content_layer] if isinstance(target, Mapping) else target
        return content_mse(g, t)

    def normalisers(
        self,
        reference: Mapping[str, Tensor],
        style: Mapping[str, Tensor],
        content: Mapping[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """``ref_l = Σ_batch loss(F_l(r), F_l(s))`` per style layer, and ``"content"``: ``mean F_c(c)²``.

        No gradient. ``reference`` is the reference image's features (the content image for transfer, the
        seeded noise for textures), ``content`` the content image's (for the content normaliser; omitted
        without a content term).

        Raises:
            ValueError: a style normaliser is not positive and finite (e.g. the reference *is* the style).
        """
        out: dict[str, Tensor] = {}
        with torch.no_grad():
            for layer in self.layer_weights:
                value = self.loss_at(layer)(reference[layer], style[layer]).sum()
                if not bool(torch.isfinite(value)) or float(value) <= 0:
                    raise ValueError(
                        f"style loss {self.style_loss.name!r} of the reference image at layer {layer!r} is "
                        f"{float(value)!r}: it must be positive to normalise by it (is the reference image "
                        "the style image?). Use normalise='none' or another content image."
                    )
                out[layer] = value
            if content is not None and self.content_layer is not None:
                out["content"] = content[self.content_layer].pow(2).mean().clamp_min(1e-12)
        return out
