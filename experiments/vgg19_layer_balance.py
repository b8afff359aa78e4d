"""How the style layers share a summed style loss, on the original VGG-19 and its normalised variant.

    python -m experiments.vgg19_layer_balance [--size 256] [--output runs/vgg19_layer_balance]

For every AdaIN-paper content × style pair (11 × 20) at a shorter side of ``--size``, the style loss between
the content image and the style image (what training or optimisation has to remove) at ``relu1_1 …
relu4_1``, for ``meanstd`` weighted by 1/channels (the AdaIN recipe) and for ``gram`` (Gatys et al.'s
``1/(4N²M²)`` normalisation), on ``vgg19_caffe`` and ``vgg19_caffe_normalised``. Prints each layer's median
share of the summed loss and the median content-loss scale at ``relu4_1`` (mean squared feature), and
writes ``shares.csv``. A layer with a share near 1 decides the whole loss; balanced shares are what the
AdaIN paper's fixed loss weights (style 10, content 1) were tuned for.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import torch

import mmd
from adain.encoders import build_encoder
from adain.io import list_images, load_image

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adain-paper"
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@torch.no_grad()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--paper", type=Path, default=PAPER)
    parser.add_argument("--output", type=Path, default=Path("runs/vgg19_layer_balance"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    contents = [load_image(p, size=args.size)[None] for p in list_images(args.paper / "content")]
    styles = [load_image(p, size=args.size)[None] for p in list_images(args.paper / "style")]
    rows = []
    for name in ("vgg19_caffe", "vgg19_caffe_normalised"):
        encoder = build_encoder(name)
        cf = [encoder(x, LAYERS) for x in contents]
        sf = [encoder(x, LAYERS) for x in styles]
        for loss_name in ("meanstd", "gram"):
            loss = mmd.style_loss(loss_name)
            shares: dict[str, list[float]] = {k: [] for k in LAYERS}
            for c in cf:
                for s in sf:
                    per_layer = {k: float(loss(c[k], s[k]).sum()) for k in LAYERS}
                    if loss_name == "meanstd":
                        per_layer = {k: v / encoder.channels[k] for k, v in per_layer.items()}
                    total = sum(per_layer.values())
                    for k in LAYERS:
                        shares[k].append(per_layer[k] / total)
            for k in LAYERS:
                rows.append((name, loss_name, k, statistics.median(shares[k])))
        scale = statistics.median(float(c["relu4_1"].pow(2).mean()) for c in cf)
        rows.append((name, "content_scale", "relu4_1", scale))
    with open(args.output / "shares.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["encoder", "loss", "layer", "median_share_or_scale"])
        writer.writerows(rows)
    for name, loss_name, layer, value in rows:
        print(f"{name:24s} {loss_name:14s} {layer:8s} {value:.4g}")


if __name__ == "__main__":
    main()
