"""Where a stylization misses its style: the held-out style ratio split by tap and by statistic.

    python -m experiments.style_ratio_taps --outputs DIR --content DIR --style DIR --csv FILE [--overwrite]

``../shared/tools/score_stylization.py`` scores an output ``o`` of content ``c`` and style ``s`` (content and
style resized to the output's size) with MobileNetV2's taps ``features[1], [3], [6], [13]`` (this package's
``mobilenet_v2`` taps ``s2, s4, s8, s16``)::

    style ratio = Σ_taps D(o, s) / Σ_taps D(c, s),   D = mean part + std part

(:mod:`adain.evaluation.statistics_distance`). This script recomputes both sums tap by tap, so it says at
which scale (``s2``: stride 2, colours and the finest texture … ``s16``: stride 16) and in which statistic an
output stays as far from the style as the content is. The images are read by :func:`adain.io.load_image`
(antialiased bicubic, not Pillow's), so its total differs from the scorer's by resampling only (checked in
the tests against the scorer itself).

Writes ``--csv`` (one row per output: per tap the output's and the content's mean and std parts against the
style, the tap's own ratio, and the mean over channels of σ for output, style and content) and
``<csv stem>_summary.csv`` (medians over the outputs with 95 % bootstrap intervals), and prints the summary.
It refuses to replace either file without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import torch

from adain.atomic import atomic_write
from adain.errors import AdainError

if TYPE_CHECKING:
    from adain.encoders.base import FeatureEncoder
from experiments.intervals import bootstrap_median

__all__ = [
    "PAIR_COLUMNS",
    "TAPS",
    "main",
    "pair_columns",
    "pair_rows",
    "summarise",
    "taps_of",
    "write_tables",
]

#: The scorer's taps: MobileNetV2's taps up to its AdaIN layer.
TAPS = ("s2", "s4", "s8", "s16")
_PAIR_FIELDS = ("ratio", "out_mean", "out_std", "content_mean", "content_std")
_SIGMA_FIELDS = ("sigma_out", "sigma_style", "sigma_content")


def pair_columns(taps: Sequence[str] = TAPS) -> tuple[str, ...]:
    """The columns of :func:`pair_rows`' rows for ``taps``."""
    return (
        "content",
        "style",
        "style_ratio",
        *(f"{t}_{n}" for t in taps for n in _PAIR_FIELDS + _SIGMA_FIELDS),
    )


#: The columns for the scorer's taps.
PAIR_COLUMNS = pair_columns(TAPS)


def taps_of(rows: Sequence[Mapping[str, object]]) -> list[str]:
    """The taps that :func:`pair_rows` wrote into ``rows`` (shallow to deep)."""
    return [key[: -len("_out_mean")] for key in rows[0] if key.endswith("_out_mean")] if rows else []


def _outputs(
    folder: Path, contents: dict[str, Path], styles: dict[str, Path]
) -> list[tuple[Path, Path, Path]]:
    from adain.io import list_images

    found = []
    for out in list_images(folder):
        if "_stylized_" not in out.stem:
            continue
        c, s = out.stem.split("_stylized_", 1)
        if c not in contents or s not in styles:
            raise AdainError(
                f"{out}: no content {c!r} in the content folder or style {s!r} in the style folder"
            )
        found.append((out, contents[c], styles[s]))
    if not found:
        raise AdainError(f"{folder}: no outputs named <content>_stylized_<style>.<ext>")
    return found


def pair_rows(
    outputs: Path, content_dir: Path, style_dir: Path, *, encoder: FeatureEncoder | None = None
) -> list[dict[str, object]]:
    """One row per output (columns :func:`pair_columns` of the encoder's taps up to its AdaIN layer);
    ``encoder`` defaults to the ImageNet MobileNetV2, the scorer's network (taps :data:`TAPS`)."""
    from adain.encoders import build_encoder
    from adain.evaluation.statistics_distance import channel_mean_std, statistics_distance
    from adain.io import list_images, load_image
    from adain.train.loop import default_style_layers

    contents = {p.stem: p for p in list_images(content_dir)}
    styles = {p.stem: p for p in list_images(style_dir)}
    triples = _outputs(outputs, contents, styles)
    net = encoder if encoder is not None else build_encoder("mobilenet_v2")
    taps = tuple(default_style_layers(net))
    rows: list[dict[str, object]] = []
    with torch.no_grad():
        for out_path, content_path, style_path in triples:
            out = load_image(out_path, max_pixels=None)
            size = tuple(out.shape[-2:])
            images = torch.stack([out, load_image(content_path, size), load_image(style_path, size)])
            feats = net(images, layers=taps)
            row: dict[str, object] = {"content": content_path.stem, "style": style_path.stem}
            numerator = denominator = 0.0
            for tap in taps:
                f = feats[tap]
                d = statistics_distance(f[:2], f[2:3])  # [2, 2]: output, content against the style
                sigma = channel_mean_std(f)[1].mean(1)  # [3]
                (om, os_), (cm, cs) = d.tolist()
                numerator, denominator = numerator + om + os_, denominator + cm + cs
                row[f"{tap}_ratio"] = (om + os_) / (cm + cs)
                row.update({f"{tap}_out_mean": om, f"{tap}_out_std": os_})
                row.update({f"{tap}_content_mean": cm, f"{tap}_content_std": cs})
                for name, value in zip(
                    ("out", "style", "content"), (sigma[0], sigma[2], sigma[1]), strict=True
                ):
                    row[f"{tap}_sigma_{name}"] = float(value)
            row["style_ratio"] = numerator / denominator
            rows.append(row)
    return rows


def summarise(rows: Sequence[Mapping[str, object]], resamples: int = 2000) -> list[dict[str, object]]:
    """Medians over the rows with 95 % bootstrap intervals: the style ratio, and per tap its own ratio, its
    share of the numerator, the std part's share of the tap's numerator, and σ of output, style, content."""

    def f(row: Mapping[str, object], key: str) -> float:
        return float(row[key])  # type: ignore[arg-type]

    taps = taps_of(rows)
    series: dict[str, list[float]] = {"style_ratio": [f(r, "style_ratio") for r in rows]}
    for tap in taps:
        num = [sum(f(r, f"{t}_out_mean") + f(r, f"{t}_out_std") for t in taps) for r in rows]
        tap_num = [f(r, f"{tap}_out_mean") + f(r, f"{tap}_out_std") for r in rows]
        series[f"{tap}_ratio"] = [f(r, f"{tap}_ratio") for r in rows]
        series[f"{tap}_share_of_numerator"] = [t / n for t, n in zip(tap_num, num, strict=True)]
        series[f"{tap}_std_share"] = [f(r, f"{tap}_out_std") / t for r, t in zip(rows, tap_num, strict=True)]
        for name in ("out", "style", "content"):
            series[f"{tap}_sigma_{name}"] = [f(r, f"{tap}_sigma_{name}") for r in rows]
    summary = []
    for metric, values in series.items():
        m = bootstrap_median(values, resamples=resamples)
        summary.append({"metric": metric, "median": m.median, "low": m.low, "high": m.high, "n": m.n})
    return summary


def _csv_text(header: Sequence[str], rows: Sequence[Mapping[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


def _write_text(path: Path, text: str) -> None:
    data = text.encode()

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    atomic_write(path, write)


def write_tables(rows: Sequence[Mapping[str, object]], path: Path) -> list[dict[str, object]]:
    """Write ``rows`` to ``path`` and their :func:`summarise` to ``<stem>_summary.csv`` beside it
    (atomically, replacing earlier files); returns the summary."""
    summary = summarise(rows)
    _write_text(path, _csv_text(pair_columns(taps_of(rows)), rows))
    _write_text(
        path.with_name(f"{path.stem}_summary.csv"),
        _csv_text(("metric", "median", "low", "high", "n"), summary),
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--outputs", type=Path, required=True, help="stylized images <content>_stylized_<style>.*"
    )
    parser.add_argument("--content", type=Path, required=True, help="the content images (matched by stem)")
    parser.add_argument("--style", type=Path, required=True, help="the style images (matched by stem)")
    parser.add_argument("--csv", type=Path, required=True, help="per-output rows; the summary goes beside it")
    parser.add_argument(
        "--encoder",
        default="mobilenet_v2",
        help="the network whose taps (up to its AdaIN layer) split the ratio: mobilenet_v2 (default, the "
        "scorer's; the total is the scorer's style ratio) or another, e.g. vgg19_caffe_normalised (the same "
        "measure in that network's features)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace earlier CSVs")
    args = parser.parse_args(argv)
    summary_path = args.csv.with_name(f"{args.csv.stem}_summary.csv")
    existing = [p for p in (args.csv, summary_path) if p.exists()]
    if existing and not args.overwrite:
        print(
            f"style_ratio_taps: error: {existing[0]} exists; pass --overwrite to replace it", file=sys.stderr
        )
        return 1
    try:
        from adain.encoders import build_encoder

        encoder = build_encoder(args.encoder)
        rows = pair_rows(args.outputs, args.content, args.style, encoder=encoder)
    except (AdainError, ValueError) as e:
        print(f"style_ratio_taps: error: {e}", file=sys.stderr)
        return 1
    summary = write_tables(rows, args.csv)
    print(f"{len(rows)} outputs of {args.outputs} (median [95 % bootstrap interval])")
    for s in summary:
        print(f"  {s['metric']:<26} {s['median']:.3f} [{s['low']:.3f}, {s['high']:.3f}]")
    print(f"wrote {args.csv} and {summary_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
