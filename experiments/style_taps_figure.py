"""A figure of one or more per-tap style-ratio summaries side by side.

    python -m experiments.style_taps_figure LABEL=taps_summary.csv [LABEL=...] --output FIG.png [--overwrite]

Each input is a ``taps_summary.csv`` of :mod:`experiments.style_ratio_taps` (or a report's ``summary.csv``,
whose ``style ratio by tap`` rows hold the same metrics). Left: each tap's own ratio (0: the style's
statistics, 1: no closer than the content), median and 95 % bootstrap interval over the outputs. Right:
the median σ of the outputs at each tap over the median σ of the styles, with the contents' as a
reference (a marker per tap): where the bars stay at the content's level, the output has the content's
contrast, not the style's.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["main", "read_summary", "summary_taps"]


def read_summary(path: Path) -> dict[str, tuple[float, float, float]]:
    """``metric → (median, low, high)`` from a taps summary or a report's summary.csv.

    Raises:
        ValueError: a file without the per-tap metrics (naming it).
    """
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    found = {
        r["metric"]: (float(r["median"]), float(r["low"]), float(r["high"]))
        for r in rows
        if r.get("table", "style ratio by tap") == "style ratio by tap"
    }
    if not summary_taps(found):
        raise ValueError(f"{path}: no per-tap rows (<tap>_ratio, <tap>_sigma_out, ...); not a taps summary")
    return found


def summary_taps(summary: Mapping[str, object]) -> list[str]:
    """The taps of a summary (shallow to deep, as written): the ``<tap>`` of each ``<tap>_sigma_out`` row."""
    return [m[: -len("_sigma_out")] for m in summary if m.endswith("_sigma_out")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("summaries", nargs="+", metavar="LABEL=CSV")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.overwrite:
        print(
            f"style_taps_figure: error: {args.output} exists; pass --overwrite to replace it", file=sys.stderr
        )
        return 1
    try:
        series = []
        for item in args.summaries:
            label, sep, path = item.partition("=")
            if not sep or not label or not path:
                raise ValueError(f"{item!r}: expected LABEL=CSV")
            series.append((label, read_summary(Path(path))))
        taps = summary_taps(series[0][1])
        for (_, summary), item in zip(series, args.summaries, strict=True):
            if summary_taps(summary) != taps:
                raise ValueError(f"{item}: taps {summary_taps(summary)}, not {taps} like the first summary")
    except (OSError, ValueError) as e:
        print(f"style_taps_figure: error: {e}", file=sys.stderr)
        return 1

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    width = 0.8 / len(series)
    for k, (label, summary) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(taps))]
        med = [summary[f"{t}_ratio"][0] for t in taps]
        err = [
            [m - summary[f"{t}_ratio"][1] for t, m in zip(taps, med, strict=True)],
            [summary[f"{t}_ratio"][2] - m for t, m in zip(taps, med, strict=True)],
        ]
        left.bar(xs, med, width, yerr=err, capsize=2, label=label)
        rel = [summary[f"{t}_sigma_out"][0] / summary[f"{t}_sigma_style"][0] for t in taps]
        right.bar(xs, rel, width, label=label)
    content = [series[0][1][f"{t}_sigma_content"][0] / series[0][1][f"{t}_sigma_style"][0] for t in taps]
    right.scatter(range(len(taps)), content, marker="_", s=400, color="black", zorder=3, label="content")
    for ax, title in (
        (left, "style ratio of each tap (median, 95 % CI)"),
        (right, "median σ of the outputs / median σ of the styles"),
    ):
        ax.set_xticks(range(len(taps)), taps)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_title(title, fontsize=9)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=100)
    plt.close(fig)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
