"""Run the result experiments and write ``notes/results.md`` from them: every finding computed from the data.

    python -m experiments.results_note [--quick] [--no-run | --force | --resume | --snapshot] [--output FILE]

One command regenerates the note from scratch, seeded: it runs :mod:`experiments.compare` on each config of
:data:`RUNS` into ``runs/results/<name>/`` (``--quick``: the configs' ``[quick]`` tables, into
``runs/results_quick/`` and ``notes/results_quick.md``, a few minutes on a CPU), then writes the note and
its figures (``notes/figures/results[_quick]/``). ``--no-run`` rewrites the note from existing run
folders; an existing run folder is an error unless ``--force`` (start it over) or ``--resume`` (no silent
overwrite).

Several sittings. The full runs take many hours on a CPU: run ``python -m experiments.results_note
--resume`` (it starts missing run folders too), stop it with Ctrl-C or SIGTERM whenever, and run the same
command again. Across machines (a fresh checkout has no ``runs/``): ``--snapshot`` copies each run folder's
settings, sittings, records and images to ``experiments/checkpoints/results/<name>/`` (commit it), and
``--resume`` starts a missing run folder from that snapshot. Every finished optimisation is recorded
(:mod:`experiments.resume`) and not redone; the evaluation, summary, figures and the note are rebuilt
from all of them, equal to an uninterrupted run's (timing columns aside, which keep each optimisation's
own measured seconds). A run folder made with other settings is refused, naming the differing keys. The
wall time in the note is the sum of the run folders' recorded sittings (optimisation and evaluation; a
sitting killed by SIGKILL is not recorded) plus the time this command took to write the note; the note
says over how many sittings.

What the note may say. Every sentence that states a finding is generated from the run folders: scores are
means ± 95 % Student-t intervals over pairs × seeds (``summary.csv``), comparisons are paired intervals
of differences, and a difference whose interval contains 0 is written as a tie. Interpretation written by
hand lives in ``notes/results_discussion.md`` and is copied under its own heading; each of its claims
cites the figure or table behind it. Image grids (contents, styles, every method's outputs, textures) are
downscaled to at most :data:`MAX_SIDE` px per image.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from experiments.intervals import paired_difference
from experiments.runs import REPO_ROOT, ConfigError

#: Committed snapshots of the note's run folders (``--snapshot``; ``results_quick`` for ``--quick``),
#: seeding ``--resume`` on another machine.
SNAPSHOTS = REPO_ROOT / "experiments" / "checkpoints"

__all__ = [
    "MAX_SIDE", "RUNS", "image_grid", "main", "recorded_seconds", "same_method_lines", "write_note",
]  # fmt: skip

#: (name, config, what the section is about) of every comparison run in the note.
RUNS = (
    ("kernels", "experiments/configs/results_kernels.toml", "every style loss, cross-evaluated"),
    ("li_et_al", "experiments/configs/li_et_al.toml", "Li et al.'s setup (IJCAI 2017)"),
)
MAX_SIDE = 128  # px per image in the committed grids (the issue allows at most 256)
DISCUSSION = "results_discussion.md"


# ---- reading a run ---------------------------------------------------------------------------------------


def _csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: make the run with experiments.compare")
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _reference_weight(run: Path) -> float:
    manifest = json.loads((run / "manifest.json").read_text())
    weights = [float(w) for w in manifest["style_weights"]]
    own = float(manifest["settings"]["transfer"]["style_weight"])
    return own if own in weights else weights[len(weights) // 2]


def _fmt(row: dict[str, str]) -> str:
    mean, half = float(row["mean"]), float(row["half_width"])
    text = f"{mean:.3g}" if half == float("inf") else f"{mean:.3g} ± {half:.2g}"
    if row["verdict"] == "best":
        return f"**{text}**"
    return f"{text} (tie)" if row["verdict"] == "tie" else text


def summary_table(summary: Sequence[dict[str, str]], encoder: str, kind: str, weight: float | None) -> str:
    """Markdown table: rows evaluation losses, columns outputs, cells mean ± 95 % interval (bold: best
    beyond the noise; "(tie)": lowest or within the noise of the lowest, no clear best)."""
    cells = [r for r in summary if r["encoder"] == encoder and r["kind"] == kind
             and (weight is None or float(r["style_weight"]) == weight)]  # fmt: skip
    if not cells:
        return "(no runs)"
    losses = list(dict.fromkeys(r["eval_loss"] for r in cells))
    outputs = list(dict.fromkeys(r["output"] for r in cells))
    table = {(r["eval_loss"], r["output"]): r for r in cells}
    n = cells[0]["n"]
    lines = [
        f"| eval loss ↓ / output → (n = {n}) | " + " | ".join(outputs) + " |",
        "|---" * (len(outputs) + 1) + "|",
    ]
    for loss in losses:
        lines.append(
            f"| {loss} | "
            + " | ".join(_fmt(table[(loss, o)]) if (loss, o) in table else "" for o in outputs)
            + " |"
        )
    return "\n".join(lines)


def _units(
    rows: Sequence[dict[str, str]], encoder: str, weight: float
) -> dict[tuple[str, str], dict[tuple[str, str], float]]:
    """``{(eval_loss, output): {(pair, seed): value}}`` of the transfer sums at ``weight``."""
    out: dict[tuple[str, str], dict[tuple[str, str], float]] = defaultdict(dict)
    for r in rows:
        if r["encoder"] != encoder or r["layer"] != "sum" or r["pair"].startswith("texture__"):
            continue
        if float(r["style_weight"]) == weight:
            out[(r["eval_loss"], r["output"])][(r["pair"], r["seed"])] = float(r["value"])
    return out


def same_method_lines(
    rows: Sequence[dict[str, str]], encoder: str, weight: float, methods: Sequence[str]
) -> list[str]:
    """One sentence per pair of methods: under how many evaluation rows their outputs' paired difference
    (95 % t-interval over pairs × seeds) contains 0, and the rows where it does not, with the interval."""
    cells = _units(rows, encoder, weight)
    losses = list(dict.fromkeys(loss for loss, _ in cells))
    lines = []
    for i, a in enumerate(methods):
        for b in methods[i + 1 :]:
            ties, differ = [], []
            for loss in losses:
                if (loss, a) not in cells or (loss, b) not in cells:
                    continue
                units = sorted(set(cells[(loss, a)]) & set(cells[(loss, b)]))
                diff = paired_difference(
                    [cells[(loss, a)][u] for u in units], [cells[(loss, b)][u] for u in units]
                )
                if diff.contains(0.0):
                    ties.append(loss)
                else:
                    word = "lower" if diff.mean < 0 else "higher"
                    differ.append(
                        f"{loss}: {a} {word} by {abs(diff.mean):.3g} [{diff.low:.3g}, {diff.high:.3g}]"
                    )
            total = len(ties) + len(differ)
            verdict = (
                "indistinguishable under every evaluation row"
                if not differ
                else (f"tie under {len(ties)} of {total} rows; differ under " + "; ".join(differ))
            )
            lines.append(f"- **{a} vs {b}**: {verdict}.")
    return lines


def _convergence(run: Path) -> str:
    metrics = json.loads((run / "metrics.json").read_text())
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in metrics:
        if "stop_reason" in m:
            by_method[m["method"]].append(m)
    rows = []
    for method, ms in by_method.items():
        steps = [int(m["steps"]) for m in ms]
        converged = sum(m["stop_reason"] == "converged" for m in ms)
        rows.append(f"| {method} | {converged} / {len(ms)} | {median(steps):g} | {max(steps)} | "
                    f"{median(float(m['seconds']) for m in ms):.3g} |")  # fmt: skip
    manifest = json.loads((run / "manifest.json").read_text())
    s = manifest["settings"]["transfer"]
    head = (f"Stopping rule: relative decrease of the objective over {s['window']} iterations below "
            f"{s['tolerance']:g}, cap {s['iterations']} iterations (`adain/gatys.py`).\n\n"
            "| method | runs converged | median steps | max steps | median seconds |\n|---|---|---|---|---|")  # fmt: skip
    return head + "\n" + "\n".join(rows)


def _gram_vs_poly2(run: Path) -> str:
    metrics = {(m["run"], m["method"]): m for m in json.loads((run / "metrics.json").read_text())}
    jobs = sorted({job for job, method in metrics if method == "gram" and (job, "mmd_poly2") in metrics})
    if not jobs:
        return ""
    rows, identical, worst = [], 0, 0.0
    for job in jobs:
        a, b = _pixels(run / "images" / job / "gram.png"), _pixels(run / "images" / job / "mmd_poly2.png")
        ga, gb = metrics[(job, "gram")]["final_total"], metrics[(job, "mmd_poly2")]["final_total"]
        rel = abs(ga - gb) / abs(ga)
        worst, identical = max(worst, rel), identical + int(np.array_equal(a, b))
        rows.append(f"| {job} | {ga:.6g} | {gb:.6g} | {rel:.1e} | {int(np.abs(a - b).max())} |")
    return (f"Gram vs MMD-poly2 (the same function, `notes/gram_mmd_identity.md`): {identical} of {len(jobs)} "
            f"runs give bit-identical images; the largest relative difference of the final objectives is "
            f"{worst:.1e}.\n\n| run | gram total | mmd_poly2 total | relative diff | max abs pixel diff (of 255) |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows))  # fmt: skip


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


# ---- figures ---------------------------------------------------------------------------------------------


def _thumb(path: Path, side: int) -> Image.Image:
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((side, side), Image.Resampling.LANCZOS)
        return im.copy()


def image_grid(
    rows: Sequence[tuple[str, Sequence[tuple[str, Path]]]], path: Path, side: int = MAX_SIDE
) -> Path:
    """A labelled grid PNG: one row per ``(label, [(title, image file), ...])``, each image downscaled to
    at most ``side`` px on its longer side (never upscaled)."""
    if not rows:
        raise ValueError("image_grid needs at least one row")
    label_w, title_h, pad = 150, 14, 4
    cols = max(len(images) for _, images in rows)
    width = label_w + cols * (side + pad)
    height = len(rows) * (side + title_h + pad)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        y = r * (side + title_h + pad)
        draw.text((2, y + title_h + side // 2), label[:24], fill="black")
        for c, (title, file) in enumerate(images):
            x = label_w + c * (side + pad)
            draw.text((x, y), title[:22], fill="black")
            canvas.paste(_thumb(file, side), (x, y + title_h))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _run_grid(run: Path, name: str, figures: Path, weight: float, quick: bool) -> Path:
    """Contents, styles and every method's output for the first seed at ``weight``; textures after."""
    from experiments.optimize import expand_jobs, load_config

    manifest = json.loads((run / "manifest.json").read_text())
    config = load_config(run / "config.toml", quick=quick, size=int(manifest["size"]))

    seed = config.run_seeds[0]
    methods = [m.name for m in config.methods] + [n for n, _ in config.decoders]
    rows = []
    for job in expand_jobs(config):
        if job.seed != seed or (job.content is not None and job.style_weight != weight):
            continue
        inputs = ([("content", job.content)] if job.content is not None else []) + [("style", job.style)]
        outputs = [(m, run / "images" / job.name / f"{m}.png") for m in methods
                   if (run / "images" / job.name / f"{m}.png").is_file()]  # fmt: skip
        rows.append((job.pair, inputs + outputs))
    return image_grid(rows, figures / f"grid_{name}.png")


# ---- the note --------------------------------------------------------------------------------------------


def _section(index: int, name: str, about: str, run: Path, figures: Path, command: str, quick: bool) -> str:
    manifest = json.loads((run / "manifest.json").read_text())
    summary = _csv(run / "summary.csv")
    rows = _csv(run / "evaluation.csv")
    weight = _reference_weight(run)
    grid = _run_grid(run, name, figures, weight, quick)
    encoders = list(manifest["evaluation"]["encoders"])
    methods = list(manifest["methods"])
    s = manifest["settings"]["transfer"]
    for png in sorted((run / "figures").glob("*.png")):
        if png.stem.startswith(("pareto_", "layers_")) or png.stem == "time":
            shutil.copyfile(png, figures / f"{name}_{png.name}")
    rel = figures.relative_to(figures.parent.parent)
    parts = [
        f"## {index}. {about}",
        f"`{command}`: {manifest['size']} px, encoder `{manifest.get('encoder_label', manifest['encoder'])}` (content `{s['content_layer']}`, "
        f"style {', '.join(s['style_layers'])}), seeds {manifest['seeds']}, style weights "
        f"{manifest['style_weights']}, init `{s['init']}` with jitter {s.get('init_jitter', 0)}, optimiser "
        f"`{s['optimizer']}`. Scored by {', '.join(f'`{e}`' for e in encoders)}.",
        f"![outputs]({rel}/{grid.name})",
        f"*Inputs and outputs (seed {manifest['seeds'][0]}, style weight {weight:g}), ≤ {MAX_SIDE} px each.*",
        "### Convergence",
        _convergence(run),
    ]
    has_transfer = any(r["kind"] == "transfer" for r in summary)
    for enc in encoders:
        parts.append(f"### Scores under `{enc}` (style weight {weight:g}, transfer)")
        parts.append(summary_table(summary, enc, "transfer", weight) if has_transfer else "(no pairs)")
        if any(r["kind"] == "texture" and r["encoder"] == enc for r in summary):
            parts.append(
                f"Texture synthesis under `{enc}`:\n\n" + summary_table(summary, enc, "texture", None)
            )
        if has_transfer:
            parts.append(f"Which losses give the same outputs (under `{enc}`, paired over pairs × seeds):")
            parts.append("\n".join(same_method_lines(rows, enc, weight, methods)))
            if len(manifest["style_weights"]) > 1 and (figures / f"{name}_pareto_{enc}.png").is_file():
                parts.append(f"Trade-off across style weights {manifest['style_weights']} (content score vs "
                             f"style score, 95 % intervals):\n\n![pareto]({rel}/{name}_pareto_{enc}.png)")  # fmt: skip
        if (figures / f"{name}_layers_{enc}.png").is_file():
            parts.append(f"Per layer:\n\n![layers]({rel}/{name}_layers_{enc}.png)")
    poly = _gram_vs_poly2(run)
    if poly:
        parts.append(poly)
    return "\n\n".join(parts)


def write_note(
    runs: dict[str, Path],
    output: Path,
    command: str,
    seconds: float,
    quick: bool = False,
    *,
    sittings: int = 1,
) -> Path:
    """Write the note from ``runs`` (``{name: run folder}``, names from :data:`RUNS`); ``seconds`` is the
    wall time of the whole command (runs included; over all ``sittings`` of a resumed run), stated in the
    note with ``command``."""
    figures = output.parent / "figures" / f"{output.stem}"
    shutil.rmtree(figures, ignore_errors=True)
    figures.mkdir(parents=True)
    about = {name: (cfg, text) for name, cfg, text in RUNS}
    import torch

    over = f", the sum of {sittings} sittings (`--resume`)" if sittings > 1 else ""
    header = f"""# Results: style losses compared with repeats, intervals and pictures

*Generated by `{command}` (runs included: {seconds / 60:.1f} min wall time{over}) on {platform.machine()} ({platform.system()},
{torch.get_num_threads()} torch threads, CPU); do not edit by hand. Every finding below is computed from
the run folders: cells are means ± 95 % Student-t intervals over pairs × seeds; **bold** marks an output
better than every other beyond the noise (paired t-intervals of the differences exclude 0); "(tie)" marks
the lowest output and every output within the noise of it when there is no clear best
(`experiments/intervals.py`). Scores: each style loss per layer divided by its value at the content
image (0 = matched, 1 = as far as the content image), layer-weighted; content = ‖F(x) − F(c)‖² / ‖F(c)‖².*
"""
    sections = [header]
    for k, (name, run) in enumerate(runs.items(), start=1):
        cfg = about[name][0]
        flag = " --quick" if quick else ""
        sections.append(_section(k, name, about[name][1], run, figures,
                                 f"python -m experiments.compare --config {cfg}{flag}", quick))  # fmt: skip
    discussion = output.parent / DISCUSSION
    if discussion.is_file():
        sections.append("## Interpretation (hand-written; each claim cites its figure or table)\n\n"
                        + discussion.read_text().split("\n", 1)[1].strip())  # fmt: skip
    output.write_text("\n\n".join(sections) + "\n")
    return output


def recorded_seconds(run: Path) -> tuple[float, int]:
    """The wall time a run folder records and over how many sittings: the sum of its sittings'
    optimisation and evaluation seconds (``manifest.json``'s ``sittings``; a sitting killed by SIGKILL
    is not recorded), or, for a run made before runs could be resumed, its one sitting's optimisation and
    evaluation seconds."""
    from experiments.resume import sittings_seconds

    manifest = json.loads((run / "manifest.json").read_text())
    sittings = manifest.get("sittings")
    if sittings:
        return sittings_seconds(sittings), len(sittings)
    timings = manifest.get("timings_s", {})
    return float(timings.get("total", 0.0)) + float(timings.get("evaluation", 0.0)), 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the configs' [quick] tables (a few minutes)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--no-run", action="store_true", help="rewrite the note from existing run folders")
    again.add_argument("--force", action="store_true", help="replace existing run folders")
    again.add_argument(
        "--resume", action="store_true", help="continue existing run folders where they stopped (start "
        "missing ones, from the --snapshots folder where it has them): for the full note over several sittings"
    )  # fmt: skip
    again.add_argument(
        "--snapshot", action="store_true", help="copy the run folders' records and images to --snapshots "
        "(to commit; a later --resume on a fresh checkout starts from them) and exit"
    )  # fmt: skip
    p.add_argument(
        "--snapshots",
        type=Path,
        help="folder of the committed snapshots (default experiments/checkpoints/results[_quick])",
    )
    p.add_argument("--output", type=Path, help="note file (default notes/results[_quick].md)")
    p.add_argument("--runs", type=Path, help="folder of the run folders (default runs/results[_quick])")
    args = p.parse_args(argv)
    started = time.perf_counter()
    suffix = "_quick" if args.quick else ""
    output = args.output or REPO_ROOT / "notes" / f"results{suffix}.md"
    root = args.runs or REPO_ROOT / "runs" / f"results{suffix}"
    runs = {name: root / name for name, _, _ in RUNS}
    snapshots = args.snapshots or SNAPSHOTS / f"results{suffix}"
    from experiments.compare import run as run_compare
    from experiments.optimize import load_config
    from experiments.resume import RunInterrupted, seed_from_snapshot, sigterm_as_interrupt, snapshot

    if args.snapshot:
        try:
            for name, folder in runs.items():
                if folder.is_dir():
                    kept = snapshot(folder, snapshots / name)
                    print(f"{snapshots / name}: {kept} finished outputs of {folder}")
            if not any(folder.is_dir() for folder in runs.values()):
                print(f"results_note: error: no run folder under {root} to snapshot; start the runs with "
                      "--resume first (or name their folder with --runs)", file=sys.stderr)  # fmt: skip
                return 2
        except ConfigError as exc:
            print(f"results_note: error: {exc}", file=sys.stderr)
            return 2
        return 0

    running = 0.0  # seconds of this command inside the runs (they record their own time)
    try:
        with sigterm_as_interrupt():
            for name, cfg, _ in RUNS:
                folder = runs[name]
                if args.no_run:
                    if not (folder / "summary.csv").is_file():
                        print(f"results_note: error: {folder} has no summary.csv; run without --no-run",
                              file=sys.stderr)  # fmt: skip
                        return 2
                    continue
                if folder.exists() and not (args.force or args.resume):
                    print(f"results_note: error: {folder} exists; use --resume to continue it, --force to "
                          "replace it or --no-run to reuse it", file=sys.stderr)  # fmt: skip
                    return 2
                if args.resume and seed_from_snapshot(snapshots / name, folder):
                    print(f"started {folder} from the snapshot {snapshots / name}")
                config = load_config(REPO_ROOT / cfg, quick=args.quick)
                began = time.perf_counter()
                run_compare(config, folder, resume=args.resume, force=args.force)
                running += time.perf_counter() - began
    except ConfigError as exc:
        print(f"results_note: error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:
        print(f"results_note: {exc}", file=sys.stderr)
        return 130
    command = "python -m experiments.results_note" + (" --quick" if args.quick else "")
    recorded = [recorded_seconds(folder) for folder in runs.values()]
    seconds = sum(s for s, _ in recorded) + time.perf_counter() - started - running
    sittings = max(n for _, n in recorded)
    print(write_note(runs, output, command, seconds, args.quick, sittings=sittings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
