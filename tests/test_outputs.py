"""Output planning of ``adain stylize`` (:mod:`adain.outputs`) and its up-front folder check."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import pytest

from adain.errors import OutputError
from adain.outputs import check_output_folder, plan_outputs, unique_labels


def test_labels_are_stems_unless_they_clash() -> None:
    r = Path("/s")
    paths = [r / "x.png", r / "x.jpg", r / "y.jpg", r / "a/art.jpg", r / "b/art.jpg", r / "x.png.jpg"]
    labels = unique_labels(paths, r)
    assert labels[r / "y.jpg"] == "y"
    assert labels[r / "x.jpg"] == "x.jpg"
    # "x.png" (a name) would clash with the stem of "x.png.jpg": both move on to the next rule
    assert len(set(labels.values())) == len(paths)
    assert labels[r / "a/art.jpg"] == "a-art.jpg" and labels[r / "b/art.jpg"] == "b-art.jpg"
    assert unique_labels([Path("/p/q.jpg"), Path("/o/q.jpg")]) == {
        Path("/o/q.jpg"): "q.jpg",
        Path("/p/q.jpg"): "q.jpg~2",
    }


def test_plan_keeps_sub_folders_and_the_flat_simple_case() -> None:
    out, c, s = Path("/out"), Path("/c"), Path("/s")
    contents = [c / "photo.jpg", c / "a/photo.jpg", c / "b/photo.jpg"]
    plan = plan_outputs(out, contents, c, [[s / "art.png"], [s / "b.jpg"]], s, "jpg")
    assert plan[(c / "photo.jpg", (s / "art.png",))] == out / "photo_stylized_art.jpg"
    assert plan[(c / "a/photo.jpg", (s / "art.png",))] == out / "a/photo_stylized_art.jpg"
    assert len(set(plan.values())) == 6
    one = plan_outputs(out, [Path("/x/c.jpg")], None, [[s / "a.jpg", s / "b.jpg"]], None, ".PNG")
    assert list(one.values()) == [out / "c_stylized_a+b.png"]


def test_crafted_names_that_still_collide_are_refused() -> None:
    out = Path("/out")
    contents = [Path("/c/a_stylized_b.jpg"), Path("/c/a.jpg")]
    styles = [[Path("/s/c.jpg")], [Path("/s/b_stylized_c.jpg")]]
    with pytest.raises(OutputError, match=r"same file: /out/a_stylized_b_stylized_c.jpg"):
        plan_outputs(out, contents, Path("/c"), styles, Path("/s"), "jpg")


def test_output_folder_checks(tmp_path, monkeypatch) -> None:
    check_output_folder(tmp_path)
    check_output_folder(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []  # nothing created
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "f")
    with pytest.raises(OutputError, match=r"cannot be created: .*f is a file"):
        check_output_folder(tmp_path / "f" / "sub")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(OutputError, match=r"is not writable .a read-only file system"):
        check_output_folder(tmp_path)
