"""Write ``notes/results.md`` (and its figures) from the result runs; no computation beyond reading them.

    python -m experiments.results_note [--kernels runs/results_kernels] [--decoders runs/results_decoders]
        [--ablation runs/decoder_ablation] [--default-run runs/default_decoder] [--output notes/results.md]

The runs themselves come from (see the note's first section, all seeded)::

    python -m experiments.training_data
    python -m experiments.decoder_ablation --config experiments/configs/decoder_ablation.toml
    adain train ... --output runs/default_decoder          # the shipped model, see notes/results.md
    python -m experiments.compare --config experiments/configs/results_kernels.toml
    python -m experiments.compare --config experiments/configs/results_decoders.toml

Only plots are copied into ``notes/figures/results/`` (heatmaps, loss curves, timings); the image grids
contain the paper's images and stay in the run folders.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
from PIL import Image

from adain.modelfile import read_model_file
from adain.train import FINAL_MODEL_NAME, read_log
from experiments.runs import REPO_ROOT

__all__ = ["main", "write_note"]

FIGURES = "figures/results"


def _sum_rows(run: Path) -> list[dict[str, Any]]:
    with open(run / "evaluation.csv") as fh:
        return [r for r in csv.DictReader(fh) if r["layer"] == "sum"]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cross_means(run: Path, transfer: bool) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """Mean normalised score per (eval loss, output) over the transfer (or texture) runs."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    losses: list[str] = []
    outputs: list[str] = []
    for r in _sum_rows(run):
        if r["run"].startswith("texture__") == transfer:
            continue
        cells[(r["eval_loss"], r["output"])].append(float(r["value"]))
        losses += [r["eval_loss"]] if r["eval_loss"] not in losses else []
        outputs += [r["output"]] if r["output"] not in outputs else []
    return losses, outputs, {k: mean(v) for k, v in cells.items()}


def _cross_table(run: Path, transfer: bool) -> str:
    losses, outputs, means = _cross_means(run, transfer)
    if not losses:
        return "(no runs)"
    rows = []
    for loss in losses:
        best = min(means[(loss, o)] for o in outputs)
        rows.append([f"**{loss}**"] + [
            f"**{means[(loss, o)]:.3g}**" if means[(loss, o)] == best else means[(loss, o)] for o in outputs
        ])  # fmt: skip
    return _table(["eval loss ↓ / output →", *outputs], rows)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def _gram_vs_poly2(run: Path) -> tuple[str, float, int]:
    metrics = json.loads((run / "metrics.json").read_text())
    final = {(m["run"], m["method"]): m for m in metrics}
    rows, worst, identical = [], 0.0, 0
    for job in sorted({m["run"] for m in metrics}):
        if (job, "gram") not in final or (job, "mmd_poly2") not in final:
            continue
        a, b = _pixels(run / "images" / job / "gram.png"), _pixels(run / "images" / job / "mmd_poly2.png")
        diff = int(np.abs(a - b).max())
        ga, gb = final[(job, "gram")]["final_total"], final[(job, "mmd_poly2")]["final_total"]
        rel = abs(ga - gb) / abs(ga)
        worst = max(worst, rel)
        identical += int(diff == 0)
        rows.append([job, ga, gb, f"{rel:.1e}", diff, f"{(a != b).mean():.2%}"])
    header = [
        "run",
        "gram total",
        "mmd_poly2 total",
        "relative diff",
        "max |Δpixel| (of 255)",
        "pixels differing",
    ]
    return _table(header, rows), worst, identical


def _times(run: Path) -> dict[str, float]:
    seconds: dict[str, list[float]] = defaultdict(list)
    for m in json.loads((run / "metrics.json").read_text()):
        seconds[m["method"]].append(float(m["seconds"]))
    return {k: mean(v) for k, v in seconds.items()}


def _train_minutes(run: Path) -> float:
    """Training time from the log: Σ batch / (images/s) over the iterations (checkpoints excluded)."""
    batch = read_model_file(run / FINAL_MODEL_NAME).config["batch_size"]
    return sum(batch / r["images_per_s"] for r in read_log(run / "log.csv")) / 60


def _plot_training(runs: dict[str, Path], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, folder in runs.items():
        log = read_log(folder / "log.csv")
        its = [r["iteration"] for r in log]
        smooth = max(1, len(log) // 30)

        def avg(values: list[float], k: int = smooth) -> list[float]:
            return [mean(values[max(0, i - k + 1) : i + 1]) for i in range(len(values))]

        first = mean(r["style"] for r in log[:smooth])
        axes[0].plot(its, avg([r["style"] / first for r in log]), label=name)
        axes[1].plot(its, avg([r["content"] for r in log]), label=name)
    axes[0].set_title("style loss / its initial value (running mean)")
    axes[0].set_yscale("log")
    axes[1].set_title("content loss ‖E(D(t)) − t‖² (running mean)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _copy_figures(run: Path, figures: Path, prefix: str) -> list[str]:
    names = []
    for png in sorted((run / "figures").glob("*.png")):
        if png.stem == "grid":
            continue  # contains the paper's images: not committed
        target = figures / f"{prefix}_{png.name}"
        shutil.copyfile(png, target)
        names.append(target.name)
    return names


def write_note(kernels: Path, decoders: Path, ablation: Path, default_run: Path, output: Path) -> Path:
    figures = output.parent / FIGURES
    shutil.rmtree(figures, ignore_errors=True)
    figures.mkdir(parents=True)
    k_manifest = json.loads((kernels / "manifest.json").read_text())
    d_manifest = json.loads((decoders / "manifest.json").read_text())
    a_manifest = json.loads((ablation / "manifest.json").read_text())
    k_figs = _copy_figures(kernels, figures, "kernels")
    d_figs = _copy_figures(decoders, figures, "decoders")
    gram_table, gram_worst, identical = _gram_vs_poly2(kernels)
    k_times, d_times = _times(kernels), _times(decoders)
    methods = list(a_manifest["calibration"]["style_weight"])
    _plot_training({m: ablation / m for m in methods}, figures / "ablation_training.png",
                   "decoder ablation: same data, seed and schedule")  # fmt: skip
    default_log = read_log(default_run / "log.csv")
    _plot_training(
        {"default (meanstd)": default_run}, figures / "default_training.png", "the shipped decoder"
    )
    default_config = read_model_file(default_run / FINAL_MODEL_NAME).config
    command = (
        f"adain train --content-dir ~/.cache/adain-mmd/training-data/content --style-dir "
        f"~/.cache/adain-mmd/training-data/style --encoder {default_config['encoder']} --seed "
        f"{default_config['seed']} --iterations {int(default_log[-1]['iteration'])} --output runs/default_decoder"
    )
    data_manifest = json.loads((Path(default_config["content_dir"]).parent / "manifest.json").read_text())

    losses, outputs, means = _cross_means(decoders, transfer=True)
    decoder_names = [n for n in outputs if n not in losses]
    optimisers = [n for n in outputs if n in losses]

    cal = a_manifest["calibration"]
    cal_rows = [[m, cal["initial_style_loss"][m], cal["style_weight"][m]] for m in methods]
    last = {m: read_log(ablation / m / "log.csv")[-1] for m in methods}
    ablation_rows = [
        [m, int(last[m]["iteration"]), last[m]["content"], last[m]["style"] / cal["initial_style_loss"][m],
         round(_train_minutes(ablation / m), 1)]
        for m in methods
    ]  # fmt: skip
    packages = ", ".join(f"{p} {v}" for p, v in data_manifest["packages"].items())
    kernel_jobs = sorted({r["run"] for r in _sum_rows(kernels)})
    style_rows = [r for r in losses if r != "content"]
    ablation_names = [d for d in decoder_names if d.startswith("ablation_")]
    ablation_ranking = (
        "; ".join(
            f"under {r} the best ablation decoder is {min(ablation_names, key=lambda d, r=r: means[(r, d)])}"
            for r in losses
        )
        if ablation_names
        else "(no ablation decoders in the run)"
    )
    worst_content = max(means[("content", d)] for d in decoder_names)
    content_warning = (
        " Their content scores above 1 mean that the decoded images are further from the content image's "
        "s16 features than the content image's own feature norm: at this stage the decoders reproduce "
        "colours and textures of the style but only coarse content structure."
        if worst_content > 1
        else ""
    )
    best_opt = {r: min(optimisers, key=lambda o, r=r: means[(r, o)]) for r in losses}
    best_dec = {r: min(decoder_names, key=lambda d, r=r: means[(r, d)]) for r in losses}
    dec_default = "default" if "default" in decoder_names else decoder_names[0]
    speedup = mean(d_times[o] for o in optimisers) / d_times[dec_default]

    text = f"""# Results: Gram vs MMD vs mean/std matching, and trained AdaIN decoders

*Generated by `python -m experiments.results_note` from the runs listed below; do not edit by hand.
Encoder: MobileNetV2 (ImageNet weights, taps s2, s4, s8, s16; content layer s16, the AdaIN layer), since
VGG-19 weights are not available on the machines this was run on; every config runs unchanged with
`vgg19` for users who have its weights. CPU only (2 cores), seed 0 throughout.*

Regenerate everything (about 3 hours on 2 CPU cores, most of it decoder training):

```sh
python -m experiments.training_data                       # data set, outside the repository
python -m experiments.decoder_ablation --config experiments/configs/decoder_ablation.toml
{command}
python -m experiments.compare --config experiments/configs/results_kernels.toml
python -m experiments.compare --config experiments/configs/results_decoders.toml
python -m experiments.results_note
```

Scores in the tables are the cross-evaluation of `experiments/evaluate.py`: each style loss per layer divided
by its value at the content image (1 = as far from the style as the content image, 0 = matched), summed
over the four layers with weight 1/4; content = ‖F(x) − F(c)‖² / ‖F(c)‖² at s16. Lower is better; bold is
the best output under each loss.

## 1. Optimisation: every style loss, cross-evaluated

{len(kernel_jobs)} runs (`experiments/configs/results_kernels.toml`: {", ".join(kernel_jobs)}) at
{k_manifest["size"]} px, L-BFGS from the content image ({k_manifest["settings"]["transfer"]["iterations"]}
iterations; textures from seeded noise). Each loss is normalised by its value at the content image, so one
`style_weight` asks each loss to remove the same fraction of its own distance (see `adain/gatys.py`).

**Gram = MMD² with k(x, y) = (xᵀy)², in practice.** Same seed, same normalisation, float32 on the CPU:

{gram_table}

{identical} of {len(kernel_jobs)} runs give bit-identical images. Where they differ, the final objectives
still agree to a relative {gram_worst:.1e}: the two losses are the same function evaluated with a different
float32 summation order (a Gram matrix vs kernel sums over positions), and L-BFGS's line search turns
last-bit differences into a different, equally good path over {k_manifest["settings"]["transfer"]["iterations"]} iterations. In
float64 the identity holds to ~1e-16 and the two optimisations follow the same trajectory
(`tests/test_optimize.py`, `notes/gram_mmd_identity.md`); on images, Gram and MMD-poly2 are one method.

**Cross-evaluation, style transfer (mean over the pairs).** Columns are outputs optimised with each loss,
rows the loss they are scored by:

{_cross_table(kernels, transfer=True)}

**Texture synthesis (no content term):**

{_cross_table(kernels, transfer=False)}

Per-run heatmaps: {", ".join(f"[{n}]({FIGURES}/{n})" for n in k_figs if "heatmap" in n)}. Loss curves:
{", ".join(f"[{n}]({FIGURES}/{n})" for n in k_figs if n.startswith("kernels_loss"))}. The image grid is
`runs/results_kernels/figures/grid.png` (not committed: it shows the paper's images).

Mean optimisation time per run (s): {", ".join(f"{m} {t:.1f}" for m, t in k_times.items())}.

![time]({FIGURES}/kernels_time.png)

What the matrix shows:

- **Gram, MMD-poly2 and MMD-poly2 with c = 1** form one family: they score each other's outputs almost
  equally. (xᵀy + c)² = (xᵀy)² + 2c·xᵀy + c² adds the linear-kernel term 2c·‖μ_F − μ_S‖² (a mean term) to
  the Gram term; with features of ReLU-scale magnitude the quadratic term dominates and c = 1 changes little.
- **Linear MMD** only matches the per-channel means (MMD² = ‖μ_F − μ_S‖²): it reaches the lowest value on
  its own row but leaves the second-order statistics, which the other rows measure, largely unmatched.
- **mean/std** (AdaIN / BN statistics) matches the first two moments per channel but not the cross-channel
  correlations that Gram matching fixes; Gram matching in turn matches uncentred second moments, mixing
  mean and covariance.
- **Gaussian MMD** (median-heuristic bandwidth) is characteristic: in principle it matches all moments of
  the position-wise feature distribution. At a finite budget it is the slowest (O(M²) kernel sums over
  positions) and its gradient vanishes for features far apart relative to the bandwidth.

## 2. Trained decoders next to optimisation

`experiments/configs/results_decoders.toml`: every paper content image with one paper style ({len([r for r in _sum_rows(decoders) if r["eval_loss"] == losses[0] and r["output"] == outputs[0]])} pairs) at
{d_manifest["size"]} px; optimisation with {", ".join(optimisers)} ({d_manifest["settings"]["transfer"]["iterations"]} L-BFGS iterations,
same encoder, content layer and style layers as the decoders' training) and the decoders as further
columns: `default` is the model shipped in the package, `ablation_*` the decoders of section 3.

{_cross_table(decoders, transfer=True)}

Mean time per image (s): {", ".join(f"{m} {t:.2f}" for m, t in d_times.items())} — the decoder is about
{speedup:.0f}× faster than optimisation here (one forward pass against {d_manifest["settings"]["transfer"]["iterations"]} L-BFGS iterations).
Heatmaps per pair: {", ".join(f"[{n}]({FIGURES}/{n})" for n in d_figs if "heatmap" in n)}. Grid (not
committed): `runs/results_decoders/figures/grid.png`.

Reading it: under {", ".join(style_rows)}, the best optimisation output scores
{", ".join(f"{means[(r, best_opt[r])]:.3g}" for r in style_rows)} and the best decoder
{", ".join(f"{means[(r, best_dec[r])]:.3g} ({best_dec[r]})" for r in style_rows)}; on content,
optimisation {means[("content", best_opt["content"])]:.3g} and the decoders from
{min(means[("content", d)] for d in decoder_names):.3g} to {max(means[("content", d)] for d in decoder_names):.3g}.
Optimisation solves each pair on its own; a decoder amortises one feed-forward map over all pairs, and
these decoders had a short CPU schedule (a few hundred iterations).{content_warning} The paper's styles are
in the training set (seen styles); the content images are not.

## 3. Decoder ablation: mean/std vs Gram vs Gaussian MMD as the training style loss

`experiments/configs/decoder_ablation.toml`: same data, seed (0), schedule (Adam, lr 1e-4 with inverse
decay, batch 8, 256 px crops) and iterations for each loss. The style weights are calibrated so that the
style term has the same size at the untrained decoder on the first batch (see
`experiments/decoder_ablation.py`): reference mean/std with weight {cal["reference_style_weight"]:g}.
The Gaussian MMD sees 512 random positions per layer and iteration (`--style-positions`), which keeps its
O(M²) cost affordable.

{_table(["loss", "initial style loss", "calibrated style weight"], cal_rows)}

{_table(["loss", "iterations", "final content loss", "final style / initial", "training minutes (2 cores, shared)"], ablation_rows)}

![ablation]({FIGURES}/ablation_training.png)

Their stylizations of the same pairs are the `ablation_*` columns of section 2 (and of its grid). On
those pairs, {ablation_ranking}. In this run's training curves the Gram decoder's style term falls fastest early on and it
keeps the lowest content loss; the mean/std and Gaussian-MMD decoders trade content for style after
about 60 iterations (figure). These are short schedules: they rank the losses early in training, not at
convergence (160 000 iterations in the paper), and each decoder is scored here only by the losses of
section 2 (mean/std, Gram, content).

## 4. The shipped decoder (`adain/models/default.pth`)

`adain stylize --content A --style B` uses it with no model argument; torchvision supplies the
MobileNetV2 encoder weights.

- **Recipe**: the paper's (AdaIN at s16, content loss against the AdaIN target, mean/std style loss at
  s2…s16 weighted 1/channels, style weight {default_config["style_weight"]:g}, content weight
  {default_config["content_weight"]:g}, Adam lr {default_config["lr"]:g} with lr/(1 + {default_config["lr_decay"]:g}·iteration), batch
  {default_config["batch_size"]}, shorter side {default_config["image_size"]} then random {default_config["crop_size"]} px crops), seed {default_config["seed"]},
  **{int(default_log[-1]["iteration"])} iterations** on 2 CPU cores — a short schedule,
  {int(default_log[-1]["iteration"]) / 160_000:.2%} of the paper's 160 000 iterations; train longer on a GPU for sharper results (the run resumes exactly).
- **Data**: {len(data_manifest["content"])} content photos (wallpapers from the Debian packages {packages}),
  {len(data_manifest["style"])} styles (the AdaIN paper's); assembled by `python -m experiments.training_data`
  ({len(data_manifest["skipped"])} files skipped: small, duplicate or unreadable; see its `manifest.json`).
- **Losses at the end** (mean of the last 50 iterations): content
  {mean(r["content"] for r in default_log[-50:]):.3g}, style {mean(r["style"] for r in default_log[-50:]):.3g}
  (from {mean(r["style"] for r in default_log[:10]):.3g} over the first 10).

![default]({FIGURES}/default_training.png)
"""
    output.write_text(text)
    return output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kernels", type=Path, default=REPO_ROOT / "runs" / "results_kernels")
    p.add_argument("--decoders", type=Path, default=REPO_ROOT / "runs" / "results_decoders")
    p.add_argument("--ablation", type=Path, default=REPO_ROOT / "runs" / "decoder_ablation")
    p.add_argument("--default-run", type=Path, default=REPO_ROOT / "runs" / "default_decoder")
    p.add_argument("--output", type=Path, default=REPO_ROOT / "notes" / "results.md")
    args = p.parse_args(argv)
    producers = {
        args.kernels: "python -m experiments.compare --config experiments/configs/results_kernels.toml",
        args.decoders: "python -m experiments.compare --config experiments/configs/results_decoders.toml",
        args.ablation: "python -m experiments.decoder_ablation --config experiments/configs/decoder_ablation.toml",
        args.default_run: "adain train ... --output runs/default_decoder (see notes/results.md, section 4)",
    }
    for folder, command in producers.items():
        if not folder.is_dir():
            print(f"results_note: error: run folder {folder} does not exist; make it with: {command}",
                  file=sys.stderr)  # fmt: skip
            return 2
    print(write_note(args.kernels, args.decoders, args.ablation, args.default_run, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
