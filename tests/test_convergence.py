"""experiments.convergence: last-window decreases of finished optimisations, from their records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from experiments.convergence import main, record_rows, summarise


def _run(folder: Path, histories: dict[tuple[str, str], tuple[str, list[float]]]) -> Path:
    settings = {"transfer": {"window": 2, "tolerance": 0.01, "iterations": 6}}
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text(json.dumps(settings))
    for (job, method), (stop, totals) in histories.items():
        path = folder / "records" / job / f"{method}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        row = {"stop_reason": stop, "steps": len(totals) - 1}
        path.write_text(json.dumps({"row": row, "history": {"total": totals}}))
    return folder


CAPPED = [
    10.0,
    8.0,
    6.0,
    5.0,
    4.0,
    3.6,
    3.0,
]  # still falling: (3.6 - 3.0) / 3.6 ... over 2 steps: (4 - 3) / 4
CONVERGED = [10.0, 5.0, 4.0, 3.99, 3.985]


def test_each_record_gets_its_decrease_over_the_window_and_the_long_window(tmp_path: Path) -> None:
    folder = _run(
        tmp_path / "k", {("j0", "gram"): ("max_iterations", CAPPED), ("j0", "mmd"): ("converged", CONVERGED)}
    )
    rows = {r["method"]: r for r in record_rows(folder)}
    assert rows["gram"]["decrease_window"] == pytest.approx((4.0 - 3.0) / 4.0)
    assert rows["gram"]["decrease_long"] == ""  # shorter than 100 steps
    assert rows["mmd"]["decrease_window"] == pytest.approx((4.0 - 3.985) / 4.0)
    assert rows["gram"]["steps"] == 6 and rows["gram"]["tolerance"] == 0.01 and rows["gram"]["cap"] == 6


def test_the_summary_counts_capped_outputs_and_their_distance_from_the_criterion(tmp_path: Path) -> None:
    slower = [10.0, 9.0, 8.0, 7.0, 6.0, 5.5, 5.0]  # last window: (6 - 5) / 6
    folder = _run(
        tmp_path / "k",
        {
            ("j0", "gram"): ("max_iterations", CAPPED),
            ("j1", "gram"): ("max_iterations", slower),
            ("j2", "gram"): ("converged", CONVERGED),
        },
    )
    (summary,) = summarise(record_rows(folder))
    assert (summary["outputs"], summary["converged"], summary["capped"]) == (3, 1, 2)
    assert summary["capped_median_decrease_window"] == pytest.approx((0.25 + 1 / 6) / 2)
    assert summary["capped_max_decrease_window"] == pytest.approx(0.25)
    assert summary["capped_median_over_tolerance"] == pytest.approx((0.25 + 1 / 6) / 2 / 0.01)


def test_the_command_writes_both_tables_and_names_bad_folders(tmp_path: Path, capsys) -> None:
    folder = _run(tmp_path / "k", {("j0", "gram"): ("max_iterations", CAPPED)})
    assert main([str(folder), "--csv", str(tmp_path / "rows.csv"), "--summary", str(tmp_path / "s.csv")]) == 0
    assert "| k | gram | 1 | 0 | 1 | 25.00% | 25.00% | 25.0 |" in capsys.readouterr().out
    with open(tmp_path / "s.csv", newline="") as fh:
        assert [r["method"] for r in csv.DictReader(fh)] == ["gram"]
    before = (tmp_path / "s.csv").read_text()
    with pytest.raises(SystemExit, match=r"s\.csv exists; pass --overwrite"):
        main([str(folder), "--summary", str(tmp_path / "s.csv")])
    assert (tmp_path / "s.csv").read_text() == before
    assert main([str(folder), "--summary", str(tmp_path / "s.csv"), "--overwrite"]) == 0
    with pytest.raises(SystemExit, match=r"nothere/settings\.json does not exist"):
        main([str(tmp_path / "nothere")])
    (folder / "records" / "j0" / "bad.json").write_text("{")
    with pytest.raises(SystemExit, match=r"bad\.json: not a record"):
        main([str(folder)])
