"""How much signal a decoder passes: per ReLU, the mean activation and the fraction of channels alive.

    python -m experiments.decoder_health [--model FILE ...] [--init he torch] [--encoder NAME]
                                         [--images DIR] [--size 128] [--count 8] [--seed 0]

For each model file (or training checkpoint) and each named initialisation of a fresh decoder (``he``: the
decoder's own :meth:`~adain.decoders.base.Decoder.reset_parameters`; ``torch``: PyTorch's default
``Conv2d.reset_parameters`` on every convolution, seeded), it decodes the AdaIN-layer features of
``--count`` images of ``--images`` (centre crops of ``--size`` px; the AdaIN paper's contents by default)
and prints one CSV row per ReLU: its position, channels, mean output and the fraction of channels that are
positive anywhere in the batch ("alive"), then the output's per-channel mean and standard deviation and,
for trained models, the pixel MSE of ``D(E(c))`` against ``c``. A decoder whose signal shrinks with depth
or whose channels are dead has little capacity left to learn (``notes/default_model.md``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch
from torch import Tensor

from adain.decoders import Decoder, build_decoder
from adain.encoders import DEFAULT_WEIGHTS, FeatureEncoder, build_encoder
from adain.io import list_images, load_image
from adain.modelfile import load_decoder

__all__ = ["decoder_health", "fresh_decoder", "main"]

PAPER_CONTENT = Path(__file__).resolve().parents[2] / "shared" / "data" / "adain-paper" / "content"


def fresh_decoder(encoder_name: str, init: str, seed: int) -> Decoder:
    """A new decoder with ``init`` "he" (its own) or "torch" (PyTorch's default conv init), seeded."""
    if init not in ("he", "torch"):
        raise ValueError(f"init must be 'he' or 'torch', got {init!r}")
    with torch.random.fork_rng(devices=[]):  # the global generator is restored afterwards
        torch.manual_seed(seed)
        decoder = build_decoder(encoder_name)
        if init == "torch":
            for module in decoder:
                if isinstance(module, torch.nn.Conv2d):
                    module.reset_parameters()
    return decoder


def decoder_health(decoder: Decoder, features: Tensor) -> tuple[list[tuple[int, int, float, float]], Tensor]:
    """Per ReLU ``(index, channels, mean output, fraction of channels alive)`` and the output, for
    features ``[B, C, h, w]`` → output ``[B, 3, H, W]``."""
    rows = []
    h = features
    with torch.no_grad():
        for index, module in enumerate(decoder):
            h = module(h)
            if isinstance(module, torch.nn.ReLU):
                alive = (h.amax(dim=(0, 2, 3)) > 0).float().mean()
                rows.append((index, h.shape[1], float(h.mean()), float(alive)))
    return rows, h


def _images(folder: Path, size: int, count: int) -> Tensor:
    import torchvision.transforms.functional as TF

    paths = list_images(folder)[:count]
    if not paths:
        raise SystemExit(f"decoder_health: error: no images in {folder}")
    return torch.stack([TF.center_crop(load_image(p, size=size), [size, size]) for p in paths])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, nargs="*", default=[])
    parser.add_argument("--init", nargs="*", default=["he", "torch"], choices=("he", "torch"))
    parser.add_argument("--encoder", default="vgg19_caffe_normalised")
    parser.add_argument("--images", type=Path, default=PAPER_CONTENT)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    encoder: FeatureEncoder = build_encoder(args.encoder, weights=DEFAULT_WEIGHTS).eval()
    images = _images(args.images, args.size, args.count)
    with torch.no_grad():
        features = encoder(images, layers=encoder.adain_layer)[encoder.adain_layer]
    decoders = [(f"init={name}", fresh_decoder(args.encoder, name, args.seed), False) for name in args.init]
    decoders += [(str(path), load_decoder(path, args.encoder), True) for path in args.model]
    out = csv.writer(sys.stdout)
    out.writerow(["decoder", "relu_index", "channels", "mean", "alive_fraction"])
    for label, decoder, trained in decoders:
        rows, output = decoder_health(decoder.eval(), features)
        for row in rows:
            out.writerow([label, row[0], row[1], f"{row[2]:.4g}", f"{row[3]:.3f}"])
        mean = ", ".join(f"{v:.3f}" for v in output.mean(dim=(0, 2, 3)).tolist())
        std = ", ".join(f"{v:.3f}" for v in output.std(dim=(0, 2, 3)).tolist())
        extra = f"; pixel MSE of D(E(c)) {float((output - images).pow(2).mean()):.4f}" if trained else ""
        print(f"# {label}: output mean per channel [{mean}], std [{std}]{extra}")


if __name__ == "__main__":
    main()
