"""Model files: what a trained AdaIN model is saved as, and loading the public PyTorch port's ``decoder.pth``.

A model file is a ``torch.save``-d dict (readable with ``weights_only=True``)::

    {
        "format": "adain-mmd-model",
        "format_version": 1,
        "encoder": "vgg19_normalised",          # registry name of the encoder the decoder was trained on
        "decoder": {"1.weight": Tensor, ...},   # decoder state dict (CPU, contiguous)
        "config": {...},                        # training config: str keys; str/int/float/bool/None/lists
    }

The encoder's weights are not stored: they are the encoder's pretrained weights (torch hub cache, or
``encoder_weights=PATH``, e.g. ``vgg_normalised.pth``). Files are written atomically (a temp file in the same
folder, then ``os.replace``), so a crash never leaves a half-written model file under the final name.

A *raw* decoder state dict (the public port's ``decoder.pth``: keys ``1.weight``, ``1.bias``, ``5.weight``, …)
is accepted by :func:`load_decoder` / :func:`build_model` together with an explicit encoder name.

Every problem — missing/unreadable file, not a model file, missing keys, newer format version, encoder
mismatch, wrong keys or shapes — raises :class:`~adain.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from adain.decoders import Decoder, build_decoder, decoder_names
from adain.encoders import DEFAULT_WEIGHTS, build_encoder
from adain.errors import CheckpointError
from adain.model import AdaINModel, Precision
from adain.torchfiles import atomic_torch_save, listing, safe_torch_load, state_dict_problems

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFile",
    "build_model",
    "load_decoder",
    "load_model",
    "read_model_file",
    "save_model_file",
]

FORMAT_NAME = "adain-mmd-model"
FORMAT_VERSION = 1
_REQUIRED = ("format_version", "encoder", "decoder", "config")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ModelFile:
    """The contents of a model file (or of a raw decoder state dict, with ``format_version=0``)."""

    path: Path
    encoder_name: str
    decoder_state: dict[str, Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def _check_config(value: Any, where: str = "config") -> None:
    """Raise ``ValueError`` unless ``value`` is plain data that ``weights_only=True`` loading accepts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be strings; got {k!r}")
            _check_config(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_config(v, f"{where}[{i}]")
        return
    raise ValueError(
        f"{where} is a {type(value).__name__}; a model file's config holds only str, int, float, bool, None, "
        "lists and dicts (convert paths to str)"
    )


# ---- saving ----------------------------------------------------------------------------------------------


def save_model_file(
    path: PathLike,
    model: AdaINModel | Decoder,
    *,
    encoder_name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model file atomically.

    Args:
        path: destination (parent folders are created).
        model: an :class:`~adain.model.AdaINModel` (its encoder's name is recorded) or a bare decoder.
        encoder_name: the encoder's registry name; defaults to the model's encoder / the decoder's
            ``encoder_name``; must agree with the model's encoder if both are given.
        config: the training config (plain data only, see module doc).

    Returns:
        The path written.

    Raises:
        ValueError: config that is not plain data, or an encoder name that contradicts the model.
    """
    path = Path(path).expanduser()
    if isinstance(model, AdaINModel):
        if encoder_name is not None and encoder_name != model.encoder_name:
            raise ValueError(
                f"encoder_name={encoder_name!r} but the model's encoder is {model.encoder_name!r}"
            )
        decoder, name = model.decoder, model.encoder_name
    else:
        decoder, name = model, encoder_name or model.encoder_name
    cfg = dict(config or {})
    _check_config(cfg)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "encoder": name,
        "decoder": {k: v.detach().cpu().contiguous() for k, v in decoder.state_dict().items()},
        "config": cfg,
    }
    atomic_torch_save(payload, path)
    return path


# ---- reading ---------------------------------------------------------------------------------------------


def _torch_load(path: Path) -> object:
    return safe_torch_load(path, "model file", CheckpointError)


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


def read_model_file(path: PathLike, *, encoder_name: str | None = None, allow_raw: bool = False) -> ModelFile:
    """Read and validate a model file (no network is built).

    Args:
        path: the file.
        encoder_name: if given, the file must be for this encoder.
        allow_raw: accept a raw decoder state dict too (then ``encoder_name`` is required and the result
            has ``format_version=0`` and an empty config).

    Raises:
        CheckpointError: see the module doc.
    """
    path = Path(path).expanduser()
    obj = _torch_load(path)
    if _is_state_dict(obj):
        if not allow_raw:
            raise CheckpointError(
                f"{path} is a raw state dict (keys {listing(list(obj))}), not a model file; load a raw "
                "decoder with --encoder NAME --decoder FILE (load_decoder(path, encoder_name))"
            )
        if encoder_name is None:
            raise CheckpointError(f"{path} is a raw decoder state dict: say which encoder it is for")
        return ModelFile(path, encoder_name, dict(obj), {}, 0)  # type: ignore[arg-type]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a model file (a dict)")
    if obj.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is not an adain model file (no 'format': {FORMAT_NAME!r} entry; its keys: "
            f"{listing([str(k) for k in obj])})"
        )
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise CheckpointError(f"model file {path} lacks the entries {listing(missing)}")
    version = obj["format_version"]
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"model file {path} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"model file {path} has format version {version}, newer than this code reads ({FORMAT_VERSION}); "
            "update adain-mmd"
        )
    name = obj["encoder"]
    if not isinstance(name, str) or name not in decoder_names():
        raise CheckpointError(
            f"model file {path} names encoder {name!r}, which is not one of {', '.join(decoder_names())}"
        )
    if encoder_name is not None and name != encoder_name:
        raise CheckpointError(
            f"model file {path} holds a decoder trained for encoder {name!r}, not {encoder_name!r}"
        )
    if not _is_state_dict(obj["decoder"]):
        raise CheckpointError(f"model file {path}: its 'decoder' entry is not a state dict (name → tensor)")
    if not isinstance(obj["config"], Mapping):
        raise CheckpointError(f"model file {path}: its 'config' entry is a {type(obj['config']).__name__}")
    decoder = obj["decoder"]
    bad = [k for k, v in decoder.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"model file {path}: the decoder weights {listing(bad)} are not finite (NaN or inf): the "
            "training that wrote it diverged; use an earlier checkpoint or retrain with a lower --lr"
        )
    return ModelFile(path, name, dict(obj["decoder"]), dict(obj["config"]), version)


def _decoder_from_state(state: Mapping[str, Tensor], encoder_name: str, path: Path) -> Decoder:
    try:
        decoder = build_decoder(encoder_name)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from e
    problems = state_dict_problems(decoder.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"the decoder weights in {path} do not fit the {encoder_name} decoder: {'; '.join(problems)}"
        )
    decoder.load_state_dict(dict(state), strict=True)
    return decoder


def load_decoder(path: PathLike, encoder_name: str | None = None) -> Decoder:
    """A decoder with the weights of a model file or a raw decoder state dict (e.g. the port's decoder.pth).

    ``encoder_name`` is required for a raw state dict; for a model file it is checked against the file's.

    Raises:
        CheckpointError: unreadable file, encoder mismatch, wrong keys or shapes.
    """
    mf = read_model_file(path, encoder_name=encoder_name, allow_raw=True)
    return _decoder_from_state(mf.decoder_state, mf.encoder_name, mf.path)


def build_model(
    encoder_name: str,
    decoder_path: PathLike,
    *,
    encoder_weights: PathLike | None = DEFAULT_WEIGHTS,
    precision: Precision = "fp32",
    device: torch.device | str = "cpu",
) -> AdaINModel:
    """An :class:`~adain.model.AdaINModel` from an encoder name and a decoder file (model file or raw).

    Args:
        encoder_name: registry name (``vgg19``, ``vgg19_normalised``, ``mobilenet_v2``).
        decoder_path: model file or raw decoder state dict.
        encoder_weights: ``"DEFAULT"`` for the encoder's pretrained weights, an encoder weights file, or
            ``None`` for a *randomly initialised* encoder (tests and benchmarks only); see
            :func:`adain.encoders.build_encoder`.
        precision, device: see :class:`~adain.model.AdaINModel`.

    Raises:
        CheckpointError: decoder file problems. WeightsError: encoder weights missing or not matching.
    """
    decoder = load_decoder(decoder_path, encoder_name)
    encoder = build_encoder(encoder_name, weights=encoder_weights)
    return AdaINModel(encoder, decoder, precision=precision).to(device)


def load_model(
    path: PathLike,
    *,
    encoder_weights: PathLike | None = DEFAULT_WEIGHTS,
    precision: Precision = "fp32",
    device: torch.device | str = "cpu",
) -> AdaINModel:
    """An :class:`~adain.model.AdaINModel` from a model file (the encoder named in it, pretrained).

    Arguments as :func:`build_model`. Raises :class:`~adain.errors.CheckpointError` for a raw state dict
    (use :func:`build_model` with an encoder name) and every other problem with the file.
    """
    mf = read_model_file(path)
    decoder = _decoder_from_state(mf.decoder_state, mf.encoder_name, mf.path)
    encoder = build_encoder(mf.encoder_name, weights=encoder_weights)
    return AdaINModel(encoder, decoder, precision=precision).to(device)
