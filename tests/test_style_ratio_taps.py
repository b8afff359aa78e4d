"""The held-out style ratio split by tap and statistic: adain.evaluation.statistics_distance and
experiments.style_ratio_taps (checked against ../shared/tools/score_stylization.py itself)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adain.evaluation.statistics_distance import channel_mean_std, statistics_distance
from adain.io import save_image
from experiments import style_ratio_taps


def _scorer_formula(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The scorer's per-tap terms, written as it writes them (mse_loss of channel means and stds)."""
    mean = F.mse_loss(x.mean((2, 3)), y.mean((2, 3))).item()
    std = F.mse_loss(x.std((2, 3)), y.std((2, 3))).item()
    return mean, std


def test_statistics_distance_is_the_mse_of_channel_means_and_stds() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 7, 6, generator=g, dtype=torch.float64) * 2 + 1
    y = torch.randn(1, 5, 4, 9, generator=g, dtype=torch.float64)  # other size, broadcast over the batch
    d = statistics_distance(x, y)
    assert d.shape == (3, 2) and d.dtype == torch.float64
    for b in range(3):
        mean, std = _scorer_formula(x[b : b + 1], y)
        assert d[b].tolist() == pytest.approx([mean, std], rel=1e-12)
    # the same statistics in another spatial order: distance 0; a shift moves the mean part only
    shuffled = x.flatten(2)[..., torch.randperm(42, generator=g)].view_as(x)
    torch.testing.assert_close(statistics_distance(x, shuffled), torch.zeros(3, 2, dtype=torch.float64))
    shifted = statistics_distance(x + 0.5, x)
    torch.testing.assert_close(shifted[:, 0], torch.full((3,), 0.25, dtype=torch.float64))
    torch.testing.assert_close(shifted[:, 1], torch.zeros(3, dtype=torch.float64))


def test_statistics_distance_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(statistics_distance, (x, y))


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (torch.zeros(2, 3, 4), torch.zeros(1, 3, 4, 4), r"\[B, C, H, W\]"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(1, 4, 4, 4), "statistics_distance needs"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4), "statistics_distance needs"),
        (torch.zeros(2, 3, 1, 1), torch.zeros(1, 3, 4, 4), ">= 2 positions"),
    ],
)
def test_statistics_distance_rejects_bad_shapes(x: torch.Tensor, y: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        statistics_distance(x, y)


def test_channel_mean_std_per_channel() -> None:
    x = torch.arange(24, dtype=torch.float32).view(1, 2, 3, 4)
    mean, std = channel_mean_std(x)
    torch.testing.assert_close(mean, torch.tensor([[5.5, 17.5]], dtype=torch.float64))
    torch.testing.assert_close(std, x.flatten(2).double().std(-1))


def _smooth_image(g: torch.Generator, h: int, w: int) -> torch.Tensor:
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=g)
    fine = torch.rand(1, 3, h, w, generator=g)
    return (0.8 * F.interpolate(coarse, size=(h, w), mode="bilinear") + 0.2 * fine)[0].clamp(0, 1)


def test_taps_add_up_to_the_scorers_style_ratio(tmp_path: Path, shared_dir: Path, capsys) -> None:
    """Same-size PNGs (no resampling): the per-tap sums give the scorer's printed ratio; the CSVs, the
    summary, and no silent overwrite."""
    g = torch.Generator().manual_seed(0)
    h, w = 72, 56
    contents = {f"c{i}": _smooth_image(g, h, w) for i in range(2)}
    styles = {f"s{i}": _smooth_image(g, h, w) ** (2 + i) for i in range(2)}  # different statistics
    for folder, images in (("content", contents), ("style", styles)):
        for name, image in images.items():
            save_image(image, tmp_path / folder / f"{name}.png")
    for (c, ci), (s, si) in ((a, b) for a in contents.items() for b in styles.items()):
        save_image(0.6 * ci + 0.4 * si, tmp_path / "out" / f"{c}_stylized_{s}.png")
    folders = [str(tmp_path / f) for f in ("out", "content", "style")]
    scorer = shared_dir / "tools" / "score_stylization.py"
    done = subprocess.run(
        [
            sys.executable,
            str(scorer),
            "--outputs",
            folders[0],
            "--content",
            folders[1],
            "--style",
            folders[2],
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    printed = {
        m.group(1): float(m.group(2)) for m in re.finditer(r"(\S+)\.png: style ratio (\S+),", done.stdout)
    }
    assert len(printed) == 4

    out_csv = tmp_path / "taps" / "taps.csv"
    argv = ["--outputs", folders[0], "--content", folders[1], "--style", folders[2], "--csv", str(out_csv)]
    assert style_ratio_taps.main(argv) == 0
    rows = list(csv.DictReader(open(out_csv, newline="")))
    assert len(rows) == 4
    for row in rows:
        ratio = float(row["style_ratio"])
        assert ratio == pytest.approx(
            printed[f"{row['content']}_stylized_{row['style']}"], rel=1e-3, abs=1e-4
        )
        taps = style_ratio_taps.TAPS
        out_parts = [float(row[f"{t}_out_{p}"]) for t in taps for p in ("mean", "std")]
        content_parts = [float(row[f"{t}_content_{p}"]) for t in taps for p in ("mean", "std")]
        assert ratio == pytest.approx(sum(out_parts) / sum(content_parts), rel=1e-5)
        for t in taps:
            tap_ratio = (float(row[f"{t}_out_mean"]) + float(row[f"{t}_out_std"])) / (
                float(row[f"{t}_content_mean"]) + float(row[f"{t}_content_std"])
            )
            assert float(row[f"{t}_ratio"]) == pytest.approx(tap_ratio, rel=1e-5)
    for t in style_ratio_taps.TAPS:  # σ of an input follows that input, whichever pair it is in
        for key, column in (("style", f"{t}_sigma_style"), ("content", f"{t}_sigma_content")):
            for name in {r[key] for r in rows}:
                assert len({r[column] for r in rows if r[key] == name}) == 1, column
    summary = {
        r["metric"]: r for r in csv.DictReader(open(tmp_path / "taps" / "taps_summary.csv", newline=""))
    }
    shares = [float(summary[f"{t}_share_of_numerator"]["median"]) for t in style_ratio_taps.TAPS]
    assert all(0 < s < 1 for s in shares)
    assert float(summary["style_ratio"]["low"]) <= float(summary["style_ratio"]["median"])
    assert "s2_sigma_style" in summary and "4 outputs" in capsys.readouterr().out

    # another network's taps: the same measure in VGG-19's features (relu1_1 … relu4_1), its own columns
    vgg_csv = tmp_path / "taps" / "vgg.csv"
    assert style_ratio_taps.main([*argv[:-1], str(vgg_csv), "--encoder", "vgg19_caffe_normalised"]) == 0
    vgg = list(csv.DictReader(open(vgg_csv, newline="")))
    assert style_ratio_taps.taps_of(vgg) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    assert len(vgg) == 4 and "s2_ratio" not in vgg[0]
    assert {r["style_ratio"] for r in vgg}.isdisjoint({r["style_ratio"] for r in rows})
    assert style_ratio_taps.main([*argv[:-1], str(tmp_path / "x.csv"), "--encoder", "nope"]) == 1
    assert "nope" in capsys.readouterr().err

    out_csv.write_text("earlier")
    assert style_ratio_taps.main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err and out_csv.read_text() == "earlier"
    assert style_ratio_taps.main([*argv, "--overwrite"]) == 0


def test_an_output_without_its_inputs_is_named(tmp_path: Path, capsys) -> None:
    g = torch.Generator().manual_seed(2)
    for path in ("content/c.png", "style/s.png", "out/c_stylized_x.png"):
        save_image(_smooth_image(g, 32, 32), tmp_path / path)
    argv = [
        f"--{k}={tmp_path / v}" for k, v in (("outputs", "out"), ("content", "content"), ("style", "style"))
    ]
    assert style_ratio_taps.main([*argv, "--csv", str(tmp_path / "t.csv")]) == 1
    err = capsys.readouterr().err
    assert "c_stylized_x.png" in err and "'x'" in err and not (tmp_path / "t.csv").exists()
