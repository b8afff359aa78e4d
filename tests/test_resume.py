"""Resumable runs (experiments.resume): an interrupted optimize/compare run continued with --resume gives
the files of an uninterrupted run; finished outputs are not made again; a changed config is refused."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import experiments.optimize as optimize_module
from experiments.compare import main as compare_main
from experiments.optimize import main as optimize_main
from experiments.resume import (
    RECORDS,
    RunFolderError,
    differences,
    prepare,
    read_record,
    seed_from_snapshot,
    sigterm_as_interrupt,
    snapshot,
)

TIMING = {"seconds"}  # the columns that measure time, not results


def _config(tmp_path: Path, paper_images, iterations: int = 2) -> Path:
    """Two seeds × (one pair + one texture) × two methods: 8 optimisations on MobileNetV2 at 32 px."""
    text = f"""seed = 0
seeds = [0, 1]
[encoder]
name = "mobilenet_v2"
[images]
root = "{paper_images.content.parent}"
size = 32
pairs = [["content/chicago.jpg", "style/asheville.jpg"]]
textures = ["style/brushstrokes.jpg"]
[optimize]
content_layer = "s8"
style_layers = {{ s2 = 0.5, s4 = 0.5 }}
iterations = {iterations}
init_jitter = 0.02
[texture]
init = "noise"
[evaluation]
encoder = "mobilenet_v2"
style_layers = {{ s4 = 0.5, s8 = 0.5 }}
content_layer = "s16"
label = "mobilenet_v2_deep"
[methods.gram]
style_loss = {{ name = "gram" }}
[methods.meanstd]
style_loss = {{ name = "meanstd" }}
"""
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


OUTPUTS = 8


class Counting:
    """Wraps ``optimize_image``: counts calls and raises KeyboardInterrupt on call ``stop_at``."""

    def __init__(self, original: Any, stop_at: int | None = None) -> None:
        self.original, self.stop_at, self.calls = original, stop_at, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.original(*args, **kwargs)


def _count(monkeypatch, stop_at: int | None = None) -> Counting:
    counter = Counting(optimize_module.optimize_image, stop_at)
    monkeypatch.setattr(optimize_module, "optimize_image", counter)
    return counter


def _records(run: Path) -> list[Path]:
    return sorted((run / RECORDS).rglob("*.json"))


def _csv_rows(path: Path, drop: frozenset[str] | set[str] = frozenset()) -> list[dict[str, str]]:
    with open(path) as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


def _without(rows: list[dict[str, Any]], drop: set[str]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


@pytest.mark.slow
def test_interrupted_compare_resumes_to_the_files_of_an_uninterrupted_run(
    tmp_path, paper_images, mobilenet_weights, monkeypatch, capsys
) -> None:
    config = _config(tmp_path, paper_images)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert compare_main(["--config", str(config), "--output", str(whole)]) == 0

    counter = _count(monkeypatch, stop_at=4)  # outputs 1-3 finish, the 4th is interrupted
    assert compare_main(["--config", str(config), "--output", str(parts)]) == 130
    err = capsys.readouterr().err
    assert "3 of 8 outputs are recorded" in err and str(parts) in err and "--resume" in err
    assert len(_records(parts)) == 3 and not (parts / "metrics.csv").exists()
    first = {p: json.loads(p.read_text())["row"]["seconds"] for p in _records(parts)}
    _records(parts)[0].unlink()  # as if the output's record were never written: it must be redone

    counter = _count(monkeypatch)
    assert compare_main(["--config", str(config), "--output", str(parts), "--resume"]) == 0
    assert counter.calls == OUTPUTS - 2  # the two finished outputs were not optimised again

    images = sorted(p.relative_to(whole) for p in (whole / "images").rglob("*.png"))
    assert len(images) == OUTPUTS
    assert images == sorted(p.relative_to(parts) for p in (parts / "images").rglob("*.png"))
    for image in images:
        assert (whole / image).read_bytes() == (parts / image).read_bytes(), image
    assert _csv_rows(whole / "metrics.csv", TIMING) == _csv_rows(parts / "metrics.csv", TIMING)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (whole, parts)]
    assert _without(metrics[0], TIMING) == _without(metrics[1], TIMING)
    for name in ("history.json", "evaluation.json", "summary.json"):
        assert json.loads((whole / name).read_text()) == json.loads((parts / name).read_text()), name
    for name in ("evaluation.csv", "summary.csv"):
        assert (whole / name).read_text() == (parts / name).read_text(), name
    # timing columns keep the seconds measured when each output was made
    manifest = json.loads((parts / "manifest.json").read_text())
    for path, seconds in list(first.items())[1:]:
        key = f"{path.parent.name}/{path.stem}"
        assert manifest["timings_s"][key] == seconds
        assert next(m for m in metrics[1] if f"{m['run']}/{m['method']}" == key)["seconds"] == seconds
    sittings = manifest["sittings"]
    assert [s["interrupted"] for s in sittings] == [True, False] and [s["made"] for s in sittings] == [3, 6]
    assert "evaluation_s" in sittings[1]
    assert manifest["timings_s"]["total"] == pytest.approx(sum(s["seconds"] for s in sittings), abs=1e-3)


@pytest.mark.slow
def test_resume_refuses_a_changed_config_and_an_existing_folder_needs_resume_or_force(
    tmp_path, paper_images, mobilenet_weights, monkeypatch, capsys
) -> None:
    config = _config(tmp_path, paper_images, iterations=1)
    run = tmp_path / "run"
    argv = ["--config", str(config), "--output", str(run)]
    assert optimize_main([*argv, "--resume"]) == 0  # nothing to resume: the run starts, and says so
    assert f"{run} holds no earlier sitting" in capsys.readouterr().out
    metrics = (run / "metrics.csv").read_text()

    counter = _count(monkeypatch)
    assert optimize_main(argv) == 2  # no silent overwrite
    err = capsys.readouterr().err
    assert str(run) in err and "--resume" in err and "--force" in err

    assert optimize_main([*argv, "--resume", "--iterations", "2"]) == 2  # a different experiment
    err = capsys.readouterr().err
    assert str(run) in err and "transfer.iterations" in err and "texture.iterations" in err
    config.write_text(config.read_text().replace('name = "meanstd"', 'name = "mmd"'))
    assert optimize_main([*argv, "--resume"]) == 2
    assert "methods.meanstd.name" in capsys.readouterr().err
    config.write_text(config.read_text().replace('name = "mmd"', 'name = "meanstd"'))
    config.write_text("# a comment changes nothing\n" + config.read_text())
    assert counter.calls == 0 and (run / "metrics.csv").read_text() == metrics

    assert optimize_main([*argv, "--resume"]) == 0  # finished: nothing is optimised again
    assert counter.calls == 0 and (run / "metrics.csv").read_text() == metrics  # rebuilt, the same

    assert optimize_main([*argv, "--force"]) == 0  # starts over: every output made again
    assert counter.calls == OUTPUTS
    assert len(json.loads((run / "manifest.json").read_text())["sittings"]) == 1


def test_prepare_checks_the_folder(tmp_path) -> None:
    settings = {"seed": 0, "transfer": {"iterations": 5, "style_layers": {"s2": 1.0}}}
    run = tmp_path / "run"
    assert prepare(run, settings, resume=True) is False  # a missing folder starts a run, even with resume
    assert json.loads((run / "settings.json").read_text()) == settings
    (run / "config.toml").write_text("")
    with pytest.raises(RunFolderError, match="--resume"):
        prepare(run, settings)
    assert prepare(run, settings, resume=True) is True
    changed = {"seed": 0, "transfer": {"iterations": 6, "style_layers": {"s2": 1.0}}}
    with pytest.raises(RunFolderError, match=r"run: cannot resume.*transfer\.iterations \(saved 5, now 6\)"):
        prepare(run, changed, resume=True)
    assert prepare(run, changed, force=True) is False and (run / "settings.json").is_file()
    assert not (run / "config.toml").exists()
    with pytest.raises(RunFolderError, match="exclude each other"):
        prepare(run, settings, resume=True, force=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(RunFolderError, match="not a run folder"):
        prepare(other, settings, force=True)
    with pytest.raises(RunFolderError, match=r"no settings\.json"):
        prepare(other, settings, resume=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_differences_name_every_dotted_key() -> None:
    saved = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "gone": 0}
    now = {"a": 1.0, "b": {"c": [1, 3], "d": "x"}, "new": 1}
    assert differences(saved, now) == [
        "b.c (saved [1, 2], now [1, 3])",
        "gone (saved 0; not in the current config)",
        "new (not in the saved run; now 1)",
    ]
    assert differences(saved, saved) == []


def test_a_record_counts_only_with_its_image_and_a_bad_record_is_named(tmp_path) -> None:
    record = tmp_path / RECORDS / "job" / "gram.json"
    image = tmp_path / "gram.png"
    record.parent.mkdir(parents=True)
    record.write_text('{"row": {"seconds": 1.0}, "history": null}')
    assert read_record(tmp_path, "job", "gram", image) is None  # no image: the output is redone
    image.write_bytes(b"png")
    assert read_record(tmp_path, "job", "gram", image) == {"row": {"seconds": 1.0}, "history": None}
    record.write_text('{"row": ')
    with pytest.raises(RunFolderError, match=re.escape(str(record))):
        read_record(tmp_path, "job", "gram", image)


def test_sigterm_becomes_a_keyboard_interrupt_inside_only() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.slow
def test_results_note_continues_over_sittings(
    tmp_path, paper_images, mobilenet_weights, monkeypatch, capsys
) -> None:
    import experiments.results_note as note_module

    config = _config(tmp_path, paper_images, iterations=1)
    monkeypatch.setattr(note_module, "RUNS", (("kernels", str(config), "a tiny comparison"),))
    note = tmp_path / "notes" / "results.md"
    note.parent.mkdir()
    argv = ["--runs", str(tmp_path / "runs"), "--output", str(note)]
    _count(monkeypatch, stop_at=5)
    assert note_module.main(argv) == 130  # first sitting: 4 outputs made, then Ctrl-C / SIGTERM
    err = capsys.readouterr().err
    assert "4 of 8 outputs are recorded" in err and "--resume" in err and not note.exists()
    assert note_module.main(argv) == 2  # an existing run folder needs --resume (or --force)
    assert "--resume" in capsys.readouterr().err
    # across machines: snapshot the run, lose runs/ (a fresh checkout), resume from the snapshot
    snapshots = tmp_path / "snapshots"
    empty = [
        "--runs",
        str(tmp_path / "none"),
        "--output",
        str(note),
        "--snapshot",
        "--snapshots",
        str(snapshots),
    ]
    assert note_module.main(empty) == 2  # nothing to snapshot: said, with what to do
    assert "no run folder" in capsys.readouterr().err and not snapshots.exists()
    assert note_module.main([*argv, "--snapshot", "--snapshots", str(snapshots)]) == 0
    assert "4 finished outputs" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "runs")
    argv += ["--snapshots", str(snapshots)]
    counter = _count(monkeypatch)
    stated_s: list[float] = []
    write_note = note_module.write_note

    def capture(*args: Any, **kwargs: Any) -> Path:
        stated_s.append(args[3])
        return write_note(*args, **kwargs)

    monkeypatch.setattr(note_module, "write_note", capture)
    assert note_module.main([*argv, "--resume"]) == 0
    assert counter.calls == OUTPUTS - 4
    assert f"from the snapshot {snapshots / 'kernels'}" in capsys.readouterr().out
    text = note.read_text()
    seconds, sittings = note_module.recorded_seconds(tmp_path / "runs" / "kernels")
    assert sittings == 2 and "the sum of 2 sittings" in text
    first = json.loads((tmp_path / "runs" / "kernels" / "sittings.json").read_text())[0]
    assert first["interrupted"] and first["seconds"] > 0 and seconds > first["seconds"]
    assert seconds <= stated_s[0] <= seconds + 10  # both sittings, plus writing the note
    found = re.search(r"runs included: ([0-9.]+) min wall time", text)
    assert found is not None
    stated = float(found.group(1))
    assert seconds / 60 - 0.05 <= stated <= seconds / 60 + 0.15  # the sittings' time (+ writing the note)


def _fake_run(folder: Path) -> None:
    """A run folder: the experiment, one sitting, output a (record + image), b (record, its image not yet
    written), c (an image whose record was never written: killed midway), aggregates and figures."""
    for name, text in (
        ("settings.json", '{"seed": 0}'),
        ("config.toml", "seed = 0\n"),
        ("sittings.json", "[]"),
    ):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    for rel, text in (
        ("records/job/a.json", '{"row": {}}'), ("images/job/a.png", "png a"),
        ("records/job/b.json", '{"row": {}}'), ("images/job/c.png", "png c"),
        ("summary.csv", "x"), ("figures/grid.png", "grid"),
    ):  # fmt: skip
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_snapshot_keeps_what_a_resume_needs_and_seeding_starts_only_a_missing_folder(tmp_path) -> None:
    run, target = tmp_path / "run", tmp_path / "snap" / "kernels"
    _fake_run(run)
    assert snapshot(run, target) == 1  # only a is finished (b has no image, c no record)
    expected = ["config.toml", "images/job/a.png", "records/job/a.json", "settings.json", "sittings.json"]
    assert sorted(_files(target)) == expected
    (run / "images" / "job" / "b.png").write_text("png b")
    assert snapshot(run, target) == 2  # the earlier snapshot is replaced whole
    assert "records/job/b.json" in _files(target) and sorted(p.name for p in target.parent.iterdir()) == [
        "kernels"
    ]

    fresh = tmp_path / "fresh" / "kernels"
    assert seed_from_snapshot(target, fresh)
    assert _files(fresh) == _files(target)
    (fresh / "records" / "job" / "new.json").write_text("{}")
    assert not seed_from_snapshot(target, fresh)  # a folder with files is newer: never touched
    assert (fresh / "records" / "job" / "new.json").is_file()
    assert not seed_from_snapshot(tmp_path / "nothing", tmp_path / "other")
    assert not (tmp_path / "other").exists()
    with pytest.raises(RunFolderError, match=re.escape(str(tmp_path / "snap"))):
        snapshot(tmp_path / "snap", tmp_path / "s2")  # not a run folder (no settings.json)
