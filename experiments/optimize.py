"""Optimisation-based style transfer and texture synthesis with every configured style loss.

    python -m experiments.optimize --config experiments/configs/optimize_quick.toml \\
        [--output DIR] [--seed N] [--quick] [--size PX] [--iterations N] [--resume | --force]

Runs each method of the config (``[methods.<name>]``: ``gram``, ``mmd`` under a kernel, ``meanstd``) on
each content/style pair (style transfer) and each texture (texture synthesis) with
:func:`adain.gatys.optimize_image`, and writes a run folder::

    config.toml         the config file as given
    manifest.json       versions, device, seed, effective settings, timings
    metrics.csv/.json   one row per (run, method): final losses, evaluations, seconds
    history.json        per-iteration losses of every (run, method)
    images/<run>/<method>.png
    figures/loss_<run>.png/.pdf    loss vs iteration, one line per method
    figures/grid.png/.pdf          inputs and one column per method
    settings.json                  the effective experiment (what --resume checks)
    records/<run>/<method>.json    one per finished output: its metrics row and history
    sittings.json                  start, seconds, outputs made and git commit of each sitting

Resuming (:mod:`experiments.resume`). Each output (one optimisation, or one decoder's image) is recorded
when it is made: its image, then its record, written atomically last, so an output killed midway is
redone. Ctrl-C or SIGTERM stop the run with a message naming the folder; ``--resume`` continues it: the
recorded outputs are kept (with their measured seconds), the rest are made, then metrics, history,
figures and manifest are rebuilt from all records (and the saved 8-bit images), so the files equal an
uninterrupted run's. Every job is seeded by its own seed through private generators
(:mod:`adain.gatys`), so its result does not depend on which jobs ran before it in the process. A folder
whose ``settings.json`` differs from the current config (keys, ``--quick``, ``--size``, ...) is refused,
naming the keys; without ``--resume`` an existing non-empty folder is an error, and ``--force`` deletes it
and starts over. The manifest's ``timings_s.total`` is the sum of the sittings' seconds.

Repeats and sweeps: ``seeds = [0, 1, 2]`` (top level; default ``[seed]``) runs every pair and texture once
per seed, and ``[optimize] style_weights = [...]`` runs every pair once per style weight (textures have no
content term, so no sweep); a job is named ``<content>__<style>[__seed<k>][__w<weight>]`` and its rows
carry ``pair``, ``seed`` and ``style_weight``. ``[optimize] tolerance``/``window`` stop each run at
convergence (``iterations`` is then the cap; see :mod:`adain.gatys`), ``init_jitter`` makes
content-initialised runs depend on the seed. An ``[evaluation]`` table (``encoder``, ``style_layers``,
``content_layer``, optional ``weights`` and ``label``) names a second network that
:mod:`experiments.compare` scores the outputs with, next to the optimisation encoder (cross-network
evaluation).

Encoder options: every other key of ``[encoder]`` (besides ``name`` and ``weights``) and of
``[evaluation]`` is passed to ``build_encoder`` (``pooling = "avg"`` for ``vgg19_caffe*``); a key the
encoder does not take is a :class:`ConfigError` naming the file and the key. The manifest records them
(``encoder_options``, ``encoder_label``), and scores carry the label ``<name>+<key>=<value>``.

Config keys: see ``experiments/configs/optimize_quick.toml``; each ``[methods.<name>]`` holds one key,
``style_loss``, an :mod:`mmd` spec (``{ name = "mmd", kernel = { name = "gaussian", sigma = "median" } }``,
see :mod:`experiments.runs`). ``--quick`` applies the ``[quick]`` table
(``size``, ``iterations``, ``pairs``, ``textures``); ``--size`` and ``--iterations`` override last. Relative
paths resolve against the repository root.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import mmd
from adain.encoders import DEFAULT_WEIGHTS, available_encoders, build_encoder, encoder_options
from adain.gatys import OptimizeResult, OptimizeSettings, optimize_image
from adain.io import load_image, save_image
from experiments.resume import (
    RunFolderError,
    RunInterrupted,
    add_sitting,
    prepare,
    read_record,
    read_sittings,
    sigterm_as_interrupt,
    write_record,
)
from experiments.runs import (
    REPO_ROOT,
    ConfigError,
    check_keys,
    git_commit,
    jsonable,
    load_toml,
    manifest,
    resolve,
    run_folder,
    save_figure,
    style_loss_spec,
    write_json,
)

__all__ = [
    "REPO_ROOT", "Config", "ConfigError", "Method", "encoder_label", "experiment_settings", "load_config",
    "main", "run",
]  # fmt: skip

_TOP_KEYS = {
    "seed", "seeds", "output", "encoder", "images", "optimize", "texture", "quick", "methods", "decoders",
    "evaluation",
}  # fmt: skip
_SETTINGS_KEYS = {
    "content_layer", "style_layers", "content_weight", "style_weight", "tv_weight", "init", "optimizer",
    "iterations", "lr", "parametrisation", "normalise", "tolerance", "window", "init_jitter",
}  # fmt: skip
_QUICK_KEYS = {"size", "iterations", "pairs", "textures", "seeds", "style_weights"}
_EVALUATION_KEYS = {"encoder", "weights", "style_layers", "content_layer", "label"}
_ENCODER_KEYS = {"name", "weights"}


def encoder_label(name: str, options: Mapping[str, Any]) -> str:
    """The name a run records for an encoder built with ``options``: ``name`` alone without options,
    else ``name+key=value`` per option (sorted), e.g. ``vgg19_caffe_normalised+pooling=avg``, so scores
    of differently configured networks never share a label (evaluation.csv's ``encoder`` column)."""
    return "+".join([name] + [f"{k}={options[k]}" for k in sorted(options)])


# ---- config ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One style loss to compare: ``name`` (the table name) and its :class:`mmd.StyleLoss`."""

    name: str
    loss: mmd.StyleLoss
    spec: dict[str, Any]


@dataclass(frozen=True)
class Network:
    """An encoder that scores outputs: its name, weights file, style layers, content layer, the label its
    scores carry (the ``encoder`` column of evaluation.csv; :func:`encoder_label` unless set) and the
    options it is built with (``build_encoder(encoder, **options)``, e.g. ``{"pooling": "avg"}``)."""

    encoder: str
    weights: Path | None
    style_layers: dict[str, float]
    content_layer: str | None
    label: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", encoder_label(self.encoder, self.options))

    def build(self) -> Any:
        """The frozen encoder with its pretrained (or configured) weights and options."""
        return build_encoder(self.encoder, weights=self.weights or DEFAULT_WEIGHTS, **self.options)


@dataclass(frozen=True)
class Config:
    """A validated config. ``pairs``: (content, style) paths; ``textures``: style paths; ``decoders``:
    ``(name, model file)`` of trained AdaIN decoders, run on every pair next to the optimisation methods
    (model file ``"default"``: the one shipped with the package); ``encoder_options``: the ``[encoder]``
    table's keys other than ``name`` and ``weights``, passed to ``build_encoder``."""

    path: Path
    text: str
    seed: int
    output: Path
    encoder: str
    weights: Path | None
    size: int
    pairs: tuple[tuple[Path, Path], ...]
    textures: tuple[Path, ...]
    transfer: OptimizeSettings
    texture: OptimizeSettings
    methods: tuple[Method, ...]
    decoders: tuple[tuple[str, Path], ...] = ()
    seeds: tuple[int, ...] = ()
    style_weights: tuple[float, ...] = ()
    evaluation: Network | None = None
    encoder_options: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder_label(self) -> str:
        """The optimisation encoder's name with its options (:func:`encoder_label`)."""
        return encoder_label(self.encoder, self.encoder_options)

    def build_encoder(self) -> Any:
        """The optimisation encoder: ``[encoder]`` name, weights and options."""
        return build_encoder(self.encoder, weights=self.weights or DEFAULT_WEIGHTS, **self.encoder_options)

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds every job is repeated with (``(seed,)`` without a ``seeds`` key)."""
        return self.seeds or (self.seed,)

    @property
    def run_style_weights(self) -> tuple[float, ...]:
        """The style weights of the transfer sweep (``(optimize.style_weight,)`` without a sweep)."""
        return self.style_weights or (self.transfer.style_weight,)


def _method(name: str, spec: Any, where: str) -> Method:
    if not isinstance(spec, dict) or set(spec) != {"style_loss"}:
        raise ConfigError(
            f"{where}: key 'methods.{name}' must be a table with one key, style_loss (an mmd spec, e.g. "
            'style_loss = { name = "mmd", kernel = { name = "polynomial" } })'
        )
    canonical = style_loss_spec(spec["style_loss"], where, f"methods.{name}.style_loss")
    return Method(name, mmd.build_style_loss(canonical), canonical)


def _settings(table: Mapping[str, Any], where: str, key: str, **extra: Any) -> OptimizeSettings:
    check_keys(table, _SETTINGS_KEYS, where, f"[{key}]")
    try:
        return OptimizeSettings(**{**table, **extra})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: key '{key}': {exc}") from None


#: The model "file" of ``[decoders] name = "invert"``: the perfect-decoder reference, the AdaIN target
#: inverted by optimisation (:mod:`experiments.perfect_decoder`), with the transfer's iteration cap,
#: tolerance (1e-4 when 0) and window.
INVERT = Path("invert")


def _encoder_options(table: Mapping[str, Any], known: set[str], where: str, key: str) -> dict[str, Any]:
    """The keys of an encoder table (``[encoder]`` or ``[evaluation]``) outside ``known``: options of
    ``build_encoder`` for the encoder named by ``table[key]``, checked against what that encoder takes and
    by building it once with random weights (so a bad value fails here, naming the file and key)."""
    prefix = "encoder" if key == "name" else "evaluation"
    options = {k: v for k, v in table.items() if k not in known}
    name = table.get(key)
    if not options or not isinstance(name, str):
        return options
    if name not in available_encoders():
        raise ConfigError(
            f"{where}: key '{prefix}.{key}': unknown encoder {name!r}; "
            f"available: {', '.join(available_encoders())}"
        )
    accepted = encoder_options(name)
    for option in options:
        if option not in accepted:
            takes = f"its options: {sorted(accepted)}" if accepted else "it takes no options"
            raise ConfigError(
                f"{where}: unknown key '{prefix}.{option}': not a key of [{prefix}] ({sorted(known)}) and "
                f"not an option of encoder {name!r} ({takes})"
            )
    try:
        build_encoder(name, weights=None, **options)
    except ValueError as exc:
        raise ConfigError(f"{where}: key '{prefix}.{sorted(options)[0]}': {exc}") from None
    return options


def _decoders(table: Any, where: str, method_names: set[str]) -> tuple[tuple[str, Path], ...]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(
            f"{where}: key 'decoders' must be a table of name = 'model file' (or 'default', or 'invert')"
        )
    clash = sorted(set(table) & method_names)
    if clash:
        raise ConfigError(f"{where}: key 'decoders': name(s) {clash} are also methods; names must differ")
    out = []
    for name, value in table.items():
        if value == "invert":
            out.append((name, INVERT))
            continue
        if value == "default":
            from adain.stylize_cli import default_model_path

            path = default_model_path()
        else:
            path = resolve(value)
        if not path.is_file():
            raise ConfigError(f"{where}: key 'decoders.{name}': model file not found: {path}")
        out.append((name, path))
    return tuple(out)


def load_config(
    path: str | Path,
    *,
    quick: bool = False,
    seed: int | None = None,
    size: int | None = None,
    iterations: int | None = None,
) -> Config:
    """Read and validate a config file; ``quick``/``seed``/``size``/``iterations`` override it.

    Raises:
        ConfigError: the message names the file and the offending key.
    """
    path = Path(path)
    raw = load_toml(path)
    where = str(path)

    def need(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], prefix: str = "") -> Any:
        if key not in table:
            raise ConfigError(f"{where}: missing key '{prefix}{key}'")
        if not isinstance(table[key], kind) or (isinstance(table[key], bool) and kind is not bool):
            raise ConfigError(
                f"{where}: key '{prefix}{key}' has the wrong type ({type(table[key]).__name__})"
            )
        return table[key]

    check_keys(raw, _TOP_KEYS, where, "the top level")
    images = dict(need(raw, "images", dict))
    optimize = dict(need(raw, "optimize", dict))
    quick_table = raw.get("quick", {})
    check_keys(quick_table, _QUICK_KEYS, where, "[quick]")
    if quick:
        images.update({k: v for k, v in quick_table.items() if k in ("size", "pairs", "textures")})
        if "iterations" in quick_table:
            optimize["iterations"] = quick_table["iterations"]
        if "style_weights" in quick_table:
            optimize["style_weights"] = quick_table["style_weights"]
        if "seeds" in quick_table:
            raw = {**raw, "seeds": quick_table["seeds"]}
    if size is not None:
        images["size"] = size
    if iterations is not None:
        optimize["iterations"] = iterations
    seed = need(raw, "seed", int) if seed is None else seed
    encoder = need(raw, "encoder", dict)
    options = _encoder_options(encoder, _ENCODER_KEYS, where, "name")
    root = resolve(need(images, "root", str, "images."))
    pairs_raw = images.get("pairs", [])
    if not isinstance(pairs_raw, list) or any(
        not isinstance(p, list) or len(p) != 2 or not all(isinstance(s, str) for s in p) for p in pairs_raw
    ):
        raise ConfigError(f"{where}: key 'images.pairs' must be a list of [content, style] path pairs")
    textures_raw = images.get("textures", [])
    if not isinstance(textures_raw, list) or not all(isinstance(s, str) for s in textures_raw):
        raise ConfigError(f"{where}: key 'images.textures' must be a list of style image paths")
    if not pairs_raw and not textures_raw:
        raise ConfigError(f"{where}: keys 'images.pairs' and 'images.textures' are both empty")
    pairs = tuple((root / c, root / s) for c, s in pairs_raw)
    textures = tuple(root / s for s in textures_raw)
    for file in [p for pair in pairs for p in pair] + list(textures):
        if not file.is_file():
            raise ConfigError(f"{where}: key 'images': image file not found: {file}")
    for key in ("style_layers",):
        if not isinstance(optimize.get(key), dict):
            raise ConfigError(f"{where}: key 'optimize.{key}' must be a table of layer = weight")
    seeds = _number_list(raw.get("seeds", []), int, where, "seeds")
    sweep = optimize.pop("style_weights", [])
    style_weights = _number_list(sweep, (int, float), where, "optimize.style_weights")
    if any(w < 0 for w in style_weights):
        raise ConfigError(f"{where}: key 'optimize.style_weights' must hold weights >= 0")
    transfer = _settings(optimize, where, "optimize", seed=seed)
    if transfer.content_layer is None:
        raise ConfigError(f"{where}: missing key 'optimize.content_layer'")
    texture_table = {**optimize, **raw.get("texture", {})}
    texture_table.pop("content_layer", None)
    texture = _settings(texture_table, where, "texture", seed=seed, content_layer=None)
    methods_raw = need(raw, "methods", dict)
    if not methods_raw:
        raise ConfigError(f"{where}: key 'methods' is empty")
    methods = tuple(_method(name, spec, where) for name, spec in methods_raw.items())
    weights = encoder.get("weights")
    name = need(encoder, "name", str, "encoder.")
    decoders = _decoders(raw.get("decoders", {}), where, {m.name for m in methods})
    changed = {k: v for k, v in options.items() if encoder_options(name)[k] != v}
    trained = [d for d, p in decoders if p != INVERT]
    if changed and trained:
        raise ConfigError(
            f"{where}: key 'decoders': the trained decoder(s) {trained} run on their own encoder, built "
            f"without the [encoder] options {changed}; drop those options or the trained decoders"
        )
    return Config(
        path=path,
        text=path.read_text(),
        seed=int(seed),
        output=resolve(str(raw.get("output", "runs/optimize"))),
        encoder=name,
        weights=None if weights is None else resolve(weights),
        size=int(need(images, "size", int, "images.")),
        pairs=pairs,
        textures=textures,
        transfer=transfer,
        texture=texture,
        methods=methods,
        decoders=decoders,
        seeds=tuple(int(v) for v in seeds),
        style_weights=tuple(float(v) for v in style_weights),
        evaluation=_evaluation(raw.get("evaluation"), where, encoder_label(name, options)),
        encoder_options=options,
    )


def _number_list(value: Any, kind: type | tuple[type, ...], where: str, key: str) -> list[Any]:
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, kind) for v in value):
        raise ConfigError(f"{where}: key '{key}' must be a list of numbers")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: key '{key}' has repeated values: {value}")
    return value


def _evaluation(table: Any, where: str, optimised_with: str) -> Network | None:
    """The ``[evaluation]`` table: a second network to score outputs with (None when absent)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: key 'evaluation' must be a table (encoder, style_layers, content_layer)")
    options = _encoder_options(table, _EVALUATION_KEYS, where, "encoder")
    name, layers = table.get("encoder"), table.get("style_layers")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: key 'evaluation.encoder' must be an encoder name")
    if (
        not isinstance(layers, dict)
        or not layers
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in layers.values())
    ):
        raise ConfigError(f"{where}: key 'evaluation.style_layers' must be a table of layer = weight")
    content = table.get("content_layer")
    if content is not None and not isinstance(content, str):
        raise ConfigError(f"{where}: key 'evaluation.content_layer' must be a layer name")
    weights, label = table.get("weights"), table.get("label", encoder_label(name, options))
    if not isinstance(label, str) or label == optimised_with:
        raise ConfigError(
            f"{where}: key 'evaluation.label' must be a name other than the optimisation encoder's "
            f"({optimised_with!r}), so the two networks' scores stay apart (set it when the encoders match)"
        )
    return Network(
        name, None if weights is None else resolve(weights), dict(layers), content, label, dict(options)
    )


# ---- running ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One optimisation problem: a name, the images and the settings (``content`` None for textures).

    ``pair`` names the images (``<content>__<style>`` or ``texture__<style>``); ``settings.seed`` and
    ``settings.style_weight`` are this repeat's seed and this point of the style-weight sweep.
    """

    name: str
    style: Path
    content: Path | None
    settings: OptimizeSettings
    pair: str = ""

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def style_weight(self) -> float:
        return self.settings.style_weight


def expand_jobs(config: Config) -> list[Job]:
    """Pairs × seeds × style weights, then textures × seeds (names unique; see the module docstring)."""
    seeds, weights = config.run_seeds, config.run_style_weights

    def name(pair: str, seed: int, weight: float | None) -> str:
        out = pair + (f"__seed{seed}" if len(seeds) > 1 else "")
        return out + (f"__w{weight:g}" if weight is not None and len(weights) > 1 else "")

    jobs = []
    for c, s in config.pairs:
        pair = f"{c.stem}__{s.stem}"
        for seed in seeds:
            for weight in weights:
                settings = replace(config.transfer, seed=seed, style_weight=weight)
                jobs.append(Job(name(pair, seed, weight), s, c, settings, pair))
    for s in config.textures:
        pair = f"texture__{s.stem}"
        for seed in seeds:
            jobs.append(Job(name(pair, seed, None), s, None, replace(config.texture, seed=seed), pair))
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{config.path}: two jobs share a name (repeated image stems?): {names}")
    return jobs


def _final_row(job: Job, method: Method, result: OptimizeResult) -> dict[str, Any]:
    row: dict[str, Any] = {"run": job.name, "method": method.name, "loss": repr(method.loss)}
    row.update(pair=job.pair, seed=job.seed, style_weight=job.style_weight)
    row.update({f"final_{k.replace('/', '_')}": v[-1] for k, v in result.history.items()})
    row.update(
        initial_total=result.history["total"][0],
        iterations=job.settings.iterations,
        steps=result.steps,
        stop_reason=result.stop_reason,
        evaluations=result.evaluations,
        restarts=result.restarts,
        seconds=round(result.seconds, 4),
    )
    return row


def _plot_losses(job: Job, histories: Mapping[str, Mapping[str, list[float]]], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["total", "style"] + ([] if job.content is None else ["content"])
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for method, history in histories.items():
            values = history[key]
            ax.plot(range(len(values)), values, label=method)
        if key != "content":
            ax.set_yscale("log")
        ax.set_title(f"{key} loss" + (" (normalised)" if key == "style" else ""))
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize="small")
    fig.suptitle(job.name)
    fig.tight_layout()
    return save_figure(fig, folder / f"loss_{job.name}")


def _plot_grid(rows: list[tuple[Job, list[torch.Tensor], list[str]]], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(images) for _, images, _ in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.2 * len(rows)), squeeze=False)
    for r, (job, images, titles) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c].clamp(0, 1).permute(1, 2, 0).numpy())
                ax.set_title(titles[c], fontsize=7)
        axes[r][0].text(-0.05, 0.5, job.name, transform=axes[r][0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=7)  # fmt: skip
    fig.tight_layout()
    return save_figure(fig, folder / "grid")


def _load_decoder_model(path: Path, config: Config) -> Any:
    """The AdaIN model of a model file, checked to use the config's encoder (same encoder and layers);
    for :data:`INVERT` the perfect-decoder reference on the config's encoder."""
    from adain.modelfile import load_model, read_model_file

    if path == INVERT:
        from experiments.perfect_decoder import PerfectDecoder

        s = config.transfer
        return PerfectDecoder(
            config.build_encoder(), iterations=s.iterations, tolerance=s.tolerance or 1e-4, window=s.window
        )

    trained_for = read_model_file(path).encoder_name
    if trained_for != config.encoder:
        raise ConfigError(
            f"{config.path}: decoder {path} was trained for encoder {trained_for!r}, but the config's "
            f"encoder is {config.encoder!r}; use a decoder trained for it, or change [encoder] name"
        )
    return load_model(path, encoder_weights=config.weights or DEFAULT_WEIGHTS).eval()


def _portable(path: Path | None) -> str | None:
    """A path as recorded in ``settings.json``: relative to the repository root when under it (so a moved
    checkout still resumes), else absolute."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def experiment_settings(config: Config) -> dict[str, Any]:
    """Everything the outputs of ``config`` depend on (its ``settings.json``): a run is resumed only under
    equal settings (:func:`experiments.resume.prepare`). Comments and key order of the file do not count."""
    evaluation = config.evaluation
    return jsonable(
        {
            "seed": config.seed,
            "seeds": list(config.run_seeds),
            "style_weights": list(config.run_style_weights),
            "size": config.size,
            "encoder": config.encoder,
            "encoder_options": config.encoder_options,
            "weights": _portable(config.weights),
            "pairs": [[_portable(c), _portable(s)] for c, s in config.pairs],
            "textures": [_portable(s) for s in config.textures],
            "transfer": asdict(config.transfer),
            "texture": asdict(config.texture),
            "methods": {m.name: m.spec for m in config.methods},
            "decoders": {name: _portable(path) for name, path in config.decoders},
            "evaluation": None
            if evaluation is None
            else {**asdict(evaluation), "weights": _portable(evaluation.weights)},
        }
    )


def _output_names(config: Config, job: Job) -> list[str]:
    """The outputs of ``job``: every method, then (for transfer jobs) every decoder."""
    return [m.name for m in config.methods] + ([n for n, _ in config.decoders] if job.content else [])


def _image_path(out: Path, job: Job, output: str) -> Path:
    return out / "images" / job.name / f"{output}.png"


def run(
    config: Config,
    output: Path | None = None,
    log: Any = print,
    *,
    resume: bool = False,
    force: bool = False,
) -> Path:
    """Run every (job, method) of ``config`` and write the run folder; returns its path.

    Each finished output is recorded (:mod:`experiments.resume`) as soon as it is made. An existing,
    non-empty run folder is an error unless ``resume`` (continue it: outputs already recorded are not
    made again, the rest are, then every aggregate file is rebuilt from all records, giving the files of
    an uninterrupted run) or ``force`` (delete it and start over). Ctrl-C or SIGTERM raise
    :class:`experiments.resume.RunInterrupted`, naming the folder and how to continue.

    Raises:
        RunFolderError: the folder exists without ``resume``/``force``, or holds a different experiment.
    """
    started = time.perf_counter()
    began = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = Path(output) if output is not None else config.output
    jobs = expand_jobs(config)
    continued = prepare(out, experiment_settings(config), resume=resume, force=force)
    run_folder(out, "images", "figures")
    if not (out / "config.toml").is_file():
        (out / "config.toml").write_text(config.text)
    outputs = [(job, name) for job in jobs for name in _output_names(config, job)]
    pending = {
        (job.name, name)
        for job, name in outputs
        if read_record(out, job.name, name, _image_path(out, job, name)) is None
    }
    commit = git_commit()
    earlier = read_sittings(out)
    if continued:
        log(f"resuming {out}: {len(outputs) - len(pending)} of {len(outputs)} outputs recorded, "
            f"{len(pending)} to make")  # fmt: skip
        if any(s.get("git_commit") != commit for s in earlier):
            log(f"warning: the code changed since an earlier sitting (commit {commit} now, "
                f"{sorted({str(s.get('git_commit')) for s in earlier})} before)")  # fmt: skip
    elif resume:
        log(
            f"{out} holds no earlier sitting: --resume starts the run from its first output (to continue "
            "a committed snapshot, seed the folder from it first, as results_note --resume does)"
        )
    made = 0

    def sitting(interrupted: bool) -> dict[str, Any]:
        return {"started": began, "seconds": round(time.perf_counter() - started, 4), "made": made,
                "git_commit": commit, "interrupted": interrupted}  # fmt: skip

    try:
        made = _make_outputs(config, out, jobs, pending, log)
        timings = _aggregate(config, out, jobs)
    except KeyboardInterrupt:
        made = len(pending) - sum(
            read_record(out, j.name, n, _image_path(out, j, n)) is None
            for j, n in outputs
            if (j.name, n) in pending
        )
        add_sitting(out, sitting(True))
        raise RunInterrupted(out, len(outputs) - len(pending) + made, len(outputs)) from None
    sittings = add_sitting(out, sitting(False))
    info = manifest(
        "experiments.optimize",
        config=str(config.path),
        seed=config.seed,
        seeds=list(config.run_seeds),
        style_weights=list(config.run_style_weights),
        device="cpu",
        encoder=config.encoder,
        encoder_options=jsonable(config.encoder_options),
        encoder_label=config.encoder_label,
        size=config.size,
        settings={"transfer": jsonable(asdict(config.transfer)), "texture": jsonable(asdict(config.texture))},
        methods={m.name: {"style_loss": m.spec, "loss": repr(m.loss)} for m in config.methods},
        decoders={name: str(path) for name, path in config.decoders},
        timings_s={**timings, "total": round(sum(float(s["seconds"]) for s in sittings), 4)},
        sittings=sittings,
    )
    write_json(out / "manifest.json", info)
    return out


def _make_outputs(config: Config, out: Path, jobs: list[Job], pending: set[tuple[str, str]], log: Any) -> int:
    """Make (optimise, or run the decoder on) every pending ``(job name, output)`` in job order, saving
    each image and then its record; returns how many were made. The encoder and decoders are built only
    when something is left to make."""
    encoder: Any = None
    decoders: dict[str, Any] = {}
    made = 0
    for job in jobs:
        todo = [name for name in _output_names(config, job) if (job.name, name) in pending]
        if not todo:
            continue
        style = load_image(job.style, size=config.size)
        content = None if job.content is None else load_image(job.content, size=config.size)
        for method in config.methods:
            if method.name not in todo:
                continue
            if encoder is None:
                encoder = config.build_encoder()
            result = optimize_image(encoder, method.loss, style, content, job.settings)
            save_image(result.image, _image_path(out, job, method.name))
            write_record(out, job.name, method.name,
                         {"row": _final_row(job, method, result), "history": result.history})  # fmt: skip
            made += 1
            log(f"{job.name:40s} {method.name:22s} total {result.history['total'][0]:.4g} -> "
                f"{result.history['total'][-1]:.4g}  ({result.seconds:.1f} s)")  # fmt: skip
        for name, path in config.decoders if content is not None else ():
            if name not in todo:
                continue
            if name not in decoders:
                decoders[name] = _load_decoder_model(path, config)
            started_one = time.perf_counter()
            image = decoders[name].stylize(content, style).cpu()
            seconds = time.perf_counter() - started_one
            save_image(image, _image_path(out, job, name))
            row = {"run": job.name, "method": name, "loss": "decoder", "seconds": round(seconds, 4),
                   "pair": job.pair, "seed": job.seed, "style_weight": job.style_weight}  # fmt: skip
            write_record(out, job.name, name, {"row": row, "history": None})
            made += 1
            log(f"{job.name:40s} {name:22s} decoder  ({seconds:.2f} s)")
    return made


def _aggregate(config: Config, out: Path, jobs: list[Job]) -> dict[str, float]:
    """Rebuild metrics.csv/.json, history.json and the figures from every record and saved image (so a
    resumed run's files equal an uninterrupted run's); returns the seconds of each ``<job>/<output>`` as
    first measured."""
    rows: list[dict[str, Any]] = []
    histories: dict[str, dict[str, dict[str, list[float]]]] = {}
    grid: list[tuple[Job, list[torch.Tensor], list[str]]] = []
    timings: dict[str, float] = {}
    for job in jobs:
        style = load_image(job.style, size=config.size)
        content = None if job.content is None else load_image(job.content, size=config.size)
        images = [style] if content is None else [content, style]
        titles = ["style"] if content is None else ["content", "style"]
        histories[job.name] = {}
        for name in _output_names(config, job):
            image = _image_path(out, job, name)
            record = read_record(out, job.name, name, image)
            if record is None:
                raise RunFolderError(
                    f"{out}: the output {job.name}/{name} has no record or image after the run"
                )
            rows.append(record["row"])
            if record.get("history") is not None:
                histories[job.name][name] = record["history"]
            timings[f"{job.name}/{name}"] = record["row"]["seconds"]
            images.append(load_image(image))
            titles.append(name)
        _plot_losses(job, histories[job.name], out / "figures")
        grid.append((job, images, titles))
    _plot_grid(grid, out / "figures")
    first = ["run", "method", "loss"]
    fields = first + sorted({k for row in rows for k in row} - set(first))
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    write_json(out / "metrics.json", rows)
    write_json(out / "history.json", histories)
    return timings


def command_line(description: str, runner, argv: list[str] | None = None) -> int:
    """The command line shared by the config-driven scripts: parse, load the config, ``runner(config,
    output, resume=..., force=...)``. Returns the exit code: 2 for a bad config or an unusable run folder
    (with a message naming the file and the problem), 130 when interrupted by Ctrl-C or SIGTERM (the
    message says how to continue: the same command with ``--resume``)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, type=Path, help="TOML config file")
    parser.add_argument("--output", type=Path, help="run folder (default: the config's 'output')")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--quick", action="store_true", help="apply the config's [quick] table")
    parser.add_argument("--size", type=int, help="override images.size (shorter side, pixels)")
    parser.add_argument("--iterations", type=int, help="override optimize.iterations")
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", action="store_true", help="continue an existing run folder (same config): outputs "
        "already recorded are not made again"
    )  # fmt: skip
    again.add_argument("--force", action="store_true", help="delete an existing run folder and start over")
    args = parser.parse_args(argv)
    try:
        config = load_config(
            args.config, quick=args.quick, seed=args.seed, size=args.size, iterations=args.iterations
        )
        with sigterm_as_interrupt():
            out = runner(config, args.output, resume=args.resume, force=args.force)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return command_line(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
