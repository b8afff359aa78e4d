"""The training loop: :class:`Trainer` builds the networks, data, objective and optimiser of a
:class:`~adain.train.config.TrainConfig` and runs it (see :mod:`adain.train` for the maths and guarantees)."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

import mmd
from adain.augment import StyleAugment
from adain.data import ImageFolder, InfiniteSampler, derive_seed
from adain.decoders import Decoder, build_decoder
from adain.devices import resolve_device, resolve_precision
from adain.distributed import Distributed
from adain.encoders import DEFAULT_WEIGHTS, FeatureEncoder, build_encoder
from adain.errors import AdainError, CheckpointError, LayerNormaliserError
from adain.gatys import total_variation
from adain.model import autocast_context
from adain.modelfile import save_model_file
from adain.ops import adaptive_instance_norm
from adain.torchfiles import state_dict_problems

from . import reporting
from .checkpoint import (
    TrainingWriteError,
    dataset_fingerprint,
    initial_decoder_state,
    load_checkpoint,
    non_finite_tensors,
    save_checkpoint,
)
from .config import RUN_FIELDS, TrainConfig

__all__ = [
    "CHECKPOINT_NAME",
    "FINAL_MODEL_NAME",
    "NORMALISER_SETTINGS",
    "NonFiniteLossError",
    "TrainResult",
    "Trainer",
    "check_normalisers",
    "default_style_layers",
    "learning_rate",
    "style_layer_weights",
    "style_objective",
]

CHECKPOINT_NAME = "checkpoint.pth"
FINAL_MODEL_NAME = "decoder_final.pth"
EMA_MODEL_NAME = "decoder_ema.pth"  # the weight average's model file (ema_decay > 0), at every checkpoint
CONTENT_STREAM, STYLE_STREAM = 0, 1


class NonFiniteLossError(AdainError):
    """A loss or, after a step, a decoder weight became NaN or infinite; the run stopped and wrote nothing."""


@dataclass(frozen=True)
class TrainResult:
    """What :meth:`Trainer.run` did: the last iteration reached and where things are."""

    iteration: int
    checkpoint_path: Path
    model_path: Path | None  # None when stopped by a signal before the end
    stopped_by: int | None  # signal number, or None for a completed run


#: config keys that change what the per-layer style terms measure: a fork that changes one measures new
#: layer normalisers rather than keeping the checkpoint's
NORMALISER_SETTINGS = ("encoder", "style_loss", "layers", "style_positions", "layer_normalisation")

#: config keys that do not change what a run learns from a given state, left out of a fork's report of changes
_NOT_TRAINING_SETTINGS = (
    "output",
    "forked_from",
    "progress",
    "content_dir",
    "style_dir",
    "iterations",
    "checkpoint_every",
    "workers",
    "device",
    "cache_images",
    "num_samples",
)


def default_style_layers(encoder: FeatureEncoder) -> list[str]:
    """The encoder's taps up to and including its ``adain_layer``."""
    names = list(encoder.layer_names)
    return names[: names.index(encoder.adain_layer) + 1]


def style_layer_weights(
    config: TrainConfig, encoder: FeatureEncoder, layers: Sequence[str]
) -> dict[str, float]:
    """Weight of each style layer under ``config.layer_weighting``, times ``config.layer_scales`` (see
    :class:`TrainConfig`).

    Raises:
        ValueError: ``layer_scales`` names a layer that is not one of ``layers``.
    """
    mode = config.layer_weighting
    if mode == "auto":
        paper = config.style_loss.name == "meanstd" and config.layer_normalisation == "none"
        mode = "channels" if paper else "ones"
    scales = dict(config.layer_scales or {})
    unknown = sorted(set(scales) - set(layers))
    if unknown:
        raise ValueError(f"layer_scales names {unknown}, which are not style layers ({', '.join(layers)})")
    return {
        k: (1.0 / encoder.channels[k] if mode == "channels" else 1.0) * scales.get(k, 1.0) for k in layers
    }


def style_objective(
    config: TrainConfig, encoder: FeatureEncoder, layers: Sequence[str]
) -> mmd.StyleObjective:
    """The training objective: the config's style loss on ``layers``, content loss at the AdaIN layer."""
    return mmd.StyleObjective(
        config.style_loss.build(),
        style_layer_weights(config, encoder, layers),
        content_layer=encoder.adain_layer,
    )


def check_normalisers(values: Mapping[str, float], layers: Sequence[str], source: str) -> dict[str, float]:
    """The per-layer normalisers as floats, checked: one per style layer, each positive and finite.

    Raises:
        LayerNormaliserError: a missing, extra, non-positive or non-finite value (naming the layer and
            ``source``, e.g. the checkpoint or "the first batch").
    """
    if not isinstance(values, Mapping) or sorted(values) != sorted(layers):
        have = sorted(values) if isinstance(values, Mapping) else repr(values)
        raise LayerNormaliserError(
            f"{source}: layer normalisers for {have}, but the style layers are {list(layers)}"
        )
    out = {}
    for layer in layers:
        value = values[layer]
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        if not (0 < number < math.inf):
            raise LayerNormaliserError(
                f"{source}: style layer {layer!r} has normaliser {value!r} (its loss at the starting "
                "decoder); it must be positive and finite to divide by. The starting decoder already "
                "matches the style there, or the loss overflowed: use layer_normalisation 'none' or leave "
                "the layer out"
            )
        out[layer] = number
    return out


def learning_rate(lr: float, lr_decay: float, iteration: int) -> float:
    """``lr / (1 + lr_decay · iteration)``."""
    return lr / (1.0 + lr_decay * iteration)


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
        for sig, old in previous.items():
            signal.signal(sig, old)


def check_output_writable(output: Path) -> None:
    """Create ``output`` and check that files can be written in it.

    Raises:
        TrainingWriteError: naming the folder (read-only, a file, no permission).
    """
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise TrainingWriteError(
            f"cannot write into the output folder {output}: {e.strerror or e}; choose another --output"
        ) from e


class Trainer:
    """Builds the networks, data and optimiser of a :class:`TrainConfig` and runs the training loop.

    Args:
        config: the run.
        log: where one-line messages go (default: stderr; rank 0 only).
        dist: this process's rank and world size (default: a single process); see :mod:`adain.train`.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        log: Callable[[str], None] | None = None,
        dist: Distributed | None = None,
    ) -> None:
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
        # The starting decoder of a fresh run. A resumed run replaces it with the checkpoint's, so the
        # file is only needed then (a staged run resumed on another machine may lack the earlier stage).
        self._missing_init_decoder: str | None = None
        if config.init_decoder and Path(config.init_decoder).expanduser().exists():
            self.decoder.load_state_dict(
                initial_decoder_state(config.init_decoder, self.decoder, config.encoder)
            )
        elif config.init_decoder:
            self._missing_init_decoder = config.init_decoder
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
        self.objective = style_objective(config, self.encoder, self.layers)
        self.layer_weights = dict(self.objective.layer_weights)
        self.optimizer = torch.optim.Adam(self.decoder.parameters(), lr=config.lr)
        # the running average of the weights (ema_decay > 0), float32, by parameter/buffer name
        self.ema: dict[str, Tensor] | None = self._ema_from_decoder() if config.ema_decay > 0 else None
        self.model: torch.nn.Module = self.decoder  # what the forward pass calls (DDP-wrapped if K > 1)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.decoder, device_ids=ids)
        self.precision = resolve_precision(config.precision, self.device)
        if config.precision == "auto":
            native = (
                "bf16 is fast here"
                if self.precision == "bf16"
                else "no fast bf16: no AMX, no CUDA ≥ 8.0, no measured AVX512-BF16 gain"
            )
            self.log(f"precision auto → {self.precision} ({self.device.type}: {native})")
        fp16_cuda = self.precision == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16_cuda)
        self.iteration = 0
        self.consumed = 0  # samples drawn from each stream (per rank)
        # layer → ref_l under layer_normalisation "initial": set on the run's first batch or by a resume
        self.normalisers: dict[str, float] | None = None

    def _build_encoder(self) -> FeatureEncoder:
        c = self.config
        if not c.pretrained:
            with _seeded_global_rng(c.seed + 1):
                return build_encoder(c.encoder, weights=None)
        return build_encoder(c.encoder, weights=c.encoder_weights or DEFAULT_WEIGHTS)

    @property
    def checkpoint_path(self) -> Path:
        return self.output / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.output / reporting.LOG_NAME

    # ---- one step --------------------------------------------------------------------------------------

    def losses(self, content: Tensor, style: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(L_c, L_s, L_tv)`` scalars for batches ``[B, 3, S, S]`` (:mod:`adain.train`); differentiable in
        D. ``L_tv`` is the decoded batch's total variation where ``tv_weight > 0``, else 0. With
        ``reconstruction``: ``(L_c, L_pixel, 0)``."""
        if self.config.reconstruction:
            return (*self.reconstruction_losses(content), content.new_zeros(()))
        enc, adain_layer = self.encoder, self.encoder.adain_layer
        wanted = sorted(set(self.layers) | {adain_layer}, key=enc.layer_names.index)
        with autocast_context(self.device, self.precision):
            with torch.no_grad():
                c_feat = enc(content, layers=adain_layer)[adain_layer]
                s_feats = enc(style, layers=wanted)
                target = adaptive_instance_norm(c_feat.float(), s_feats[adain_layer].float())
            generated = self.model(target)
            g_feats = enc(generated, layers=wanted)
        loss_c = self.objective.content(g_feats, target).mean()
        loss_tv = (
            total_variation(generated.float()).mean() if self.config.tv_weight > 0 else loss_c.new_zeros(())
        )
        gen = {k: g_feats[k].float() for k in self.layers}
        sty = {k: s_feats[k].float() for k in self.layers}
        if self.config.style_positions is not None:
            rng = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.iteration)
            count = self.config.style_positions
            gen = {k: mmd.random_positions(v, count, rng) for k, v in gen.items()}
            sty = {k: mmd.random_positions(v, count, rng) for k, v in sty.items()}
        objective = self.objective.with_targets(sty)  # loss parameters fixed from the style
        if self.config.layer_normalisation == "none":
            return loss_c, objective.style(gen, sty).mean(), loss_tv
        terms = objective.style_terms(gen, sty)
        if self.normalisers is None:
            self.normalisers = self.initial_normalisers(terms)
        normalised = {k: v / self.normalisers[k] for k, v in terms.items()}
        return loss_c, objective.weighted(normalised).mean(), loss_tv

    def initial_normalisers(self, terms: Mapping[str, Tensor]) -> dict[str, float]:
        """``ref_l``: each layer's batch-mean term ``{layer: [B]}`` at the starting decoder on the run's
        first batch (averaged over the ranks under DDP), without gradient.

        Raises:
            LayerNormaliserError: a value that is not positive and finite (naming the layer).
        """
        values = torch.stack([terms[k].detach().float().mean() for k in self.layers])
        if self.dist.enabled:
            self.dist.all_reduce(values, "sum")
            values = values / self.dist.world_size
        found = dict(zip(self.layers, values.cpu().tolist(), strict=True))
        return check_normalisers(found, self.layers, "the first training batch")

    def reconstruction_losses(self, content: Tensor) -> tuple[Tensor, Tensor]:
        """``(L_c, L_pixel)`` of the reconstruction warm start: ``t = E(c)``, ``L_c = mean (E(D(t)) − t)²``,
        ``L_pixel = mean (D(t) − c)²`` for a content batch ``[B, 3, S, S]``."""
        enc, adain_layer = self.encoder, self.encoder.adain_layer
        with autocast_context(self.device, self.precision):
            with torch.no_grad():
                target = enc(content, layers=adain_layer)[adain_layer].float()
            generated = self.model(target)
            g_feat = enc(generated, layers=adain_layer)
        loss_c = self.objective.content(g_feat, target).mean()
        loss_pixel = (generated.float() - content.float()).pow(2).mean()
        return loss_c, loss_pixel

    def next_batch_losses(self) -> tuple[float, float]:
        """``(L_c, L_s)`` of the current decoder on the batch the next iteration will draw (no state changes;
        used to calibrate style weights across losses, see ``experiments/decoder_ablation.py``)."""
        content = next(self._loader(self.content_data, CONTENT_STREAM)).to(self.device)
        style = next(self._loader(self.style_data, STYLE_STREAM)).to(self.device)
        with torch.no_grad():
            loss_c, loss_s, _ = self.losses(content, style)
        return float(loss_c), float(loss_s)

    # ---- checkpoints -----------------------------------------------------------------------------------

    def fingerprints(self) -> dict[str, Any]:
        """Names and sizes of the training images (a resumed run must see the same data)."""
        return {
            "content": dataset_fingerprint(self.content_data.paths, self.content_data.folder),
            "style": dataset_fingerprint(self.style_data.paths, self.style_data.folder),
        }

    def model_config(self) -> dict[str, Any]:
        """The config a model file (and a checkpoint) records."""
        return {
            **self.config.to_dict(),
            "trained_iterations": self.iteration,
            "precision_used": self.precision,
            "style_layer_weights": self.layer_weights,
            "style_layer_normalisers": self.normalisers,
        }

    # ---- the weight average (ema_decay > 0) ---------------------------------------------------------------

    def _ema_from_decoder(self) -> dict[str, Tensor]:
        """A new average that starts at the current weights."""
        return {k: v.detach().float().clone() for k, v in self.decoder.state_dict().items()}

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema ← d·ema + (1 − d)·w`` for every floating-point tensor of the decoder (after a step)."""
        if self.ema is None:
            return
        weight = 1.0 - self.config.ema_decay
        live = self.decoder.state_dict()
        names = [k for k, v in live.items() if v.is_floating_point()]
        torch._foreach_lerp_([self.ema[k] for k in names], [live[k].float() for k in names], weight)

    def ema_decoder(self) -> Decoder:
        """A copy of the decoder holding the averaged weights (in the decoder's dtypes)."""
        if self.ema is None:
            raise ValueError("no weight average: ema_decay is 0")
        averaged = build_decoder(self.config.encoder)
        live = self.decoder.state_dict()
        averaged.load_state_dict({k: v.to(live[k].dtype) for k, v in self.ema.items()})
        return averaged

    def training_state(self) -> dict[str, Any]:
        """The training part of a checkpoint (see :mod:`adain.train.checkpoint`)."""
        c = self.config
        shard = {"rank": self.dist.rank, "world_size": self.dist.world_size}
        content_sampler = InfiniteSampler(len(self.content_data), c.seed, CONTENT_STREAM, **shard)
        style_sampler = InfiniteSampler(len(self.style_data), c.seed, STYLE_STREAM, **shard)
        return {
            "iteration": self.iteration,
            "config": c.to_dict(),
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
            "dataset": self.fingerprints(),
            # No stateful generator is used: every draw is seeded from (seed, stream, sample), so the
            # samplers' positions above are the complete random state (see adain.data).
            "rng": {"scheme": "derive_seed(seed, stream, epoch, slot)", "seed": c.seed},
            # layer_normalisation "initial": the ref_l of the first batch (None before it, or "none")
            "normalisers": self.normalisers,
            # ema_decay > 0: the running average of the decoder weights (float32)
            "ema_decoder": None
            if self.ema is None
            else {k: v.detach().cpu().clone() for k, v in self.ema.items()},
        }

    def load_state(
        self,
        state: Mapping[str, Any],
        source: str = "checkpoint",
        *,
        same_data: bool = True,
        keep_normalisers: bool = True,
    ) -> None:
        """Restore decoder, optimiser, scaler, iteration, data positions from :func:`load_checkpoint`.

        ``same_data=False`` (a fork) accepts other content or style images than the checkpoint's: their
        streams keep the run's seed and position (samples consumed) and draw over the new files.
        ``keep_normalisers=False`` (a fork whose style terms differ from the checkpoint's) leaves the layer
        normalisers to be measured at the loaded decoder on this run's first batch."""
        problems = state_dict_problems(self.decoder.state_dict(), state["decoder"])
        if problems:
            raise CheckpointError(f"{source}: the decoder does not fit: {'; '.join(problems)}")
        self.decoder.load_state_dict(state["decoder"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{source}: malformed optimizer state: {e}") from e
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
                InfiniteSampler.from_state_dict(
                    len(data) if same_data else int(state["data"][name]["n"]), state["data"][name]
                )
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(f"{source}: {name} folder {data.folder}: {e}") from e
        saved_data = state.get("dataset")
        if saved_data is not None and same_data:
            mine = self.fingerprints()
            for name, data in (("content", self.content_data), ("style", self.style_data)):
                if saved_data.get(name) != mine[name]:
                    raise CheckpointError(
                        f"{source} was trained on other {name} images than those in {data.folder} (names or "
                        "sizes differ); resume with the same data, or start a new run"
                    )
        self.consumed = int(state["data"]["content"]["consumed"])
        self.normalisers = None
        saved_normalisers = state.get("normalisers")
        if (
            keep_normalisers
            and self.config.layer_normalisation != "none"
            and (saved_normalisers is not None or self.iteration)
        ):
            if saved_normalisers is None:
                raise CheckpointError(
                    f"{source} is at iteration {self.iteration} of a run with layer_normalisation "
                    f"{self.config.layer_normalisation!r} but holds no layer normalisers; it cannot be "
                    "resumed"
                )
            try:
                self.normalisers = check_normalisers(saved_normalisers, self.layers, source)
            except LayerNormaliserError as e:
                raise CheckpointError(str(e)) from None
        for group in self.optimizer.param_groups:  # a resumed run may change lr (RUN_FIELDS)
            group["lr"] = learning_rate(self.config.lr, self.config.lr_decay, self.iteration)
        if self.ema is not None:
            saved_ema = state.get("ema_decoder")
            if saved_ema is None:  # a checkpoint without an average: it starts at the loaded weights
                self.ema = self._ema_from_decoder()
                self.log(f"{source} holds no weight average; the average starts at its weights")
            else:
                problems = state_dict_problems(self.decoder.state_dict(), saved_ema)
                if problems:
                    raise CheckpointError(f"{source}: the weight average does not fit: {'; '.join(problems)}")
                self.ema = {k: v.to(self.device).float() for k, v in saved_ema.items()}

    def save_checkpoint(self) -> Path:
        """Write the samples and the plot of this iteration, then ``checkpoint.pth`` atomically (so a kill
        never leaves a checkpoint whose samples are missing). Under DDP rank 0 writes, all wait."""
        if self.dist.is_main:
            self.write_reports()
            save_checkpoint(
                self.checkpoint_path,
                encoder_name=self.config.encoder,
                decoder_state=self.decoder.state_dict(),
                config=self.model_config(),
                training=self.training_state(),
            )
            if self.ema is not None:
                self.save_ema_model()
        self.dist.barrier()
        return self.checkpoint_path

    def save_ema_model(self) -> Path:
        """Write the averaged decoder as the model file ``decoder_ema.pth`` (atomically)."""
        path = self.output / EMA_MODEL_NAME
        config = {
            **self.model_config(),
            "weights": f"exponential moving average, decay {self.config.ema_decay}",
        }
        try:
            return save_model_file(path, self.ema_decoder(), encoder_name=self.config.encoder, config=config)
        except OSError as e:
            raise TrainingWriteError(f"cannot write the model file {path}: {e.strerror or e}") from e

    def write_reports(self) -> None:
        """The loss plot and the samples of the current iteration (rank 0)."""
        c = self.config
        try:
            reporting.write_plot(
                self.log_path,
                self.output / reporting.PLOT_NAME,
                title=f"{c.encoder} decoder, iteration {self.iteration}",
                style_label="pixel MSE" if c.reconstruction else c.style_loss.name,
                weights=(c.content_weight, c.second_weight),
            )
            reporting.write_samples(
                reporting.sample_path(self.output, self.iteration),
                self.encoder,
                self.decoder,
                self.sample_pairs(),
                c.crop_size,
            )
        except OSError as e:
            raise TrainingWriteError(
                f"cannot write the plot or samples in {self.output}: {e.strerror or e}"
            ) from e

    def sample_pairs(self) -> list[tuple[Path, Path]]:
        """The fixed pairs stylized at each checkpoint: content ``i`` with style ``i mod n_styles``."""
        contents, styles = self.content_data.paths, self.style_data.paths
        k = min(self.config.num_samples, len(contents))
        return [(contents[i], styles[i % len(styles)]) for i in range(k)]

    def resume(self, path: str | Path) -> None:
        """Load a checkpoint (its config must agree except :data:`RUN_FIELDS` and the folders' paths).

        Raises:
            CheckpointError: unreadable checkpoint, one from a different setup or other data.
        """
        state = load_checkpoint(path)
        differ = [
            f"{k} ({before!r} in the checkpoint, {now!r} now)"
            for k, (before, now) in self._settings_changed(path, state).items()
            if k not in RUN_FIELDS and k not in ("content_dir", "style_dir")
        ]
        if differ:
            raise CheckpointError(f"checkpoint {path} was written with other settings: {'; '.join(differ)}")
        self.load_state(state, source=str(path))

    def fork(self, path: str | Path) -> dict[str, tuple[Any, Any]]:
        """Start this (new) run from another run's whole training state: decoder, optimiser, iteration,
        data order and layer normalisers, so that an arm with changed settings (``style_weight``,
        ``tv_weight``, ``lr`` …) and an arm without see the same batches from the same point: a paired
        ablation. The architecture must be the checkpoint's (:meth:`load_state` checks it). The images may
        differ (a data ablation, e.g. a larger style set): each stream keeps its seed and position and draws
        over the new files, so two such forks still see the same batches of the folder they share. The
        layer normalisers (``layer_normalisation="initial"``) are the checkpoint's where they measure the
        same style terms; where a setting in :data:`NORMALISER_SETTINGS` changed, or the checkpoint holds
        none (a fork that turns the normalisation on), they are measured anew at the checkpoint's decoder
        on the fork's first batch.

        Returns:
            ``{setting: (checkpoint's value, this run's)}`` for every training setting that differs, and
            ``"content images"`` / ``"style images"`` (file counts) where the images differ.

        Raises:
            CheckpointError: an unreadable checkpoint, or one whose decoder does not fit.
        """
        state = load_checkpoint(path)
        changed = {
            k: v for k, v in self._settings_changed(path, state).items() if k not in _NOT_TRAINING_SETTINGS
        }
        saved_data, mine = state.get("dataset") or {}, self.fingerprints()
        for name, data in (("content", self.content_data), ("style", self.style_data)):
            saved_n = state.get("data", {}).get(name, {}).get("n")
            if saved_data.get(name, mine[name]) != mine[name] or (
                saved_n is not None and saved_n != len(data)
            ):
                changed[f"{name} images"] = (f"{saved_n} files", f"{len(data)} files in {data.folder}")
        keep = state.get("normalisers") is not None and not any(k in changed for k in NORMALISER_SETTINGS)
        self.load_state(state, source=str(path), same_data=False, keep_normalisers=keep)
        return changed

    def _settings_changed(self, path: str | Path, state: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        """The config keys whose checkpoint value differs from this run's (a key older checkpoints lack
        counts as its default)."""
        try:
            saved = TrainConfig.from_dict(state["config"]).to_dict()
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"checkpoint {path}: malformed training config: {e}") from None
        mine = self.config.to_dict()
        return {k: (saved.get(k), mine[k]) for k in mine if saved.get(k) != mine[k]}

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
        """The losses as floats, averaged over the ranks under DDP; there also append to ``stop`` the largest
        signal number any rank has received (so that all ranks stop at the same iteration)."""
        if not self.dist.enabled:
            return tuple(float(v.detach()) for v in losses)
        values = torch.stack([v.detach().float() for v in losses])
        self.dist.all_reduce(values, "sum")
        flag = torch.tensor([signals[0] if signals else 0], device=self.device)
        self.dist.all_reduce(flag, "max")
        if int(flag) and not stop:
            stop.append(int(flag))
        return tuple(float(v) / self.dist.world_size for v in values.cpu())

    def _kept(self) -> str:
        if self.checkpoint_path.exists():
            return f"the last good checkpoint {self.checkpoint_path} is kept"
        return "no checkpoint had been written yet"

    def step(
        self, content: Tensor, style: Tensor, lr: float, signals: list[int], stop: list[int]
    ) -> tuple[float, ...]:
        """One optimiser step on a batch; returns ``(L_c, L_s, total)`` (combined over ranks).

        Raises:
            NonFiniteLossError: a non-finite loss (before the step) or non-finite weights after it.
        """
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_c, loss_s, loss_tv = self.losses(content, style)
        total = c.content_weight * loss_c + c.second_weight * loss_s  # loss_s: pixel MSE if reconstruction
        if c.tv_weight > 0:
            total = total + c.tv_weight * loss_tv
        values = self._combined((loss_c, loss_s, total), signals, stop)
        if not all(math.isfinite(v) for v in values):
            raise NonFiniteLossError(
                f"non-finite loss at iteration {self.iteration + 1} (content {values[0]}, style {values[1]}, "
                f"total {values[2]}); training stopped, {self._kept()}. Try a lower --lr or --style-weight, "
                "or --precision fp32"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        try:
            self.scaler.step(self.optimizer)
        except RuntimeError as e:  # Adam's step size overflows float32 (a huge lr)
            if "overflow" not in str(e):
                raise
            bad = [f"the optimiser step ({e})"]
        else:
            self.scaler.update()
            bad = non_finite_tensors(self.decoder.state_dict())
            if not bad:
                self.update_ema()
        if bad:
            raise NonFiniteLossError(
                f"the decoder weights became non-finite at iteration {self.iteration + 1} (lr {lr:g}; "
                f"{', '.join(bad[:3])}); training stopped without writing them, {self._kept()}. Resume it "
                "with a lower --lr"
            )
        return values

    def run(self, resume: str | Path | None = None, fork: str | Path | None = None) -> TrainResult:
        """Train up to ``config.iterations`` (from a checkpoint if ``resume``; from another run's
        checkpoint into this new folder if ``fork``, see :meth:`fork`); see :mod:`adain.train`.

        Raises:
            NonFiniteLossError: a loss or weight became NaN/inf (nothing of it is written).
            CheckpointError: bad ``resume``/``fork`` file, or a checkpoint/model file that cannot be written.
            FileExistsError: a fresh or forked run into a folder that already holds a checkpoint.
            ValueError: both ``resume`` and ``fork``.
        """
        c = self.config
        if resume is not None and fork is not None:
            raise ValueError("resume continues a run in its folder, fork starts a new one; pass one of them")
        if self.dist.is_main:
            check_output_writable(self.output)
        if resume is not None:
            self.resume(resume)
            self.log(f"resumed from {resume} at iteration {self.iteration}")
        elif self.checkpoint_path.exists():
            raise FileExistsError(
                f"{self.checkpoint_path} exists: continue it with --resume, or choose another --output"
            )
        elif fork is not None:
            changed = self.fork(fork)
            described = ", ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in changed.items()) or "none"
            self.log(f"forked from {fork} at iteration {self.iteration}; settings changed: {described}")
        elif self._missing_init_decoder is not None:
            raise CheckpointError(
                f"--init-decoder: model file {self._missing_init_decoder} does not exist; pass an existing "
                "model file or training checkpoint (e.g. the previous stage's checkpoint.pth)"
            )
        self.dist.barrier()  # every rank has checked the folder before rank 0 may write to it
        started_from = resume if resume is not None else fork
        if (
            started_from is not None
            and self.dist.is_main
            and not reporting.sample_path(self.output, self.iteration).exists()
        ):
            self.write_reports()  # samples due at the checkpoint, lost to a kill by an older version
        signals: list[int] = []  # signals received by this process
        stop = signals if not self.dist.enabled else []  # under DDP: signals agreed on by all ranks
        saved_at = self.iteration if started_from is not None else -1
        keep = self.iteration if resume is not None else None
        log_fh = reporting.open_log(self.log_path, keep) if self.dist.is_main else open(os.devnull, "w")
        writer = csv.writer(log_fh)
        self.decoder.train()
        contents = self._loader(self.content_data, CONTENT_STREAM)
        styles = self._loader(self.style_data, STYLE_STREAM)
        bar = None
        try:
            from tqdm import tqdm

            bar = tqdm(
                total=c.iterations,
                initial=self.iteration,
                disable=not (c.progress and self.dist.is_main and sys.stderr.isatty()),
                unit="it",
                dynamic_ncols=True,
                leave=False,
            )
            with _stop_on_signals(signals):
                while self.iteration < c.iterations and not stop:
                    start = time.perf_counter()
                    lr = learning_rate(c.lr, c.lr_decay, self.iteration)
                    content = next(contents).to(self.device, non_blocking=True)
                    style = next(styles).to(self.device, non_blocking=True)
                    if c.channels_last:
                        content = content.contiguous(memory_format=torch.channels_last)
                        style = style.contiguous(memory_format=torch.channels_last)
                    values = self.step(content, style, lr, signals, stop)
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
            try:
                model_path = save_model_file(
                    model_path, self.decoder, encoder_name=c.encoder, config=self.model_config()
                )
            except OSError as e:
                raise TrainingWriteError(
                    f"cannot write the model file {model_path}: {e.strerror or e}; the checkpoint "
                    f"{self.checkpoint_path} is a usable model file too"
                ) from e
        self.dist.barrier()
        self.log(f"wrote {model_path} (iteration {self.iteration})")
        return TrainResult(self.iteration, self.checkpoint_path, model_path, None)
