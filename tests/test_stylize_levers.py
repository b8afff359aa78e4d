"""experiments.stylize_levers: colour-to-style and second-pass outputs of a report, scored like the report."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from PIL import Image

from adain.io import load_image, save_image
from experiments import stylize_levers


def _setup(tmp_path: Path, write_random_images, shared_dir: Path) -> tuple[list[str], Path]:
    from adain.decoders import build_decoder
    from adain.modelfile import save_model_file

    write_random_images(tmp_path / "paper" / "content", 2, 5)
    write_random_images(tmp_path / "work" / "heldout_style", 2, 6)
    g = torch.Generator().manual_seed(0)
    for c in ("img0", "img1"):
        for s in ("img0", "img1"):
            save_image(
                torch.rand(3, 40, 48, generator=g), tmp_path / "report" / "adain" / f"{c}_stylized_{s}.png"
            )
    torch.manual_seed(0)
    model = save_model_file(tmp_path / "m.pth", build_decoder("mobilenet_v2"), encoder_name="mobilenet_v2")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[data]\npaper = "{tmp_path / "paper"}"\nwork = "{tmp_path / "work"}"\n'
        '[[stage]]\nname = "a"\nargs = []\niterations = 1\n'
        f"[report]\ncontent_size = 40\nstyle_size = 48\ncontext_padding = 4\n"
        f'scorer = "{shared_dir / "tools" / "score_stylization.py"}"\n'
    )
    argv = ["--report", str(tmp_path / "report"), "--model", str(model), "--config", str(config)]
    return [*argv, "--output", str(tmp_path / "levers")], model


@pytest.mark.slow
def test_levers_write_scored_report_like_folders(
    tmp_path: Path, write_random_images, shared_dir: Path, capsys
) -> None:
    from adain.ops.color import match_color

    argv, _ = _setup(tmp_path, write_random_images, shared_dir)
    assert stylize_levers.main(argv) == 0
    for lever in stylize_levers.LEVERS:
        folder = tmp_path / "levers" / lever
        names = sorted(p.name for p in (folder / "adain").iterdir())
        assert names == sorted(p.name for p in (tmp_path / "report" / "adain").iterdir()), lever
        scores = list(csv.DictReader(open(folder / "scores.csv", newline="")))
        assert len(scores) == 4 and all(float(r["style_ratio"]) >= 0 for r in scores)
        taps = list(csv.DictReader(open(folder / "taps.csv", newline="")))
        assert {(r["content"], r["style"]) for r in taps} == {(r["content"], r["style"]) for r in scores}
    # colour_to_style: the output recoloured to its own style's colour statistics
    out = tmp_path / "report" / "adain" / "img1_stylized_img0.png"
    style = load_image(next((tmp_path / "work" / "heldout_style").glob("img0.*")), 48)
    expected = match_color(load_image(out), style)
    got = load_image(tmp_path / "levers" / "colour_to_style" / "adain" / out.name)
    assert (got - expected).abs().max() <= 1 / 255 + 1e-6
    # second_pass: the model's stylization of the output, at the report's size (shorter side 40)
    assert load_image(tmp_path / "levers" / "second_pass" / "adain" / out.name).shape[-2:] == (40, 48)
    assert not [p for p in (tmp_path / "levers" / "second_pass").iterdir() if p.name.startswith("tmp")]
    with Image.open(tmp_path / "levers" / "levers.png") as sheet:  # 4 pairs × (content, style, 3 outputs)
        assert sheet.size == (5 * stylize_levers.SHEET_CELL, 4 * stylize_levers.SHEET_CELL)
    # no silent overwrite
    assert stylize_levers.main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_a_report_without_outputs_is_an_error(
    tmp_path: Path, write_random_images, shared_dir: Path, capsys
) -> None:
    argv, _ = _setup(tmp_path, write_random_images, shared_dir)
    for p in (tmp_path / "report" / "adain").iterdir():
        p.unlink()
    assert stylize_levers.main(argv) == 1
    assert "run report first" in capsys.readouterr().err and not (tmp_path / "levers").exists()


@pytest.mark.parametrize("style", ["picasso"])
def test_a_style_missing_from_the_held_out_folder_is_named(
    tmp_path: Path, write_random_images, shared_dir: Path, capsys, style: str
) -> None:
    argv, _ = _setup(tmp_path, write_random_images, shared_dir)
    save_image(torch.rand(3, 8, 8), tmp_path / "report" / "adain" / f"img0_stylized_{style}.png")
    assert stylize_levers.main(argv) == 1
    assert style in capsys.readouterr().err and not (tmp_path / "levers").exists()
