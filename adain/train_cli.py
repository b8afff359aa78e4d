"""``adain train``: train an AdaIN decoder for an encoder with any :mod:`mmd` style loss.

Examples::

    adain train --content-dir coco/ --style-dir wikiart/ --output runs/vgg        # the paper's recipe
    adain train ... --encoder mobilenet_v2 --style-loss mmd --kernel gaussian --sigma median
    adain train ... --style-loss mmd --kernel poly --degree 2 --c 1               # Gram + mean matching
    adain train --resume --output runs/vgg --iterations 200000                   # continue a run
    adain train --resume runs/vgg/checkpoint.pth --output runs/vgg

Writes ``checkpoint.pth``, ``log.csv``, ``loss.png``, ``samples/`` and ``decoder_final.pth`` (a model file
for ``adain stylize --model``) into ``--output``; see :mod:`adain.train`. With ``--resume`` the training
settings come from the checkpoint; only ``--iterations``, ``--checkpoint-every``, ``--workers``,
``--device``, ``--output``, ``--content-dir`` and ``--style-dir`` may be given anew. SIGINT/SIGTERM write a
checkpoint and exit with 128 + the signal number. Exit codes: 0 done, 1 failure (e.g. non-finite loss),
2 usage error.

Multi-process (DistributedDataParallel; gloo on CPU, nccl on CUDA, one GPU per process)::

    torchrun --nproc_per_node=4 -m adain train --content-dir coco/ --style-dir wikiart/ --batch-size 32

``--batch-size`` is the combined batch of all processes (each takes ``batch-size / K``), so the same
command with any K follows the same trajectory; ``--resume`` needs the K that wrote the checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adain.cli import EXIT_FAILURE, EXIT_OK, UsageError
from adain.decoders import decoder_names
from adain.distributed import process_group
from adain.errors import AdainError
from adain.model import PRECISIONS
from adain.train import CHECKPOINT_NAME, TrainConfig, Trainer, load_checkpoint

__all__ = ["HELP", "add_arguments", "config_from_args", "run"]

HELP = "train an AdaIN decoder (any mmd style loss; checkpoints, exact --resume)"

_DEFAULTS = TrainConfig(content_dir="", style_dir="")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1; got {value}")
    return value


def _sigma(text: str) -> list[float] | str:
    if text == "median":
        return "median"
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'median' or comma-separated numbers; got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"bandwidths must be positive; got {text!r}")
    return values


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers; got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``adain train`` (defaults: the paper's recipe; see :class:`adain.train.TrainConfig`)."""
    d = _DEFAULTS
    data = p.add_argument_group("data")
    data.add_argument("--content-dir", metavar="DIR", help="content images (searched recursively)")
    data.add_argument("--style-dir", metavar="DIR", help="style images (searched recursively)")
    data.add_argument("--image-size", type=_positive_int, default=d.image_size, help="shorter side (512)")
    data.add_argument("--crop-size", type=_positive_int, default=d.crop_size, help="random crop (256)")
    data.add_argument("--workers", type=int, default=None, help="data-loading processes (default 0)")
    data.add_argument(
        "--style-augment", action="store_true", help="style crops at several scales, hue/saturation changes"
    )
    data.add_argument("--cache-images", action="store_true", help="keep decoded images in memory")

    model = p.add_argument_group("model and losses")
    model.add_argument("--encoder", choices=decoder_names(), default=d.encoder, help="default %(default)s")
    model.add_argument(
        "--encoder-weights", metavar="FILE", help="encoder weights file (default: its pretrained ones)"
    )
    model.add_argument(
        "--random-encoder",
        action="store_true",
        help="for tests/benchmarks only: a random (seeded) encoder; the decoder learns nothing useful",
    )
    model.add_argument("--style-loss", choices=("meanstd", "gram", "mmd"), default=d.style_loss)
    model.add_argument(
        "--init-decoder", metavar="FILE", help="start from this model file's or checkpoint's decoder"
    )
    model.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    model.add_argument("--kernel", choices=("linear", "poly", "gaussian"), default=d.kernel, help="for mmd")
    model.add_argument("--degree", type=int, default=d.degree, help="poly kernel degree (2)")
    model.add_argument("--gamma", type=float, default=d.gamma, help="poly kernel gamma (1)")
    model.add_argument("--c", type=float, default=d.c, help="poly kernel offset c (0)")
    model.add_argument(
        "--sigma",
        type=_sigma,
        default=d.sigma,
        metavar="S[,S...]|median",
        help="gaussian bandwidth(s), or 'median' (default) for the median heuristic",
    )
    model.add_argument(
        "--median-scales", type=_floats, default=None, metavar="K[,K...]", help="with --sigma median (1)"
    )
    model.add_argument("--style-weight", type=float, default=d.style_weight, help="(10)")
    model.add_argument("--content-weight", type=float, default=d.content_weight, help="(1)")
    model.add_argument(
        "--layers",
        metavar="L[,L...]",
        help="style layers (default: the encoder's taps up to its AdaIN layer, e.g. relu1_1..relu4_1)",
    )
    model.add_argument(
        "--layer-weighting",
        choices=("auto", "channels", "ones"),
        default=d.layer_weighting,
        help="style-layer weights: 1/channels (auto for meanstd: the port's MSE, the paper's recipe) or 1",
    )

    model.add_argument(
        "--style-positions",
        type=_positive_int,
        default=None,
        metavar="N",
        help="style losses see N random positions per layer, redrawn each iteration (default: all; "
        "makes --style-loss mmd --kernel gaussian affordable, e.g. 1024)",
    )

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="(8)")
    opt.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (1e-4)")
    opt.add_argument("--lr-decay", type=float, default=d.lr_decay, help="lr/(1 + decay·iteration) (5e-5)")
    opt.add_argument("--iterations", type=_positive_int, default=None, help="total iterations (160000)")
    opt.add_argument("--seed", type=int, default=d.seed, help="(0)")
    opt.add_argument("--precision", choices=PRECISIONS, default=d.precision, help="autocast (fp32)")
    opt.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … or auto (default)")

    run = p.add_argument_group("outputs")
    run.add_argument("--output", default=d.output, metavar="DIR", help="run folder (%(default)s)")
    run.add_argument("--checkpoint-every", type=_positive_int, default=None, help="iterations (1000)")
    run.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="CHECKPOINT",
        help=f"continue a run (default: OUTPUT/{CHECKPOINT_NAME})",
    )
    run.add_argument("--samples", type=int, default=d.num_samples, help="sample pairs per checkpoint (4)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """Run fields given on the command line (allowed on resume too)."""
    given = {
        "iterations": args.iterations,
        "checkpoint_every": args.checkpoint_every,
        "workers": args.workers,
        "device": args.device,
        "content_dir": args.content_dir,
        "style_dir": args.style_dir,
        "cache_images": args.cache_images or None,
    }
    out: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    out["output"] = args.output
    out["progress"] = not args.no_progress
    return out


def _training_fields(args: argparse.Namespace) -> dict[str, object]:
    """The trajectory-defining :class:`TrainConfig` fields given by the options (or their defaults)."""
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    return {
        "encoder": args.encoder,
        "encoder_weights": str(args.encoder_weights) if args.encoder_weights else None,
        "pretrained": not args.random_encoder,
        "style_loss": args.style_loss,
        "kernel": args.kernel,
        "degree": args.degree,
        "gamma": args.gamma,
        "c": args.c,
        "sigma": args.sigma,
        "median_scales": args.median_scales or list(_DEFAULTS.median_scales),
        "style_weight": args.style_weight,
        "content_weight": args.content_weight,
        "layers": layers,
        "layer_weighting": args.layer_weighting,
        "style_positions": args.style_positions,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_decay": args.lr_decay,
        "image_size": args.image_size,
        "crop_size": args.crop_size,
        "seed": args.seed,
        "precision": args.precision,
        "num_samples": args.samples,
        "style_augment": args.style_augment,
        "channels_last": args.channels_last,
        "init_decoder": str(args.init_decoder) if args.init_decoder else None,
    }


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of a fresh run.

    Raises:
        UsageError: missing folders or inconsistent options.
    """
    if not args.content_dir or not args.style_dir:
        raise UsageError("--content-dir and --style-dir are required (unless --resume)")
    if args.random_encoder and args.encoder_weights:
        raise UsageError("--random-encoder and --encoder-weights contradict each other; pick one")
    config = TrainConfig(content_dir=str(args.content_dir), style_dir=str(args.style_dir))
    for key, value in {**_training_fields(args), **_overrides(args)}.items():
        setattr(config, key, value)
    return config


def _resume_config(args: argparse.Namespace, path: Path) -> TrainConfig:
    """The checkpoint's config with the run options of the command line.

    Raises:
        UsageError: a training option given with a value other than the checkpoint's (it would be ignored).
    """
    saved = dict(load_checkpoint(path)["config"])
    conflicts = [
        f"{key} {value!r} (the checkpoint has {saved.get(key)!r})"
        for key, value in _training_fields(args).items()
        if value != getattr(_DEFAULTS, key) and value != saved.get(key)
    ]
    if conflicts:
        raise UsageError(
            "--resume continues with the checkpoint's training settings; these options contradict it: "
            + "; ".join(conflicts)
        )
    saved.update(_overrides(args))
    return TrainConfig.from_dict(saved)


def run(args: argparse.Namespace) -> int:
    """Train; see the module doc for exit codes."""
    resume = None
    if args.resume is not None:
        resume = Path(args.resume or Path(args.output) / CHECKPOINT_NAME).expanduser()
    try:
        config = _resume_config(args, resume) if resume else config_from_args(args)
    except AdainError as e:
        print(f"adain train: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    with process_group(_device_type(config.device)) as dist:
        try:
            try:
                trainer = Trainer(config, dist=dist)
            except ValueError as e:
                raise UsageError(str(e)) from None
            result = trainer.run(resume=resume)
        except (AdainError, FileExistsError) as e:
            if dist.is_main:
                print(f"adain train: error: {e}", file=sys.stderr)
            return EXIT_FAILURE
    if result.stopped_by is not None:
        return 128 + int(result.stopped_by)
    if dist.is_main:
        print(result.model_path)
    return EXIT_OK


def _device_type(device: str) -> str:
    """The backend device type, "cuda" or "cpu", which the process group needs for ``--device``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"
