"""How far the AdaIN recipe can go on the held-out measure: a model against the perfect decoder.

    python -m experiments.default_model bound --model FILE [--output DIR] [--overwrite]

A trained decoder ``D`` is asked to produce an image whose encoder features at the AdaIN layer equal the
AdaIN target ``t = AdaIN(E(c), E(s))``. The *perfect decoder* does that exactly: it inverts ``t`` by
optimisation (:class:`experiments.perfect_decoder.PerfectDecoder`, L-BFGS on the pixels from the content
image). Its score under ``../shared/tools/score_stylization.py`` is what the model would reach if training
were complete, so it separates two questions: how far the decoder is from its target (model − bound), and
how far the target itself is from a goal on that measure (the bound).

For the first ``[bound] pairs`` pairs of the report's Gatys subset (content ``i`` with style ``i mod S``;
:func:`experiments.default_model_report.gatys_subset`), both at the shorter side ``[bound] size`` (an
inversion costs about a quarter of an hour per pair at 256 px on one CPU core, so the bound is not made at
the report's 384 px; the scorer resizes contents and styles to each output's size):

* ``model/``: the model's outputs (``adain stylize`` with the report's ``context_padding``);
* ``perfect/``: the inversions, copied from the cache ``[bound] cache/<key>/`` (see
  :mod:`experiments.ablation_bound`: ``key`` hashes the encoder, sizes, iterations and the input files'
  sha256; an interrupted run continues where it stopped, and a later report with the same settings
  inverts nothing). The encoder is the model's own (its ``encoder`` setting, default weights).
* ``bound_scores.csv``: per pair, both methods' style and content ratios, the model output's *target
  error* (the inversion's objective ``mean (E(x) − t)² / mean t²`` at the AdaIN layer: how far the model
  is from what it was trained to produce) and the inversion's iterations, stop reason, objective at the
  start (the content image) and the end, and seconds; ``summary.csv``: medians and the mean
  paired difference model − perfect with its 95 % t-interval; ``bound.png``: content | style | model |
  perfect per pair (128-px cells); ``run.csv`` and ``summary.md``, which renders the CSVs.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adain.errors import AdainError, OutputError

__all__ = ["BOUND_DEFAULTS", "model_encoder", "run_bound"]

BOUND_DEFAULTS: dict[str, Any] = {
    "pairs": 4,
    "size": 256,
    "iterations": 120,
    "cache": "~/.cache/adain-mmd/default-model/perfect",
}
_WRITTEN = ("model", "perfect", "bound_scores.csv", "summary.csv", "summary.md", "run.csv")
_METRICS = ("style_ratio", "content_ratio")


def model_encoder(model: Path) -> str:
    """The encoder name a model file or training checkpoint was trained with.

    Raises:
        AdainError: the file holds no encoder name (a raw decoder state dict).
    """
    from adain.errors import CheckpointError
    from adain.torchfiles import safe_torch_load

    state = safe_torch_load(model, "model file", CheckpointError)
    config = state.get("config") if isinstance(state, dict) else None
    if not isinstance(config, dict) or not isinstance(config.get("encoder"), str):
        raise AdainError(f"{model}: no encoder name in the file (a model file of adain train is needed)")
    return config["encoder"]


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    from experiments.default_model_report import REPORT_DEFAULTS

    bound = {**BOUND_DEFAULTS, **config.get("bound", {})}
    unknown = sorted(set(bound) - set(BOUND_DEFAULTS))
    if unknown:
        raise AdainError(f"[bound]: unknown keys {unknown}; known: {sorted(BOUND_DEFAULTS)}")
    for key in ("pairs", "size", "iterations"):
        if isinstance(bound[key], bool) or not isinstance(bound[key], int) or bound[key] < 1:
            raise AdainError(f"[bound] {key} must be a positive integer, got {bound[key]!r}")
    return {**bound, "report": {**REPORT_DEFAULTS, **config["report"]}}


def _prepare_output(output: Path, overwrite: bool) -> None:
    from adain.outputs import check_output_folder

    check_output_folder(output)
    earlier = [name for name in _WRITTEN if (output / name).exists()]
    if earlier and not overwrite:
        raise OutputError(f"{output} already holds a bound ({', '.join(earlier)}); pass --overwrite")
    for name in ("model", "perfect"):
        if (output / name).exists():
            shutil.rmtree(output / name)
    output.mkdir(parents=True, exist_ok=True)


def _paired(model: list[float], perfect: list[float]) -> tuple[float, float, float]:
    """Mean of ``model − perfect`` with its 95 % t-interval (infinite bounds for one pair)."""
    from experiments.intervals import paired_difference

    interval = paired_difference(model, perfect)
    return interval.mean, interval.low, interval.high


def _target_errors(pairs: list[tuple[Path, Path]], images: Path, size: int, encoder_name: str) -> list[float]:
    """:meth:`PerfectDecoder.error` of each pair's image in ``images`` (resized to the content's size at
    ``size`` if it differs): how far the model's output is from the target the inversion was asked for."""
    import torch.nn.functional as F

    from adain.encoders import build_encoder
    from adain.io import load_image
    from experiments.perfect_decoder import PerfectDecoder

    encoder = build_encoder(encoder_name, weights="DEFAULT").eval()
    decoder = PerfectDecoder(encoder)
    layers, errors = [decoder.layer], []
    for content, style in pairs:
        c = load_image(content, size=size, encoder=encoder, layers=layers)
        s = load_image(style, size=size, encoder=encoder, layers=layers)
        image = load_image(images / f"{content.stem}_stylized_{style.stem}.png")
        if image.shape != c.shape:
            image = F.interpolate(image[None], size=c.shape[-2:], mode="bilinear", antialias=True)[0]
        errors.append(decoder.error(image, c, s))
    return errors


def run_bound(
    config: Mapping[str, Any], model: Path, output: Path, *, overwrite: bool = False, command: str = ""
) -> Path:
    """Write the comparison of the module doc into ``output``; returns ``output / "summary.md"``.

    Raises:
        OutputError: ``output`` holds an earlier bound and ``overwrite`` is false.
        AdainError: bad ``[bound]`` settings, a model file without an encoder name, a failed stylization,
            inversion or scorer.
    """
    from adain.io import list_images
    from experiments.ablation_bound import _cache_folder, _score, invert_pairs, perfect_key, perfect_subset
    from experiments.default_model import _resolve
    from experiments.default_model_report import _fmt, _read_csv, _run_scorer, _sheet, _stylize, _write_csv
    from experiments.runs import file_sha256

    settings = _settings(config)
    report = settings["report"]
    paper, work = _resolve(config["data"]["paper"]), _resolve(config["data"]["work"])
    content_dir, style_dir, scorer = paper / "content", work / "heldout_style", _resolve(report["scorer"])
    model, output = model.resolve(), output.resolve()
    encoder = model_encoder(model)
    n_contents, n_styles = len(list_images(content_dir)), len(list_images(style_dir))
    if settings["pairs"] > n_contents * n_styles:
        raise AdainError(
            f"[bound] pairs is {settings['pairs']}, more than the {n_contents} × {n_styles} held-out "
            f"contents × styles in {content_dir} and {style_dir}"
        )
    _prepare_output(output, overwrite)
    rep = {
        "perfect_pairs": settings["pairs"],
        "perfect_size": settings["size"],
        "style_size": settings["size"],
        "perfect_iterations": settings["iterations"],
        "content_dir": content_dir,
        "style_dir": style_dir,
        "scorer": scorer,
    }
    pairs = perfect_subset(rep, "[bound]")
    times: list[tuple[str, float]] = []

    start = time.perf_counter()
    stylize_rep = {**report, "content_size": settings["size"], "style_size": settings["size"]}
    for content, style in pairs:
        _stylize(model, content, style, output / "model", stylize_rep)
    model_scores = _run_scorer(scorer, output / "model", content_dir, style_dir)
    times.append(("model: stylize and score (s)", time.perf_counter() - start))

    start = time.perf_counter()
    key, described = perfect_key(pairs, rep, encoder, "DEFAULT")
    cache = _cache_folder(_resolve(settings["cache"]), key, described)
    invert_pairs(pairs, cache, rep, encoder, "DEFAULT")
    perfect_rows = {(r["content"], r["style"]): r for r in _score(pairs, cache, rep)}
    times.append(("perfect decoder: invert (unless cached) and score (s)", time.perf_counter() - start))
    shutil.copytree(cache / "images", output / "perfect")

    names = [(c.stem, s.stem) for c, s in pairs]
    missing = [f"{c}_stylized_{s}" for c, s in names if (c, s) not in model_scores]
    if missing:
        raise AdainError(f"no score for {len(missing)} outputs in {output / 'model'}: {missing}")
    model_errors = _target_errors(pairs, output / "model", settings["size"], encoder)
    extra = ("iterations", "stop_reason", "objective_start", "objective_end", "seconds")
    header = ["content", "style", *(f"{m}_{k}" for m in ("model", "perfect") for k in _METRICS)]
    _write_csv(
        output / "bound_scores.csv",
        [*header, "model_target_error", *extra],
        [
            [c, s, *model_scores[(c, s)], *(_fmt(perfect_rows[(c, s)][k]) for k in _METRICS), _fmt(error)]
            + [perfect_rows[(c, s)][k] for k in extra]
            for (c, s), error in zip(names, model_errors, strict=True)
        ],
    )
    rows = _read_csv(output / "bound_scores.csv")
    summary = []
    for metric in _METRICS:
        model_values = [float(r[f"model_{metric}"]) for r in rows]
        perfect_values = [float(r[f"perfect_{metric}"]) for r in rows]
        summary.append(
            [
                metric,
                _fmt(statistics.median(model_values)),
                _fmt(statistics.median(perfect_values)),
                *map(_fmt, _paired(model_values, perfect_values)),
                len(rows),
            ]
        )
    _write_csv(
        output / "summary.csv",
        ["metric", "model_median", "perfect_median", "model_minus_perfect_mean", "low", "high", "n"],
        summary,
    )
    sheet_rows: list[list[Path | None]] = []
    for content, style in pairs:
        name = f"{content.stem}_stylized_{style.stem}.png"
        sheet_rows.append([content, style, output / "model" / name, output / "perfect" / name])
    _sheet(sheet_rows, 128, output / "bound.png")
    run_rows = [
        ["command", command],
        ["model", str(model)],
        ["model_sha256", file_sha256(model)],
        ["encoder", encoder],
        ["pairs", str(len(pairs))],
        ["size", str(settings["size"])],
        ["context_padding", str(report["context_padding"])],
        ["inversion_iterations_cap", str(settings["iterations"])],
        ["inversion_cache", str(cache)],
        *[[name, f"{seconds:.1f}"] for name, seconds in times],
    ]
    _write_csv(output / "run.csv", ["key", "value"], run_rows)
    path = output / "summary.md"
    path.write_text(_summary_md(output))
    return path


def _summary_md(output: Path) -> str:
    """``summary.md`` from the CSVs (every number is a CSV cell)."""
    from experiments.default_model_report import _read_csv, _table

    run = {r["key"]: r["value"] for r in _read_csv(output / "run.csv")}
    summary, rows = _read_csv(output / "summary.csv"), _read_csv(output / "bound_scores.csv")
    medians = _table(
        ["metric", "model (median)", "perfect decoder (median)", "model − perfect, mean [95 % t]", "n"],
        [
            [r["metric"], r["model_median"], r["perfect_median"], f"{r['model_minus_perfect_mean']} "
             f"[{r['low']}, {r['high']}]", r["n"]]
            for r in summary
        ],
    )  # fmt: skip
    header = ["content", "style", "model style", "perfect style", "model content", "perfect content"]
    header += ["target error: content → inversion (iterations, stop)", "target error: model"]
    per_pair = [
        [r["content"], r["style"], r["model_style_ratio"], r["perfect_style_ratio"], r["model_content_ratio"],
         r["perfect_content_ratio"], f"{float(r['objective_start']):.4g} → {float(r['objective_end']):.4g} "
         f"({r['iterations']}, {r['stop_reason']})", f"{float(r['model_target_error']):.4g}"]
        for r in rows
    ]  # fmt: skip
    times = [[k, v] for k, v in run.items() if k.endswith("(s)")]
    intro = (
        f"Produced by `{run['command']}`.\n\nModel `{run['model']}`, sha256 `{run['model_sha256']}`, "
        f"encoder `{run['encoder']}`; {run['pairs']} held-out pairs at a shorter side of {run['size']} px "
        f"(the model with context padding {run['context_padding']} px). The perfect decoder inverts the "
        "AdaIN target at the encoder's AdaIN layer by L-BFGS from the content image (at most "
        f"{run['inversion_iterations_cap']} iterations). Lower is better."
    )
    sections = [
        "# Default model against the perfect decoder",
        intro,
        medians,
        "Per pair:\n\n" + _table(header, per_pair),
        "Target error: `mean (E(x) − t)² / mean t²` at the AdaIN layer, the inversion's objective, for the "
        "content image (where the inversion starts), the inversion's end and the model's output.",
        "Images: `bound.png` (content | style | model | perfect decoder).",
        "## Wall times\n\n" + _table(["step", "seconds"], times),
    ]
    return "\n\n".join(sections) + "\n"
