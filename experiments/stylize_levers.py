"""Two inference-time levers on a default-model report's held-out outputs, scored like the report.

    python -m experiments.stylize_levers --report runs/report_X --model FILE --output DIR [--overwrite]
    python -m experiments.compare_reports runs/report_X DIR/colour_to_style DIR/second_pass   # paired

Neither lever changes the model; both ask how much of the gap to the style ratio goal an output's
post-processing could close:

* ``colour_to_style``: each output recoloured to its style's pixel mean and colour covariance
  (:func:`adain.ops.color.match_color` with the style as the target; the style read at the report's
  ``style_size``);
* ``second_pass``: each output stylized again by the same model with its own style (``adain stylize`` with
  the report's sizes and context padding), i.e. AdaIN applied twice.

Each lever's folder is laid out like a report (``adain/<content>_stylized_<style>.png`` and ``scores.csv``
from ``[report] scorer``), so :mod:`experiments.compare_reports` pairs it with the report it came from, and
``taps.csv`` / ``taps_summary.csv`` split its style ratio by tap (:mod:`experiments.style_ratio_taps`);
``levers.png`` shows a few pairs (content | style | report output | each lever).
The report folder is only read. It refuses to replace an earlier ``--output`` without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adain.errors import AdainError

__all__ = ["LEVERS", "main", "run_levers"]

LEVERS = ("colour_to_style", "second_pass")
SHEET_PAIRS = 4  # rows of levers.png
SHEET_CELL = 160  # px per image in levers.png


def _report_outputs(report: Path) -> list[tuple[str, str, Path]]:
    folder = report / "adain"
    outputs = sorted(folder.glob("*_stylized_*.png")) if folder.is_dir() else []
    if not outputs:
        raise AdainError(
            f"{report}: no report outputs (adain/<content>_stylized_<style>.png); run report first"
        )
    return [(*p.stem.split("_stylized_", 1), p) for p in outputs]  # type: ignore[misc]


def _colour_to_style(
    outputs: list[tuple[str, str, Path]], styles: Mapping[str, Path], folder: Path, size: int
) -> None:
    from adain.io import load_image, save_image
    from adain.ops.color import match_color

    targets: dict[str, Any] = {}
    for _, style, path in outputs:
        if style not in targets:
            targets[style] = load_image(styles[style], size)
        save_image(match_color(load_image(path, max_pixels=None), targets[style]), folder / path.name)


def _second_pass(
    outputs: list[tuple[str, str, Path]],
    styles: Mapping[str, Path],
    folder: Path,
    model: Path,
    rep: Mapping[str, Any],
) -> None:
    from experiments.default_model_report import _stylize

    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        for style in sorted({s for _, s, _ in outputs}):
            contents = Path(tmp) / style
            contents.mkdir()
            for content, s, path in outputs:
                if s == style:  # the output as the content, under its content's name
                    (contents / f"{content}.png").symlink_to(path)
            _stylize(model, contents, styles[style], folder, rep)


def run_levers(
    config: Mapping[str, Any], report: Path, model: Path, output: Path, *, overwrite: bool
) -> None:
    """Write ``output/<lever>/`` for every lever of :data:`LEVERS` (see the module doc).

    Raises:
        AdainError: no report outputs, a style missing from the held-out folder, the stylization or the
            scorer failed. OutputError: ``output`` holds earlier results and ``overwrite`` is false.
    """
    from adain.errors import OutputError
    from adain.io import list_images
    from experiments import style_ratio_taps
    from experiments.default_model import _resolve
    from experiments.default_model_report import REPORT_DEFAULTS, _run_scorer, _sheet, _write_csv

    rep = {**REPORT_DEFAULTS, **config["report"]}
    content_dir = _resolve(config["data"]["paper"]) / "content"
    style_dir = _resolve(config["data"]["work"]) / "heldout_style"
    report, model, output = report.resolve(), model.resolve(), output.resolve()
    outputs = _report_outputs(report)
    styles = {p.stem: p for p in list_images(style_dir)}
    missing = sorted({s for _, s, _ in outputs} - set(styles))
    if missing:
        raise AdainError(f"{report}: styles {missing} are not in {style_dir}")
    earlier = [output / lever for lever in LEVERS if (output / lever).exists()]
    if earlier and not overwrite:
        raise OutputError(f"{earlier[0]} exists; pass --overwrite to replace it")
    for lever in LEVERS:
        folder = output / lever
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "adain").mkdir(parents=True)
        if lever == "colour_to_style":
            _colour_to_style(outputs, styles, folder / "adain", rep["style_size"])
        else:
            _second_pass(outputs, styles, folder / "adain", model, rep)
        scores = _run_scorer(_resolve(rep["scorer"]), folder / "adain", content_dir, style_dir)
        rows = [[c, s, *scores[(c, s)]] for c, s, _ in outputs if (c, s) in scores]
        if len(rows) != len(outputs):
            raise AdainError(f"{folder / 'adain'}: the scorer scored {len(rows)} of {len(outputs)} outputs")
        _write_csv(folder / "scores.csv", ("content", "style", "style_ratio", "content_ratio"), rows)
        taps = style_ratio_taps.pair_rows(folder / "adain", content_dir, style_dir)
        style_ratio_taps.write_tables(taps, folder / "taps.csv")
        print(f"wrote {folder}: {len(rows)} outputs, scores.csv, taps.csv")
    contents = {p.stem: p for p in list_images(content_dir)}
    sheet = _sheet_rows(outputs, contents, styles, output)
    _sheet(sheet, SHEET_CELL, output / "levers.png")
    print(f"wrote {output / 'levers.png'}: content | style | report output | {' | '.join(LEVERS)}")


def _sheet_rows(
    outputs: list[tuple[str, str, Path]],
    contents: Mapping[str, Path],
    styles: Mapping[str, Path],
    output: Path,
) -> list[list[Path | None]]:
    """Up to :data:`SHEET_PAIRS` pairs spread over the styles (the report's Gatys subset rule)."""
    from experiments.default_model_report import gatys_subset

    content_names = sorted({c for c, _, _ in outputs})
    style_names = sorted({s for _, s, _ in outputs})
    by_pair = {(c, s): path for c, s, path in outputs}
    n = min(SHEET_PAIRS, len(content_names) * len(style_names))
    rows: list[list[Path | None]] = []
    for i, j in gatys_subset(len(content_names), len(style_names), n):
        c, s = content_names[i], style_names[j]
        if (c, s) in by_pair:
            path = by_pair[(c, s)]
            rows.append(
                [
                    contents.get(c),
                    styles[s],
                    path,
                    *(output / lever / "adain" / path.name for lever in LEVERS),
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    from experiments.default_model import DEFAULT_CONFIG, load_config

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report", type=Path, required=True, help="a default_model report folder")
    parser.add_argument("--model", type=Path, required=True, help="the model (or checkpoint) of that report")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--overwrite", action="store_true", help="replace earlier lever folders in --output")
    args = parser.parse_args(argv)
    try:
        run_levers(load_config(args.config), args.report, args.model, args.output, overwrite=args.overwrite)
    except AdainError as e:
        print(f"stylize_levers: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
