"""Reading and writing PyTorch files safely: weights files, model files and training checkpoints.

One place for what every loader needs: ``torch.load(weights_only=True)`` with errors that name the file,
an atomic save (temporary file, fsync, rename) so that an interrupted write never leaves a broken file,
and a description of how a state dict differs from what a module expects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from .atomic import atomic_write
from .errors import AdainError

__all__ = ["atomic_torch_save", "listing", "safe_torch_load", "state_dict_problems"]

_MAX_LISTED = 5


def listing(items: list[str]) -> str:
    """``"a, b, c, … (12 in all)"``: the first few items of a list, for error messages."""
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", … ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def safe_torch_load(path: str | os.PathLike[str], what: str, error: type[AdainError]) -> object:
    """``torch.load(path, weights_only=True)`` onto the CPU, every failure an ``error`` naming the file.

    Args:
        path: the file.
        what: how messages call it (``"weights file"``, ``"model file"``, ``"checkpoint"``).
        error: the exception class to raise (a subclass of :class:`~adain.errors.AdainError`).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise error(f"{what} {path} does not exist")
    if path.is_dir():
        raise error(f"{what} {path} is a directory; pass the path of a .pth file")
    if path.stat().st_size == 0:
        raise error(f"{what} {path} is empty (an interrupted copy or download?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for bad files; all mean the same to the user
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise error(
            f"{what} {path} cannot be read with torch.load(weights_only=True): it is truncated, corrupt, "
            f"not a PyTorch file, or pickles objects other than tensors and plain data "
            f"({type(e).__name__}: {first_line})"
        ) from e


def atomic_torch_save(obj: object, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over ``path``.

    A crash or signal mid-write leaves the previous file (if any) intact; the file gets the umask's mode,
    and temporary files orphaned by killed earlier writes are removed (:func:`adain.atomic.atomic_write`).
    Parent folders are created.
    """
    return atomic_write(path, lambda fh: torch.save(obj, fh))


def state_dict_problems(expected: Mapping[str, Tensor], provided: Mapping[str, Tensor]) -> list[str]:
    """What keeps ``provided`` from loading strictly into a module whose state dict is ``expected``.

    Returns:
        Human-readable problems (missing keys, unexpected keys, wrong shapes); empty if it fits.
    """
    missing = [k for k in expected if k not in provided]
    unexpected = [k for k in provided if k not in expected]
    wrong = [
        f"{k} (expected {tuple(expected[k].shape)}, got {tuple(provided[k].shape)})"
        for k in expected
        if k in provided and provided[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {listing(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {listing(wrong)}")
    return problems
