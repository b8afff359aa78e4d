"""Exceptions raised by :mod:`adain`. Every message names the file (where there is one) and the fix."""

from __future__ import annotations

__all__ = [
    "AdainError",
    "CheckpointError",
    "ImageError",
    "ImageTooSmallError",
    "LayerNormaliserError",
    "OutputError",
    "WeightsError",
]


class AdainError(Exception):
    """Base class of every error this package raises on purpose (CLIs print these without a traceback)."""


class ImageError(AdainError, ValueError):
    """An image file is missing, unreadable, truncated, of an unsupported kind or too large."""


class ImageTooSmallError(ImageError):
    """An image is too small for the deepest feature layer requested from an encoder."""


class WeightsError(AdainError, FileNotFoundError):
    """Pretrained weights are missing, unreadable, or do not match the network."""


class CheckpointError(AdainError, ValueError):
    """A model file or training checkpoint is unreadable or does not match what it is loaded into."""


class OutputError(AdainError):
    """Outputs cannot be written as asked: the output folder is a file or read-only, or two results (or an
    existing file) would share one path."""


class LayerNormaliserError(AdainError, ValueError):
    """A style layer's normaliser (its loss at the starting decoder) is not positive and finite, so the
    layer's term cannot be divided by it."""
