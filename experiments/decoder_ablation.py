"""Decoder ablation: train AdaIN decoders under different style losses on the same data, seed and schedule.

    python -m experiments.decoder_ablation --config experiments/configs/decoder_ablation.toml \\
        [--output DIR] [--data DIR] [--only NAME ...] [--calibrate-only]

Every method of the config (``[methods.<name>]``: any :class:`adain.train.TrainConfig` fields, typically
``style_loss``, an :mod:`mmd` spec table as in every config, and ``style_positions``) is trained with the
shared ``[train]`` fields by
:class:`adain.train.Trainer`, into ``OUTPUT/<name>/`` (checkpoint, log.csv, loss.png, samples/,
decoder_final.pth). A run that already has a checkpoint is resumed, so the command can be repeated after an
interruption and continues exactly; ``--only`` trains some methods (e.g. one per process, in parallel).

**Comparable strength.** The raw style losses live on unrelated scales (mean/std matching is of order 1,
a Gaussian-kernel MMD² scaled by ``1/(4N²)`` of order 1e-3), so one ``style_weight`` would not mean the
same trade-off for each. Before training, every method's style loss ``L_s,m`` is evaluated at the untrained
decoder on the first batch (same seed, hence the same decoder and the same images for every method), and
its style weight is set to ``style_weight · L_s,ref / L_s,m`` where ``ref`` is the config's ``reference``
method: at the start of training every method's style term has the size of the reference recipe's. The
weights are written to ``OUTPUT/calibration.json`` once and reused by every later (or parallel) call.

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

from adain.train import CHECKPOINT_NAME, TrainConfig, Trainer
from experiments.runs import (
    ConfigError,
    check_keys,
    load_toml,
    manifest,
    resolve,
    style_loss_spec,
    write_json,
)

__all__ = ["AblationConfig", "calibrate", "load_config", "main", "train"]

_TOP_KEYS = {"seed", "output", "reference", "train", "methods"}
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_PER_METHOD_ONLY = {"output", "seed"}  # set by the ablation itself


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    """A parsed ablation config: one :class:`TrainConfig` per method (style weight not yet calibrated)."""

    path: Path
    text: str
    seed: int
    output: Path
    reference: str
    style_weight: float
    methods: dict[str, TrainConfig]


def load_config(path: Path, output: Path | None = None, data: Path | None = None) -> AblationConfig:
    """Read and check an ablation config (see ``experiments/configs/decoder_ablation.toml``).

    ``data`` replaces ``content_dir`` and ``style_dir`` by ``data/content`` and ``data/style`` (the layout
    ``experiments/training_data.py`` writes).

    Raises:
        ConfigError: unreadable file, unknown or missing key, bad value (the message names file and key).
    """
    raw = load_toml(path)
    check_keys(raw, _TOP_KEYS, str(path), "the top level")
    shared = dict(raw.get("train", {}))
    if data is not None:
        shared.update(content_dir=str(data / "content"), style_dir=str(data / "style"))
    methods_raw = raw.get("methods", {})
    if not isinstance(methods_raw, dict) or not methods_raw:
        raise ConfigError(f"{path}: key 'methods' must be a non-empty table of [methods.<name>]")
    reference = raw.get("reference", next(iter(methods_raw)))
    if reference not in methods_raw:
        raise ConfigError(f"{path}: key 'reference' names {reference!r}, which is not one of the methods")
    seed = int(raw.get("seed", 0))
    out = output or resolve(str(raw.get("output", "runs/decoder_ablation")))
    methods: dict[str, TrainConfig] = {}
    for name, spec in methods_raw.items():
        fields = {**shared, **spec}
        bad = sorted((set(fields) - _FIELDS) | (set(fields) & _PER_METHOD_ONLY))
        if bad:
            raise ConfigError(
                f"{path}: [train]/[methods.{name}] key(s) {', '.join(bad)} are not training settings "
                "(see adain.train.TrainConfig; output and seed are set at the top level)"
            )
        for key in ("content_dir", "style_dir"):
            if key not in fields:
                raise ConfigError(f"{path}: missing key 'train.{key}'")
            fields[key] = str(resolve(str(fields[key])))
            if not Path(fields[key]).is_dir():
                raise ConfigError(
                    f"{path}: key 'train.{key}': folder {fields[key]} does not exist; build the data set "
                    "with `python -m experiments.training_data` or pass --data DIR (with content/ and style/)"
                )
        if fields.get("encoder_weights"):
            fields["encoder_weights"] = str(resolve(str(fields["encoder_weights"])))
        if "style_loss" in fields:
            where = f"methods.{name}.style_loss"
            fields["style_loss"] = style_loss_spec(fields["style_loss"], str(path), where)
        try:
            config = TrainConfig(**fields, seed=seed, output=str(out / name))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: [methods.{name}]: {exc}") from None
        methods[name] = config
    style_weight = methods[reference].style_weight
    return AblationConfig(path, path.read_text(), seed, out, reference, style_weight, methods)


def calibrate(config: AblationConfig, log: Any = print) -> dict[str, Any]:
    """The per-method style weights (see module doc); read from, or written to, ``calibration.json``."""
    file = config.output / "calibration.json"
    if file.exists():
        return json.loads(file.read_text())
    initial: dict[str, float] = {}
    for name, train_config in config.methods.items():
        loss_c, loss_s = Trainer(train_config, log=lambda msg: None).next_batch_losses()
        if not (loss_s > 0 and loss_s < float("inf")):
            raise ValueError(f"method {name!r}: initial style loss {loss_s} cannot be calibrated against")
        initial[name] = loss_s
        log(f"{name}: initial style loss {loss_s:.6g} (content {loss_c:.6g})")
    ref = initial[config.reference]
    result = {
        "reference": config.reference,
        "reference_style_weight": config.style_weight,
        "initial_style_loss": initial,
        "style_weight": {name: config.style_weight * ref / value for name, value in initial.items()},
    }
    config.output.mkdir(parents=True, exist_ok=True)
    write_json(file, result)
    return result


def train(config: AblationConfig, only: list[str] | None = None, log: Any = print) -> dict[str, Any]:
    """Calibrate, then train (or resume) every method named in ``only`` (default: all)."""
    names = list(config.methods) if not only else only
    missing = [n for n in names if n not in config.methods]
    if missing:
        have = ", ".join(config.methods)
        raise ConfigError(f"{config.path}: no method(s) {', '.join(missing)}; have {have}")
    calibration = calibrate(config, log)
    timings: dict[str, float] = {}
    for name in names:
        weight = calibration["style_weight"][name]
        train_config = dataclasses.replace(config.methods[name], style_weight=weight)
        checkpoint = Path(train_config.output) / CHECKPOINT_NAME
        started = time.perf_counter()
        log(f"{name}: style weight {train_config.style_weight:.6g}, {train_config.iterations} iterations")
        result = Trainer(train_config).run(resume=checkpoint if checkpoint.exists() else None)
        timings[name] = round(time.perf_counter() - started, 1)
        if result.stopped_by is not None:
            log(f"{name}: stopped by signal {result.stopped_by}; run the same command again to continue")
            break
    manifest_file = config.output / "manifest.json"
    info = json.loads(manifest_file.read_text()) if manifest_file.exists() else {"seconds": {}}
    info.update(
        manifest(
            "experiments.decoder_ablation",
            config=str(config.path),
            config_text=config.text,
            seed=config.seed,
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
    p.add_argument("--only", nargs="+", metavar="NAME", help="train only these methods")
    p.add_argument("--calibrate-only", action="store_true", help="write calibration.json and stop")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config, args.output, args.data)
        if args.calibrate_only:
            print(json.dumps(calibrate(config), indent=2))
        else:
            train(config, args.only)
    except ConfigError as exc:
        print(f"decoder_ablation: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
