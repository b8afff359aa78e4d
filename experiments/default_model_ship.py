"""Ship a trained decoder as the package's default model, only when its held-out report meets the goal.

    python -m experiments.default_model ship --model FILE --report DIR [--output FILE] [--overwrite]

The report folder is one written by ``python -m experiments.default_model report`` for the same model
file (its ``run.csv`` names the model's SHA-256, checked here). Its ``summary.csv`` gives the medians of
the held-out style and content ratios; the model is shipped only if both are at or under the config's
``[ship]`` goals (``style_ratio_max``, ``content_ratio_max``). The decoder is written in float16 (half the
size; :func:`adain.modelfile.load_model` loads it into float32 modules) with the training config and a
``shipped`` record (source file, its SHA-256, the report's medians and intervals) added to the model
file's config. An existing output file is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from experiments.runs import file_sha256

__all__ = ["ShipRefused", "report_medians", "ship_model"]


class ShipRefused(ValueError):
    """The report does not meet the goal, does not belong to the model, or the output exists."""


def report_medians(report: Path) -> dict[str, dict[str, float]]:
    """``{"style_ratio": {"median", "low", "high", "n"}, "content_ratio": {...}}`` of the model's (method
    ``adain``) held-out pairs, from ``report/summary.csv`` (table ``all pairs``)."""
    path = report / "summary.csv"
    if not path.is_file():
        raise ShipRefused(f"{path}: no such file (write the report first: experiments.default_model report)")
    out: dict[str, dict[str, float]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("table") == "all pairs" and row.get("method") == "adain":
                out[row["metric"]] = {k: float(row[k]) for k in ("median", "low", "high", "n")}
    missing = {"style_ratio", "content_ratio"} - set(out)
    if missing:
        raise ShipRefused(f"{path}: no 'all pairs' row of method adain for {sorted(missing)}")
    return out


def _report_model_hash(report: Path) -> str | None:
    path = report / "run.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 2 and row[0] == "model_sha256":
                return row[1]
    return None


def ship_model(
    model: Path, report: Path, output: Path, goal: Mapping[str, float], *, overwrite: bool = False
) -> dict[str, Any]:
    """Check ``report`` against ``goal`` and write ``model``'s decoder in float16 to ``output``.

    Args:
        model: a model file (e.g. ``decoder_ema.pth`` of ``adain train``).
        report: its report folder (``summary.csv``, ``run.csv``).
        output: the model file to write (the package's ``adain/models/default.pth``).
        goal: ``{"style_ratio_max": float, "content_ratio_max": float}``.
        overwrite: replace an existing ``output``.

    Returns:
        The ``shipped`` record written into the model file's config.

    Raises:
        ShipRefused: a goal not met, a report of another model, or ``output`` exists without ``overwrite``.
    """
    import torch

    from adain.modelfile import load_decoder, read_model_file, save_model_file

    if not model.is_file():
        raise ShipRefused(f"{model}: no such model file")
    medians = report_medians(report)
    digest = file_sha256(model)
    reported = _report_model_hash(report)
    if reported is None:
        raise ShipRefused(f"{report / 'run.csv'}: no model_sha256 row, so it cannot be matched to {model}")
    if reported != digest:
        raise ShipRefused(f"{report}: the report is of a model with SHA-256 {reported[:12]}…, not {model}")
    failed = [
        f"median {metric} {medians[metric]['median']:.3f} > {goal[f'{metric}_max']}"
        for metric in ("style_ratio", "content_ratio")
        if medians[metric]["median"] > goal[f"{metric}_max"]
    ]
    if failed:
        raise ShipRefused(f"{model} is not shipped: {'; '.join(failed)} (report {report})")
    if output.exists() and not overwrite:
        raise ShipRefused(f"{output} exists; pass --overwrite to replace it")
    source = read_model_file(model)
    decoder = load_decoder(model).to(torch.float16)
    shipped = {
        "source": model.name,
        "source_sha256": digest,
        "report": report.name,
        "dtype": "float16",
        **{f"{m}_{k}": v for m, stats in medians.items() for k, v in stats.items()},
    }
    config = {**source.config, "shipped": shipped}
    save_model_file(output, decoder, encoder_name=source.encoder_name, config=config)
    return shipped
