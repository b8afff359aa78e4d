"""Held-out evaluation of the decoder ablation's runs (``python -m experiments.decoder_ablation --evaluate``).

For every run ``OUTPUT/<method>/seed<k>/decoder_final.pth`` it stylizes each held-out content × held-out
style (``adain stylize``, the default model report's step) and scores the outputs with
``../shared/tools/score_stylization.py`` (style ratio and content ratio per pair, lower is better; the
same scorer call as the default model's report). It writes into ``OUTPUT/heldout/``:

* ``<method>/seed<k>/images/`` (the outputs), ``scores.csv`` (content, style, style_ratio, content_ratio)
  and ``model.json`` (the model file's sha256 and the settings). A run whose ``model.json`` matches is not
  rescored; one whose model changed (trained further) is refused unless ``overwrite``;
* ``by_seed.csv``: per method and seed, the medians over pairs;
* ``summary.csv``: per method and metric, the median over seeds × pairs with its percentile bootstrap 95 %
  interval (resampling the (seed, pair) units, :func:`experiments.intervals.bootstrap_median`).

With ``perfect_pairs > 0`` it adds the perfect-decoder bound (:mod:`experiments.ablation_bound`: the AdaIN
target inverted by optimisation on the first ``perfect_pairs`` pairs of a fixed order, cached in
``perfect/<settings key>/``): rows of method ``perfect`` with seed ``-`` in ``by_seed.csv`` and
``summary.csv``, and ``summary_perfect_pairs.csv``: the summary of every method restricted to those pairs,
the table in which the bound is comparable (with ``perfect_pairs = 0`` an earlier one is removed, so the
summaries always describe one evaluation).

Settings (``[evaluate]`` of the ablation config; defaults: the default model's report pairs)::

    content_dir = "../shared/data/adain-paper/content"          # the paper's photos: never trained on
    style_dir = "~/.cache/adain-mmd/default-model/heldout_style" # held out of the training split
    content_size = 384, style_size = 384, bootstrap_resamples = 2000
    precision = "fp32"           # adain stylize --precision (pinned: scores do not depend on AMX)
    scorer = "../shared/tools/score_stylization.py"
    perfect_pairs = 0            # the bound's pairs (0: no bound)
    perfect_iterations = 300     # L-BFGS iterations of each inversion at most
    perfect_size = 256           # the inversion's content size (may be below content_size: CPU cost)
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adain.devices import PRECISION_CHOICES
from adain.errors import AdainError, OutputError
from experiments.runs import ConfigError, check_keys, file_sha256, resolve, write_json

__all__ = ["EVALUATE_DEFAULTS", "evaluate_ablation", "score_run", "summarise"]

EVALUATE_DEFAULTS: dict[str, Any] = {
    "content_dir": "../shared/data/adain-paper/content",
    "style_dir": "~/.cache/adain-mmd/default-model/heldout_style",
    "content_size": 384,
    "style_size": 384,
    "context_padding": 32,  # adain stylize --context-padding, as the default model's report
    "precision": "fp32",  # adain stylize --precision, pinned as in the report: scores must not depend on AMX
    "scorer": "../shared/tools/score_stylization.py",
    "bootstrap_resamples": 2000,
    "perfect_pairs": 0,
    "perfect_iterations": 300,
    "perfect_size": 256,
}
METRICS = ("style_ratio", "content_ratio")
_INTS = {  # key → least value
    "content_size": 1,
    "context_padding": 0,
    "style_size": 1,
    "bootstrap_resamples": 1,
    "perfect_pairs": 0,
    "perfect_iterations": 1,
    "perfect_size": 1,
}
_BOUND_KEYS = ("perfect_pairs", "perfect_iterations", "perfect_size")  # no part of a trained run's scores
_BOUND = "perfect"  # the bound's method name


def settings(evaluate: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``[evaluate]`` with defaults, paths resolved and checked.

    Raises:
        ConfigError: an unknown key, a missing folder or scorer, a size or count that is not an integer at
            least its least value (naming ``where`` and the key).
    """
    check_keys(evaluate, EVALUATE_DEFAULTS, where, "[evaluate]")
    out = {**EVALUATE_DEFAULTS, **evaluate}
    for key, least in _INTS.items():
        value = out[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"{where}: key 'evaluate.{key}' must be an integer >= {least}; got {value!r}")
    if out["precision"] not in PRECISION_CHOICES:
        raise ConfigError(
            f"{where}: key 'evaluate.precision' must be one of {', '.join(PRECISION_CHOICES)}; "
            f"got {out['precision']!r}"
        )
    for key in ("content_dir", "style_dir", "scorer"):
        out[key] = resolve(str(out[key]))
        exists = out[key].is_file() if key == "scorer" else out[key].is_dir()
        if not exists:
            hint = " (run `python -m experiments.default_model prepare`)" if key == "style_dir" else ""
            raise ConfigError(f"{where}: key 'evaluate.{key}': {out[key]} does not exist{hint}")
    return out


def score_run(model: Path, folder: Path, rep: Mapping[str, Any], *, overwrite: bool) -> list[dict[str, Any]]:
    """Stylize every held-out pair with ``model`` into ``folder/images`` and score it; ``scores.csv`` rows.

    Raises:
        OutputError: ``folder`` holds scores of another model file (or settings) and not ``overwrite``.
        AdainError: stylization or scoring failed, or a pair has no score.
    """
    from adain.io import list_images
    from experiments.default_model_report import _run_scorer, _stylize, _write_csv

    key = {
        "model": str(model),
        "sha256": file_sha256(model),
        **{k: str(v) for k, v in rep.items() if k != "bootstrap_resamples" and k not in _BOUND_KEYS},
    }
    record, scores_csv = folder / "model.json", folder / "scores.csv"
    if scores_csv.is_file() and record.is_file():
        if json.loads(record.read_text()) == key:
            return _rows(scores_csv)
        if not overwrite:
            raise OutputError(
                f"{folder} holds scores of another model file or settings than {model}; pass --overwrite to "
                "rescore it"
            )
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    contents, styles = list_images(rep["content_dir"]), list_images(rep["style_dir"])
    _stylize(model, rep["content_dir"], rep["style_dir"], folder / "images", rep)
    scores = _run_scorer(rep["scorer"], folder / "images", rep["content_dir"], rep["style_dir"])
    grid = [(c.stem, s.stem) for c in contents for s in styles]
    missing = [f"{c}_stylized_{s}" for c, s in grid if (c, s) not in scores]
    if missing:
        raise AdainError(f"no score for {len(missing)} outputs in {folder / 'images'}: {missing[:5]}")
    rows = [[c, s, *scores[(c, s)]] for c, s in grid]
    _write_csv(scores_csv, ["content", "style", *METRICS], rows)
    write_json(record, key)  # last: a folder without it is rescored
    return _rows(scores_csv)


def _rows(scores_csv: Path) -> list[dict[str, Any]]:
    """The rows of a ``scores.csv``, ratios as floats."""
    from experiments.default_model_report import _read_csv

    return [{**r, **{m: float(r[m]) for m in METRICS}} for r in _read_csv(scores_csv)]


Scores = Mapping[tuple[str, int | str], Sequence[Mapping[str, Any]]]  # (method, seed) → scores rows
_SUMMARY_HEADER = ["method", "metric", "seeds", "median", "low", "high", "n"]


def _summary_rows(scores: Scores, resamples: int) -> list[list[Any]]:
    """Per method and metric: the median over its seeds × pairs with the bootstrap 95 % interval."""
    from experiments.default_model_report import _fmt
    from experiments.intervals import bootstrap_median

    summary = []
    for method in dict.fromkeys(m for m, _ in scores):
        runs = {seed: rows for (m, seed), rows in scores.items() if m == method}
        for metric in METRICS:
            interval = bootstrap_median(
                [r[metric] for rows in runs.values() for r in rows], resamples=resamples
            )
            seeds = " ".join(str(s) for s in runs)
            summary.append(
                [
                    method,
                    metric,
                    seeds,
                    *map(_fmt, (interval.median, interval.low, interval.high)),
                    interval.n,
                ]
            )
    return summary


def _restrict(scores: Scores, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, int | str], list[Any]]:
    """Every run's rows of ``pairs`` (content stem, style stem) only.

    Raises:
        AdainError: a run has no score for one of them.
    """
    keep = set(pairs)
    out = {key: [r for r in rows if (r["content"], r["style"]) in keep] for key, rows in scores.items()}
    short = [f"{m}/{s}" for (m, s), rows in out.items() if len(rows) != len(keep)]
    if short:
        raise AdainError(
            f"run(s) {', '.join(short)} have no score for some of the bound's pairs {sorted(keep)}"
        )
    return out


def summarise(scores: Scores, output: Path, resamples: int, pairs: Sequence[tuple[str, str]] = ()) -> Path:
    """``by_seed.csv`` and ``summary.csv`` (see the module doc) from ``(method, seed) → scores rows``, and,
    with ``pairs`` (the bound's), ``summary_perfect_pairs.csv``: the same summary of those pairs only.
    Returns the path of ``summary.csv``."""
    from experiments.default_model_report import _fmt, _write_csv

    by_seed = [
        [method, seed, *(_fmt(statistics.median(r[m] for r in rows)) for m in METRICS), len(rows)]
        for (method, seed), rows in scores.items()
    ]
    _write_csv(
        output / "by_seed.csv", ["method", "seed", *(f"median_{m}" for m in METRICS), "pairs"], by_seed
    )
    path = output / "summary.csv"
    _write_csv(path, _SUMMARY_HEADER, _summary_rows(scores, resamples))
    restricted = output / "summary_perfect_pairs.csv"
    if pairs:
        _write_csv(restricted, _SUMMARY_HEADER, _summary_rows(_restrict(scores, pairs), resamples))
    elif restricted.is_file():
        restricted.unlink()  # from an evaluation with a bound: it would not describe this one
    return path


def evaluate_ablation(
    config: Any, names: Sequence[str], seeds: Sequence[int], *, overwrite: bool = False
) -> Path:
    """Score every finished run ``(name, seed)`` of an :class:`experiments.decoder_ablation.AblationConfig`
    on the held-out pairs, and the perfect-decoder bound on ``perfect_pairs`` of them
    (:func:`experiments.ablation_bound.perfect_bound`); returns the path of ``summary.csv``.

    Raises:
        ConfigError: bad ``[evaluate]`` settings, a run without ``decoder_final.pth`` (not finished), a
            method named ``perfect`` beside the bound.
        OutputError, AdainError: see :func:`score_run` and :func:`experiments.ablation_bound.perfect_bound`.
    """
    from adain.train import FINAL_MODEL_NAME
    from experiments.ablation_bound import perfect_bound
    from experiments.decoder_ablation import run_folder

    rep = settings(config.evaluate, str(config.path))
    unfinished = [
        f"{name}/seed{seed}"
        for seed in seeds
        for name in names
        if not (run_folder(config.output, name, seed) / FINAL_MODEL_NAME).is_file()
    ]
    if unfinished:
        raise ConfigError(
            f"{config.path}: run(s) {', '.join(unfinished)} in {config.output} have no {FINAL_MODEL_NAME}; "
            "train them first (the same command without --evaluate)"
        )
    if rep["perfect_pairs"] and _BOUND in names:
        raise ConfigError(f"{config.path}: method name {_BOUND!r} is the bound's; rename the method")
    heldout = config.output / "heldout"
    scores: dict[tuple[str, int | str], list[dict[str, Any]]] = {}
    for name in names:
        for seed in seeds:
            model = run_folder(config.output, name, seed) / FINAL_MODEL_NAME
            scores[(name, seed)] = score_run(model, heldout / name / f"seed{seed}", rep, overwrite=overwrite)
    pairs, bound = perfect_bound(config, rep, heldout)
    if bound:
        scores[(_BOUND, "-")] = bound
    return summarise(scores, heldout, int(rep["bootstrap_resamples"]), pairs)
