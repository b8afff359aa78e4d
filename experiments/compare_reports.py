"""Paired comparison of two or more default-model reports on the same held-out pairs.

    python -m experiments.compare_reports runs/report_A runs/report_B [runs/report_C ...] [--output F.csv]

Each report folder (``python -m experiments.default_model report``) holds ``scores.csv``: one row per
(content, style) pair with ``style_ratio`` and ``content_ratio``, and ``artefacts.csv`` with the model's
``checkerboard_output`` and ``border_output`` per pair (compared when both reports have it; see
:mod:`adain.evaluation.artefacts`). The first report is the baseline. For
each later report and metric this prints the median of each, and the **paired** difference
``later − baseline`` over the pairs both reports scored: its mean with Student's t-interval, its median with
a percentile bootstrap interval, and the fraction of pairs where the later report is lower (better). A
difference whose interval contains 0 is a tie (see :mod:`experiments.intervals`). Pairing removes the
between-pair spread, so it separates two checkpoints that the reports' own median intervals cannot.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from adain.atomic import atomic_write
from experiments.intervals import Interval, MedianInterval, bootstrap_median, paired_difference

METRICS = ("style_ratio", "content_ratio")
ARTEFACT_METRICS = ("checkerboard_output", "border_output")
SCORES_NAME = "scores.csv"
ARTEFACTS_NAME = "artefacts.csv"


class ReportError(ValueError):
    """A report folder without a readable scores.csv, or reports that share no pair."""


@dataclass(frozen=True)
class PairedComparison:
    """One metric of one report against the baseline, over ``n`` shared pairs."""

    report: str
    metric: str
    baseline_median: float
    median: float
    mean_difference: Interval  # later − baseline, t-interval
    median_difference: MedianInterval  # later − baseline, bootstrap
    fraction_lower: float  # pairs where the later report scored lower

    @property
    def verdict(self) -> str:
        """``lower`` / ``higher`` when the mean difference's interval excludes 0, else ``tie``."""
        d = self.mean_difference
        if d.contains(0.0):
            return "tie"
        return "lower" if d.mean < 0 else "higher"


def _read_table(path: Path, metrics: Sequence[str]) -> dict[tuple[str, str], dict[str, float]]:
    """``{(content, style): {metric: value}}`` from one CSV (rows of ``method`` "adain" only, if it has
    that column)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"content", "style", *metrics}
    if not rows or not need <= set(rows[0]):
        have = sorted(rows[0]) if rows else "no rows"
        raise ReportError(f"{path}: needs columns {sorted(need)}, found {have}")
    out: dict[tuple[str, str], dict[str, float]] = {}
    for line, row in enumerate(rows, start=2):
        if row.get("method", "adain") != "adain":
            continue
        key = (row["content"], row["style"])
        if key in out:
            raise ReportError(f"{path}, line {line}: the pair {key} appears twice")
        try:
            values = {m: float(row[m]) for m in metrics}
        except (TypeError, ValueError):
            raise ReportError(f"{path}, line {line}: {[row[m] for m in metrics]} are not numbers") from None
        if not all(v == v and abs(v) != float("inf") for v in values.values()):
            raise ReportError(f"{path}, line {line}: non-finite score {values}")
        out[key] = values
    return out


def read_scores(folder: Path) -> dict[tuple[str, str], dict[str, float]]:
    """``{(content, style): {metric: value}}`` from ``folder/scores.csv``, with the artefact metrics of
    ``folder/artefacts.csv`` added where that file exists (for the pairs it holds).

    Raises:
        ReportError: no scores.csv, a missing column, a duplicate pair or a value that is not a finite
            number (naming the file and row).
    """
    path = Path(folder) / SCORES_NAME
    if not path.is_file():
        raise ReportError(f"{path}: no such file (is {folder} a default_model report folder?)")
    out = _read_table(path, METRICS)
    artefacts = Path(folder) / ARTEFACTS_NAME
    if artefacts.is_file():
        for key, values in _read_table(artefacts, ARTEFACT_METRICS).items():
            if key in out:
                out[key].update(values)
    return out


def compare(
    baseline: dict[tuple[str, str], dict[str, float]],
    other: dict[tuple[str, str], dict[str, float]],
    name: str,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> list[PairedComparison]:
    """``other − baseline`` per metric over the pairs both hold (sorted, so the order is fixed); the
    artefact metrics only when every shared pair has them in both.

    Raises:
        ReportError: the two share no pair.
    """
    shared = sorted(set(baseline) & set(other))
    if not shared:
        raise ReportError(f"{name} and the baseline share no (content, style) pair")
    result = []
    for metric in (*METRICS, *ARTEFACT_METRICS):
        if not all(metric in baseline[k] and metric in other[k] for k in shared):
            continue  # an artefact metric that one of the reports lacks
        a = [baseline[k][metric] for k in shared]
        b = [other[k][metric] for k in shared]
        diffs = [y - x for x, y in zip(a, b, strict=True)]
        result.append(
            PairedComparison(
                report=name,
                metric=metric,
                baseline_median=statistics.median(a),
                median=statistics.median(b),
                mean_difference=paired_difference(b, a),
                median_difference=bootstrap_median(diffs, resamples=resamples, seed=seed),
                fraction_lower=sum(d < 0 for d in diffs) / len(diffs),
            )
        )
    return result


def markdown(rows: Sequence[PairedComparison], baseline: str, n: Sequence[int]) -> str:
    """A markdown table of the comparisons (``n``: shared pairs per row)."""
    lines = [
        f"Baseline: `{baseline}`. Differences are report − baseline over shared pairs (lower is better).",
        "",
        "| report | metric | n | baseline median | median | mean difference [95 % t] | "
        "median difference [95 % bootstrap] | pairs lower | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row, count in zip(rows, n, strict=True):
        d, m = row.mean_difference, row.median_difference
        lines.append(
            f"| `{row.report}` | {row.metric} | {count} | {row.baseline_median:.3f} | {row.median:.3f} | "
            f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}] | {m.median:+.3f} [{m.low:+.3f}, {m.high:+.3f}] | "
            f"{row.fraction_lower:.0%} | {row.verdict} |"
        )
    return "\n".join(lines)


def write_csv(rows: Sequence[PairedComparison], n: Sequence[int], path: Path, *, overwrite: bool) -> None:
    """The comparisons as CSV (written atomically); an existing file is kept unless ``overwrite``."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it or choose another --output")
    header = [
        *("report", "metric", "n", "baseline_median", "median", "mean_difference", "mean_low", "mean_high"),
        *("median_difference", "median_low", "median_high", "fraction_lower", "verdict"),
    ]
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(header)
    for row, count in zip(rows, n, strict=True):
        d, m = row.mean_difference, row.median_difference
        w.writerow(
            [row.report, row.metric, count, f"{row.baseline_median:.4f}", f"{row.median:.4f}",
             f"{d.mean:.4f}", f"{d.low:.4f}", f"{d.high:.4f}", f"{m.median:.4f}", f"{m.low:.4f}",
             f"{m.high:.4f}", f"{row.fraction_lower:.4f}", row.verdict]
        )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.getvalue().encode()

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    atomic_write(path, write)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", type=Path, help="report folders; the first is the baseline")
    p.add_argument("--output", type=Path, help="also write the table as CSV here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (0)")
    a = p.parse_args(argv)
    if len(a.reports) < 2:
        p.error("give at least two report folders: the baseline and one to compare")
    try:
        if a.output is not None and a.output.exists() and not a.overwrite:  # refused before any work
            write_csv([], [], a.output, overwrite=False)
        base = read_scores(a.reports[0])
        rows: list[PairedComparison] = []
        counts: list[int] = []
        for folder in a.reports[1:]:
            other = read_scores(folder)
            found = compare(base, other, str(folder), resamples=a.resamples, seed=a.seed)
            rows += found
            counts += [len(set(base) & set(other))] * len(found)
        print(markdown(rows, str(a.reports[0]), counts))
        if a.output is not None:
            write_csv(rows, counts, a.output, overwrite=a.overwrite)
            print(f"wrote {a.output}")
    except (ReportError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
