"""Decoder training for AdaIN (Huang & Belongie, ICCV 2017) with any :mod:`mmd` style loss.

For a content batch ``c`` and a style batch ``s`` (``[B, 3, S, S]``), with the frozen encoder ``E`` and the
decoder ``D`` being trained::

    t = AdaIN(E(c), E(s))                          at the encoder's adain_layer
    g = D(t)                                       [B, 3, S, S]  (unclamped, as in the original)
    L_c = mean (E(g) − t)²                         at the adain_layer
    L_s = mean_b Σ_l w_l · loss(E_l(g), E_l(s))    mmd.layered_style_loss over the style layers
    total = content_weight · L_c + style_weight · L_s

Adam with ``lr_i = lr / (1 + lr_decay · i)`` at iteration ``i`` (the original recipe).

>>> config = TrainConfig(content_dir="photos", style_dir="art", encoder="mobilenet_v2", output="runs/a")
>>> result = Trainer(config).run()                    # or .run(resume="runs/a/checkpoint.pth")
>>> result.model_path                                 # runs/a/decoder_final.pth: a model file

Files in ``config.output``: ``checkpoint.pth`` (latest, atomic), ``log.csv`` (one row per iteration),
``loss.png`` (loss curves, rewritten at each checkpoint), ``samples/iter_NNNNNNN.png`` (fixed pairs: content |
style | output per row) and ``decoder_final.pth`` (a model file for ``adain stylize --model``).

**Exact resume.** All randomness is a pure function of ``(seed, stream, sample number)`` (see
:mod:`adain.data`); decoder initialisation (and a random encoder, for tests) draws from a seeded fork of
the global RNG that is restored afterwards. A checkpoint therefore holds the decoder, the optimiser, the
schedule, the iteration and the samplers' positions, which is all the state there is: on the CPU with
the same thread count a resumed run reaches bit-identical weights.

**Signals.** During :meth:`Trainer.run` SIGINT and SIGTERM (main thread only) finish the current
iteration, write a checkpoint and return ``stopped_by`` = the signal; the previous handlers are restored.

**Non-finite loss.** :class:`NonFiniteLossError`, raised before the step; the last checkpoint is left as is.

**Multi-process.** Under ``torchrun --nproc_per_node=K`` (see :mod:`adain.distributed`; pass its
:class:`~adain.distributed.Distributed` as ``dist``) the decoder is wrapped in DistributedDataParallel.
``batch_size`` is the *combined* batch of all K processes (it must be divisible by K): each rank draws
``batch_size / K`` samples per iteration from its shard of each epoch (``perm[rank::K]``, crops seeded by
global slot), so the ranks' shards together are exactly the batch a single process would draw (when the
number of files is divisible by K), and as both losses are batch means, DDP's averaged gradient is the
combined-batch gradient: the trajectory does not depend on K up to float summation order. ``consumed``
counts samples per rank; a checkpoint records the world size and resuming needs the same K. Every
iteration the ranks all-reduce their losses (the log shows the combined-batch means) together with a
signal flag, so a non-finite loss or a signal on any rank stops all ranks at the same iteration. Only
rank 0 writes the log, checkpoints, plot, samples and the final model (followed by a barrier).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

import mmd
from adain.augment import StyleAugment
from adain.data import ImageFolder, InfiniteSampler, center_crop, derive_seed
from adain.decoders import Decoder, build_decoder
from adain.devices import resolve_device
from adain.distributed import Distributed
from adain.encoders import DEFAULT_WEIGHTS, FeatureEncoder, build_encoder
from adain.errors import AdainError, CheckpointError
from adain.io import load_image, save_image
from adain.model import PRECISIONS, autocast_context
from adain.modelfile import read_model_file, save_model_file
from adain.ops import adaptive_instance_norm
from adain.torchfiles import atomic_torch_save, safe_torch_load, state_dict_problems

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "FINAL_MODEL_NAME",
    "LOG_COLUMNS",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_style_loss",
    "content_loss",
    "default_style_layers",
    "learning_rate",
    "load_checkpoint",
    "read_log",
    "style_layer_weights",
]

CHECKPOINT_FORMAT = "adain-mmd-train-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pth"
FINAL_MODEL_NAME = "decoder_final.pth"
LOG_NAME = "log.csv"
PLOT_NAME = "loss.png"
LOG_COLUMNS = ("iteration", "lr", "content", "style", "total", "images_per_s")
CONTENT_STREAM, STYLE_STREAM = 0, 1


class NonFiniteLossError(AdainError):
    """A loss became NaN or infinite; training stopped without a step and without a checkpoint."""


@dataclass
class TrainConfig:
    """Everything that defines a training run; plain data (saved in checkpoints and the model file).

    ``layers=None`` means the encoder's taps up to and including its ``adain_layer`` (relu1_1 … relu4_1 for
    VGG, s2 … s16 for MobileNetV2). ``sigma`` is a list of Gaussian bandwidths or
    ``"median"`` (the median heuristic, ``median_scales`` × the median distance). ``device`` "auto" picks
    cuda when available. ``layer_weighting``: ``"channels"`` weighs each style layer by ``1/N_l`` (its
    channel count), ``"ones"`` by 1, ``"auto"`` (default) is ``"channels"`` for ``meanstd`` — which then
    equals the PyTorch AdaIN port's MSE of means and stds, the paper's recipe — and ``"ones"`` otherwise
    (the Gram and MMD losses are already scaled by ``1/(4N²)``). ``style_positions``: the style losses
    see that many random positions per layer (:func:`mmd.random_positions`; ``None``: all of them), drawn
    afresh at every iteration from a generator seeded by ``(seed, iteration)`` and shared by the batch and
    by every process, so resume and multi-process runs stay exact; it makes a kernel MMD, whose cost is
    quadratic in the positions, affordable at the large early layers. ``pretrained=False`` gives a random
    encoder (tests and benchmarks only). ``style_augment`` draws style crops through
    :class:`adain.augment.StyleAugment` (crops at several scales, hue and saturation changes) instead of
    plain random crops; ``cache_images`` keeps decoded, resized images in memory (:class:`ImageFolder`);
    ``channels_last`` runs the networks in that memory format (faster convolutions on the CPU);
    ``init_decoder`` starts the decoder from a model file or a training checkpoint (a warm start, e.g. the
    next stage of a staged schedule) instead of its random initialisation.
    """

    content_dir: str
    style_dir: str
    output: str = "runs/train"
    encoder: str = "vgg19"
    encoder_weights: str | None = None
    pretrained: bool = True
    style_loss: str = "meanstd"
    kernel: str = "poly"
    degree: int = 2
    gamma: float = 1.0
    c: float = 0.0
    sigma: list[float] | str = "median"
    median_scales: list[float] = field(default_factory=lambda: [1.0])
    style_weight: float = 10.0
    content_weight: float = 1.0
    layers: list[str] | None = None
    layer_weighting: str = "auto"
    style_positions: int | None = None
    batch_size: int = 8
    lr: float = 1e-4
    lr_decay: float = 5e-5
    iterations: int = 160_000
    image_size: int = 512
    crop_size: int = 256
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 1000
    device: str = "auto"
    precision: str = "fp32"
    num_samples: int = 4
    progress: bool = True
    style_augment: bool = False
    cache_images: bool = False
    channels_last: bool = False
    init_decoder: str | None = None

    #: fields a resumed run may change (they do not change the trajectory)
    RUN_FIELDS = ("output", "iterations", "checkpoint_every", "workers", "device", "progress", "cache_images")

    def validate(self) -> None:
        """Raise ``ValueError`` for inconsistent values."""
        positive = ("batch_size", "iterations", "image_size", "crop_size", "checkpoint_every")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1; got {getattr(self, name)}")
        if self.crop_size > self.image_size:
            raise ValueError(f"crop_size {self.crop_size} > image_size {self.image_size}")
        if self.workers < 0 or self.num_samples < 0:
            raise ValueError("workers and num_samples must be ≥ 0")
        if self.layer_weighting not in ("auto", "channels", "ones"):
            raise ValueError(f"layer_weighting must be auto, channels or ones; got {self.layer_weighting!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.style_positions is not None and self.style_positions < 1:
            raise ValueError(f"style_positions must be ≥ 1 (or None for all); got {self.style_positions}")
        if self.lr <= 0 or self.lr_decay < 0:
            raise ValueError(f"need lr > 0 and lr_decay ≥ 0; got {self.lr}, {self.lr_decay}")
        build_style_loss(self)  # unknown loss / kernel / parameters

    def to_dict(self) -> dict[str, Any]:
        """Plain-data copy (lists, not tuples)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class TrainResult:
    """What :meth:`Trainer.run` did: the last iteration reached and where things are."""

    iteration: int
    checkpoint_path: Path
    model_path: Path | None  # None when stopped by a signal before the end
    stopped_by: int | None  # signal number, or None for a completed run


# ---- pieces ------------------------------------------------------------------------------------------


def build_style_loss(config: TrainConfig) -> mmd.StyleLoss:
    """The :mod:`mmd` style loss the config names (``kernel`` etc. only matter for ``"mmd"``).

    Raises:
        ValueError: unknown loss or kernel, bad kernel parameters.
    """
    if config.style_loss != "mmd":
        return mmd.style_loss(config.style_loss)
    if config.kernel == "linear":
        kernel = mmd.kernels.linear()
    elif config.kernel == "poly":
        kernel = mmd.kernels.polynomial(int(config.degree), float(config.gamma), float(config.c))
    elif config.kernel == "gaussian":
        sigma = config.sigma if isinstance(config.sigma, str) else [float(s) for s in config.sigma]
        kernel = mmd.kernels.gaussian(sigma, scales=tuple(config.median_scales))
    else:
        raise ValueError(f"unknown kernel {config.kernel!r}; choose linear, poly or gaussian")
    return mmd.style_loss("mmd", kernel=kernel)


def initial_decoder_state(path: str | Path, decoder: Decoder, encoder_name: str) -> dict[str, Tensor]:
    """Decoder weights to start a run from: a training checkpoint's decoder, or a model file's.

    Raises:
        CheckpointError: unreadable file, another encoder's decoder, or weights that do not fit.
    """
    obj = safe_torch_load(path, "decoder to start from", CheckpointError)
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        trained_for = obj.get("config", {}).get("encoder")
        state = obj.get("decoder")
    else:
        model = read_model_file(path)
        trained_for, state = model.encoder_name, model.decoder_state
    if trained_for != encoder_name:
        raise CheckpointError(f"{path} holds a decoder for encoder {trained_for!r}, not {encoder_name!r}")
    problems = state_dict_problems(decoder.state_dict(), state)
    if problems:
        raise CheckpointError(f"{path}: the decoder does not fit: {'; '.join(problems)}")
    return dict(state)


def default_style_layers(encoder: FeatureEncoder) -> list[str]:
    """The encoder's taps up to and including its ``adain_layer``."""
    names = list(encoder.layer_names)
    return names[: names.index(encoder.adain_layer) + 1]


def style_layer_weights(
    config: TrainConfig, encoder: FeatureEncoder, layers: Sequence[str]
) -> dict[str, float]:
    """Weight of each style layer under ``config.layer_weighting`` (see :class:`TrainConfig`)."""
    mode = config.layer_weighting
    if mode == "auto":
        mode = "channels" if config.style_loss == "meanstd" else "ones"
    return {k: (1.0 / encoder.channels[k] if mode == "channels" else 1.0) for k in layers}


def learning_rate(lr: float, lr_decay: float, iteration: int) -> float:
    """``lr / (1 + lr_decay · iteration)``."""
    return lr / (1.0 + lr_decay * iteration)


def content_loss(generated: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between ``E(D(t))`` and ``t`` (``[B, C, h, w]`` each) → scalar."""
    return F.mse_loss(generated.float(), target.float())


def read_log(path: str | Path) -> list[dict[str, float]]:
    """The rows of a training CSV log as dicts of floats."""
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a training checkpoint (``weights_only=True``).

    Raises:
        CheckpointError: unreadable, not a training checkpoint, or a newer format.
    """
    obj = safe_torch_load(path, "checkpoint", CheckpointError)
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an adain training checkpoint (no format {CHECKPOINT_FORMAT!r})")
    if obj.get("format_version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has a newer format version; update adain-mmd")
    missing = [k for k in ("iteration", "config", "decoder", "optimizer", "schedule", "data") if k not in obj]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    return obj


@contextlib.contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed the global CPU RNG for a block (module initialisation), restoring it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _stop_on_signals(flag: list[int]) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM append their number to ``flag`` (a second one raises
    ``KeyboardInterrupt``); the previous handlers are restored on exit."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if flag:  # a second signal while stopping: give up at once (the checkpoint file stays whole)
            raise KeyboardInterrupt
        flag.append(signum)

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---- the trainer -----------------------------------------------------------------------------------------


class Trainer:
    """Builds the networks, data and optimiser of a :class:`TrainConfig` and runs the training loop.

    Args:
        config: the run (validated here).
        log: where one-line messages go (default: stderr; rank 0 only).
        dist: this process's rank and world size (default: a single process); see module doc.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        log: Callable[[str], None] | None = None,
        dist: Distributed | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.dist = dist or Distributed()
        if config.batch_size % self.dist.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} (the combined batch) must be divisible by the number of "
                f"processes {self.dist.world_size}"
            )
        self.local_batch = config.batch_size // self.dist.world_size
        say = log or (lambda msg: print(msg, file=sys.stderr))
        self.log = say if self.dist.is_main else (lambda msg: None)
        self.device = resolve_device(config.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.output = Path(config.output).expanduser()
        self.content_data = ImageFolder(
            config.content_dir, config.image_size, config.crop_size, cache=config.cache_images
        )
        self.style_data = ImageFolder(
            config.style_dir,
            config.image_size,
            config.crop_size,
            augment=StyleAugment() if config.style_augment else None,
            cache=config.cache_images,
        )
        self.encoder = self._build_encoder().to(self.device)
        with _seeded_global_rng(config.seed):
            self.decoder: Decoder = build_decoder(config.encoder).to(self.device)
        if config.init_decoder:
            self.decoder.load_state_dict(
                initial_decoder_state(config.init_decoder, self.decoder, config.encoder)
            )
        if config.channels_last:
            self.encoder.to(memory_format=torch.channels_last)
            self.decoder.to(memory_format=torch.channels_last)
        self.layers = list(config.layers) if config.layers else default_style_layers(self.encoder)
        unknown = [name for name in self.layers if name not in self.encoder.layer_names]
        if unknown:
            raise ValueError(
                f"encoder {config.encoder!r} has no layer(s) {', '.join(unknown)}; its layers are "
                f"{', '.join(self.encoder.layer_names)}"
            )
        stride = self.encoder.strides[self.encoder.adain_layer]
        if config.crop_size % stride:
            raise ValueError(
                f"crop_size {config.crop_size} must be a multiple of the {config.encoder} encoder's stride "
                f"{stride} at {self.encoder.adain_layer!r}"
            )
        self.style_loss = build_style_loss(config)
        self.layer_weights = style_layer_weights(config, self.encoder, self.layers)
        self.optimizer = torch.optim.Adam(self.decoder.parameters(), lr=config.lr)
        self.model: torch.nn.Module = self.decoder  # what the forward pass calls (DDP-wrapped if K > 1)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.decoder, device_ids=ids)
        fp16_cuda = config.precision == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16_cuda)
        self.iteration = 0
        self.consumed = 0  # samples drawn from each stream (per rank)

    def _build_encoder(self) -> FeatureEncoder:
        c = self.config
        if not c.pretrained:
            with _seeded_global_rng(c.seed + 1):
                return build_encoder(c.encoder, weights=None)
        return build_encoder(c.encoder, weights=c.encoder_weights or DEFAULT_WEIGHTS)

    # ---- paths -----------------------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.output / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.output / LOG_NAME

    # ---- one step --------------------------------------------------------------------------------------

    def losses(self, content: Tensor, style: Tensor) -> tuple[Tensor, Tensor]:
        """``(L_c, L_s)`` scalars for batches ``[B, 3, S, S]`` (see module doc); differentiable in D."""
        enc, adain_layer = self.encoder, self.encoder.adain_layer
        wanted = sorted(set(self.layers) | {adain_layer}, key=enc.layer_names.index)
        with autocast_context(self.device, self.config.precision):
            with torch.no_grad():
                c_feat = enc(content, layers=adain_layer)[adain_layer]
                s_feats = enc(style, layers=wanted)
                target = adaptive_instance_norm(c_feat.float(), s_feats[adain_layer].float())
            generated = self.model(target)
            g_feats = enc(generated, layers=wanted)
        loss_c = content_loss(g_feats[adain_layer], target)
        gen = {k: g_feats[k].float() for k in self.layers}
        sty = {k: s_feats[k].float() for k in self.layers}
        if self.config.style_positions is not None:
            rng = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.iteration)
            count = self.config.style_positions
            gen = {k: mmd.random_positions(v, count, rng) for k, v in gen.items()}
            sty = {k: mmd.random_positions(v, count, rng) for k, v in sty.items()}
        loss_s = mmd.layered_style_loss(self.style_loss, gen, sty, self.layer_weights).mean()
        return loss_c, loss_s

    def next_batch_losses(self) -> tuple[float, float]:
        """``(L_c, L_s)`` of the current decoder on the batch the next iteration will draw.

        Changes no state (no step, no sampler position): used to calibrate style weights across style
        losses at the untrained decoder (see ``experiments/decoder_ablation.py``).
        """
        content = next(self._loader(self.content_data, CONTENT_STREAM)).to(self.device)
        style = next(self._loader(self.style_data, STYLE_STREAM)).to(self.device)
        with torch.no_grad():
            loss_c, loss_s = self.losses(content, style)
        return float(loss_c), float(loss_s)

    # ---- checkpoints -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint payload: plain data and tensors only (loadable with ``weights_only=True``)."""
        c = self.config
        shard = {"rank": self.dist.rank, "world_size": self.dist.world_size}
        content_sampler = InfiniteSampler(len(self.content_data), c.seed, CONTENT_STREAM, **shard)
        style_sampler = InfiniteSampler(len(self.style_data), c.seed, STYLE_STREAM, **shard)
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "iteration": self.iteration,
            "config": c.to_dict(),
            "decoder": {k: v.detach().cpu().clone() for k, v in self.decoder.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "schedule": {
                "kind": "inverse",
                "lr": c.lr,
                "lr_decay": c.lr_decay,
                "current_lr": learning_rate(c.lr, c.lr_decay, self.iteration),
            },
            "data": {
                "content": content_sampler.state_dict(self.consumed),
                "style": style_sampler.state_dict(self.consumed),
            },
            # No stateful generator is used: every draw is seeded from (seed, stream, sample), so the
            # samplers' positions above are the complete random state (see adain.data).
            "rng": {"scheme": "derive_seed(seed, stream, epoch, slot)", "seed": c.seed},
        }

    def load_state_dict(self, state: Mapping[str, Any], source: str = "checkpoint") -> None:
        """Restore decoder, optimiser, scaler, iteration and data positions from a checkpoint payload."""
        problems = state_dict_problems(self.decoder.state_dict(), state["decoder"])
        if problems:
            raise CheckpointError(f"{source}: the decoder does not fit: {'; '.join(problems)}")
        self.decoder.load_state_dict(state["decoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        saved_world = int(state["data"]["content"].get("world_size", 1))
        if saved_world != self.dist.world_size:
            raise CheckpointError(
                f"{source} was written by {saved_world} process(es); resume it with the same number "
                f"(now {self.dist.world_size})"
            )
        for name, data in (("content", self.content_data), ("style", self.style_data)):
            try:
                InfiniteSampler.from_state_dict(len(data), state["data"][name])
            except ValueError as e:
                raise CheckpointError(f"{source}: {name} folder {data.folder}: {e}") from e
        self.consumed = int(state["data"]["content"]["consumed"])

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint.pth`` atomically, then redraw the loss plot and write the samples.

        Under DDP every rank calls this; rank 0 writes, then all wait at a barrier.
        """
        if self.dist.is_main:
            atomic_torch_save(self.state_dict(), self.checkpoint_path)
            self._write_plot()
            self._write_samples()
        self.dist.barrier()
        return self.checkpoint_path

    # ---- side outputs ----------------------------------------------------------------------------------

    def _open_log(self, resumed: bool) -> Any:
        """Open the CSV log; on resume drop rows after the checkpoint's iteration (written after it)."""
        rows: list[list[str]] = []
        if resumed and self.log_path.is_file():
            with open(self.log_path, newline="") as fh:
                reader = csv.reader(fh)
                next(reader, None)
                for row in reader:  # stop at the checkpoint, or at a row cut short by a kill
                    try:
                        complete = len(row) == len(LOG_COLUMNS) and int(row[0]) <= self.iteration
                    except ValueError:
                        complete = False
                    if not complete:
                        break
                    rows.append(row)
        tmp = self.log_path.with_name(f".{LOG_NAME}.tmp")
        with open(tmp, "w", newline="") as fh:  # rewritten beside, then renamed: a kill loses no rows
            writer = csv.writer(fh)
            writer.writerow(LOG_COLUMNS)
            writer.writerows(rows)
        os.replace(tmp, self.log_path)
        return open(self.log_path, "a", newline="")

    def _write_plot(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if not self.log_path.is_file():
            return
        rows = read_log(self.log_path)
        if not rows:
            return
        fig = Figure(figsize=(7, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        it = [r["iteration"] for r in rows]
        c = self.config
        for key, label in (
            ("content", f"content × {c.content_weight:g}"),
            ("style", f"style ({c.style_loss}) × {c.style_weight:g}"),
            ("total", "total"),
        ):
            scale = {"content": c.content_weight, "style": c.style_weight}.get(key, 1.0)
            ax.plot(it, [r[key] * scale for r in rows], label=label, linewidth=1)
        ax.set_xlabel("iteration")
        ax.set_ylabel("weighted loss")
        if all(r["total"] > 0 for r in rows):
            ax.set_yscale("log")
        ax.legend()
        ax.set_title(f"{c.encoder} decoder, iteration {self.iteration}")
        fig.tight_layout()
        fig.savefig(self.output / PLOT_NAME, dpi=100)

    def sample_pairs(self) -> list[tuple[Path, Path]]:
        """The fixed pairs stylized at each checkpoint: content ``i`` with style ``i mod n_styles``."""
        contents, styles = self.content_data.paths, self.style_data.paths
        k = min(self.config.num_samples, len(contents))
        return [(contents[i], styles[i % len(styles)]) for i in range(k)]

    def _write_samples(self) -> None:
        pairs = self.sample_pairs()
        if not pairs:
            return
        size = self.config.crop_size
        rows = []
        was_training = self.decoder.training
        self.decoder.eval()
        try:
            with torch.no_grad():
                for content_path, style_path in pairs:
                    try:
                        c = center_crop(load_image(content_path, size=size), size)
                        s = center_crop(load_image(style_path, size=size), size)
                    except AdainError:
                        continue
                    c, s = c[None].to(self.device), s[None].to(self.device)
                    layer = self.encoder.adain_layer
                    t = adaptive_instance_norm(self.encoder(c, layer)[layer], self.encoder(s, layer)[layer])
                    out = self.decoder(t).float().clamp(0, 1)[..., : c.shape[-2], : c.shape[-1]]
                    if out.shape[-2:] != c.shape[-2:]:
                        out = F.interpolate(out, size=c.shape[-2:], mode="bilinear", align_corners=False)
                    rows.append(torch.cat([c[0], s[0], out[0]], dim=-1).cpu())
        finally:
            self.decoder.train(was_training)
        if rows:
            save_image(torch.cat(rows, dim=-2), self.output / "samples" / f"iter_{self.iteration:07d}.png")

    # ---- the loop --------------------------------------------------------------------------------------

    def _loader(self, data: ImageFolder, stream: int) -> Iterator[Tensor]:
        c = self.config
        sampler = InfiniteSampler(
            len(data),
            c.seed,
            stream,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            start=self.consumed,
        )
        loader = DataLoader(
            data,
            batch_size=self.local_batch,
            sampler=sampler,
            num_workers=c.workers,
            persistent_workers=c.workers > 0,
            pin_memory=self.device.type == "cuda",
            # DataLoader draws a base seed for its workers; a private generator keeps the global RNG
            # untouched (the draws themselves do not depend on it, see adain.data)
            generator=torch.Generator().manual_seed(derive_seed(c.seed, stream)),
        )
        return iter(loader)

    def _combined(self, losses: Sequence[Tensor], signals: list[int], stop: list[int]) -> tuple[float, ...]:
        """The losses (scalars) as floats, averaged over the ranks under DDP; there also append to ``stop``
        the largest signal number any rank has received (so that all ranks stop at the same iteration)."""
        if not self.dist.enabled:
            return tuple(float(v.detach()) for v in losses)
        values = torch.stack([v.detach().float() for v in losses])
        self.dist.all_reduce(values, "sum")
        flag = torch.tensor([signals[0] if signals else 0], device=self.device)
        self.dist.all_reduce(flag, "max")
        if int(flag) and not stop:
            stop.append(int(flag))
        return tuple(float(v) / self.dist.world_size for v in values.cpu())

    def resume(self, path: str | Path) -> None:
        """Load a checkpoint into this trainer (its config must agree except :attr:`TrainConfig.RUN_FIELDS`).

        Raises:
            CheckpointError: unreadable checkpoint or one from a different training setup.
        """
        state = load_checkpoint(path)
        saved = dict(state["config"])
        mine = self.config.to_dict()
        differ = [
            f"{k} ({saved.get(k)!r} in the checkpoint, {mine[k]!r} now)"
            for k in mine
            if k not in TrainConfig.RUN_FIELDS
            and k not in ("content_dir", "style_dir")
            and saved.get(k) != mine[k]
        ]
        if differ:
            raise CheckpointError(f"checkpoint {path} was written with other settings: {'; '.join(differ)}")
        self.load_state_dict(state, source=str(path))

    def run(self, resume: str | Path | None = None) -> TrainResult:
        """Train up to ``config.iterations`` (from a checkpoint if ``resume``); see module doc.

        Raises:
            NonFiniteLossError: a loss became NaN/inf (the last checkpoint is kept as it was).
            CheckpointError: bad ``resume`` file; FileExistsError: a fresh run into a folder that
                already holds a checkpoint.
        """
        c = self.config
        self.output.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self.resume(resume)
            self.log(f"resumed from {resume} at iteration {self.iteration}")
        elif self.checkpoint_path.exists():
            raise FileExistsError(
                f"{self.checkpoint_path} exists: continue it with --resume, or choose another --output"
            )
        self.dist.barrier()  # every rank has checked the folder before rank 0 may write to it
        signals: list[int] = []  # signals received by this process
        stop = signals if not self.dist.enabled else []  # under DDP: signals agreed on by all ranks
        saved_at = self.iteration if resume is not None else -1
        log_fh = self._open_log(resumed=resume is not None) if self.dist.is_main else open(os.devnull, "w")
        writer = csv.writer(log_fh)
        self.decoder.train()
        contents, styles = (
            self._loader(self.content_data, CONTENT_STREAM),
            self._loader(self.style_data, STYLE_STREAM),
        )
        bar = None
        try:
            from tqdm import tqdm

            bar = tqdm(
                total=c.iterations,
                initial=self.iteration,
                disable=not (c.progress and self.dist.is_main),
                unit="it",
                dynamic_ncols=True,
            )
            with _stop_on_signals(signals):
                while self.iteration < c.iterations and not stop:
                    start = time.perf_counter()
                    lr = learning_rate(c.lr, c.lr_decay, self.iteration)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                    content = next(contents).to(self.device, non_blocking=True)
                    style = next(styles).to(self.device, non_blocking=True)
                    if c.channels_last:
                        content = content.contiguous(memory_format=torch.channels_last)
                        style = style.contiguous(memory_format=torch.channels_last)
                    loss_c, loss_s = self.losses(content, style)
                    total = c.content_weight * loss_c + c.style_weight * loss_s
                    values = self._combined((loss_c, loss_s, total), signals, stop)
                    if not all(math.isfinite(v) for v in values):
                        kept = (
                            f"the last good checkpoint {self.checkpoint_path} is kept"
                            if self.checkpoint_path.exists()
                            else "no checkpoint had been written yet"
                        )
                        raise NonFiniteLossError(
                            f"non-finite loss at iteration {self.iteration + 1} (content {values[0]}, style "
                            f"{values[1]}, total {values[2]}); training stopped, {kept}. Try a lower --lr or "
                            "--style-weight, or --precision fp32"
                        )
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scaler.scale(total).backward()
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.iteration += 1
                    self.consumed += self.local_batch
                    rate = c.batch_size / max(time.perf_counter() - start, 1e-9)
                    writer.writerow(
                        [self.iteration, f"{lr:.8g}", *(f"{v:.8g}" for v in values), f"{rate:.4g}"]
                    )
                    bar.update(1)
                    bar.set_postfix(content=f"{values[0]:.3g}", style=f"{values[1]:.3g}", img_s=f"{rate:.1f}")
                    if self.iteration % c.checkpoint_every == 0 or self.iteration == c.iterations or stop:
                        log_fh.flush()
                        self.save_checkpoint()
                        saved_at = self.iteration
        finally:
            if bar is not None:
                bar.close()
            log_fh.close()
            del contents, styles
        if stop and self.iteration < c.iterations:
            if saved_at != self.iteration:  # a signal before the first iteration of this run
                self.save_checkpoint()
            self.log(
                f"stopped by signal {stop[0]} at iteration {self.iteration}; checkpoint "
                f"{self.checkpoint_path} written (continue with --resume)"
            )
            return TrainResult(self.iteration, self.checkpoint_path, None, stop[0])
        model_path = self.output / FINAL_MODEL_NAME
        if self.dist.is_main:
            model_path = save_model_file(
                model_path,
                self.decoder,
                encoder_name=c.encoder,
                config={
                    **c.to_dict(),
                    "trained_iterations": self.iteration,
                    "style_layer_weights": self.layer_weights,
                },
            )
        self.dist.barrier()
        self.log(f"wrote {model_path} (iteration {self.iteration})")
        return TrainResult(self.iteration, self.checkpoint_path, model_path, None)
