"""Atomic writes (:mod:`adain.atomic`): images, model files and checkpoints are whole or absent."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
import torch
from PIL import Image

from adain.atomic import atomic_write, current_umask, orphaned_temp_files
from adain.errors import ImageError
from adain.io import load_image, save_image
from adain.torchfiles import atomic_torch_save


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_without_changing(umask_027) -> None:
    assert current_umask() == 0o027
    assert current_umask() == 0o027


def test_files_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask_027) -> None:
    model = atomic_torch_save({"w": torch.ones(2)}, tmp_path / "m.pth")
    image = save_image(torch.rand(3, 8, 8), tmp_path / "x.png")
    assert _mode(model) == 0o640 and _mode(image) == 0o640
    os.umask(0o002)
    assert _mode(atomic_write(tmp_path / "y.bin", lambda fh: fh.write(b"1"))) == 0o664


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")])
def test_interrupted_write_leaves_the_old_file_and_no_temp(tmp_path, exc) -> None:
    target = tmp_path / "checkpoint.pth"
    target.write_bytes(b"old")

    def half_then_fail(fh) -> None:
        fh.write(b"new but incomplete")
        raise exc

    with pytest.raises(type(exc)):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]


def test_orphans_of_killed_writes_are_removed_by_the_next_write(tmp_path) -> None:
    target = tmp_path / "checkpoint.pth"
    orphans = [tmp_path / ".checkpoint.pth.abc123.tmp", tmp_path / ".checkpoint.pth.zz.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a checkpoint")
    other = tmp_path / ".decoder_final.pth.q.tmp"  # another target's temp file is not touched
    other.write_bytes(b"x")
    assert orphaned_temp_files(target) == orphans
    atomic_torch_save({"w": torch.zeros(1)}, target)
    assert not any(p.exists() for p in orphans) and other.exists()
    assert torch.load(target, weights_only=True)["w"].tolist() == [0.0]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_save_image_never_leaves_a_partial_file(tmp_path, monkeypatch, exc) -> None:
    target = tmp_path / "out.png"
    original = Image.Image.save

    def partial(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 25)  # the 33-byte PNG of a write cut short
        raise exc(errno.ENOSPC, "No space left on device") if exc is OSError else exc()

    monkeypatch.setattr(Image.Image, "save", partial)
    if exc is OSError:
        with pytest.raises(ImageError, match=r"out.png: cannot write the image .No space left on device"):
            save_image(torch.rand(3, 8, 8), target)
    else:
        with pytest.raises(KeyboardInterrupt):
            save_image(torch.rand(3, 8, 8), target)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(Image.Image, "save", original)
    save_image(torch.rand(3, 8, 8), target)
    assert load_image(target).shape == (3, 8, 8)
