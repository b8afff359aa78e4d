"""``--device`` strings, shared by ``adain stylize`` and ``adain train``."""

from __future__ import annotations

import pytest
import torch

from adain.devices import resolve_device


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a device: 'gpu9'"):
        resolve_device("gpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")
