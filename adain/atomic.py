"""Atomic file writes: a temporary file beside the target, fsync, rename; nothing half-written survives.

:func:`atomic_write` is the one writer behind :func:`adain.torchfiles.atomic_torch_save` (checkpoints and
model files) and :func:`adain.io.save_image` (images). Its guarantees:

* the target is either its previous content or the complete new content, whatever happens mid-write (an
  exception, a full disk, Ctrl-C, SIGTERM; a SIGKILL leaves at worst an orphaned temporary file);
* the temporary file is removed on every failure, ``KeyboardInterrupt`` included;
* the final file gets the mode an ordinary ``open(path, "w")`` would give it (``0o666`` minus the umask),
  not the ``0o600`` of :func:`tempfile.mkstemp`;
* orphaned temporary files of the same target left by killed writes (``.<name>.*.tmp``) are removed after
  the next successful write of that target. One writer per target path is assumed (as for any file).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "current_umask", "orphaned_temp_files"]

PathLike = str | os.PathLike[str]


def current_umask() -> int:
    """The process's umask, read without changing it where Linux exposes it (``/proc/self/status``).

    Elsewhere it falls back to setting and restoring it (``os.umask``), which is not thread-safe.
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def orphaned_temp_files(path: PathLike) -> list[Path]:
    """Temporary files :func:`atomic_write` may have left beside ``path`` (``.<name>.*.tmp``), sorted."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix = _temp_prefix(path)
    return sorted(
        p
        for p in path.parent.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(".tmp") and p.is_file()
    )


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None], *, fsync: bool = True) -> Path:
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, then rename it to ``path``.

    Args:
        path: the destination; parent folders are created.
        write: writes the whole content to the binary file object it is given.
        fsync: flush the data to disk before the rename (so a power cut cannot leave an empty file).

    Returns:
        ``path`` (expanded).

    Raises:
        Whatever ``write`` or the file system raises (``OSError`` for a full or read-only disk); the
        temporary file is removed first and ``path`` is left as it was.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    for orphan in orphaned_temp_files(path):
        with contextlib.suppress(OSError):
            orphan.unlink()
    return path
