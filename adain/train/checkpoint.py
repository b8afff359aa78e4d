"""Training checkpoints: a model file plus the training state, so a run stopped early is a usable model.

A checkpoint (format version 2) is a model file (:mod:`adain.modelfile`: ``format``, ``format_version``,
``encoder``, ``decoder``, ``config``), which ``adain stylize --model checkpoint.pth`` and
:func:`adain.modelfile.load_model` read as is, with one more entry::

    "training": {
        "format": "adain-mmd-train-checkpoint", "version": 2,
        "iteration": int, "config": {...},      # the TrainConfig (the model file's config adds
                                                # trained_iterations and style_layer_weights)
        "optimizer": {...}, "scaler": {...},
        "schedule": {"kind": "inverse", "lr": float, "lr_decay": float, "current_lr": float},
        "data": {"content": sampler state, "style": sampler state},
        "dataset": {"content": fingerprint, "style": fingerprint},   # see adain.train.fingerprint
        "rng": {...},
        "normalisers": {layer: float} | None,   # layer_normalisation "initial": ref_l of the first batch
    }

Version-1 checkpoints (the training state at the top level) are still read. :func:`load_checkpoint`
returns one flat dict for both (``iteration``, ``config``, ``decoder``, ``optimizer``, ``scaler``,
``schedule``, ``data``, ``dataset``); every problem is a :class:`~adain.errors.CheckpointError` naming the
file: unreadable, not a checkpoint, newer version, missing entries, an unknown or malformed config key,
non-finite decoder weights.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from adain.errors import CheckpointError
from adain.modelfile import FORMAT_NAME, FORMAT_VERSION, read_model_file
from adain.torchfiles import atomic_torch_save, safe_torch_load, state_dict_problems

from .config import TrainConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "TrainingWriteError",
    "dataset_fingerprint",
    "initial_decoder_state",
    "load_checkpoint",
    "non_finite_tensors",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "adain-mmd-train-checkpoint"
CHECKPOINT_VERSION = 2
_TRAINING_KEYS = ("iteration", "optimizer", "schedule", "data")


class TrainingWriteError(CheckpointError):
    """A checkpoint or model file could not be written (disk full, read-only folder, …)."""


def non_finite_tensors(state: Mapping[str, Tensor]) -> list[str]:
    """Names of the tensors of a state dict that hold NaN or ±inf."""
    return [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def dataset_fingerprint(paths: list[Path], root: Path) -> dict[str, Any]:
    """``{"files": n, "sha256": …}`` of the sorted (relative name, size) pairs of a data folder's images."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        name = os.path.relpath(path, root)
        digest.update(f"{name}\0{size}\n".encode())
    return {"files": len(paths), "sha256": digest.hexdigest()}


def save_checkpoint(
    path: Path,
    *,
    encoder_name: str,
    decoder_state: Mapping[str, Tensor],
    config: Mapping[str, Any],
    training: Mapping[str, Any],
) -> Path:
    """Write a checkpoint atomically (see the module doc).

    Raises:
        TrainingWriteError: the weights are not finite (nothing is written), or the write failed (the
            previous checkpoint is kept).
    """
    bad = non_finite_tensors(decoder_state)
    if bad:
        raise TrainingWriteError(
            f"not writing {path}: the decoder weights {', '.join(bad[:3])} are not finite; the previous "
            "checkpoint is kept"
        )
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "encoder": encoder_name,
        "decoder": {k: v.detach().cpu().clone() for k, v in decoder_state.items()},
        "config": dict(config),
        "training": {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **training},
    }
    try:
        return atomic_torch_save(payload, path)
    except OSError as e:
        raise TrainingWriteError(
            f"cannot write checkpoint {path}: {e.strerror or e}; the previous checkpoint is kept. Free "
            "space or choose another --output, then continue with --resume"
        ) from e


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a training checkpoint (``weights_only=True``); see the module doc.

    Raises:
        CheckpointError: naming the file and the problem.
    """
    path = Path(path).expanduser()
    obj = safe_torch_load(path, "checkpoint", CheckpointError)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not an adain training checkpoint (a {type(obj).__name__})")
    if obj.get("format") == FORMAT_NAME and isinstance(obj.get("training"), dict):
        training = obj["training"]
        state = {**training, "decoder": obj.get("decoder")}
        version = training.get("version", 0)
    elif obj.get("format") == CHECKPOINT_FORMAT:  # version 1: everything at the top level
        state, version = dict(obj), obj.get("format_version", 0)
    else:
        raise CheckpointError(
            f"{path} is not an adain training checkpoint (no {CHECKPOINT_FORMAT!r} entry); a model file "
            "cannot be resumed, start a new run with another --output"
        )
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has a newer format version ({version!r}); update adain-mmd")
    missing = [k for k in (*_TRAINING_KEYS, "config", "decoder") if state.get(k) is None]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    if not isinstance(state["config"], Mapping):
        raise CheckpointError(
            f"checkpoint {path}: its config is a {type(state['config']).__name__}, not a table"
        )
    try:
        state["config"] = TrainConfig.from_dict(state["config"]).to_dict()
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: bad training config: {e}") from None
    decoder = state["decoder"]
    if not isinstance(decoder, Mapping) or not all(isinstance(v, Tensor) for v in decoder.values()):
        raise CheckpointError(f"checkpoint {path}: its decoder entry is not a state dict (name → tensor)")
    bad = non_finite_tensors(decoder)
    if bad:
        raise CheckpointError(
            f"checkpoint {path}: the decoder weights {', '.join(bad[:3])} are not finite (NaN or inf); it "
            "cannot be resumed"
        )
    if not isinstance(state["iteration"], int) or state["iteration"] < 0:
        raise CheckpointError(f"checkpoint {path}: malformed iteration {state['iteration']!r}")
    data = state["data"]
    if not isinstance(data, Mapping) or not all(
        isinstance(data.get(k), Mapping) for k in ("content", "style")
    ):
        raise CheckpointError(f"checkpoint {path}: malformed data positions {data!r}")
    state.setdefault("scaler", {})
    state.setdefault("dataset", None)
    return state


def initial_decoder_state(path: str | Path, decoder: nn.Module, encoder_name: str) -> dict[str, Tensor]:
    """Decoder weights to start a run from (``--init-decoder``): a training checkpoint's (any version) or
    a model file's decoder.

    Raises:
        CheckpointError: unreadable file, a decoder for another encoder, or weights that do not fit.
    """
    try:
        state = load_checkpoint(path)
        trained_for, weights = state["config"]["encoder"], state["decoder"]
    except CheckpointError:
        model = read_model_file(path)
        trained_for, weights = model.encoder_name, model.decoder_state
    if trained_for != encoder_name:
        raise CheckpointError(f"{path} holds a decoder for encoder {trained_for!r}, not {encoder_name!r}")
    problems = state_dict_problems(decoder.state_dict(), weights)
    if problems:
        raise CheckpointError(f"{path}: the decoder does not fit: {'; '.join(problems)}")
    return dict(weights)
