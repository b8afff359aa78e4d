"""``adain train``: train an AdaIN decoder for an encoder with any :mod:`mmd` style loss.

Examples::

    adain train --content-dir coco/ --style-dir wikiart/ --output runs/vgg        # the paper's recipe
    adain train ... --encoder mobilenet_v2 --style-loss mmd --kernel gaussian --sigma median
    adain train ... --style-loss mmd --kernel gaussian --sigma rms --median-scales 0.7071  # Li et al.'s
    adain train ... --style-loss mmd --kernel polynomial --degree 2 --c 1         # Gram + mean matching
    adain train --resume --output runs/vgg --iterations 200000                   # continue a run
    adain train --resume runs/vgg/checkpoint.pth --output runs/vgg
    adain train --fork runs/vgg/checkpoint.pth --output runs/vgg_tv --tv-weight 100  # an ablation arm

Writes ``checkpoint.pth``, ``log.csv``, ``loss.png``, ``samples/`` and ``decoder_final.pth`` (a model file
for ``adain stylize --model``) into ``--output``; see :mod:`adain.train`. With ``--resume`` the training
settings come from the checkpoint; only ``--iterations``, ``--checkpoint-every``, ``--workers``,
``--device``, ``--output``, ``--lr`` (to recover from a divergence), ``--ema-decay``, ``--content-dir`` and
``--style-dir`` (same images: names and sizes are checked) may be given anew; any other option typed, even
with its default value, must agree with the checkpoint. ``--fork CHECKPOINT`` starts a new run in
``--output`` from that checkpoint's whole training state (decoder, Adam, iteration, data order, layer
normalisers) with the options typed here changed, e.g. ``--style-weight`` or ``--tv-weight``: two forks from
one checkpoint see the same batches, a paired ablation. The architecture must stay; ``--content-dir`` or
``--style-dir`` may name other images (a data ablation, e.g. more styles): that stream keeps its seed and
position and draws over the new files, while the other stream's batches stay the same.
SIGINT/SIGTERM write a checkpoint and exit with 128 + the signal number. Exit codes: 0 done, 1 failure (e.g.
non-finite loss or weights, a full disk; one line ``adain train: error: …`` naming the file), 2 usage error.

Multi-process (DistributedDataParallel; gloo on CPU, nccl on CUDA, one GPU per process)::

    torchrun --nproc_per_node=4 -m adain train --content-dir coco/ --style-dir wikiart/ --batch-size 32

``--batch-size`` is the combined batch of all processes (each takes ``batch-size / K``), so the same
command with any K follows the same trajectory; ``--resume`` needs the K that wrote the checkpoint.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import mmd
from adain.cli import EXIT_FAILURE, EXIT_OK, UsageError
from adain.decoders import decoder_names
from adain.devices import PRECISION_CHOICES
from adain.distributed import process_group
from adain.errors import AdainError, CheckpointError
from adain.train import CHECKPOINT_NAME, RUN_FIELDS, TrainConfig, Trainer, load_checkpoint
from adain.train.config import LAYER_NORMALISATIONS

__all__ = ["HELP", "add_arguments", "config_from_args", "run", "style_loss_spec"]

HELP = "train an AdaIN decoder (any mmd style loss; checkpoints, exact --resume)"

_DEFAULTS = TrainConfig(content_dir="", style_dir="")
#: command-line spelling of the kernel options → kernel parameter
_KERNEL_OPTIONS = {
    "degree": "degree",
    "gamma": "gamma",
    "c": "c",
    "sigma": "sigma",
    "median_scales": "scales",
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1; got {value}")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def _sigma(text: str) -> list[float] | str:
    if text in mmd.kernels.HEURISTICS:
        return text
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'median', 'rms' or comma-separated numbers; got {text!r}"
        ) from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"bandwidths must be positive; got {text!r}")
    return values


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers; got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``adain train``. Every training option defaults to None, so that what the user typed is
    known (``--resume`` compares it with the checkpoint); the effective defaults are the paper's recipe,
    :class:`adain.train.TrainConfig`, shown in the help."""
    d = _DEFAULTS
    data = p.add_argument_group("data")
    data.add_argument("--content-dir", metavar="DIR", help="content images (searched recursively)")
    data.add_argument("--style-dir", metavar="DIR", help="style images (searched recursively)")
    data.add_argument("--image-size", type=_positive_int, help=f"shorter side ({d.image_size})")
    data.add_argument("--crop-size", type=_positive_int, help=f"random crop ({d.crop_size})")
    data.add_argument("--workers", type=int, help=f"data-loading processes ({d.workers})")
    data.add_argument(
        "--style-augment",
        action="store_true",
        default=None,
        help="style crops at several scales with hue/saturation changes (off)",
    )
    data.add_argument(
        "--cache-images", action="store_true", default=None, help="keep decoded images in memory (off)"
    )

    model = p.add_argument_group("model and losses")
    model.add_argument("--encoder", choices=decoder_names(), help=f"({d.encoder})")
    model.add_argument(
        "--encoder-weights", metavar="FILE", help="encoder weights file (default: its pretrained ones)"
    )
    model.add_argument(
        "--init-decoder", metavar="FILE", help="start from this model file's or checkpoint's decoder"
    )
    model.add_argument(
        "--channels-last", action="store_true", default=None, help="channels-last memory format (off)"
    )
    model.add_argument(
        "--random-encoder",
        action="store_true",
        default=None,
        help="for tests/benchmarks only: a random (seeded) encoder; the decoder learns nothing useful",
    )
    model.add_argument("--style-loss", choices=mmd.style_loss_names(), help=f"({d.style_loss.name})")
    model.add_argument("--kernel", choices=mmd.kernel_names(), help="for --style-loss mmd (polynomial)")
    model.add_argument("--degree", type=int, help="polynomial kernel degree (2)")
    model.add_argument("--gamma", type=_finite, help="polynomial kernel gamma (1)")
    model.add_argument("--c", type=_finite, help="polynomial kernel offset c (0)")
    model.add_argument(
        "--sigma",
        type=_sigma,
        metavar="S[,S...]|median|rms",
        help="gaussian bandwidth(s), or 'median' (default) / 'rms': the median / root-mean-square pairwise "
        "distance of each layer's style features (Li et al.: rms with --median-scales 0.7071)",
    )
    model.add_argument(
        "--median-scales", type=_floats, metavar="K[,K...]", help="with --sigma median or rms (1)"
    )
    model.add_argument("--style-weight", type=_finite, help=f"({d.style_weight:g})")
    model.add_argument("--content-weight", type=_finite, help=f"({d.content_weight:g})")
    model.add_argument(
        "--ema-decay",
        type=_finite,
        help="keep an exponential moving average of the decoder weights with this decay (e.g. 0.999, "
        "about the last 1000 iterations), written as decoder_ema.pth at each checkpoint; may be turned on "
        f"when resuming ({d.ema_decay:g}: off)",
    )
    model.add_argument(
        "--tv-weight",
        type=_finite,
        help="weight of the decoded images' total variation (mean squared difference of adjacent pixels, "
        f"in [0, 1] units), against high-frequency artefacts ({d.tv_weight:g})",
    )
    model.add_argument(
        "--reconstruction",
        action="store_true",
        default=None,
        help="warm start: train the decoder to invert the encoder (target E(content), no AdaIN, no style "
        "term); continue with --init-decoder (off)",
    )
    model.add_argument(
        "--pixel-weight",
        type=_finite,
        help="with --reconstruction: weight of the pixel MSE between D(E(c)) and c (0)",
    )
    model.add_argument(
        "--layers",
        metavar="L[,L...]",
        help="style layers (default: the encoder's taps up to its AdaIN layer, e.g. relu1_1..relu4_1)",
    )
    model.add_argument(
        "--layer-weighting",
        choices=("auto", "channels", "ones"),
        help="style-layer weights: 1/channels (auto for meanstd: the port's MSE, the paper's recipe) or 1 "
        f"({d.layer_weighting})",
    )
    model.add_argument(
        "--layer-normalisation",
        choices=LAYER_NORMALISATIONS,
        help="initial: divide each style layer's term by its value at the starting decoder on the first "
        "batch (stored in the checkpoint), equal layer weights: every loss gives every layer the same share "
        f"({d.layer_normalisation})",
    )
    model.add_argument(
        "--layer-scales",
        type=_layer_scales,
        metavar="L=F[,L=F...]",
        help="multiply these style layers' weights by F (e.g. relu1_1=4: more weight on the finest scale; "
        "others keep 1)",
    )
    model.add_argument(
        "--style-positions",
        type=_positive_int,
        metavar="N",
        help="style losses see N random positions per layer, redrawn each iteration (default: all; "
        "makes --style-loss mmd --kernel gaussian affordable, e.g. 1024)",
    )

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=_positive_int, help=f"({d.batch_size})")
    opt.add_argument("--lr", type=_finite, help=f"Adam learning rate ({d.lr:g}); may change on --resume")
    opt.add_argument("--lr-decay", type=_finite, help=f"lr/(1 + decay·iteration) ({d.lr_decay:g})")
    opt.add_argument("--iterations", type=_positive_int, help=f"total iterations ({d.iterations})")
    opt.add_argument("--seed", type=int, help=f"({d.seed})")
    opt.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        help="autocast; auto: bf16 where the hardware computes it fast (AMX CPUs, "
        f"CUDA ≥ 8.0), else fp32 ({d.precision})",
    )
    opt.add_argument("--device", help="cpu, cuda, cuda:1 … or auto (default)")

    run = p.add_argument_group("outputs")
    run.add_argument("--output", metavar="DIR", help=f"run folder ({d.output})")
    run.add_argument("--checkpoint-every", type=_positive_int, help=f"iterations ({d.checkpoint_every})")
    run.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="CHECKPOINT",
        help=f"continue a run (default: OUTPUT/{CHECKPOINT_NAME})",
    )
    run.add_argument(
        "--fork",
        metavar="CHECKPOINT",
        type=Path,
        help="start a new run in --output from this checkpoint's whole training state, with the options "
        "typed here changed (a paired ablation arm)",
    )
    run.add_argument("--samples", type=int, help=f"sample pairs per checkpoint ({d.num_samples})")
    run.add_argument("--no-progress", action="store_true", default=None, help="no progress bar")


def style_loss_spec(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The style-loss spec the options ask for (``None`` if no style-loss option was typed).

    ``base`` (a spec, e.g. the checkpoint's) supplies what was not typed.

    Raises:
        UsageError: kernel options without ``--style-loss mmd``, or a bad spec.
    """
    typed = {k: getattr(args, k) for k in _KERNEL_OPTIONS if getattr(args, k) is not None}
    if args.style_loss is None and args.kernel is None and not typed:
        return None
    spec = dict(base or _DEFAULTS.style_loss.to_dict())
    name = args.style_loss or spec["name"]
    if name != spec["name"]:
        spec = {"name": name}
    if name != "mmd":
        if args.kernel is not None or typed:
            raise UsageError(f"--kernel and its options only apply to --style-loss mmd (not {name})")
        return spec
    kernel = dict(spec.get("kernel", {"name": "polynomial"}))
    if args.kernel is not None and args.kernel != kernel.get("name"):
        kernel = {"name": args.kernel}
    kernel.update({_KERNEL_OPTIONS[k]: v for k, v in typed.items()})
    spec["kernel"] = kernel
    try:
        return mmd.StyleLossSpec.from_dict(spec).to_dict()
    except ValueError as e:
        raise UsageError(f"--style-loss {name} --kernel {kernel.get('name')}: {e}") from None


def _layer_scales(text: str) -> dict[str, float]:
    """``"relu1_1=4,relu2_1=2"`` → ``{"relu1_1": 4.0, "relu2_1": 2.0}`` (argparse type)."""
    scales: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        layer, sep, factor = item.partition("=")
        try:
            value = float(factor)
        except ValueError:
            value = math.nan
        if not sep or not layer.strip() or not (0 < value < math.inf) or layer.strip() in scales:
            raise argparse.ArgumentTypeError(
                f"{item!r}: expected LAYER=FACTOR with a finite factor > 0, each layer once (e.g. relu1_1=4)"
            )
        scales[layer.strip()] = value
    return scales


def _typed_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`TrainConfig` fields the user typed (not the defaults)."""
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    given = {
        "content_dir": args.content_dir,
        "style_dir": args.style_dir,
        "encoder": args.encoder,
        "encoder_weights": str(args.encoder_weights) if args.encoder_weights else None,
        "init_decoder": str(args.init_decoder) if args.init_decoder else None,
        "style_augment": args.style_augment,
        "cache_images": args.cache_images,
        "channels_last": args.channels_last,
        "pretrained": False if args.random_encoder else None,
        "style_weight": args.style_weight,
        "content_weight": args.content_weight,
        "tv_weight": args.tv_weight,
        "ema_decay": args.ema_decay,
        "reconstruction": args.reconstruction,
        "pixel_weight": args.pixel_weight,
        "layers": layers,
        "layer_weighting": args.layer_weighting,
        "layer_normalisation": args.layer_normalisation,
        "layer_scales": args.layer_scales,
        "style_positions": args.style_positions,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_decay": args.lr_decay,
        "iterations": args.iterations,
        "image_size": args.image_size,
        "crop_size": args.crop_size,
        "workers": args.workers,
        "seed": args.seed,
        "checkpoint_every": args.checkpoint_every,
        "device": args.device,
        "precision": args.precision,
        "num_samples": args.samples,
        "output": args.output,
        "progress": False if args.no_progress else None,
    }
    return {k: v for k, v in given.items() if v is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of a fresh run.

    Raises:
        UsageError: missing folders or inconsistent options.
    """
    if not args.content_dir or not args.style_dir:
        raise UsageError("--content-dir and --style-dir are required (unless --resume)")
    if args.random_encoder and args.encoder_weights:
        raise UsageError("--random-encoder and --encoder-weights contradict each other; pick one")
    fields = _typed_fields(args)
    spec = style_loss_spec(args)
    if spec is not None:
        fields["style_loss"] = spec
    try:
        return TrainConfig(**fields)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _resume_config(args: argparse.Namespace, path: Path) -> TrainConfig:
    """The checkpoint's config with the run options of the command line.

    Raises:
        UsageError: a training option typed (even with its default value) that differs from the checkpoint.
        CheckpointError: an unreadable or malformed checkpoint.
    """
    saved = _saved_config(path)
    typed = _typed_over(args, saved)
    fixed = {k: v for k, v in typed.items() if k not in RUN_FIELDS and k not in ("content_dir", "style_dir")}
    conflicts = [
        f"{key} {value!r} (the checkpoint has {saved.get(key)!r})"
        for key, value in fixed.items()
        if value != saved.get(key)
    ]
    if conflicts:
        raise UsageError(
            f"--resume continues with the training settings of {path}; these options contradict it: "
            + "; ".join(conflicts)
        )
    saved.update({k: v for k, v in typed.items() if k not in fixed})
    if "output" not in typed:
        saved["output"] = str(Path(args.output or _DEFAULTS.output))
    return _config_from(saved, typed)


def _saved_config(path: Path) -> dict[str, Any]:
    """A checkpoint's training config as plain data, with the defaults of keys older checkpoints lack.

    Raises:
        CheckpointError: an unreadable checkpoint or a malformed config.
    """
    try:
        return TrainConfig.from_dict(load_checkpoint(path)["config"]).to_dict()
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: malformed training config: {e}") from None


def _fork_config(args: argparse.Namespace, path: Path) -> TrainConfig:
    """The checkpoint's config with every option typed on the command line changed, for a new run.

    Raises:
        UsageError: no ``--output``, the checkpoint's own folder, ``--init-decoder``, or a bad option.
        CheckpointError: an unreadable or malformed checkpoint.
    """
    if not args.output:
        raise UsageError("--fork starts a new run: give its folder with --output")
    if Path(args.output).expanduser().resolve() == path.parent.resolve():
        raise UsageError(
            f"--fork: --output {args.output} is the checkpoint's own run; continue it with --resume"
        )
    if args.init_decoder:
        raise UsageError("--fork takes the decoder from the checkpoint; --init-decoder contradicts it")
    saved = _saved_config(path)
    typed = _typed_over(args, saved)
    saved.update(typed)
    saved["forked_from"] = str(path)
    return _config_from(saved, typed)


def _typed_over(args: argparse.Namespace, saved: dict[str, Any]) -> dict[str, Any]:
    """The options typed on the command line, the style-loss spec completed from the checkpoint's."""
    typed = _typed_fields(args)
    spec = style_loss_spec(args, base=saved["style_loss"])
    if spec is not None:
        typed["style_loss"] = spec
    return typed


def _config_from(saved: dict[str, Any], typed: dict[str, Any]) -> TrainConfig:
    """The config of a continued run (a progress bar unless ``--no-progress`` was typed).

    Raises:
        UsageError: a bad value (the message names the key).
    """
    if "progress" not in typed:
        saved["progress"] = True
    try:
        return TrainConfig.from_dict(saved)
    except ValueError as e:
        raise UsageError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    """Train; see the module doc for exit codes."""
    resume = fork = None
    if args.resume is not None and args.fork is not None:
        raise UsageError("--resume continues a run, --fork starts a new one from a checkpoint; pick one")
    if args.resume is not None:
        resume = Path(args.resume or Path(args.output or _DEFAULTS.output) / CHECKPOINT_NAME).expanduser()
    if args.fork is not None:
        fork = args.fork.expanduser()
    try:
        if resume:
            config = _resume_config(args, resume)
        elif fork:
            config = _fork_config(args, fork)
        else:
            config = config_from_args(args)
    except AdainError as e:
        print(f"adain train: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    with process_group(_device_type(config.device)) as dist:
        try:
            try:
                trainer = Trainer(config, dist=dist)
            except ValueError as e:
                raise UsageError(str(e)) from None
            result = trainer.run(resume=resume, fork=fork)
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
