"""Decoder-training speed on this machine: images/s of ``adain train`` against the public PyTorch AdaIN
port's ``train.py``, side by side in one run, and per encoder.

    python -m experiments.bench_train [--batch-size 8] [--crop 256] [--warmup 2] [--timed 3]
                                      [--encoders vgg19_caffe_normalised mobilenet_v2] [--device auto]
                                      [--precision auto|fp32|bf16|fp16]
                                      [--port ../shared/reference/pytorch-AdaIN | --no-port]

**Against the port** (CPU only; the port's crop is fixed at 256): the port's unmodified ``train.py`` (run by
:mod:`experiments.port_train_runner`, which times its Adam steps) and ``adain train`` with the
``vgg19_normalised`` encoder (the port's network and layout) get the same random encoder weights (one
file), the same batch, the same 512 × 512 random images and 256 crops, one after the other in this
process's run; ``adain train`` runs once with the paper's defaults and once with ``--channels-last
--cache-images``, both in fp32 like the port, and a third time with ``--channels-last --cache-images
--precision P`` when P resolves to bf16 or fp16 (``auto``: bf16 on a CPU with AMX, fp32 elsewhere; the row
names what was chosen). The ratio of images/s to the port's is printed for each.

Each encoder runs :class:`adain.train.Trainer` end to end (data loading from PNG files, random crops,
AdaIN, decoder, encoder of the output, meanstd style loss, backward, Adam step) on random images in a
temporary folder with ``crop × crop`` crops, side by side in three settings: the paper's defaults in fp32,
``--channels-last --cache-images`` in fp32, and the same in the precision that ``--precision`` resolves
to when that is not fp32 (bf16 on an AMX CPU: without channels-last, bf16 gains much less there); each
row gives its ratio to the first. Both encoders have **random weights** (``pretrained=False``):
speed does not depend on the weights, and VGG-19's ImageNet file is not available offline. The rate is
the median of the per-iteration ``images_per_s`` column of the training log over the timed iterations
after ``warmup`` iterations (checkpoint writing is not in it).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from adain.devices import PRECISION_CHOICES, resolve_precision
from adain.encoders import build_encoder
from adain.train import TrainConfig, Trainer, read_log

DEFAULT_PORT = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "pytorch-AdaIN"


def _write_images(folder: Path, n: int, side: int, seed: int, square: bool = False) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        shape = (side, side if square else side + 20, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i}.png")


def bench(
    encoder: str,
    root: Path,
    args: argparse.Namespace,
    *,
    weights: Path | None = None,
    tag: str = "",
    image_size: int | None = None,
    **extra: Any,
) -> tuple[float, float]:
    """``(median images/s, wall seconds)`` of ``warmup + timed`` iterations of one encoder."""
    config = TrainConfig(
        content_dir=str(root / "content"),
        style_dir=str(root / "style"),
        output=str(root / f"run_{encoder}{tag}"),
        encoder=encoder,
        pretrained=weights is not None,
        encoder_weights=None if weights is None else str(weights),
        **extra,
        batch_size=args.batch_size,
        image_size=image_size or args.crop + 44,
        crop_size=args.crop,
        iterations=args.warmup + args.timed,
        checkpoint_every=10**9,
        device=args.device,
        precision=args.precision,
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
    p.add_argument("--warmup", type=int, default=2)  # bf16 on AMX: the first two are slow
    p.add_argument("--timed", type=int, default=3)
    p.add_argument("--encoders", nargs="+", default=["vgg19_caffe_normalised", "mobilenet_v2"])
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="adain train's --precision (auto: bf16 on a CPU with AMX or CUDA ≥ 8.0, else fp32)",
    )
    p.add_argument("--port", type=Path, default=DEFAULT_PORT, help="the PyTorch AdaIN port's folder")
    p.add_argument("--no-port", action="store_true", help="skip the comparison with the port")
    args = p.parse_args(argv)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    where = (
        torch.cuda.get_device_name()
        if device.startswith("cuda")
        else platform.processor() or platform.machine()
    )
    precision = resolve_precision(args.precision, device)
    print(
        f"adain train speed: batch {args.batch_size}, {args.crop}×{args.crop} crops, {precision} "
        f"(--precision {args.precision}), meanstd loss, "
        f"{args.warmup} warm-up + {args.timed} timed iterations; device {device} ({where}), "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; random encoder weights"
    )
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        _write_images(root / "content", 2 * args.batch_size, args.crop + 44, 0)
        _write_images(root / "style", 2 * args.batch_size, args.crop + 44, 1)
        if not args.no_port and device == "cpu":
            compare_with_port(root, args)
        print(f"{'encoder':<24}{'settings':<44}{'images/s':>10}{'s/iteration':>14}{'wall s':>9}{'ratio':>8}")
        for encoder in args.encoders:
            first: float | None = None
            for tag, label, chosen, extra in encoder_settings(precision):
                settings = argparse.Namespace(**{**vars(args), "precision": chosen})
                rate, wall = bench(encoder, root, settings, tag=tag, **extra)
                first = first or rate
                print(
                    f"{encoder:<24}{label:<44}{rate:>10.2f}{args.batch_size / rate:>14.2f}{wall:>9.1f}"
                    f"{rate / first:>7.2f}×",
                    flush=True,
                )


FAST_SETTINGS: dict[str, Any] = {"channels_last": True, "cache_images": True}


def encoder_settings(precision: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(run tag, label, precision, extra TrainConfig fields)`` of the rows timed per encoder.

    The paper's defaults and ``--channels-last --cache-images`` in fp32, then the latter in ``precision``
    when it is not fp32 (the precision asked for, resolved for this device).
    """
    rows: list[tuple[str, str, str, dict[str, Any]]] = [
        ("", "paper defaults, fp32", "fp32", {}),
        ("_fast", "--channels-last --cache-images, fp32", "fp32", FAST_SETTINGS),
    ]
    if precision != "fp32":
        rows.append(("_fast_low", f"--channels-last --cache-images, {precision}", precision, FAST_SETTINGS))
    return rows


def port_rate(root: Path, weights: Path, args: argparse.Namespace) -> float:
    """Median images/s of the port's ``train.py`` over the timed iterations."""
    times = root / "port_times.txt"
    command = [
        sys.executable, "-m", "experiments.port_train_runner", str(args.port), str(times), "--",
        "--content_dir", str(root / "square_content"), "--style_dir", str(root / "square_style"),
        "--vgg", str(weights), "--batch_size", str(args.batch_size), "--n_threads", "0",
        "--max_iter", str(args.warmup + args.timed), "--save_dir", str(root / "port_out"),
        "--log_dir", str(root / "port_out"), "--save_model_interval", str(10**9),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[1], capture_output=True)
    stamps = [float(line) for line in times.read_text().split()]
    steps = [b - a for a, b in itertools.pairwise(stamps)][max(args.warmup - 1, 0) :]
    return args.batch_size / statistics.median(steps)


def compare_with_port(root: Path, args: argparse.Namespace) -> None:
    """The port's ``train.py`` and ``adain train`` on the same data, weights, batch and 256 crops."""
    if not (args.port / "train.py").is_file():
        raise SystemExit(f"bench_train: error: no train.py in {args.port} (or pass --no-port)")
    side = 512
    _write_images(root / "square_content", 2 * args.batch_size, side, 2, square=True)
    _write_images(root / "square_style", 2 * args.batch_size, side, 3, square=True)
    weights = root / "vgg_normalised_random.pth"
    torch.manual_seed(0)
    torch.save(build_encoder("vgg19_normalised", weights=None).body.state_dict(), weights)
    square = argparse.Namespace(**{**vars(args), "crop": 256})
    data = root / "square"
    (data).mkdir()
    (data / "content").symlink_to(root / "square_content")
    (data / "style").symlink_to(root / "square_style")
    port = port_rate(root, weights, square)
    print(
        f"against the public port (batch {args.batch_size}, 256² crops of 512² images, same random weights):"
    )
    print(f"  {'port train.py':<40}{port:>8.2f} images/s   1.00×")
    fast = FAST_SETTINGS
    # (tag, label, precision, extra TrainConfig fields)
    runs: list[tuple[str, str, str, dict[str, Any]]] = [
        ("", "adain train (paper defaults, fp32)", "fp32", {}),
        ("_fast", "adain train --channels-last --cache-images", "fp32", fast),
    ]
    chosen = resolve_precision(square.precision, "cpu")
    if chosen != "fp32":  # the lower precision asked for (or that auto chose here), beside fp32
        runs.append(("_fast_low", f"  … --precision {square.precision} ({chosen})", square.precision, fast))
    for tag, label, precision, extra in runs:
        settings = argparse.Namespace(**{**vars(square), "precision": precision})
        rate, _ = bench(
            "vgg19_normalised", data, settings, weights=weights, tag=tag, image_size=side, **extra
        )
        print(f"  {label:<40}{rate:>8.2f} images/s   {rate / port:.2f}×", flush=True)


if __name__ == "__main__":
    main()
