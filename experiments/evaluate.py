"""Cross-evaluation matrix: every output image scored under every style loss and the content loss.

Outputs are plain images (one per *method*: an optimisation run, later a trained decoder), so any
producer of stylised images can be added as a further column.

Normalisation (documented choice): each evaluation loss, per layer, is divided by its value at a fixed
*reference* image — the content image for style transfer, seeded uniform noise for texture synthesis
(:func:`adain.gatys.texture_reference`, the image the optimiser uses) — exactly the normalisation
:func:`adain.gatys.optimize_image` uses with ``normalise="reference"``; the losses are computed by the
same :class:`mmd.StyleObjective`.
So a cell of 1 means "as far from the style as the reference", 0 means "matched", and every row (one
evaluation loss) lives on the same unit-free scale. The summed score is ``Σ_l w_l · L_l(x) / L_l(ref)``
with the style-layer weights, i.e. the optimised style term divided by ``style_weight``. Dividing a row by
a constant does not change its argmin, so "which output is best under loss L" is read off directly.
The content row is ``mean (F(x) − F(c))² / mean F(c)²`` at the content layer (0 at the content image).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import mmd
from adain.gatys import texture_reference
from experiments.intervals import row_verdict
from experiments.runs import save_figure

__all__ = [
    "CrossEvaluation",
    "axis_scale",
    "cross_evaluate",
    "heatmap_norm",
    "plot_heatmap",
    "plot_pareto",
    "plot_per_layer",
    "summarise",
]

CONTENT = "content"


@dataclass(frozen=True)
class CrossEvaluation:
    """Scores ``[evaluation loss, output]``.

    Attributes:
        losses: evaluation-loss names (rows; ``"content"`` last when there is a content image).
        outputs: output (method) names (columns).
        summed: ``[len(losses), len(outputs)]`` normalised, layer-weighted sums.
        per_layer: ``{layer: [len(style losses), len(outputs)]}`` normalised per-layer values (style rows
            only, in the order of ``losses``).
        raw_summed: like ``summed`` but without the reference normalisation.
    """

    losses: tuple[str, ...]
    outputs: tuple[str, ...]
    summed: Tensor
    per_layer: dict[str, Tensor]
    raw_summed: Tensor

    def rows(self, run: str = "") -> list[dict[str, Any]]:
        """Long-format rows ``{run, eval_loss, output, layer, value, raw}`` (layer ``"sum"`` for sums)."""
        out: list[dict[str, Any]] = []
        for i, loss in enumerate(self.losses):
            for j, name in enumerate(self.outputs):
                value, raw = float(self.summed[i, j]), float(self.raw_summed[i, j])
                out.append(dict(run=run, eval_loss=loss, output=name, layer="sum", value=value, raw=raw))
                if loss == CONTENT:
                    continue
                for layer, values in self.per_layer.items():
                    out.append(dict(run=run, eval_loss=loss, output=name, layer=layer,
                                    value=float(values[i, j]), raw=None))  # fmt: skip
        return out


@torch.no_grad()
def cross_evaluate(
    encoder: nn.Module,
    outputs: Mapping[str, Tensor],
    losses: Mapping[str, mmd.StyleLoss],
    style: Tensor,
    content: Tensor | None,
    style_layers: Mapping[str, float],
    content_layer: str | None = None,
    seed: int = 0,
) -> CrossEvaluation:
    """Score every output under every loss (see the module docstring for the normalisation).

    Args:
        encoder: ``forward(images [B, 3, H, W] in [0, 1], layers) -> {layer: [B, N, h, w]}``.
        outputs: ``{method: image [3, H, W]}`` in [0, 1] (same size as ``content`` when given).
        losses: ``{name: StyleLoss}`` evaluation losses (rows).
        style: ``[3, H', W']`` style image; content: ``[3, H, W]`` or None (texture synthesis).
        style_layers: ``{layer: weight}``; content_layer: layer of the content loss (ignored without
            content).
        seed: seed of the noise reference used for textures (as in ``optimize_image``).
    """
    if not outputs or not losses:
        raise ValueError("cross_evaluate needs at least one output and one loss")
    layers = list(style_layers)
    first = next(iter(outputs.values()))
    if content is not None:
        reference = content
    else:  # the same noise image the optimiser starts textures from and normalises by
        reference = texture_reference((first.shape[-2], first.shape[-1]), seed, like=first)[0]
    style_feats = encoder(style[None], layers=layers)
    ref_feats = encoder(reference[None], layers=layers)
    names = tuple(outputs)
    out_feats = [encoder(outputs[n][None].to(style), layers=layers) for n in names]
    use_content = content is not None and content_layer is not None
    n_rows = len(losses) + int(use_content)
    summed = torch.zeros(n_rows, len(names), dtype=torch.float64)
    raw = torch.zeros_like(summed)
    per_layer = {layer: torch.zeros(len(losses), len(names), dtype=torch.float64) for layer in layers}
    for i, (loss_name, loss) in enumerate(losses.items()):
        objective = mmd.StyleObjective(loss, style_layers).with_targets(style_feats)  # one bandwidth per run
        try:
            refs = objective.normalisers(ref_feats, style_feats)
        except ValueError as exc:
            raise ValueError(f"evaluation loss {loss_name!r}: {exc}") from None
        for j, feats in enumerate(out_feats):
            terms = objective.style_terms(feats, style_feats)
            for layer in layers:
                per_layer[layer][i, j] = float(terms[layer].sum()) / float(refs[layer])
            summed[i, j] = float(objective.style(feats, style_feats, refs).sum())
            raw[i, j] = float(objective.weighted(terms).sum())
    if use_content:
        assert content is not None and content_layer is not None
        objective = mmd.StyleObjective(next(iter(losses.values())), style_layers, content_layer=content_layer)
        target = encoder(content[None], layers=[content_layer])
        scale = float(objective.normalisers(ref_feats, style_feats, target)["content"])
        for j, name in enumerate(names):
            gen = encoder(outputs[name][None].to(style), layers=[content_layer])
            value = float(objective.content(gen, target).sum())
            summed[-1, j], raw[-1, j] = value / scale, value
    row_names = tuple(losses) + ((CONTENT,) if use_content else ())
    return CrossEvaluation(row_names, names, summed, per_layer, raw)


def _symlog_threshold(values: Tensor) -> float:
    """The linear range of a symmetric-log scale for ``values``: the smallest positive magnitude (else the
    smallest non-zero one, else 1)."""
    flat = values.double().flatten()
    positive, magnitudes = flat[flat > 0], flat[flat != 0].abs()
    if len(positive):
        return float(positive.min())
    return float(magnitudes.min()) if len(magnitudes) else 1.0


def axis_scale(values: Sequence[float]) -> tuple[str, dict[str, float]]:
    """``(scale, keyword arguments)`` for ``Axes.set_yscale`` of a plot of ``values``: ``"log"`` when every
    value is positive, else ``"symlog"`` linear within :func:`_symlog_threshold`, so that a negative
    estimate of an unbiased estimator is drawn, not silently dropped by a logarithmic axis."""
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if len(tensor) and bool((tensor > 0).all()):
        return "log", {}
    return "symlog", {"linthresh": _symlog_threshold(tensor)}


def heatmap_norm(values: Tensor) -> Any:
    """The colour scale of a heatmap panel ``values`` ``[rows, outputs]``: logarithmic when every value is
    positive (rows span decades); symmetric-logarithmic (linear within the smallest positive magnitude of
    zero) when an unbiased estimator (e.g. the linear-time MMD²) scored some output below zero, so that a
    negative estimate is drawn as the value it is, below every positive one, not clamped to a tiny positive
    number that would stretch the scale over many decades."""
    from matplotlib.colors import LogNorm, SymLogNorm

    flat = values.double().flatten()
    low, high = float(flat.min()), float(flat.max())
    if low > 0:
        return LogNorm(vmin=low, vmax=high)
    threshold = _symlog_threshold(flat)
    return SymLogNorm(linthresh=threshold, vmin=low, vmax=max(high, threshold), base=10)


def plot_heatmap(
    evaluation: CrossEvaluation, path_stem: Path, title: str = "", layers: Sequence[str] = ()
) -> list[Path]:
    """Heatmap of ``summed`` (and of each of ``layers``), cells annotated; writes ``<stem>.png/.pdf``.

    Colour is logarithmic in the normalised value (rows span decades; :func:`heatmap_norm`, symmetric-log
    where an unbiased estimator went negative); the best (lowest) output per row is boxed. For an unbiased
    estimator the lowest is still the right pick: its expectation is the MMD², so a negative value is a
    noisy estimate of a small MMD², not an error.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    panels = [("sum", evaluation.summed)] + [(f"layer {k}", evaluation.per_layer[k]) for k in layers]
    n_out, n_loss = len(evaluation.outputs), len(evaluation.losses)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(1.0 + 0.9 * n_out * len(panels) + 1.5, 0.55 * n_loss + 1.8), squeeze=False
    )
    for ax, (label, values) in zip(axes[0], panels, strict=True):
        rows = evaluation.losses[: values.shape[0]]
        norm = heatmap_norm(values)
        data = norm(values.double().numpy())  # [rows, outputs] in [0, 1]
        im = ax.imshow(values.double().numpy(), cmap="viridis_r", norm=norm, aspect="auto")
        for i in range(values.shape[0]):
            best = int(values[i].argmin())
            ax.add_patch(Rectangle((best - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.5))
            for j in range(values.shape[1]):
                ax.text(j, i, f"{float(values[i, j]):.3g}", ha="center", va="center", fontsize=6,
                        color="white" if data[i, j] > data.mean() else "black")  # fmt: skip
        ax.set_xticks(range(n_out), evaluation.outputs, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(rows)), rows, fontsize=7)
        ax.set_xlabel("output (optimised with, or trained decoder)")
        ax.set_title(label, fontsize=8)
        scale = "log" if isinstance(norm, matplotlib.colors.LogNorm) else "symmetric log"
        fig.colorbar(im, ax=ax, label=f"loss / loss at reference ({scale} scale)", shrink=0.8)
    axes[0][0].set_ylabel("evaluation loss")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path_stem)


def _kind(pair: str) -> str:
    return "texture" if str(pair).startswith("texture__") else "transfer"


def summarise(rows: Sequence[Mapping[str, Any]], confidence: float = 0.95) -> list[dict[str, Any]]:
    """Mean ± t-interval and verdict per (encoder, kind, style_weight, eval_loss, output).

    ``rows``: the long-format evaluation rows (``encoder, pair, seed, style_weight, eval_loss, output,
    layer, value``); only ``layer == "sum"`` is used. The repeats of a cell are its (pair, seed) units;
    outputs are compared on the units they all have (:func:`experiments.intervals.row_verdict`). Verdict:
    ``"best"`` (lowest mean, better than every other output beyond the noise), ``"tie"`` (the lowest mean
    or within the noise of it, when there is no clear best), ``""`` otherwise.
    """
    groups: dict[tuple[str, str, float, str], dict[str, dict[tuple[str, int], float]]] = {}
    for r in rows:
        if r["layer"] != "sum":
            continue
        key = (str(r["encoder"]), _kind(r["pair"]), float(r["style_weight"]), str(r["eval_loss"]))
        unit = (str(r["pair"]), int(r["seed"]))
        groups.setdefault(key, {}).setdefault(str(r["output"]), {})[unit] = float(r["value"])
    out: list[dict[str, Any]] = []
    for (encoder, kind, weight, loss), by_output in groups.items():
        units = sorted(set.intersection(*(set(v) for v in by_output.values())))
        if not units:
            raise ValueError(f"no common (pair, seed) units for {encoder}/{kind}/{weight}/{loss}")
        scores = {name: [values[u] for u in units] for name, values in by_output.items()}
        verdict = row_verdict(scores, confidence)
        for name, interval in verdict.intervals.items():
            label = "best" if name == verdict.winner else ""
            if verdict.winner is None and (name == verdict.lowest or name in verdict.tied):
                label = "tie"
            out.append(dict(encoder=encoder, kind=kind, style_weight=weight, eval_loss=loss, output=name,
                            mean=interval.mean, half_width=interval.half_width, low=interval.low,
                            high=interval.high, n=interval.n, verdict=label))  # fmt: skip
    return out


def plot_pareto(summary: Sequence[Mapping[str, Any]], encoder: str, path_stem: Path) -> list[Path]:
    """Content score (x) vs style score (y) per output across the style-weight sweep, one panel per style
    evaluation loss, 95 % intervals as error bars: losses compared at equal content preservation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {(r["eval_loss"], r["output"], float(r["style_weight"])): r for r in summary
             if r["encoder"] == encoder and r["kind"] == "transfer"}  # fmt: skip
    losses = list(dict.fromkeys(k[0] for k in cells if k[0] != CONTENT))
    outputs = list(dict.fromkeys(k[1] for k in cells))
    if not losses or not any(k[0] == CONTENT for k in cells):
        raise ValueError(f"no transfer scores with a content row for encoder {encoder!r}")
    fig, axes = plt.subplots(1, len(losses), figsize=(3.6 * len(losses), 3.4), squeeze=False)

    def err(r: Mapping[str, Any]) -> float:
        h = float(r["half_width"])
        return 0.0 if h == float("inf") else h

    for ax, loss in zip(axes[0], losses, strict=True):
        drawn: list[float] = []
        for name in outputs:
            weights = sorted(
                w for (lo, o, w) in cells if (lo, o) == (loss, name) and (CONTENT, o, w) in cells
            )
            xs = [cells[(CONTENT, name, w)] for w in weights]
            ys = [cells[(loss, name, w)] for w in weights]
            ax.errorbar([float(r["mean"]) for r in xs], [float(r["mean"]) for r in ys],
                        xerr=[err(r) for r in xs], yerr=[err(r) for r in ys], marker="o", ms=3,
                        capsize=2, label=name)  # fmt: skip
            drawn += [float(r["mean"]) - err(r) for r in ys] + [float(r["mean"]) for r in ys]
        ax.set_xlabel("content score (lower: closer to the content)")
        ax.set_ylabel(f"style score under {loss}")
        scale, options = axis_scale(drawn)
        ax.set_yscale(scale, **options)
        ax.grid(alpha=0.3)
        ax.set_title(f"{loss} ({encoder})", fontsize=8)
    axes[0][-1].legend(fontsize="x-small")
    fig.tight_layout()
    return save_figure(fig, path_stem)


def plot_per_layer(
    rows: Sequence[Mapping[str, Any]], encoder: str, style_weight: float, path_stem: Path
) -> list[Path]:
    """Per-layer normalised style scores, mean over the transfer runs at ``style_weight`` (and every
    texture run), one panel per evaluation loss, one bar per (layer, output)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        if r["encoder"] != encoder or r["layer"] == "sum" or r["eval_loss"] == CONTENT:
            continue
        if _kind(r["pair"]) == "transfer" and float(r["style_weight"]) != float(style_weight):
            continue
        key = (str(r["eval_loss"]), str(r["layer"]), str(r["output"]))
        cells.setdefault(key, []).append(float(r["value"]))
    if not cells:
        raise ValueError(f"no per-layer scores for encoder {encoder!r} at style weight {style_weight}")
    losses = list(dict.fromkeys(k[0] for k in cells))
    layers = list(dict.fromkeys(k[1] for k in cells))
    outputs = list(dict.fromkeys(k[2] for k in cells))
    fig, axes = plt.subplots(1, len(losses), figsize=(1.2 + 1.1 * len(layers) * len(losses), 3.2),
                             squeeze=False)  # fmt: skip
    width = 0.8 / len(outputs)
    for ax, loss in zip(axes[0], losses, strict=True):
        drawn: list[float] = []
        for k, name in enumerate(outputs):
            xs = [i + (k - (len(outputs) - 1) / 2) * width for i in range(len(layers))]
            ys = [sum(v) / len(v) if (v := cells.get((loss, layer, name))) else 0.0 for layer in layers]
            ax.bar(xs, ys, width, label=name)
            drawn += [y for y, layer in zip(ys, layers, strict=True) if (loss, layer, name) in cells]
        ax.set_xticks(range(len(layers)), layers, fontsize=7)
        scale, options = axis_scale(drawn)
        ax.set_yscale(scale, **options)
        ax.set_title(f"{loss} per layer ({encoder})", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("loss / loss at reference")
    axes[0][-1].legend(fontsize="x-small")
    fig.tight_layout()
    return save_figure(fig, path_stem)
