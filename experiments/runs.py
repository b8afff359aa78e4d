"""What every experiment script shares: run folders, manifests, atomic JSON, figures, configs with a schema.

* :func:`load_toml` reads a config file (``tomllib``, or ``tomli`` on Python 3.10); :func:`check_keys`
  and :func:`style_loss_spec` validate it, every error a :class:`ConfigError` naming the file and the key.
* :func:`resolve` makes a config path absolute (relative paths resolve against the repository root).
* :func:`run_folder` creates an output folder and its sub-folders.
* :func:`write_json` writes JSON atomically (temporary file, rename).
* :func:`manifest` is the provenance every run records (script, argv, versions, threads, git commit).
* :func:`save_figure` writes a matplotlib figure as PNG and PDF and closes it.

One style-loss schema for every config: a ``style_loss`` table, the :mod:`mmd` spec, e.g.::

    [methods.mmd_gaussian]
    style_loss = { name = "mmd", kernel = { name = "gaussian", sigma = "median" } }
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mmd

__all__ = [
    "REPO_ROOT",
    "ConfigError",
    "check_keys",
    "file_sha256",
    "git_commit",
    "jsonable",
    "load_toml",
    "manifest",
    "resolve",
    "run_folder",
    "save_figure",
    "style_loss_spec",
    "write_json",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ConfigError(ValueError):
    """A config file is unreadable or has a missing, unknown or invalid key; the message names both."""


def load_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML file. Raises :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the tomli dependency (pyproject.toml)
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def check_keys(table: Mapping[str, Any], known: Iterable[str], where: str, name: str) -> None:
    """Raise :class:`ConfigError` if ``table`` (called ``name`` in messages) has keys outside ``known``."""
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} in {name}; known: {sorted(known)}")


def style_loss_spec(value: Any, where: str, key: str) -> dict[str, Any]:
    """The canonical :mod:`mmd` spec of a ``style_loss`` table (or a bare loss name).

    Raises:
        ConfigError: not a table, unknown loss or kernel, bad parameters (naming file and key).
    """
    if not isinstance(value, (str, Mapping)):
        raise ConfigError(f"{where}: key '{key}' must be a style-loss table, e.g. {{ name = \"gram\" }}")
    try:
        return mmd.StyleLossSpec.from_dict(value).to_dict()
    except ValueError as exc:
        raise ConfigError(f"{where}: key '{key}': {exc}") from None


def resolve(path: str | Path) -> Path:
    """``path`` with ``~`` expanded; relative paths are taken from the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def run_folder(path: Path, *subfolders: str) -> Path:
    """Create ``path`` and ``path/<sub>`` for each of ``subfolders``; returns ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    for sub in subfolders:
        (path / sub).mkdir(exist_ok=True)
    return path


def jsonable(value: Any) -> Any:
    """Plain JSON data: dicts with str keys, lists, str, numbers, bools, None (Paths as str, others repr)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (a temporary file beside ``path``, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(jsonable(data), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def manifest(script: str, **extra: Any) -> dict[str, Any]:
    """Provenance of a run: script, argv, Python/torch versions, platform, threads, git commit, ``extra``."""
    import torch

    return {
        "script": script,
        "argv": sys.argv,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        **extra,
    }


def save_figure(
    fig: Any, stem: Path, dpi: int = 120, formats: tuple[str, ...] = ("png", "pdf")
) -> list[Path]:
    """Save a matplotlib figure as ``<stem>.png`` and ``<stem>.pdf`` and close it; returns the paths."""
    import matplotlib.pyplot as plt

    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in formats]
    for p in paths:
        fig.savefig(p, dpi=dpi)
    plt.close(fig)
    return paths
