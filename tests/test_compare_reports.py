"""experiments.compare_reports: paired differences between default-model reports."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from experiments import compare_reports as cr


def _report(folder: Path, rows: list[tuple[str, str, float, float]]) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "scores.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["content", "style", "style_ratio", "content_ratio"])
        w.writerows(rows)
    return folder


def _pairs(style: list[float], content: list[float]) -> list[tuple[str, str, float, float]]:
    return [(f"c{i}", f"s{i % 3}", s, c) for i, (s, c) in enumerate(zip(style, content, strict=True))]


def test_a_consistent_improvement_is_lower_and_a_noisy_one_a_tie(tmp_path: Path) -> None:
    style = [0.5 + 0.05 * i for i in range(12)]  # a wide spread between pairs
    content = [0.6 + 0.01 * (i % 4) for i in range(12)]
    base = cr.read_scores(_report(tmp_path / "a", _pairs(style, content)))
    better = cr.read_scores(
        _report(tmp_path / "b", _pairs([s - 0.02 for s in style], [c + (-1) ** i * 0.01 for i, c in
                                                                      enumerate(content)]))
    )  # fmt: skip
    rows = {r.metric: r for r in cr.compare(base, better, "b")}
    s = rows["style_ratio"]
    assert s.mean_difference.mean == pytest.approx(-0.02)
    assert s.median_difference.median == pytest.approx(-0.02)
    assert s.fraction_lower == 1.0 and s.verdict == "lower"
    # the medians' own spread is far wider than the shift: only pairing separates them
    assert s.baseline_median - s.median == pytest.approx(0.02)
    c = rows["content_ratio"]
    assert c.verdict == "tie" and c.fraction_lower == pytest.approx(0.5)


def test_only_shared_pairs_are_compared(tmp_path: Path) -> None:
    base = cr.read_scores(_report(tmp_path / "a", [("x", "s", 0.5, 0.5), ("y", "s", 0.4, 0.5)]))
    other = cr.read_scores(_report(tmp_path / "b", [("y", "s", 0.3, 0.5), ("z", "s", 0.9, 0.9)]))
    (row, _) = cr.compare(base, other, "b")
    assert row.mean_difference.n == 1 and row.mean_difference.mean == pytest.approx(-0.1)
    disjoint = cr.read_scores(_report(tmp_path / "c", [("q", "s", 0.3, 0.5)]))
    with pytest.raises(cr.ReportError, match="share no"):
        cr.compare(base, disjoint, "c")


def test_bad_reports_are_named(tmp_path: Path) -> None:
    with pytest.raises(cr.ReportError, match=r"scores\.csv: no such file"):
        cr.read_scores(tmp_path / "missing")
    bad = _report(tmp_path / "bad", [("x", "s", 0.5, 0.5)])
    (bad / "scores.csv").write_text("content,style,style_ratio,content_ratio\nx,s,oops,0.5\n")
    with pytest.raises(cr.ReportError, match=r"bad/scores.csv, line 2: .* not numbers"):
        cr.read_scores(bad)
    (bad / "scores.csv").write_text("content,style,style_ratio,content_ratio\nx,s,0.1,0.5\nx,s,0.2,0.5\n")
    with pytest.raises(cr.ReportError, match=r"line 3: the pair .* twice"):
        cr.read_scores(bad)
    (bad / "scores.csv").write_text("content,style,ratio\nx,s,0.1\n")
    with pytest.raises(cr.ReportError, match="needs columns"):
        cr.read_scores(bad)


def test_main_prints_and_writes_without_overwriting(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _report(tmp_path / "a", _pairs([0.5, 0.6, 0.7], [0.6, 0.6, 0.6]))
    b = _report(tmp_path / "b", _pairs([0.4, 0.5, 0.6], [0.7, 0.7, 0.7]))
    out = tmp_path / "cmp.csv"
    assert cr.main([str(a), str(b), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| style_ratio | 3 | 0.600 | 0.500 | -0.100" in printed
    rows = list(csv.DictReader(open(out)))
    assert [r["metric"] for r in rows] == ["style_ratio", "content_ratio"]
    assert float(rows[1]["mean_difference"]) == pytest.approx(0.1)
    before = out.read_text()
    assert cr.main([str(a), str(b), "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == before
    assert cr.main([str(a), str(tmp_path / "none")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_artefact_metrics_are_compared_when_both_reports_have_them(tmp_path: Path) -> None:
    def artefacts(folder: Path, border: list[float]) -> None:
        with open(folder / "artefacts.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["method", "content", "style", "checkerboard_output", "border_output"])
            w.writerows(("adain", f"c{i}", f"s{i % 3}", 2.0, b) for i, b in enumerate(border))
            w.writerow(("gatys", "c0", "s0", 9.0, 9.0))  # another method's row: not the model's

    a = _report(tmp_path / "a", _pairs([0.5, 0.6, 0.7, 0.8], [0.6] * 4))
    b = _report(tmp_path / "b", _pairs([0.5, 0.6, 0.7, 0.8], [0.6] * 4))
    artefacts(a, [0.10, 0.12, 0.08, 0.11])
    only_scores = cr.compare(cr.read_scores(a), cr.read_scores(b), "b")
    assert [r.metric for r in only_scores] == ["style_ratio", "content_ratio"]
    artefacts(b, [0.05, 0.06, 0.05, 0.04])
    rows = {r.metric: r for r in cr.compare(cr.read_scores(a), cr.read_scores(b), "b")}
    assert rows["border_output"].mean_difference.mean == pytest.approx(-0.0525)
    assert rows["border_output"].verdict == "lower" and rows["checkerboard_output"].verdict == "tie"
