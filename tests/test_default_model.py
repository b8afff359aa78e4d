"""experiments.default_model: the held-out split and the snapshot/seeding of staged training."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import default_model


def _config(tmp_path: Path) -> dict:
    return {
        "data": {
            "training_data": str(tmp_path / "td"),
            "paper": str(tmp_path / "paper"),
            "work": str(tmp_path / "work"),
            "snapshots": str(tmp_path / "snapshots"),
            "held_out_styles": ["b"],
            "extra_style_folders": ["walls"],
        },
        "stage": [{"name": "s1", "args": [], "iterations": 1}],
        "report": {"content_size": 64, "style_size": 64},
    }


def test_prepare_holds_out_the_named_styles(tmp_path: Path, write_random_images) -> None:
    write_random_images(tmp_path / "td" / "content" / "walls", 2, 0)
    write_random_images(tmp_path / "td" / "content" / "photos", 3, 1)
    styles = tmp_path / "paper" / "style"
    write_random_images(styles, 3, 2)
    for i, name in enumerate("abc"):
        (styles / f"img{i}.png").rename(styles / f"{name}.png")
    work = default_model.prepare(_config(tmp_path))
    assert sorted(p.name for p in (work / "heldout_style").iterdir()) == ["b.png"]
    train_styles = sorted(p.name for p in (work / "style").iterdir())
    assert train_styles == ["a.png", "c.png", "walls__img0.png", "walls__img1.png"]
    assert len(list((work / "content").iterdir())) == 5
    assert all(p.resolve().is_file() for p in (work / "style").iterdir())
    with pytest.raises(SystemExit, match="held-out styles not found"):
        config = _config(tmp_path)
        config["data"]["held_out_styles"] = ["zzz"]
        default_model.prepare(config)
