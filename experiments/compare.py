"""Compare style losses end to end: optimise with each, then cross-evaluate every output under every loss.

    python -m experiments.compare --config experiments/configs/compare_quick.toml \\
        [--quick] [--output DIR] [--seed N]

The config has the format of :mod:`experiments.optimize` (same keys, same ``[quick]`` table). The
optimisation runs are done by :func:`experiments.optimize.run` (which writes ``config.toml``,
``images/``, ``metrics.csv/.json``, ``history.json``, ``figures/loss_<run>.*`` and ``figures/grid.*``);
this script adds, for every run (content/style pair or texture)::

    evaluation.csv/.json            long format: run, eval_loss, output, layer ("sum" or a layer), value, raw
    figures/heatmap_<run>.png/.pdf  the cross-evaluation matrix (see experiments/evaluate.py)
    figures/time.png/.pdf           optimisation seconds per method and run
    manifest.json                   the optimisation manifest plus the evaluation's timings

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

from adain.encoders import build_encoder
from adain.io import load_image
from experiments.evaluate import CrossEvaluation, cross_evaluate, plot_heatmap
from experiments.optimize import Config, Job, command_line, expand_jobs
from experiments.optimize import run as run_optimize
from experiments.runs import save_figure, write_json

__all__ = ["evaluate_run", "main", "run"]


def evaluate_run(config: Config, out: Path) -> dict[str, CrossEvaluation]:
    """Cross-evaluate the outputs saved under ``out/images`` by :func:`experiments.optimize.run`."""
    encoder = build_encoder(config.encoder, weights=config.weights)
    losses = {m.name: m.loss for m in config.methods}
    results: dict[str, CrossEvaluation] = {}
    for job in expand_jobs(config):
        results[job.name] = _evaluate_job(config, job, out, encoder, losses)
    return results


def _evaluate_job(
    config: Config, job: Job, out: Path, encoder: Any, losses: dict[str, Any]
) -> CrossEvaluation:
    style = load_image(job.style, size=config.size)
    content = None if job.content is None else load_image(job.content, size=config.size)
    names = [m.name for m in config.methods] + ([n for n, _ in config.decoders] if job.content else [])
    outputs = {n: load_image(out / "images" / job.name / f"{n}.png") for n in names}
    s = job.settings
    return cross_evaluate(encoder, outputs, losses, style, content, s.style_layers, s.content_layer, s.seed)


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


def run(config: Config, output: Path | None = None, log: Any = print) -> Path:
    """Optimise with every method, cross-evaluate, write all artefacts; returns the run folder."""
    out = run_optimize(config, output, log=log)
    started = time.perf_counter()
    evaluations = evaluate_run(config, out)
    rows = [row for name, ev in evaluations.items() for row in ev.rows(name)]
    with open(out / "evaluation.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["run", "eval_loss", "output", "layer", "value", "raw"])
        writer.writeheader()
        writer.writerows(rows)
    write_json(out / "evaluation.json", rows)
    for name, ev in evaluations.items():
        plot_heatmap(ev, out / "figures" / f"heatmap_{name}", title=f"cross-evaluation: {name}")
    metrics = json.loads((out / "metrics.json").read_text())
    _plot_times(metrics, out / "figures")
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["script"] = "experiments.compare"
    manifest["argv"] = sys.argv
    manifest["timings_s"]["evaluation"] = round(time.perf_counter() - started, 4)
    manifest["evaluation"] = {
        "losses": [m.name for m in config.methods],
        "normalisation": "each loss per layer divided by its value at the reference image "
        "(content image; seeded noise for textures); content: MSE / mean F(c)^2",
    }
    write_json(manifest_path, manifest)
    for name, ev in evaluations.items():
        log(f"{name}: own-loss rank (0 = best) "
            + ", ".join(f"{m}={int((ev.summed[i] < ev.summed[i, i]).sum())}"
                        for i, m in enumerate(ev.outputs) if m in ev.losses))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    return command_line(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
