"""How far the optimisations of comparison runs are from their stopping criterion.

    python -m experiments.convergence runs/results/kernels runs/results/li_et_al \
        [--csv convergence.csv] [--summary convergence_summary.csv] [--overwrite]

Reads every finished optimisation of each run folder (``records/<job>/<method>.json``, written by
:mod:`experiments.compare` and kept by ``results_note --snapshot``) with the run's stopping rule
(``settings.json``: ``transfer.window`` steps, ``transfer.tolerance``, ``transfer.iterations`` cap), and
measures, from each optimisation's objective history, its relative decrease over the last ``window`` steps
(:func:`adain.gatys.relative_decrease`, the quantity the criterion tests) and over the last 100 steps.
A run that stopped at the cap with a last-window decrease of 5× the tolerance was still falling: it is
compared at an equal budget of steps, not at convergence.

Writes one row per optimisation (``--csv``) and one per (run folder, method) (``--summary``; existing
files are kept unless ``--overwrite``): outputs, how many converged, how many hit the cap, and for the
capped ones the median and largest last-window decrease and its ratio to the tolerance, and the median
decrease over the last 100 steps. Prints the summary as a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any, BinaryIO

from adain.atomic import atomic_write
from adain.gatys import relative_decrease

__all__ = ["LONG_WINDOW", "main", "record_rows", "summarise"]

#: the second, longer window (steps) over which the decrease is also reported
LONG_WINDOW = 100


def _stopping_rule(folder: Path) -> dict[str, Any]:
    path = folder / "settings.json"
    try:
        transfer = json.loads(path.read_text())["transfer"]
        return {k: transfer[k] for k in ("window", "tolerance", "iterations")}
    except FileNotFoundError:
        raise SystemExit(f"convergence: error: {path} does not exist (not a comparison run folder)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise SystemExit(f"convergence: error: {path}: no stopping rule ({type(e).__name__}: {e})") from None


def record_rows(folder: Path) -> list[dict[str, Any]]:
    """One row per finished optimisation in ``folder/records``: run folder, job, method, stop reason,
    steps, final objective, its decrease over the last ``window`` and :data:`LONG_WINDOW` steps (empty
    when the history is shorter), and the rule's window, tolerance and cap.

    Raises:
        SystemExit: no ``settings.json``, or a record that cannot be read (the file is named).
    """
    rule = _stopping_rule(folder)
    rows = []
    for path in sorted((folder / "records").glob("*/*.json")):
        try:
            record = json.loads(path.read_text())
            row, totals = record["row"], [float(v) for v in record["history"]["total"]]
            stop, steps = str(row["stop_reason"]), int(row["steps"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise SystemExit(f"convergence: error: {path}: not a record ({type(e).__name__}: {e})") from None
        short, long = relative_decrease(totals, rule["window"]), relative_decrease(totals, LONG_WINDOW)
        rows.append(
            {
                "folder": str(folder),
                "job": path.parent.name,
                "method": path.stem,
                "stop_reason": stop,
                "steps": steps,
                "final_total": totals[-1] if totals else "",
                "decrease_window": "" if short is None else short,
                "decrease_long": "" if long is None else long,
                "window": rule["window"],
                "tolerance": rule["tolerance"],
                "cap": rule["iterations"],
            }
        )
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (folder, method): ``outputs``, ``converged``, ``capped`` and, over the capped outputs, the
    median and largest last-window decrease, the median as a multiple of the tolerance, and the median
    decrease over :data:`LONG_WINDOW` steps (empty when no output was capped)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["folder"], row["method"]), []).append(row)
    out = []
    for (folder, method), members in groups.items():
        capped = [r for r in members if r["stop_reason"] == "max_iterations"]
        short = [float(r["decrease_window"]) for r in capped if r["decrease_window"] != ""]
        long = [float(r["decrease_long"]) for r in capped if r["decrease_long"] != ""]
        tolerance = float(members[0]["tolerance"])
        out.append(
            {
                "folder": folder,
                "method": method,
                "outputs": len(members),
                "converged": sum(r["stop_reason"] == "converged" for r in members),
                "capped": len(capped),
                "capped_median_decrease_window": median(short) if short else "",
                "capped_max_decrease_window": max(short) if short else "",
                "capped_median_over_tolerance": median(short) / tolerance if short and tolerance > 0 else "",
                "capped_median_decrease_long": median(long) if long else "",
            }
        )
    return out


def _write(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``rows`` as CSV, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = buffer.getvalue().encode()

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    atomic_write(path, write)


def _cell(value: Any, spec: str) -> str:
    return "" if value == "" else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="comparison run folders (each with settings.json)")
    p.add_argument("--csv", type=Path, default=None, help="one row per optimisation")
    p.add_argument("--summary", type=Path, default=None, help="one row per (folder, method)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --csv / --summary files")
    args = p.parse_args(argv)
    for path in (args.csv, args.summary):
        if path is not None and path.exists() and not args.overwrite:
            raise SystemExit(f"convergence: error: {path} exists; pass --overwrite to replace it")
    rows = [row for folder in args.folders for row in record_rows(folder)]
    if not rows:
        raise SystemExit("convergence: error: no records in " + ", ".join(map(str, args.folders)))
    summary = summarise(rows)
    if args.csv:
        _write(args.csv, rows)
    if args.summary:
        _write(args.summary, summary)
    header = ["folder", "method", "outputs", "converged", "capped",
              "capped: median decrease over the window", "largest", "median / tolerance",
              f"median decrease over {LONG_WINDOW} steps"]  # fmt: skip
    print("| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
    for s in summary:
        numbers = [
            _cell(s["capped_median_decrease_window"], ".2%"),
            _cell(s["capped_max_decrease_window"], ".2%"),
            _cell(s["capped_median_over_tolerance"], ".1f"),
            _cell(s["capped_median_decrease_long"], ".2%"),
        ]
        cells = [Path(s["folder"]).name, s["method"], s["outputs"], s["converged"], s["capped"], *numbers]
        print("| " + " | ".join(map(str, cells)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
