"""Per-channel mean activations of the original VGG-19, for Gatys et al.'s normalisation.

    python -m experiments.vgg19_channel_means                      # rewrites the package's file
    python -m experiments.vgg19_channel_means --output /tmp/m.pt   # anywhere else

For each of the 16 convolutions of ``vgg19_caffe`` (max pooling, the weights as released), the mean of its
post-ReLU output over the positions of each image, averaged over the images: every image counts equally.
The images are the AdaIN paper's 11 contents and 20 styles (``../shared/data/adain-paper/{content,style}``,
sorted by name), each resized to a shorter side of 256 pixels (antialiased, via :func:`adain.io.load_image`).
A channel that never fires (mean 0) keeps a mean of 1, i.e. is left unscaled. The file records the image
names and sha256, the size and the torch version; :func:`adain.encoders.vgg19_caffe.channel_means` reads it.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn

from adain.encoders import build_encoder
from adain.encoders.vgg19_caffe import CHANNEL_MEANS_FILE, CONV_NAMES
from adain.io import list_images, load_image
from adain.torchfiles import atomic_torch_save

DEFAULT_IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adain-paper"
SIZE = 256


def calibration_images(root: Path) -> list[Path]:
    """The content and style images under ``root``, sorted by folder then name."""
    files = [p for sub in ("content", "style") for p in sorted(list_images(root / sub))]
    if not files:
        raise SystemExit(f"no images under {root}/content or {root}/style")
    return files


@torch.no_grad()
def post_relu_means(images: list[Tensor]) -> dict[str, Tensor]:
    """Mean post-ReLU activation per channel of every convolution of the raw ``vgg19_caffe``.

    Args:
        images: ``[1, 3, H, W]`` RGB in [0, 1], any sizes.

    Returns:
        conv name → ``[C]`` float64: the mean over positions, averaged over images.
    """
    encoder = build_encoder("vgg19_caffe")
    sums: list[Tensor] = []
    for image in images:
        x = encoder.normalise(image)
        k = 0
        for module in encoder.body:
            x = module(x)
            if isinstance(module, nn.ReLU):
                mean = x.double().mean(dim=(0, 2, 3))
                if len(sums) <= k:
                    sums.append(torch.zeros_like(mean))
                sums[k] += mean
                k += 1
    return {name: s / len(images) for name, s in zip(CONV_NAMES, sums, strict=True)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder with content/ and style/")
    parser.add_argument("--output", type=Path, default=CHANNEL_MEANS_FILE)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    files = calibration_images(args.images)
    means = post_relu_means([load_image(p, size=SIZE)[None] for p in files])
    dead = {n: int((m <= 0).sum()) for n, m in means.items() if (m <= 0).any()}
    means = {n: torch.where(m > 0, m, torch.ones_like(m)) for n, m in means.items()}
    record = {
        "means": means,
        "images": [f"{p.parent.name}/{p.name}" for p in files],
        "sha256": [hashlib.sha256(p.read_bytes()).hexdigest() for p in files],
        "shorter_side": SIZE,
        "torch": str(torch.__version__),
        "dead_channels": dead,
    }
    atomic_torch_save(record, args.output)
    print(f"{len(files)} images → {args.output}")
    for name, m in means.items():
        print(f"  {name:13s} mean of means {m.mean():10.3f}  min {m.min():9.4f}  max {m.max():10.3f}")
    if dead:
        print(f"  channels that never fired (left unscaled): {dead}")


if __name__ == "__main__":
    main()
