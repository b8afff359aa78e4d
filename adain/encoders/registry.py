"""The encoder registry and the one builder, in the style of torchvision's ``models`` registry.

Each network module registers its class with :func:`register_encoder`; :func:`build_encoder` builds one by
name with its default pretrained weights (``weights="DEFAULT"``), a state-dict file (``weights=PATH``) or
random weights (``weights=None``, for tests and benchmarks only).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any, TypeVar

from adain.encoders.base import FeatureEncoder

__all__ = ["DEFAULT_WEIGHTS", "available_encoders", "build_encoder", "encoder_options", "register_encoder"]

#: ``weights=DEFAULT_WEIGHTS`` asks for the network's own pretrained weights.
DEFAULT_WEIGHTS = "DEFAULT"

_ENCODERS: dict[str, type[FeatureEncoder]] = {}

E = TypeVar("E", bound=type[FeatureEncoder])


def register_encoder(name: str) -> Callable[[E], E]:
    """Class decorator: make the encoder class buildable as ``build_encoder(name)``."""

    def decorate(cls: E) -> E:
        if name in _ENCODERS and _ENCODERS[name] is not cls:
            raise ValueError(f"an encoder named {name!r} is already registered ({_ENCODERS[name].__name__})")
        _ENCODERS[name] = cls
        return cls

    return decorate


def available_encoders() -> tuple[str, ...]:
    """Names accepted by :func:`build_encoder`, in registration order."""
    return tuple(_ENCODERS)


def encoder_options(name: str) -> dict[str, Any]:
    """The options ``build_encoder(name, **options)`` accepts, with their defaults (``{}`` for none):
    ``{"pooling": "max"}`` for the VGG-19s of :mod:`.vgg19_caffe`.

    Raises:
        ValueError: unknown ``name``.
    """
    if name not in _ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; available: {', '.join(_ENCODERS)}")
    params = inspect.signature(_ENCODERS[name].__init__).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }


def build_encoder(
    name: str,
    *,
    weights: str | os.PathLike[str] | None = DEFAULT_WEIGHTS,
    progress: bool = False,
    **options: Any,
) -> FeatureEncoder:
    """Build a frozen encoder (on the CPU, in eval mode).

    Args:
        name: one of :func:`available_encoders`.
        weights: ``"DEFAULT"`` for the network's pretrained weights (from an installed package or the
            torch hub cache; see each network's module), a path to a weights file, or ``None`` for a
            randomly initialised network — the only way to get one.
        progress: show a progress bar if weights have to be downloaded.
        options: network options, e.g. ``pooling="avg"`` for the VGG-19s of :mod:`.vgg19_caffe`.

    Raises:
        ValueError: unknown ``name`` or option.
        WeightsError: weights missing, unreadable, or not matching the network; the message says how to
            get them.
    """
    if name not in _ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; available: {', '.join(_ENCODERS)}")
    try:
        encoder = _ENCODERS[name](**options)
    except TypeError as e:
        raise ValueError(f"encoder {name!r} does not take the options {sorted(options)}: {e}") from e
    if weights is None:
        return encoder
    if isinstance(weights, str) and weights == DEFAULT_WEIGHTS:
        encoder.load_pretrained(progress=progress)
    else:
        encoder.load_weights_file(weights)
    return encoder
