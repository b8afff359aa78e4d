"""The perfect-decoder bound of the decoder ablation's held-out evaluation (``[evaluate] perfect_pairs > 0``).

For each pair of a fixed subset of the held-out pairs, the AdaIN target ``t = AdaIN(E(c), E(s))`` at the
ablation encoder's AdaIN layer is inverted by optimisation (:class:`experiments.perfect_decoder.
PerfectDecoder`): the output of a decoder that inverted the encoder exactly, the bound of every trained one.

**Subset.** The first ``perfect_pairs`` pairs of :func:`experiments.default_model_report.gatys_subset`'s order
over the held-out contents and styles sorted by path (:func:`adain.io.list_images`): pair ``k`` is content
``k mod C`` with style ``(k + ⌊k / lcm(C, S)⌋) mod S``, so the first pairs cover different contents and
different styles (content ``i`` with style ``i mod S`` until that would repeat a pair).

**Settings.** The encoder is ``[train] encoder`` with ``[train] encoder_weights`` if set, else
``weights="DEFAULT"`` (the decoders' encoder); the content is loaded at ``perfect_size`` (shorter side), the
style at ``style_size``; L-BFGS runs ``perfect_iterations`` iterations at most, stopping earlier when the
objective falls by less than :data:`TOLERANCE` (relative) over :data:`WINDOW` iterations. ``perfect_size``
may be smaller than ``content_size`` (an inversion at 384 px costs minutes per pair on a CPU); the scorer
resizes content and style to each output's size, so the bound is then scored at ``perfect_size`` while the
decoders are scored at ``content_size``.

**Cache.** ``HELDOUT/perfect/<key>/``, ``key`` the first 16 hex digits of the sha256 of its
``settings.json`` (encoder, weights, sizes, iterations, tolerance, window, and the pair list with every input
file's name and sha256). It holds ``images/<content>_stylized_<style>.png`` (the scorer's names),
``inversions.json`` (per output: seconds, iterations, stop reason, objective at the start and the end,
device; written after each image, so an interrupted evaluation continues where it stopped), ``scores.csv``
and ``scored.json`` (the scorer file and its sha256; the scores are reused while it is the same). A later
evaluation with the same settings inverts nothing; another setting gets another folder and leaves this one
as it is; a folder whose ``settings.json`` is not its key's is refused.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adain.errors import AdainError, OutputError
from experiments.ablation_heldout import METRICS, _rows
from experiments.runs import ConfigError, file_sha256, resolve, write_json

__all__ = ["TOLERANCE", "WINDOW", "perfect_bound", "perfect_key", "perfect_subset"]

TOLERANCE = 1e-4  #: relative decrease of the inversion's objective over WINDOW iterations that stops it
WINDOW = 20


def _name(content: Path, style: Path) -> str:
    return f"{content.stem}_stylized_{style.stem}.png"


def perfect_subset(rep: Mapping[str, Any], where: str) -> list[tuple[Path, Path]]:
    """The bound's ``(content, style)`` files: the first ``rep["perfect_pairs"]`` of the module doc's order.

    Raises:
        ConfigError: more pairs than held-out contents × styles (naming ``where`` and the key).
    """
    from adain.io import list_images
    from experiments.default_model_report import gatys_subset

    n = int(rep["perfect_pairs"])
    if n == 0:
        return []
    contents, styles = list_images(rep["content_dir"]), list_images(rep["style_dir"])
    if n > len(contents) * len(styles):
        raise ConfigError(
            f"{where}: key 'evaluate.perfect_pairs' is {n}, more than the {len(contents)} × {len(styles)} "
            "held-out contents × styles"
        )
    return [(contents[i], styles[j]) for i, j in gatys_subset(len(contents), len(styles), n)]


def perfect_key(
    pairs: Sequence[tuple[Path, Path]], rep: Mapping[str, Any], encoder: str, weights: str
) -> tuple[str, dict[str, Any]]:
    """The settings that determine the bound's images (see the module doc) and their key."""
    described = {
        "encoder": encoder,
        "weights": weights,
        "weights_sha256": None if weights == "DEFAULT" else file_sha256(resolve(weights)),
        **{k: int(rep[k]) for k in ("perfect_size", "style_size", "perfect_iterations")},
        "tolerance": TOLERANCE,
        "window": WINDOW,
        "pairs": [
            {
                "content": c.name,
                "content_sha256": file_sha256(c),
                "style": s.name,
                "style_sha256": file_sha256(s),
            }
            for c, s in pairs
        ],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16], described


def _cache_folder(root: Path, key: str, described: Mapping[str, Any]) -> Path:
    """``root/key`` with its ``settings.json`` (written, or checked to be ``described``).

    Raises:
        OutputError: the folder's ``settings.json`` describes other settings.
    """
    folder = root / key
    record = folder / "settings.json"
    if record.is_file():
        if json.loads(record.read_text()) != json.loads(json.dumps(described)):
            raise OutputError(
                f"{record} describes other settings than its key {key}; move the folder away to invert again"
            )
        return folder
    (folder / "images").mkdir(parents=True, exist_ok=True)
    write_json(record, described)
    return folder


def invert_pairs(
    pairs: Sequence[tuple[Path, Path]], folder: Path, rep: Mapping[str, Any], encoder_name: str, weights: str
) -> dict[str, dict[str, Any]]:
    """Invert the AdaIN target of every pair not yet in ``folder`` into ``folder/images``; returns
    ``inversions.json`` (output name → seconds, iterations, stop_reason, objective_start, objective_end)."""
    import torch

    from adain.encoders import build_encoder
    from adain.io import load_image, save_image
    from experiments.perfect_decoder import PerfectDecoder

    path = folder / "inversions.json"
    records: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}
    todo = [
        (c, s)
        for c, s in pairs
        if not ((folder / "images" / _name(c, s)).is_file() and _name(c, s) in records)
    ]
    if not todo:
        return records
    device = "cuda" if torch.cuda.is_available() else "cpu"
    weight_arg = weights if weights == "DEFAULT" else str(resolve(weights))
    encoder = build_encoder(encoder_name, weights=weight_arg).eval().to(device)
    decoder = PerfectDecoder(
        encoder, iterations=int(rep["perfect_iterations"]), tolerance=TOLERANCE, window=WINDOW
    )
    layers = [decoder.layer]
    for content, style in todo:
        c = load_image(content, size=int(rep["perfect_size"]), encoder=encoder, layers=layers).to(device)
        s = load_image(style, size=int(rep["style_size"]), encoder=encoder, layers=layers).to(device)
        start = time.perf_counter()
        result = decoder.invert(c, s)
        seconds = time.perf_counter() - start
        save_image(result.image.cpu(), folder / "images" / _name(content, style))
        records[_name(content, style)] = {
            "seconds": round(seconds, 2),
            "iterations": len(result.history) - 1,
            "stop_reason": result.stop_reason,
            "objective_start": result.history[0],
            "objective_end": result.history[-1],
            "device": device,
        }
        write_json(path, records)  # after the image: an output without a record is inverted again
    return records


def _score(pairs: Sequence[tuple[Path, Path]], folder: Path, rep: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``folder/scores.csv`` (scored by the trained runs' scorer call unless ``scored.json`` matches)."""
    from experiments.default_model_report import _run_scorer, _write_csv

    scored = {"scorer": str(rep["scorer"]), "sha256": file_sha256(Path(rep["scorer"]))}
    scores_csv, record = folder / "scores.csv", folder / "scored.json"
    if scores_csv.is_file() and record.is_file() and json.loads(record.read_text()) == scored:
        return _rows(scores_csv)
    scores = _run_scorer(Path(rep["scorer"]), folder / "images", rep["content_dir"], rep["style_dir"])
    grid = [(c.stem, s.stem) for c, s in pairs]
    missing = [f"{c}_stylized_{s}" for c, s in grid if (c, s) not in scores]
    if missing:
        raise AdainError(f"no score for {len(missing)} outputs in {folder / 'images'}: {missing[:5]}")
    inversions = json.loads((folder / "inversions.json").read_text())
    extra = ("seconds", "iterations", "stop_reason", "objective_start", "objective_end")
    rows = [
        [c, s, *scores[(c, s)], *(inversions[f"{c}_stylized_{s}.png"][k] for k in extra)] for c, s in grid
    ]
    _write_csv(scores_csv, ["content", "style", *METRICS, *extra], rows)
    write_json(record, scored)  # last: scores without it are rescored
    return _rows(scores_csv)


def perfect_bound(
    config: Any, rep: Mapping[str, Any], heldout: Path
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """The bound on the subset of an :class:`experiments.decoder_ablation.AblationConfig`: its
    ``(content stem, style stem)`` pairs and ``scores.csv`` rows (both empty when ``perfect_pairs`` is 0).

    Raises:
        ConfigError: see :func:`perfect_subset`. OutputError: see :func:`_cache_folder`.
        AdainError: an input image, the encoder's weights, the inversion or the scorer failed.
    """
    pairs = perfect_subset(rep, str(config.path))
    if not pairs:
        return [], []
    train = next(iter(config.methods.values()))  # [train] is shared: every method has the same encoder
    weights = train.encoder_weights or "DEFAULT"
    key, described = perfect_key(pairs, rep, train.encoder, weights)
    folder = _cache_folder(heldout / "perfect", key, described)
    invert_pairs(pairs, folder, rep, train.encoder, weights)
    return [(c.stem, s.stem) for c, s in pairs], _score(pairs, folder, rep)
