"""Turning a ``--device`` string into a :class:`torch.device`."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(text: str) -> torch.device:
    """``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …

    Raises:
        ValueError: not a device name, or CUDA asked for where there is none; the message says what to use.
    """
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"not a device: {text!r} (use cpu, cuda, cuda:1, … or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {text}: CUDA is not available on this machine (use --device cpu or auto)")
    return device
