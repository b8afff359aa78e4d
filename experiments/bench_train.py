"""Decoder-training speed on this machine: images/s of ``adain train`` for vgg19 and mobilenet_v2.

    python -m experiments.bench_train [--batch-size 8] [--crop 256] [--warmup 1] [--timed 3]
                                      [--encoders vgg19 mobilenet_v2] [--device auto]

Each encoder runs :class:`adain.train.Trainer` end to end (data loading from PNG files, random crops,
AdaIN, decoder, encoder of the output, meanstd style loss, backward, Adam step) on random 300 px images in
a temporary folder with ``crop × crop`` crops. Both encoders have **random weights** (``pretrained=False``):
speed does not depend on the weights, and VGG-19's ImageNet file is not available offline. The rate is
the median of the per-iteration ``images_per_s`` column of the training log over the timed iterations
after ``warmup`` iterations (checkpoint writing is not in it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from adain.train import TrainConfig, Trainer, read_log


def _write_images(folder: Path, n: int, side: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (side, side + 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def bench(encoder: str, root: Path, args: argparse.Namespace) -> tuple[float, float]:
    """``(median images/s, wall seconds)`` of ``warmup + timed`` iterations of one encoder."""
    config = TrainConfig(
        content_dir=str(root / "content"),
        style_dir=str(root / "style"),
        output=str(root / f"run_{encoder}"),
        encoder=encoder,
        pretrained=False,
        batch_size=args.batch_size,
        image_size=args.crop + 44,
        crop_size=args.crop,
        iterations=args.warmup + args.timed,
        checkpoint_every=10**9,
        device=args.device,
        progress=False,
        num_samples=0,
    )
    start = time.perf_counter()
    Trainer(config, log=lambda msg: None).run()
    wall = time.perf_counter() - start
    rates = [row["images_per_s"] for row in read_log(Path(config.output) / "log.csv")][args.warmup :]
    return statistics.median(rates), wall


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--timed", type=int, default=3)
    p.add_argument("--encoders", nargs="+", default=["vgg19", "mobilenet_v2"])
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    where = (
        torch.cuda.get_device_name()
        if device.startswith("cuda")
        else platform.processor() or platform.machine()
    )
    print(
        f"adain train speed: batch {args.batch_size}, {args.crop}×{args.crop} crops, fp32, meanstd loss, "
        f"{args.warmup} warm-up + {args.timed} timed iterations; device {device} ({where}), "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; random encoder weights"
    )
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        _write_images(root / "content", 2 * args.batch_size, args.crop + 44, 0)
        _write_images(root / "style", 2 * args.batch_size, args.crop + 44, 1)
        print(f"{'encoder':<14}{'images/s':>10}{'s/iteration':>14}{'wall s':>9}")
        for encoder in args.encoders:
            rate, wall = bench(encoder, root, args)
            print(f"{encoder:<14}{rate:>10.2f}{args.batch_size / rate:>14.2f}{wall:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
