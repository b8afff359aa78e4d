"""The results note generator: findings derived from the data (intervals, ties), image grids, no
hard-coded interpretation."""

from __future__ import annotations

import csv
import re

import pytest
from PIL import Image

from experiments.intervals import paired_difference
from experiments.results_note import MAX_SIDE, image_grid, same_method_lines, summary_table, write_note


def _rows(values: dict[str, list[float]], loss: str = "gram") -> list[dict[str, str]]:
    return [
        dict(encoder="e", run=f"p__q__seed{k}", pair="p__q", seed=str(k), style_weight="10.0", eval_loss=loss,
             output=name, layer="sum", value=str(v))
        for name, vs in values.items() for k, v in enumerate(vs)
    ]  # fmt: skip


def test_same_method_lines_are_computed_ties_and_differences() -> None:
    a, b, c = [1.0, 2.0, 3.0], [1.01, 1.98, 3.02], [1.5, 2.6, 3.4]
    lines = same_method_lines(_rows({"a": a, "b": b, "c": c}), "e", 10.0, ["a", "b", "c"])
    assert lines[0] == "- **a vs b**: indistinguishable under every evaluation row."
    diff = paired_difference(a, c)
    assert not diff.contains(0.0)
    assert f"a lower by {abs(diff.mean):.3g} [{diff.low:.3g}, {diff.high:.3g}]" in lines[1]
    assert lines[1].startswith("- **a vs c**: tie under 0 of 1 rows; differ under gram:")


def test_summary_table_bolds_only_clear_wins() -> None:
    summary = [
        dict(encoder="e", kind="transfer", style_weight="10.0", eval_loss="gram", output="a", mean="0.0533",
             half_width="0.01", n="3", verdict="tie"),
        dict(encoder="e", kind="transfer", style_weight="10.0", eval_loss="gram", output="b", mean="0.0535",
             half_width="0.01", n="3", verdict="tie"),
        dict(encoder="e", kind="transfer", style_weight="10.0", eval_loss="meanstd", output="a", mean="0.1",
             half_width="0.001", n="3", verdict="best"),
        dict(encoder="e", kind="transfer", style_weight="10.0", eval_loss="meanstd", output="b", mean="0.2",
             half_width="0.001", n="3", verdict=""),
    ]  # fmt: skip
    table = summary_table(summary, "e", "transfer", 10.0)
    assert "| gram | 0.0533 ± 0.01 (tie) | 0.0535 ± 0.01 (tie) |" in table
    assert "| meanstd | **0.1 ± 0.001** | 0.2 ± 0.001 |" in table
    assert table.count("**") == 2


def test_image_grid_downscales_every_tile(tmp_path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (600, 300), "red").save(big)
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 30), "blue").save(small)
    out = image_grid([("row", [("big", big), ("small", small)])], tmp_path / "g.png")
    with Image.open(out) as im:
        pixels = im.convert("RGB").load()
        width, height = im.size
    assert height <= MAX_SIDE + 40 and width <= 150 + 2 * (MAX_SIDE + 4)
    reds = sum(pixels[x, y] == (255, 0, 0) for x in range(width) for y in range(height))
    assert 0 < reds <= MAX_SIDE * MAX_SIDE // 2 + MAX_SIDE  # 600×300 → at most 128×64
    blues = sum(pixels[x, y] == (0, 0, 255) for x in range(width) for y in range(height))
    assert blues == 40 * 30  # never upscaled


@pytest.mark.slow
def test_note_from_a_tiny_run_states_only_computed_findings(
    tmp_path, paper_images, mobilenet_weights
) -> None:
    from test_repeats import _config

    from experiments.compare import main as compare_main

    config = _config(tmp_path, paper_images, "seeds = [0, 1, 2]", "style_weights = [1.0, 100.0]")
    run = tmp_path / "runs" / "kernels"
    assert compare_main(["--config", str(config), "--output", str(run)]) == 0
    note = tmp_path / "notes" / "results.md"
    note.parent.mkdir()
    (note.parent / "results_discussion.md").write_text("# title\n\nHand-written claim (figure X).\n")
    write_note({"kernels": run}, note, "python -m experiments.results_note", 12.0)
    text = note.read_text()
    assert "python -m experiments.results_note" in text and "0.2 min wall time" in text
    for phrase in ("changes little", "ReLU-scale", "gradient vanishes", "kernel sums", "one method"):
        assert phrase not in text  # the old hard-coded interpretation
    assert "## Interpretation (hand-written" in text and "Hand-written claim (figure X)." in text
    with open(run / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    bold = len(re.findall(r"\*\*[0-9.e+-]+ ± [0-9.e+-]+\*\*", text))
    shown = [r for r in summary if r["kind"] == "texture" or float(r["style_weight"]) == 1.0]
    assert bold == sum(r["verdict"] == "best" for r in shown)  # transfer at style_weight 1.0, and textures
    assert text.count("(tie) |") == sum(r["verdict"] == "tie" for r in shown)
    grids = list((note.parent / "figures" / "results").glob("grid_*.png"))
    assert len(grids) == 1
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (note.parent / image).is_file(), image
