"""Compare style losses end to end: optimise with each, then cross-evaluate every output under every loss.

    python -m experiments.compare --config experiments/configs/compare_quick.toml \\
        [--quick] [--output DIR] [--seed N] [--resume | --force]

The config has the format of :mod:`experiments.optimize` (same keys, same ``[quick]`` table). The
optimisation runs are done by :func:`experiments.optimize.run` (which writes ``config.toml``,
``images/``, ``metrics.csv/.json``, ``history.json``, ``figures/loss_<run>.*`` and ``figures/grid.*``);
this script adds, for every run (content/style pair or texture)::

    evaluation.csv/.json            long format: encoder, run, pair, seed, style_weight, eval_loss, output,
                                    layer ("sum" or a layer), value, raw
    summary.csv/.json               per (encoder, kind, style_weight, eval_loss, output): mean ± 95 %
                                    t-interval over pairs × seeds, and the verdict ("best", "tie" or "")
                                    from paired differences (experiments/intervals.py)
    figures/heatmap_<run>.png/.pdf  the cross-evaluation matrix (see experiments/evaluate.py)
    figures/pareto_<encoder>.*      content score vs style score per method across the style-weight sweep
    figures/layers_<encoder>.*      per-layer scores (mean over the transfer runs at one style weight)
    figures/time.png/.pdf           optimisation seconds per method and run
    manifest.json                   the optimisation manifest plus the evaluation's timings

Every output is scored with the optimisation encoder and, when the config has an ``[evaluation]`` table,
also with that network (its own style and content layers): cross-network evaluation. Each network is
recorded (``encoder`` column, figure names, manifest) under its label: the encoder name, plus its options
when the config sets any (``vgg19_caffe_normalised+pooling=avg``; see
:func:`experiments.optimize.encoder_label`).

An existing run folder is an error unless ``--resume`` (continue it: the optimisations already recorded
are kept, the rest are run, then the evaluation, summary, figures and manifest are rebuilt from all of
them; see :mod:`experiments.optimize` and :mod:`experiments.resume`) or ``--force`` (start over).

The evaluation losses (rows) are the config's methods, so the matrix is square and its diagonal is each
method scored by its own loss; the content loss is the last row. Outputs are read back from the saved
8-bit PNGs, so any other producer of images (e.g. trained decoders) can be added as further columns.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adain.io import load_image
from experiments.evaluate import (
    CrossEvaluation,
    cross_evaluate,
    plot_heatmap,
    plot_pareto,
    plot_per_layer,
    summarise,
)
from experiments.optimize import Config, Job, Network, command_line, expand_jobs
from experiments.optimize import run as run_optimize
from experiments.resume import RunInterrupted, update_last_sitting
from experiments.runs import save_figure, write_json

__all__ = ["evaluate_run", "main", "run"]


def networks(config: Config) -> list[Network]:
    """The scoring networks: the optimisation encoder (its layers), then ``[evaluation]`` if configured."""
    own = Network(
        config.encoder,
        config.weights,
        dict(config.transfer.style_layers),
        config.transfer.content_layer,
        options=dict(config.encoder_options),
    )
    return [own] + ([config.evaluation] if config.evaluation is not None else [])


def evaluate_run(config: Config, out: Path, network: Network | None = None) -> dict[str, CrossEvaluation]:
    """Cross-evaluate the outputs saved under ``out/images`` by :func:`experiments.optimize.run`, scored
    with ``network`` (default: the optimisation encoder and layers)."""
    network = network or networks(config)[0]
    encoder = network.build()
    losses = {m.name: m.loss for m in config.methods}
    results: dict[str, CrossEvaluation] = {}
    for job in expand_jobs(config):
        results[job.name] = _evaluate_job(config, job, out, encoder, losses, network)
    return results


def _evaluate_job(
    config: Config, job: Job, out: Path, encoder: Any, losses: dict[str, Any], network: Network
) -> CrossEvaluation:
    style = load_image(job.style, size=config.size)
    content = None if job.content is None else load_image(job.content, size=config.size)
    names = [m.name for m in config.methods] + ([n for n, _ in config.decoders] if job.content else [])
    outputs = {n: load_image(out / "images" / job.name / f"{n}.png") for n in names}
    content_layer = network.content_layer if job.content is not None else None
    return cross_evaluate(
        encoder, outputs, losses, style, content, network.style_layers, content_layer, job.seed
    )


def _plot_times(rows: Sequence[dict[str, Any]], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(r["run"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    seconds = {(r["run"], r["method"]): float(r["seconds"]) for r in rows}
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(methods), 3.4))
    for k, name in enumerate(runs):
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(methods))]
        ax.bar(xs, [seconds.get((name, m), 0.0) for m in methods], width, label=name)
    ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("optimisation time (s)")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, folder / "time")


def run(
    config: Config,
    output: Path | None = None,
    log: Any = print,
    *,
    resume: bool = False,
    force: bool = False,
) -> Path:
    """Optimise with every method, cross-evaluate, write all artefacts; returns the run folder.

    ``resume``/``force`` as in :func:`experiments.optimize.run`: with ``resume`` the optimisations already
    recorded are not redone, and the evaluation, summary, figures and manifest are rebuilt from all of
    them. Ctrl-C or SIGTERM during the evaluation raise :class:`experiments.resume.RunInterrupted` too
    (every optimisation is then recorded; ``--resume`` redoes only the evaluation)."""
    out = run_optimize(config, output, log=log, resume=resume, force=force)
    try:
        _evaluate_and_summarise(config, out, log)
    except KeyboardInterrupt:
        jobs = expand_jobs(config)
        total = sum(len(config.methods) + (len(config.decoders) if job.content else 0) for job in jobs)
        raise RunInterrupted(out, total, total) from None
    return out


def _evaluate_and_summarise(config: Config, out: Path, log: Any) -> None:
    """Cross-evaluate the run folder's images and write the evaluation, summary, figures and manifest."""
    started = time.perf_counter()
    jobs = {job.name: job for job in expand_jobs(config)}
    rows: list[dict[str, Any]] = []
    evaluations: dict[str, CrossEvaluation] = {}
    for k, network in enumerate(networks(config)):
        by_job = evaluate_run(config, out, network)
        if k == 0:
            evaluations = by_job
        for name, ev in by_job.items():
            job = jobs[name]
            extra = {"encoder": network.label, "pair": job.pair, "seed": job.seed,
                     "style_weight": job.style_weight}  # fmt: skip
            rows += [{**extra, **row} for row in ev.rows(name)]
    fields = ["encoder", "run", "pair", "seed", "style_weight", "eval_loss", "output", "layer", "value"]
    fields.append("raw")
    with open(out / "evaluation.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    write_json(out / "evaluation.json", rows)
    summary = summarise(rows)
    with open(out / "summary.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    write_json(out / "summary.json", summary)
    weights = config.run_style_weights
    at = weights[len(weights) // 2]
    if config.transfer.style_weight in weights:
        at = config.transfer.style_weight
    for network in networks(config):
        if config.pairs:
            plot_pareto(summary, network.label, out / "figures" / f"pareto_{network.label}")
        plot_per_layer(rows, network.label, at, out / "figures" / f"layers_{network.label}")
    for name, ev in evaluations.items():
        plot_heatmap(ev, out / "figures" / f"heatmap_{name}", title=f"cross-evaluation: {name}")
    metrics = json.loads((out / "metrics.json").read_text())
    _plot_times(metrics, out / "figures")
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["script"] = "experiments.compare"
    manifest["argv"] = sys.argv
    seconds = round(time.perf_counter() - started, 4)
    manifest["timings_s"]["evaluation"] = seconds
    manifest["sittings"] = update_last_sitting(out, evaluation_s=seconds)
    manifest["evaluation"] = {
        "losses": [m.name for m in config.methods],
        "encoders": {n.label: n.encoder for n in networks(config)},
        "encoder_options": {n.label: n.options for n in networks(config)},
        "interval": "Student t 95 % over pairs x seeds; ties from paired t-intervals containing 0",
        "normalisation": "each loss per layer divided by its value at the reference image "
        "(content image; seeded noise for textures); content: MSE / mean F(c)^2",
    }
    write_json(manifest_path, manifest)
    for name, ev in evaluations.items():
        log(f"{name}: own-loss rank (0 = best) "
            + ", ".join(f"{m}={int((ev.summed[i] < ev.summed[i, i]).sum())}"
                        for i, m in enumerate(ev.outputs) if m in ev.losses))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return command_line(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
