"""What a training run reports: the CSV log, the loss plot and the sample images (through
:meth:`adain.model.AdaINModel.stylize`, the same code ``adain stylize`` runs)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import torch

from adain.data import center_crop
from adain.decoders import Decoder
from adain.encoders import FeatureEncoder
from adain.errors import AdainError
from adain.io import load_image, save_image
from adain.model import AdaINModel

__all__ = [
    "LOG_COLUMNS",
    "LOG_NAME",
    "PLOT_NAME",
    "open_log",
    "read_log",
    "sample_path",
    "write_plot",
    "write_samples",
]

LOG_NAME = "log.csv"
PLOT_NAME = "loss.png"
LOG_COLUMNS = ("iteration", "lr", "content", "style", "total", "images_per_s")


def read_log(path: str | Path) -> list[dict[str, float]]:
    """The rows of a training CSV log as dicts of floats."""
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def open_log(path: Path, keep_until: int | None) -> IO[str]:
    """Open the CSV log for appending; rows after iteration ``keep_until`` (written after the checkpoint a
    run resumes from) are dropped, and ``keep_until=None`` (a fresh run) starts it anew. The kept rows are
    rewritten beside the log and renamed over it, so a kill loses no row."""
    rows: list[list[str]] = []
    if keep_until is not None and path.is_file():
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for row in reader:  # stop at the checkpoint, or at a row cut short by a kill
                try:
                    complete = len(row) == len(LOG_COLUMNS) and int(row[0]) <= keep_until
                except ValueError:
                    complete = False
                if not complete:
                    break
                rows.append(row)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(LOG_COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, path)
    return open(path, "a", newline="")


def write_plot(
    log_path: Path, plot_path: Path, *, title: str, style_label: str, weights: tuple[float, float]
) -> None:
    """Loss curves (content and style weighted by ``weights = (content, style)``, and the total)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not log_path.is_file():
        return
    rows = read_log(log_path)
    if not rows:
        return
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    it = [r["iteration"] for r in rows]
    content_weight, style_weight = weights
    for key, label, scale in (
        ("content", f"content × {content_weight:g}", content_weight),
        ("style", f"style ({style_label}) × {style_weight:g}", style_weight),
        ("total", "total", 1.0),
    ):
        ax.plot(it, [r[key] * scale for r in rows], label=label, linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("weighted loss")
    if all(r["total"] > 0 for r in rows):
        ax.set_yscale("log")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(plot_path, dpi=100)


def sample_path(output: Path, iteration: int) -> Path:
    """``output/samples/iter_NNNNNNN.png``."""
    return output / "samples" / f"iter_{iteration:07d}.png"


def write_samples(
    path: Path,
    encoder: FeatureEncoder,
    decoder: Decoder,
    pairs: Sequence[tuple[Path, Path]],
    size: int,
) -> Path | None:
    """One row per (content, style) pair: content | style | ``AdaINModel.stylize(content, style)``.

    Images are centre-cropped to ``size``; unreadable pairs are skipped. The decoder's train/eval mode
    is restored. Returns the file written, or None when no pair could be read.
    """
    model = AdaINModel(encoder, decoder, channels_last=False)
    rows = []
    was_training = decoder.training
    decoder.eval()
    try:
        for content_path, style_path in pairs:
            try:
                c = center_crop(load_image(content_path, size=size), size)
                s = center_crop(load_image(style_path, size=size), size)
            except AdainError:
                continue
            out = model.stylize(c, s)
            rows.append(torch.cat([c, s, out.cpu()], dim=-1))
    finally:
        decoder.train(was_training)
    if not rows:
        return None
    save_image(torch.cat(rows, dim=-2), path)
    return path
