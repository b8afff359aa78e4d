"""The default model's report on held-out pairs (``python -m experiments.default_model report``).

Everything it writes goes into one report folder, which it refuses to reuse unless ``overwrite``:

* ``adain/``: every held-out content × held-out style, stylized by ``adain stylize`` (PNG, no JPEG blocks);
  ``gatys/``: the subset of ``gatys_pairs`` pairs by Gatys optimisation (:func:`adain.gatys.optimize_image`,
  VGG-19 ``vgg19_caffe_normalised``, Gram loss; layers and weights from ``[report]``), named as the scorer
  expects (``<content>_stylized_<style>.png``); ``gatys_pairs = 0`` skips Gatys (and every file below that
  holds it), e.g. for A/B reports of two models on a machine without the Gatys cache;
* ``scores.csv`` (every pair), ``scores_by_style.csv`` (per-style medians), ``gatys_scores.csv`` (the
  subset: Gatys and AdaIN side by side, both scored by the same scorer);
* ``taps.csv``: every pair's style ratio split by the scorer's taps and into mean and std parts, with the
  σ of output, style and content at each tap (:mod:`experiments.style_ratio_taps`);
* ``colour.csv``, ``colour_by_style.csv``, ``colour_by_content.csv`` (:mod:`adain.evaluation.colour`);
* ``artefacts.csv`` (:mod:`adain.evaluation.artefacts`, outputs and their contents);
* ``summary.csv`` (medians with bootstrap 95 % intervals over pairs) and ``run.csv`` (command, model file,
  sha256, trained iterations, wall times), which ``summary.md`` renders: every number in it is a cell of
  one of these CSVs;
* ``contact_sheet.png`` (contents × styles, 128-px cells), ``contact_sheet_small.jpg`` (longest side ≤
  1024), ``gatys_vs_adain.png`` (content | style | AdaIN | Gatys per subset pair), ``training_curves.png``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adain.errors import AdainError, OutputError

__all__ = ["REPORT_DEFAULTS", "gatys_subset", "run_report", "stylize_command", "training_curves"]

REPORT_DEFAULTS: dict[str, Any] = {
    "content_size": 384,
    "style_size": 384,
    "context_padding": 32,
    "precision": "fp32",
    "scorer": "../shared/tools/score_stylization.py",
    "gatys_pairs": 8,
    "gatys_iterations": 300,
    "gatys_cache": "",
    "gatys_content_layer": "conv4_2",
    "gatys_style_layers": {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2},
    "gatys_style_weight": 10.0,
    "curve_window": 25,
    "border_band": 4,
    "bootstrap_resamples": 2000,
}
_SCORES_NOTE = (
    "Medians over pairs with percentile bootstrap 95 % intervals (resampling pairs); scores from "
    "`score_stylization.py` (lower is better)."
)
_TAPS_NOTE = (
    "## Style ratio by tap\n\nThe style ratio's sums split by the scorer's MobileNetV2 taps (s2: stride 2, "
    "colours and the finest texture … s16: stride 16; `taps.csv`, `experiments/style_ratio_taps.py`): each "
    "tap's own ratio, its share of the output's distance to the style, the std part's share of that, and "
    "the mean over channels of σ for output, style and content.\n\n"
)
_COLOUR_NOTE = (
    "## Colour statistics (RGB mean and std per channel)\n\n`nearest_is_own`: the output's nearest style "
    "in colour statistics is its own; spreads: mean pairwise distance across styles, of one content's "
    "outputs and of the styles themselves.\n\n"
)
_ARTEFACT_NOTE = (
    "## Artefacts\n\n`checkerboard`: spectral power at the 2/4/8-px periods over what neighbouring "
    "frequencies predict (≈ 1: none); `border`: mean luminance step between the outer band and the next "
    "(see `adain/evaluation/artefacts.py`); outputs vs their content images.\n\n"
)
_WRITTEN = ("adain", "gatys", "summary.md", "scores.csv", "summary.csv", "run.csv")
_SCORE_LINE = re.compile(r"(\S+)_stylized_(\S+)\.\w+: style ratio (\S+), content ratio (\S+)")


def _fmt(x: Any) -> str:
    """Three decimals (a float or a 0-d tensor): the precision of every number in the CSVs."""
    return f"{float(x):.3f}"


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([list(header), *[list(r) for r in rows]])


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def gatys_subset(n_contents: int, n_styles: int, n: int) -> list[tuple[int, int]]:
    """``n`` distinct (content, style) index pairs spread over the styles: pair ``k`` is content ``k mod C``
    with style ``(k + ⌊k / lcm(C, S)⌋) mod S`` (content ``i`` with style ``i mod S`` while that repeats no
    pair, then shifted by one style per cycle).

    Raises:
        ValueError: ``n`` outside ``[1, C·S]``.
    """
    if not 1 <= n <= n_contents * n_styles:
        raise ValueError(f"gatys_pairs must be in [1, {n_contents * n_styles}] (contents × styles), got {n}")
    cycle = math.lcm(n_contents, n_styles)
    return [(k % n_contents, (k + k // cycle) % n_styles) for k in range(n)]


def _run_scorer(scorer: Path, outputs: Path, contents: Path, styles: Path) -> dict[tuple[str, str], tuple]:
    """``(content stem, style stem) → (style ratio, content ratio)`` as the scorer printed them."""
    if not scorer.is_file():
        raise AdainError(f"scorer {scorer} not found; set [report] scorer to score_stylization.py")
    command = [sys.executable, str(scorer), "--outputs", str(outputs), "--content", str(contents)]
    done = subprocess.run([*command, "--style", str(styles)], capture_output=True, text=True)
    if done.returncode != 0:
        raise AdainError(f"scorer {scorer} failed on {outputs}: {done.stderr.strip() or done.stdout.strip()}")
    scores = {}
    for line in done.stdout.splitlines():
        match = _SCORE_LINE.fullmatch(line.strip())
        if match:
            c, s, sr, cr = match.groups()
            scores[(c, s)] = (sr, cr)
    return scores


def stylize_command(
    model: Path, contents: Path, styles: Path, out: Path, rep: Mapping[str, Any]
) -> list[str]:
    """The ``adain stylize`` command line of a report's outputs, with the ``[report]`` settings."""
    command = [sys.executable, "-m", "adain", "stylize", "--content", str(contents), "--style", str(styles)]
    command += ["--model", str(model), "--output", str(out), "--ext", "png"]
    command += ["--content-size", str(rep["content_size"]), "--style-size", str(rep["style_size"])]
    command += ["--context-padding", str(rep["context_padding"])]
    # pinned, not "auto": a report's numbers must not depend on whether the machine has AMX
    command += ["--precision", str(rep["precision"])]
    return command


def _stylize(model: Path, contents: Path, styles: Path, out: Path, rep: Mapping[str, Any]) -> None:
    from experiments.default_model import REPO

    command = stylize_command(model, contents, styles, out, rep)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise AdainError(f"adain stylize failed for {model}: {done.stderr.strip()[-2000:]}")


def _gatys_key(rep: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The settings that determine a pair's Gatys output, and their sha256 (the cache folder's name)."""
    settings = {
        **{k: rep[k] for k in ("content_size", "style_size", "gatys_iterations", "gatys_content_layer")},
        "gatys_style_layers": dict(rep["gatys_style_layers"]),
        "gatys_style_weight": float(rep["gatys_style_weight"]),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16], settings


def _gatys(pairs: list[tuple[Path, Path]], out: Path, rep: Mapping[str, Any]) -> list[float]:
    """Gatys optimisation of each (content, style) into ``out``; returns the seconds per pair.

    The outputs do not depend on the AdaIN model, so they are kept in ``rep["gatys_cache"]/<settings
    sha256>/`` (with ``settings.json`` and each pair's seconds, by output name) and reused by a later report
    with the same settings for the same pairs; an empty ``gatys_cache`` turns the cache off.
    """
    import mmd
    from adain.atomic import atomic_write
    from adain.encoders import build_encoder
    from adain.gatys import OptimizeSettings, optimize_image
    from adain.io import load_image, save_image
    from experiments.default_model import _resolve

    key, described = _gatys_key(rep)
    cache = _resolve(rep["gatys_cache"]) / key if rep.get("gatys_cache") else out
    cache.mkdir(parents=True, exist_ok=True)

    def write_json(path: Path, data: Any) -> None:
        def write(fh: Any) -> None:
            fh.write(json.dumps(data, indent=1, sort_keys=True).encode())

        atomic_write(path, write)

    write_json(cache / "settings.json", described)
    timings_path = cache / "seconds.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    encoder = None
    seconds = []
    for content, style in pairs:
        name = f"{content.stem}_stylized_{style.stem}.png"
        if not ((cache / name).is_file() and name in timings):
            if encoder is None:
                encoder = build_encoder("vgg19_caffe_normalised", weights="DEFAULT").eval()
            settings = OptimizeSettings(
                style_layers=dict(rep["gatys_style_layers"]),
                content_layer=rep["gatys_content_layer"],
                style_weight=float(rep["gatys_style_weight"]),
                iterations=int(rep["gatys_iterations"]),
            )
            c = load_image(content, size=int(rep["content_size"]))
            s = load_image(style, size=int(rep["style_size"]))
            result = optimize_image(encoder, mmd.build_style_loss({"name": "gram"}), s, c, settings)
            save_image(result.image, cache / name)
            timings[name] = result.seconds
            write_json(timings_path, timings)
        seconds.append(float(timings[name]))
    if cache != out:
        out.mkdir(parents=True)
        for content, style in pairs:
            name = f"{content.stem}_stylized_{style.stem}.png"
            shutil.copy2(cache / name, out / name)
    return seconds


def _image(path: Path, size: int | tuple[int, int] | None = None):
    from adain.io import load_image

    return load_image(path, size=size)


def training_curves(stages: Sequence[Mapping[str, Any]], work: Path, path: Path, window: int) -> list[str]:
    """One figure of every stage's ``WORK/<stage>/log.csv`` (iterations on one axis in config order,
    :func:`curve_positions`; a line at each stage boundary): content loss on top, the second term (style,
    or pixel MSE for a ``--reconstruction`` stage) below; running means of ``window`` iterations over the raw
    values (faint). Returns the names of the stages that had a log (no figure when none had)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from adain.train import read_log

    logs = []
    for stage in stages:
        log = work / stage["name"] / "log.csv"
        rows = read_log(log) if log.is_file() else []
        if rows:
            logs.append((stage, rows))
    if not logs:
        return []
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    positions = curve_positions([(stage, [r["iteration"] for r in rows]) for stage, rows in logs])
    for n, ((stage, rows), it) in enumerate(zip(logs, positions, strict=True)):
        recon = "--reconstruction" in stage.get("args", [])
        second = "pixel MSE" if recon else "style"
        for ax, key, label in ((top, "content", "content"), (bottom, "style", second)):
            raw = [r[key] for r in rows]
            colour = f"C{n}"
            ax.plot(it, raw, color=colour, alpha=0.2, linewidth=0.6)
            ax.plot(
                it, _running_mean(raw, window), color=colour, linewidth=1.2, label=f"{stage['name']}: {label}"
            )
        if n < len(logs) - 1:
            for ax in (top, bottom):
                ax.axvline(it[-1], color="grey", linestyle="--", linewidth=0.8)
    for ax, label in ((top, "content loss"), (bottom, "style / pixel MSE")):
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    bottom.set_xlabel(f"iteration (stages in order; running mean of {window})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return [stage["name"] for stage, _ in logs]


def curve_positions(stages: Sequence[tuple[Mapping[str, Any], Sequence[float]]]) -> list[list[float]]:
    """The x positions of each stage's logged iterations on one axis, stages in config order.

    A stage that starts afresh (its log counts from 1) is shifted to begin where the previous one ended;
    a ``fork = true`` stage continues the previous stage's training state and its iteration counter, so
    its iterations already are positions on that axis and are kept.

    Args:
        stages: ``(stage config, its log's iterations)`` per stage that has a log.
    """
    positions: list[list[float]] = []
    end = 0.0
    for n, (stage, iterations) in enumerate(stages):
        offset = 0.0 if (n > 0 and stage.get("fork", False)) else end
        positions.append([offset + i for i in iterations])
        if positions[-1]:
            end = positions[-1][-1]
    return positions


def _running_mean(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _thumb(path: Path, cell: int):
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return ImageOps.fit(im.convert("RGB"), (cell, cell))


def _sheet(rows: list[list[Path | None]], cell: int, path: Path):
    from PIL import Image

    sheet = Image.new("RGB", (cell * max(len(r) for r in rows), cell * len(rows)), "white")
    for i, row in enumerate(rows):
        for j, item in enumerate(row):
            if item is not None:
                sheet.paste(_thumb(item, cell), (cell * j, cell * i))
    sheet.save(path)
    return sheet


def _prepare_output(output: Path, overwrite: bool) -> None:
    from adain.outputs import check_output_folder

    check_output_folder(output)
    earlier = [name for name in _WRITTEN if (output / name).exists()]
    if earlier and not overwrite:
        raise OutputError(
            f"{output} already holds a report ({', '.join(earlier)}); pass --overwrite to replace it"
        )
    for name in ("adain", "gatys"):
        if (output / name).exists():
            shutil.rmtree(output / name)
    for name in ("gatys_scores.csv", "gatys_vs_adain.png"):  # an earlier report's, if this one has no Gatys
        (output / name).unlink(missing_ok=True)
    output.mkdir(parents=True, exist_ok=True)


def _trained_iterations(model: Path) -> str:
    from adain.errors import CheckpointError
    from adain.torchfiles import safe_torch_load

    state = safe_torch_load(model, "model file", CheckpointError)
    if not isinstance(state, dict):
        return "unknown (a raw decoder)"
    training = state.get("training")
    if isinstance(training, dict) and "iteration" in training:  # a training checkpoint
        return str(training["iteration"])
    if "iteration" in state:
        return str(state["iteration"])
    config = state.get("config") or {}
    if "trained_iterations" in config:  # a model file written by adain train
        return str(config["trained_iterations"])
    return f"{config['iterations']} (the run's target)" if "iterations" in config else "unknown"


def run_report(
    config: Mapping[str, Any], model: Path, output: Path, *, overwrite: bool = False, command: str = ""
) -> Path:
    """Write the whole report (see the module doc) into ``output``; returns ``output / "summary.md"``.

    Raises:
        OutputError: ``output`` holds an earlier report and ``overwrite`` is false, or cannot be written.
        AdainError: the stylization or the scorer failed, an output is missing.
    """
    import torch

    from adain.evaluation import border_step, checkerboard_prominence, colour_check, colour_stats
    from adain.io import list_images
    from experiments import style_ratio_taps
    from experiments.default_model import _resolve
    from experiments.intervals import bootstrap_median
    from experiments.runs import file_sha256

    rep = {**REPORT_DEFAULTS, **config["report"]}
    paper, work = _resolve(config["data"]["paper"]), _resolve(config["data"]["work"])
    content_dir, style_dir = paper / "content", work / "heldout_style"
    model, output = model.resolve(), output.resolve()
    contents, styles = list_images(content_dir), list_images(style_dir)
    if len(styles) < 2 or not contents:
        raise AdainError(
            f"need >= 2 held-out styles in {style_dir} and contents in {content_dir}; run prepare"
        )
    n_gatys = rep["gatys_pairs"]
    if (
        isinstance(n_gatys, bool)
        or not isinstance(n_gatys, int)
        or not 0 <= n_gatys <= len(contents) * len(styles)
    ):
        raise AdainError(
            f"[report] gatys_pairs is {n_gatys!r}; it must be an integer in "
            f"[0, {len(contents) * len(styles)}] (the held-out contents × styles; 0: no Gatys comparison)"
        )
    _prepare_output(output, overwrite)
    times: list[tuple[str, float]] = []

    start = time.perf_counter()
    _stylize(model, content_dir, style_dir, output / "adain", rep)
    times.append(("adain stylize, all pairs (s)", time.perf_counter() - start))
    start = time.perf_counter()
    scorer = _resolve(rep["scorer"])
    scores = _run_scorer(scorer, output / "adain", content_dir, style_dir)
    times.append(("scoring, all pairs (s)", time.perf_counter() - start))
    grid = [(c, s) for c in contents for s in styles]
    missing = [f"{c.stem}_stylized_{s.stem}" for c, s in grid if (c.stem, s.stem) not in scores]
    if missing:
        raise AdainError(f"no score for {len(missing)} outputs in {output / 'adain'}: {missing[:5]}")
    _write_csv(
        output / "scores.csv",
        ["content", "style", "style_ratio", "content_ratio"],
        [[c.stem, s.stem, *scores[(c.stem, s.stem)]] for c, s in grid],
    )
    by_style = []
    for s in styles:
        values = [scores[(c.stem, s.stem)] for c in contents]
        by_style.append(
            [
                s.stem,
                _fmt(statistics.median(float(v[0]) for v in values)),
                _fmt(statistics.median(float(v[1]) for v in values)),
            ]
        )
    _write_csv(
        output / "scores_by_style.csv", ["style", "median_style_ratio", "median_content_ratio"], by_style
    )
    start = time.perf_counter()
    taps = style_ratio_taps.pair_rows(output / "adain", content_dir, style_dir)
    _write_csv(
        output / "taps.csv",
        style_ratio_taps.PAIR_COLUMNS,
        [
            [f"{r[k]:.6g}" if isinstance(r[k], float) else r[k] for k in style_ratio_taps.PAIR_COLUMNS]
            for r in taps
        ],
    )
    times.append(("style ratio by tap, all pairs (s)", time.perf_counter() - start))

    subset = [] if n_gatys == 0 else [
        (contents[i], styles[j]) for i, j in gatys_subset(len(contents), len(styles), n_gatys)
    ]  # fmt: skip
    if subset:
        start = time.perf_counter()
        gatys_seconds = _gatys(subset, output / "gatys", rep)
        times.append(("gatys, all subset pairs (s)", time.perf_counter() - start))
        times.append(("gatys, median per pair (s)", statistics.median(gatys_seconds)))
        gatys_scores = _run_scorer(scorer, output / "gatys", content_dir, style_dir)
        _write_csv(
            output / "gatys_scores.csv",
            [
                "content",
                "style",
                "gatys_style_ratio",
                "gatys_content_ratio",
                "adain_style_ratio",
                "adain_content_ratio",
                "gatys_seconds",
            ],
            [
                [c.stem, s.stem, *gatys_scores[(c.stem, s.stem)], *scores[(c.stem, s.stem)], f"{t:.1f}"]
                for (c, s), t in zip(subset, gatys_seconds, strict=True)
            ],
        )

    start = time.perf_counter()
    adain_out = {(c.stem, s.stem): output / "adain" / f"{c.stem}_stylized_{s.stem}.png" for c, s in grid}
    out_stats = torch.stack(
        [torch.stack([colour_stats(_image(adain_out[(c.stem, s.stem)])) for s in styles]) for c in contents]
    )
    style_stats = torch.stack([colour_stats(_image(s, int(rep["style_size"]))) for s in styles])
    check = colour_check(out_stats, style_stats)
    _write_csv(
        output / "colour.csv",
        ["content", "style", "distance_own", "distance_others_mean", "nearest_style", "nearest_is_own"],
        [
            [c.stem, s.stem, _fmt(check.own[i, j]), _fmt(check.others[i, j]),
             styles[int(check.distance[i, j].argmin())].stem, int(check.nearest_own[i, j])]
            for i, c in enumerate(contents) for j, s in enumerate(styles)
        ],
    )  # fmt: skip
    fraction = check.own_fraction()
    _write_csv(
        output / "colour_by_style.csv",
        ["style", "nearest_is_own_fraction", "median_distance_own", "median_distance_others"],
        [
            [s.stem, _fmt(fraction[j]), _fmt(check.own[:, j].median()), _fmt(check.others[:, j].median())]
            for j, s in enumerate(styles)
        ],
    )
    _write_csv(
        output / "colour_by_content.csv",
        ["content", "output_spread", "style_spread"],
        [[c.stem, _fmt(check.spread[i]), _fmt(check.style_spread)] for i, c in enumerate(contents)],
    )
    artefact_rows = []
    band = int(rep["border_band"])
    for method, pairs, folder in (("adain", grid, output / "adain"), ("gatys", subset, output / "gatys")):
        for c, s in pairs:
            out = _image(folder / f"{c.stem}_stylized_{s.stem}.png")
            ref = _image(c, tuple(out.shape[-2:]))
            checks = [checkerboard_prominence(out), checkerboard_prominence(ref)]
            checks += [border_step(out, band), border_step(ref, band)]
            artefact_rows.append([method, c.stem, s.stem, *map(_fmt, checks)])
    _write_csv(
        output / "artefacts.csv",
        [
            "method",
            "content",
            "style",
            "checkerboard_output",
            "checkerboard_content",
            "border_output",
            "border_content",
        ],
        artefact_rows,
    )
    times.append(("colour and artefact checks (s)", time.perf_counter() - start))

    cell = 128
    sheet_rows: list[list[Path | None]] = [[None, *styles]]
    sheet_rows += [[c, *[adain_out[(c.stem, s.stem)] for s in styles]] for c in contents]
    sheet = _sheet(sheet_rows, cell, output / "contact_sheet.png")
    sheet.thumbnail((1024, 1024))
    sheet.save(output / "contact_sheet_small.jpg", quality=90)
    if subset:
        _sheet(
            [
                [c, s, adain_out[(c.stem, s.stem)], output / "gatys" / f"{c.stem}_stylized_{s.stem}.png"]
                for c, s in subset
            ],
            cell,
            output / "gatys_vs_adain.png",
        )
    curves = training_curves(config["stage"], work, output / "training_curves.png", int(rep["curve_window"]))

    _summary_csv(output, int(rep["bootstrap_resamples"]), bootstrap_median)
    sha = file_sha256(model)
    run_rows = [
        ["command", command],
        ["model", str(model)],
        ["model_sha256", sha],
        ["trained_iterations", _trained_iterations(model)],
        ["pairs", str(len(grid))],
        ["gatys_pairs", str(len(subset))],
        ["gatys_iterations", str(rep["gatys_iterations"])],
        ["gatys_settings_sha256", _gatys_key(rep)[0]],
        ["content_size", str(rep["content_size"])],
        ["style_size", str(rep["style_size"])],
        ["context_padding", str(rep["context_padding"])],
        ["precision", str(rep["precision"])],
        ["curves_stages", " ".join(curves) or "none (no log.csv under the work folder)"],
        *[[name, f"{seconds:.1f}"] for name, seconds in times],
    ]
    _write_csv(output / "run.csv", ["key", "value"], run_rows)
    summary = output / "summary.md"
    summary.write_text(_summary_md(output))
    return summary


def _summary_csv(output: Path, resamples: int, bootstrap_median) -> None:
    """``summary.csv``: medians and bootstrap intervals of the per-pair CSVs' columns."""
    rows = []

    def add(table: str, method: str, metric: str, values: list[float], statistic: str = "median") -> None:
        m = bootstrap_median(values, resamples=resamples, statistic=statistic)
        rows.append([table, method, metric, _fmt(m.median), _fmt(m.low), _fmt(m.high), m.n])

    scores = _read_csv(output / "scores.csv")
    for metric in ("style_ratio", "content_ratio"):
        add("all pairs", "adain", metric, [float(r[metric]) for r in scores])
    gatys = _read_csv(output / "gatys_scores.csv") if (output / "gatys_scores.csv").is_file() else []
    for method in ("adain", "gatys") if gatys else ():
        for metric in ("style_ratio", "content_ratio"):
            add("gatys subset", method, metric, [float(r[f"{method}_{metric}"]) for r in gatys])
    if (output / "taps.csv").is_file():
        from experiments.style_ratio_taps import summarise

        for t in summarise(_read_csv(output / "taps.csv"), resamples=resamples):
            if t["metric"] != "style_ratio":
                rows.append(
                    [
                        "style ratio by tap",
                        "adain",
                        t["metric"],
                        *map(_fmt, (t["median"], t["low"], t["high"])),
                        t["n"],
                    ]
                )
    colour = _read_csv(output / "colour.csv")
    own = [float(r["nearest_is_own"]) for r in colour]
    add("colour", "adain", "nearest_is_own_fraction (a mean)", own, statistic="mean")
    add("colour", "adain", "distance_own", [float(r["distance_own"]) for r in colour])
    add("colour", "adain", "distance_others_mean", [float(r["distance_others_mean"]) for r in colour])
    spread = _read_csv(output / "colour_by_content.csv")
    add("colour", "adain", "output_spread_per_content", [float(r["output_spread"]) for r in spread])
    add("colour", "styles", "style_spread", [float(spread[0]["style_spread"])])
    artefacts = _read_csv(output / "artefacts.csv")
    for method in ("adain", "gatys") if gatys else ("adain",):
        for metric in ("checkerboard_output", "checkerboard_content", "border_output", "border_content"):
            add("artefacts", method, metric, [float(r[metric]) for r in artefacts if r["method"] == method])
    _write_csv(output / "summary.csv", ["table", "method", "metric", "median", "low", "high", "n"], rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join([*lines, *["| " + " | ".join(map(str, r)) + " |" for r in rows]])


def _summary_md(output: Path) -> str:
    """``summary.md`` from the CSVs (every number is a CSV cell)."""
    run = {r["key"]: r["value"] for r in _read_csv(output / "run.csv")}
    summary = _read_csv(output / "summary.csv")
    by_style = _read_csv(output / "scores_by_style.csv")
    colour = _read_csv(output / "colour_by_style.csv")

    def section(table: str) -> str:
        rows = [
            [r["method"], r["metric"], r["median"], f"[{r['low']}, {r['high']}]", r["n"]]
            for r in summary
            if r["table"] == table
        ]
        return _table(["method", "metric", "median", "95 % bootstrap interval", "n"], rows)

    times = [[k, v] for k, v in run.items() if k.endswith("(s)")]
    return (
        "\n\n".join(
            [
                "# Default model: held-out report",
                f"Produced by `{run['command']}`.\n\nModel `{run['model']}`, "
                f"sha256 `{run['model_sha256']}`, trained iterations {run['trained_iterations']}; "
                f"{run['pairs']} held-out pairs at content size {run['content_size']}, "
                f"style size {run['style_size']}, context padding "
                f"{run.get('context_padding', 'none (before it existed)')} px. " + _SCORES_NOTE,
                "## Scores, all held-out pairs\n\n" + section("all pairs"),
                _TAPS_NOTE + section("style ratio by tap"),
                "Per style (medians over contents):\n\n"
                + _table(
                    ["style", "style ratio", "content ratio"],
                    [[r["style"], r["median_style_ratio"], r["median_content_ratio"]] for r in by_style],
                ),
                f"## AdaIN vs Gatys on the same {run['gatys_pairs']} pairs\n\nGatys: VGG-19 "
                f"(`vgg19_caffe_normalised`), Gram loss, {run['gatys_iterations']} L-BFGS iterations.\n\n"
                + section("gatys subset")
                if run["gatys_pairs"] != "0"
                else "## AdaIN vs Gatys\n\nNot run (`gatys_pairs = 0`).",
                _COLOUR_NOTE
                + section("colour")
                + "\n\nPer style:\n\n"
                + _table(
                    ["style", "nearest is own (fraction)", "distance to own", "mean distance to others"],
                    [
                        [
                            r["style"],
                            r["nearest_is_own_fraction"],
                            r["median_distance_own"],
                            r["median_distance_others"],
                        ]
                        for r in colour
                    ],
                ),
                _ARTEFACT_NOTE + section("artefacts"),
                "## Wall times\n\n" + _table(["step", "seconds"], times),
                f"Training curves of stages: {run['curves_stages']} (`training_curves.png`).",
            ]
        )
        + "\n"
    )
