"""The default model against the perfect decoder (experiments.default_model_bound).

Tiny and fast: ``adain stylize`` is replaced by one that paints each pair a flat grey, the encoder by a
seeded random VGG-19 (2 L-BFGS iterations at 32 px), and the scorer by a script that scores each output by
its mean grey level (the fake scorer of tests/test_ablation_bound.py).
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import experiments.default_model_report as report
from adain.errors import AdainError, OutputError
from experiments import default_model
from experiments.default_model_bound import model_encoder, run_bound
from tests.test_ablation_bound import FAKE_SCORER, random_encoder_and_counted_inversions


def _images(folder: Path, prefix: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)).save(folder / f"{prefix}{i}.png")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """A default-model config over 3 held-out contents and 2 held-out styles, and a model file."""
    _images(tmp_path / "paper" / "content", "c", 3, 0)
    _images(tmp_path / "work" / "heldout_style", "s", 2, 1)
    (tmp_path / "scorer.py").write_text(FAKE_SCORER)
    model = tmp_path / "model.pth"
    torch.save({"config": {"encoder": "vgg19_caffe_normalised"}, "decoder": {}}, model)
    config = {
        "data": {"paper": str(tmp_path / "paper"), "work": str(tmp_path / "work")},
        "report": {"scorer": str(tmp_path / "scorer.py"), "context_padding": 4},
        "bound": {"pairs": 3, "size": 32, "iterations": 2, "cache": str(tmp_path / "cache")},
    }
    return config, model


@pytest.fixture
def calls(monkeypatch) -> dict[str, list[Any]]:
    """Flat-grey stylization per pair (recording its settings), a seeded random encoder, counted
    inversions."""
    seen: dict[str, list[Any]] = {"stylize": [], "invert": []}

    def stylize(model: Path, content: Path, style: Path, out: Path, rep: Any) -> None:
        seen["stylize"].append((content.name, style.name, rep["content_size"], rep["context_padding"]))
        out.mkdir(parents=True, exist_ok=True)
        grey = 30 + 50 * int(content.stem[1:]) + 20 * int(style.stem[1:])
        Image.new("RGB", (40, 32), (grey,) * 3).save(out / f"{content.stem}_stylized_{style.stem}.png")

    monkeypatch.setattr(report, "_stylize", stylize)
    random_encoder_and_counted_inversions(monkeypatch, seen)
    return seen


def _grey(path: Path) -> float:
    return float(np.asarray(Image.open(path).convert("RGB"), dtype=np.float64).mean() / 255)


def test_bound_scores_both_methods_on_the_subset_and_reuses_inversions(tmp_path, setup, calls):
    config, model = setup
    summary = run_bound(config, model, tmp_path / "out", command="bound test")
    out = summary.parent
    rows = _csv(out / "bound_scores.csv")
    # the Gatys subset's order: content i with style i mod 2
    assert [(r["content"], r["style"]) for r in rows] == [("c0", "s0"), ("c1", "s1"), ("c2", "s0")]
    assert [c[2:] for c in calls["stylize"]] == [(32, 4)] * 3  # at [bound] size, with the report's padding
    assert len(calls["invert"]) == 3
    for r in rows:
        name = f"{r['content']}_stylized_{r['style']}.png"
        assert float(r["model_style_ratio"]) == pytest.approx(_grey(out / "model" / name), abs=1e-3)
        assert float(r["perfect_style_ratio"]) == pytest.approx(_grey(out / "perfect" / name), abs=1e-3)
        assert float(r["model_target_error"]) > 0
        assert int(r["iterations"]) <= 2 and r["stop_reason"] in ("converged", "max_iterations")
        assert min(Image.open(out / "perfect" / name).size) == 32
    (style, content) = _csv(out / "summary.csv")
    model_style = [float(r["model_style_ratio"]) for r in rows]
    perfect_style = [float(r["perfect_style_ratio"]) for r in rows]
    assert float(style["model_median"]) == pytest.approx(statistics.median(model_style), abs=1e-3)
    assert float(style["perfect_median"]) == pytest.approx(statistics.median(perfect_style), abs=1e-3)
    difference = statistics.mean(m - p for m, p in zip(model_style, perfect_style, strict=True))
    assert float(style["model_minus_perfect_mean"]) == pytest.approx(difference, abs=2e-3)
    assert float(style["low"]) < difference < float(style["high"])
    assert content["metric"] == "content_ratio"
    assert Image.open(out / "bound.png").size == (4 * 128, 3 * 128)
    text = summary.read_text()
    assert "bound test" in text and style["perfect_median"] in text

    with pytest.raises(OutputError, match="already holds a bound"):
        run_bound(config, model, out)
    run_bound(config, model, out, overwrite=True)
    assert len(calls["invert"]) == 3  # the cached inversions are reused
    config["bound"]["iterations"] = 3
    run_bound(config, model, tmp_path / "out3")
    assert len(calls["invert"]) == 6  # another setting inverts again


def test_model_without_an_encoder_name_is_refused(tmp_path, setup):
    config, _ = setup
    raw = tmp_path / "raw.pth"
    torch.save({"0.weight": torch.zeros(1)}, raw)
    with pytest.raises(AdainError, match=r"raw\.pth: no encoder name"):
        model_encoder(raw)
    with pytest.raises(AdainError, match="no encoder name"):
        run_bound(config, raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("pairs", 0, "pairs must be a positive integer"), ("size", True, "size must be a positive integer"),
     ("iterations", 2.5, "iterations must be"), ("pair", 2, "unknown keys \\['pair'\\]")],
)  # fmt: skip
def test_bad_bound_settings_are_named(tmp_path, setup, key, value, message):
    config, model = setup
    config["bound"][key] = value
    with pytest.raises(AdainError, match=message):
        run_bound(config, model, tmp_path / "out")


def test_cli_bound_needs_a_model_and_reports_errors(tmp_path, setup, monkeypatch, capsys):
    config, model = setup
    monkeypatch.setattr(default_model, "load_config", lambda path: config)
    with pytest.raises(SystemExit, match="bound needs --model FILE"):
        default_model.main(["bound"])
    config["bound"]["pairs"] = 7
    with pytest.raises(SystemExit, match=r"bound: \[bound\] pairs is 7, more than the 3 × 2"):
        default_model.main(["bound", "--model", str(model), "--output", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
