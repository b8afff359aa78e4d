"""Decoder ablation: AdaIN decoders trained with different style losses under one controlled protocol.

    python -m experiments.decoder_ablation --config experiments/configs/decoder_ablation.toml \\
        [--output DIR] [--data DIR] [--only NAME ...] [--seeds K ...] [--calibrate-only] [--evaluate]

Every method of the config (``[methods.<name>]``, which may set only ``style_loss``, an :mod:`mmd` spec
table) is trained with the shared ``[train]`` fields (:class:`adain.train.TrainConfig`) by
:class:`adain.train.Trainer`, once per seed of ``seeds``, into ``OUTPUT/<name>/seed<k>/`` (checkpoint,
log.csv, loss.png, samples/, decoder_final.pth). A run that already has a checkpoint is resumed, so the
command can be repeated after an interruption and continues exactly; ``--only`` and ``--seeds`` train a
subset (e.g. one per process, in parallel). Runs go seed by seed, so a partial ablation is a complete
comparison at the first seed.

**What is controlled** (issue 15, defect 4). Everything but the style loss is shared: data (the default
model's split, held-out styles excluded from training), schedule, seeds, the style layers and the positions
the losses see (``style_positions`` belongs to ``[train]``; a method cannot override it), and the start:
every run begins from the same warm-start decoder (``train.init_decoder``, the default model's
reconstruction stage; it must exist). The layer weighting is one convention for every loss:
``layer_normalisation = "initial"`` (required) divides each layer's term by its value at that starting
decoder on the run's first batch, with equal layer weights, so each loss gives each layer the same share at
the start, whatever its built-in scale (mean/std's ``1/N``, Gram's and MMD's ``1/(4N²)``).

**Style weight.** With that normalisation every method's style term starts at the number of style layers
``L``, so the old per-method calibration (rescaling each loss to the reference's initial size) is
redundant: one weight means the same initial trade-off for every loss. That one weight is calibrated once
so that the trade-off at the start is the paper recipe's: ``w = style_weight · S_ref / L``, where
``style_weight`` is ``[train]``'s (the paper's 10) and ``S_ref`` is the style term of the ``reference``
method under the paper's weighting (no normalisation, ``layer_weighting = "auto"``) at the warm-start
decoder on the first batch of the first seed. It is written to ``OUTPUT/calibration.json`` once and reused
by every later (or parallel) call, which refuse it if the warm-start file has changed since (sha256).

**Held-out evaluation** (``--evaluate``): every finished run's ``decoder_final.pth`` stylizes each held-out
content × held-out style of ``[evaluate]`` (the default model's report pairs) and is scored by
``../shared/tools/score_stylization.py`` (:mod:`experiments.ablation_heldout`, which reuses
:mod:`experiments.default_model_report`'s stylize and scorer steps): ``OUTPUT/heldout/<name>/seed<k>/
scores.csv`` per run, and ``OUTPUT/heldout/summary.csv`` with medians and bootstrap 95 % intervals over
seeds × pairs per method (and ``by_seed.csv``). With ``[evaluate] perfect_pairs > 0`` it adds the
perfect-decoder bound (:mod:`experiments.ablation_bound`): the AdaIN target inverted by optimisation on the
first ``perfect_pairs`` pairs (cached by settings), as method ``perfect``, and
``OUTPUT/heldout/summary_perfect_pairs.csv``, every method on those pairs only.

``OUTPUT/manifest.json`` records the config, the calibration, versions and the wall time of each run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from adain.errors import AdainError
from adain.train import CHECKPOINT_NAME, TrainConfig, Trainer
from experiments.runs import (
    ConfigError,
    check_keys,
    file_sha256,
    load_toml,
    manifest,
    resolve,
    style_loss_spec,
    write_json,
)

__all__ = ["AblationConfig", "calibrate", "load_config", "main", "run_folder", "train"]

_TOP_KEYS = {"seeds", "output", "reference", "train", "methods", "evaluate"}
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_SET_BY_ABLATION = {"output", "seed"}  # from the top level: OUTPUT/<method>/seed<k>
_METHOD_KEYS = {"style_loss"}  # everything else is shared: the comparison is controlled
_INIT_HINT = (
    "make it with `python -m experiments.default_model prepare` then `python -m experiments.default_model "
    "train --stage recon_crop96`, or point train.init_decoder at a committed snapshot of that stage"
)


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    """A parsed ablation config: one :class:`TrainConfig` per method (seed and style weight set later)."""

    path: Path
    text: str
    seeds: tuple[int, ...]
    output: Path
    reference: str
    style_weight: float
    methods: dict[str, TrainConfig]
    evaluate: dict[str, Any]


def run_folder(output: Path, method: str, seed: int) -> Path:
    """``output/<method>/seed<seed>``: one training run of the ablation."""
    return output / method / f"seed{seed}"


def _seeds(value: Any, path: Path) -> tuple[int, ...]:
    ok = (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )
    if not ok or len(set(value)) != len(value):
        raise ConfigError(
            f"{path}: key 'seeds' must be a list of distinct integers, e.g. [0, 1]; got {value!r}"
        )
    return tuple(value)


def _shared_fields(raw: dict[str, Any], path: Path, data: Path | None) -> dict[str, Any]:
    """``[train]`` checked: folders and the warm-start decoder exist, the layer normalisation is initial."""
    shared = dict(raw.get("train", {}))
    bad = sorted((set(shared) - _FIELDS) | (set(shared) & _SET_BY_ABLATION))
    if bad:
        raise ConfigError(
            f"{path}: [train] key(s) {', '.join(bad)} are not training settings (see "
            "adain.train.TrainConfig; output and seeds are set at the top level)"
        )
    if data is not None:
        shared.update(content_dir=str(data / "content"), style_dir=str(data / "style"))
    for key in ("content_dir", "style_dir"):
        if key not in shared:
            raise ConfigError(f"{path}: missing key 'train.{key}'")
        shared[key] = str(resolve(str(shared[key])))
        if not Path(shared[key]).is_dir():
            raise ConfigError(
                f"{path}: key 'train.{key}': folder {shared[key]} does not exist; build the default model's "
                "split with `python -m experiments.default_model prepare` or pass --data DIR (with content/ "
                "and style/)"
            )
    if not shared.get("init_decoder"):
        raise ConfigError(
            f"{path}: missing key 'train.init_decoder' (the warm-start decoder every run starts from)"
        )
    init = resolve(str(shared["init_decoder"]))
    if not init.is_file():
        raise ConfigError(f"{path}: key 'train.init_decoder': {init} does not exist; {_INIT_HINT}")
    shared["init_decoder"] = str(init)
    normalisation = shared.setdefault("layer_normalisation", "initial")
    if normalisation != "initial":
        raise ConfigError(
            f"{path}: key 'train.layer_normalisation' is {normalisation!r}; the ablation needs "
            '"initial" (one layer-weighting convention for every loss, see the script\'s docstring)'
        )
    if shared.get("encoder_weights"):
        shared["encoder_weights"] = str(resolve(str(shared["encoder_weights"])))
    return shared


def load_config(path: Path, output: Path | None = None, data: Path | None = None) -> AblationConfig:
    """Read and check an ablation config (see ``experiments/configs/decoder_ablation.toml``).

    ``data`` replaces ``content_dir`` and ``style_dir`` by ``data/content`` and ``data/style``.

    Raises:
        ConfigError: unreadable file, unknown or missing key, a missing folder or warm-start decoder, a
            method that sets more than its style loss, bad value (the message names file and key).
    """
    raw = load_toml(path)
    check_keys(raw, _TOP_KEYS, str(path), "the top level")
    shared = _shared_fields(raw, path, data)
    methods_raw = raw.get("methods", {})
    if not isinstance(methods_raw, dict) or not methods_raw:
        raise ConfigError(f"{path}: key 'methods' must be a non-empty table of [methods.<name>]")
    reference = raw.get("reference", next(iter(methods_raw)))
    if reference not in methods_raw:
        raise ConfigError(f"{path}: key 'reference' names {reference!r}, which is not one of the methods")
    seeds = _seeds(raw.get("seeds", [0, 1]), path)
    out = output or resolve(str(raw.get("output", "runs/decoder_ablation")))
    methods: dict[str, TrainConfig] = {}
    for name, spec in methods_raw.items():
        extra = sorted(set(spec) - _METHOD_KEYS)
        if extra:
            raise ConfigError(
                f"{path}: [methods.{name}] sets {', '.join(extra)}; a method sets only style_loss "
                "(every other training setting, style_positions included, is shared in [train] so that "
                "the comparison is controlled)"
            )
        fields = {
            **shared,
            "style_loss": style_loss_spec(spec.get("style_loss"), str(path), f"methods.{name}.style_loss"),
        }
        try:
            config = TrainConfig(**fields, seed=seeds[0], output=str(run_folder(out, name, seeds[0])))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: [train] with [methods.{name}]: {exc}") from None
        methods[name] = config
    evaluate = raw.get("evaluate", {})
    if not isinstance(evaluate, dict):
        raise ConfigError(f"{path}: key 'evaluate' must be a table")
    style_weight = methods[reference].style_weight
    return AblationConfig(path, path.read_text(), seeds, out, reference, style_weight, methods, evaluate)


def calibrate(config: AblationConfig, log: Any = print) -> dict[str, Any]:
    """The one style weight of every run (see module doc); read from, or written to, ``calibration.json``.

    Raises:
        ValueError: the reference's initial style term is not positive and finite.
    """
    file = config.output / "calibration.json"
    normalised = config.methods[config.reference]
    assert normalised.init_decoder is not None  # load_config requires it
    start = file_sha256(Path(normalised.init_decoder))
    if file.exists():
        saved = json.loads(file.read_text())
        if saved.get("init_decoder_sha256") != start:
            raise ConfigError(
                f"{file} was calibrated at another warm-start decoder than {normalised.init_decoder} (its "
                "sha256 differs: trained further since?); choose another --output, or delete the ablation "
                "folder to start over"
            )
        return saved
    paper = normalised.replace(layer_normalisation="none", layer_weighting="auto")
    trainer = Trainer(paper, log=lambda msg: None)
    loss_c, loss_s = trainer.next_batch_losses()
    if not (0 < loss_s < float("inf")):
        raise ValueError(
            f"reference {config.reference!r}: initial style term {loss_s} cannot be calibrated against"
        )
    layers = len(trainer.layers)  # Σ_l w_l under layer_normalisation "initial" (equal weights)
    weight = config.style_weight * loss_s / layers
    log(f"{config.reference} (paper weighting): initial style term {loss_s:.6g}, content {loss_c:.6g}")
    log(f"style weight of every run: {config.style_weight:g} · {loss_s:.6g} / {layers} = {weight:.6g}")
    result = {
        "reference": config.reference,
        "reference_style_weight": config.style_weight,
        "reference_initial_style_term": loss_s,
        "reference_initial_content_term": loss_c,
        "style_layers": list(trainer.layers),
        "seed": config.seeds[0],
        "init_decoder": normalised.init_decoder,
        "init_decoder_sha256": start,
        "style_weight": weight,
    }
    config.output.mkdir(parents=True, exist_ok=True)
    write_json(file, result)
    return result


def _pick(
    config: AblationConfig, only: list[str] | None, seeds: list[int] | None
) -> tuple[list[str], list[int]]:
    names = list(config.methods) if not only else only
    missing = [n for n in names if n not in config.methods]
    if missing:
        have = ", ".join(config.methods)
        raise ConfigError(f"{config.path}: no method(s) {', '.join(missing)}; have {have}")
    picked = list(config.seeds) if not seeds else seeds
    unknown = [s for s in picked if s not in config.seeds]
    if unknown:
        raise ConfigError(f"{config.path}: seed(s) {unknown} are not in 'seeds' {list(config.seeds)}")
    return names, picked


def run_configs(config: AblationConfig, weight: float) -> dict[tuple[str, int], TrainConfig]:
    """``(method, seed) → TrainConfig`` of every run, with the calibrated style weight."""
    return {
        (name, seed): base.replace(
            seed=seed, style_weight=weight, output=str(run_folder(config.output, name, seed))
        )
        for seed in config.seeds
        for name, base in config.methods.items()
    }


def train(
    config: AblationConfig, only: list[str] | None = None, seeds: list[int] | None = None, log: Any = print
) -> dict[str, Any]:
    """Calibrate, then train (or resume) every method named in ``only`` at every seed of ``seeds``
    (default: all), seed by seed."""
    names, picked = _pick(config, only, seeds)
    calibration = calibrate(config, log)
    runs = run_configs(config, calibration["style_weight"])
    timings: dict[str, float] = {}
    stopped = False
    for seed in picked:
        for name in names:
            train_config = runs[(name, seed)]
            checkpoint = Path(train_config.output) / CHECKPOINT_NAME
            started = time.perf_counter()
            log(
                f"{name} seed {seed}: style weight {train_config.style_weight:.6g}, "
                f"{train_config.iterations} iterations"
            )
            result = Trainer(train_config).run(resume=checkpoint if checkpoint.exists() else None)
            timings[f"{name}/seed{seed}"] = round(time.perf_counter() - started, 1)
            if result.stopped_by is not None:
                log(
                    f"{name} seed {seed}: stopped by signal {result.stopped_by}; run the command "
                    "again to continue"
                )
                stopped = True
                break
        if stopped:
            break
    manifest_file = config.output / "manifest.json"
    info = json.loads(manifest_file.read_text()) if manifest_file.exists() else {"seconds": {}}
    info.update(
        manifest(
            "experiments.decoder_ablation",
            config=str(config.path),
            config_text=config.text,
            seeds=list(config.seeds),
            calibration=calibration,
        )
    )
    info["seconds"].update(timings)  # wall time of this call's share of each run
    write_json(manifest_file, info)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, type=Path, help="TOML config file")
    p.add_argument("--output", type=Path, help="ablation folder (default: the config's 'output')")
    p.add_argument("--data", type=Path, help="data set with content/ and style/ (default: config's)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="train (or evaluate) only these methods")
    p.add_argument("--seeds", nargs="+", type=int, metavar="K", help="only these of the config's seeds")
    p.add_argument("--calibrate-only", action="store_true", help="write calibration.json and stop")
    p.add_argument(
        "--evaluate", action="store_true", help="score the finished runs on the held-out pairs (no training)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="with --evaluate: rescore runs whose model changed"
    )
    args = p.parse_args(argv)
    try:
        config = load_config(args.config, args.output, args.data)
        if args.calibrate_only:
            print(json.dumps(calibrate(config), indent=2))
        elif args.evaluate:
            from experiments.ablation_heldout import evaluate_ablation

            names, seeds = _pick(config, args.only, args.seeds)
            summary = evaluate_ablation(config, names, seeds, overwrite=args.overwrite)
            print(summary)
        else:
            train(config, args.only, args.seeds)
    except ConfigError as exc:
        print(f"decoder_ablation: error: {exc}", file=sys.stderr)
        return 2
    except AdainError as exc:  # a checkpoint, normaliser, stylization or scorer problem
        print(f"decoder_ablation: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
