"""experiments.style_taps_figure: per-tap summaries side by side."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from experiments import style_taps_figure
from experiments.style_ratio_taps import summarise


def _summary(path: Path, scale: float, taps: tuple[str, ...] = ("s2", "s4", "s8", "s16")) -> Path:
    rows = [
        {
            "style_ratio": scale,
            **{f"{t}_{k}": scale * (i + 1) for t in taps for k in (
                "ratio", "out_mean", "out_std", "sigma_out", "sigma_style", "sigma_content")},
        }
        for i in range(3)
    ]  # fmt: skip
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["metric", "median", "low", "high", "n"])
        writer.writeheader()
        writer.writerows(summarise(rows, resamples=50))
    return path


def test_figure_of_two_summaries(tmp_path: Path, capsys) -> None:
    a, b = _summary(tmp_path / "a.csv", 0.5), _summary(tmp_path / "b.csv", 0.8)
    out = tmp_path / "fig" / "taps.png"
    argv = [f"model={a}", f"lever={b}", "--output", str(out)]
    assert style_taps_figure.main(argv) == 0
    with Image.open(out) as im:
        assert im.size == (900, 340)
    assert style_taps_figure.read_summary(a)["s2_ratio"][0] == 1.0  # median of 0.5, 1.0, 1.5
    assert style_taps_figure.main(argv) == 1 and "--overwrite" in capsys.readouterr().err


def test_bad_inputs_are_named(tmp_path: Path, capsys) -> None:
    not_taps = tmp_path / "scores.csv"
    not_taps.write_text("metric,median,low,high,n\nstyle_ratio,0.5,0.4,0.6,3\n")
    out = tmp_path / "f.png"
    assert style_taps_figure.main([f"x={not_taps}", "--output", str(out)]) == 1
    assert "scores.csv" in capsys.readouterr().err and not out.exists()
    assert style_taps_figure.main([str(not_taps), "--output", str(out)]) == 1
    assert "LABEL=CSV" in capsys.readouterr().err
    a, vgg = _summary(tmp_path / "a.csv", 0.5), _summary(tmp_path / "v.csv", 0.5, ("relu1_1", "relu2_1"))
    assert style_taps_figure.main([f"a={a}", f"v={vgg}", "--output", str(out)]) == 1
    assert "relu1_1" in capsys.readouterr().err and not out.exists()
