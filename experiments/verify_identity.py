"""Verify numerically that the Gatys Gram loss equals MMD²_b / (4N²) under k(x, y) = (xᵀy)².

    python -m experiments.verify_identity [--output runs/verify_identity] [--seed 0] [--quick]
        [--no-real] [--encoder vgg19_caffe] [--real-size 128] [--encoder-weights PATH]
        [--no-memory] [--overwrite]

Sweeps N and M (equal and unequal M_F, M_S) in float32 and float64 on random features and, with an
encoder of ``adain.encoders`` (``--real``, the default), on real features of the AdaIN paper's images.
Sweeps the distance between F and S (``F = S + ε·σ_S·Z``, ε from 1e-1 to 1e-6) to show where each route
of the MMD² side is accurate. Writes ``identity.csv``, ``cancellation.csv``, ``routes.csv`` and the
figures ``rel_error``, ``cancellation``, ``route_time`` and ``route_memory`` (PNG and PDF) into the
output folder; refuses to overwrite earlier results unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from tqdm import tqdm

import mmd
from experiments import mmd_workloads as work
from experiments.measure import median_time, peak_extra_memory

DEFAULT_OUTPUT = Path("runs/verify_identity")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
EXACT_FLOOR = 1e-18  # where the plot puts checks whose two sides agree to the last bit
OUTPUT_NAMES = ("identity.csv", "cancellation.csv", "routes.csv", "rel_error.png", "cancellation.png")
CANCELLATION_EPS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def identity_rows(ns, ms, seed: int):
    """One row per (source, N, M_F, M_S, dtype) for random features."""
    cases = list(itertools.product(ns, ms, ("equal", "unequal"), DTYPES))
    for n, m, sizes, dtype_name in tqdm(cases, desc="identity (random)"):
        m_s = m if sizes == "equal" else max(1, (3 * m) // 5 + 1)
        f, s = work.random_samples(n, m, m_s, "float64", seed)
        check = mmd.verify_identity(f.T, s.T, dtype=DTYPES[dtype_name])
        yield _row("random", n, check, dtype_name)


def _row(source: str, n: int, check: mmd.IdentityCheck, dtype_name: str) -> dict:
    eps = torch.finfo(check.dtype).eps
    return {
        "source": source,
        "N": n,
        "M_F": check.m_generated,
        "M_S": check.m_style,
        "dtype": dtype_name,
        "gram_loss": float(check.gram_loss.double().sum()),
        "mmd_loss": float(check.mmd_loss.double().sum()),
        "abs_error": float(check.abs_error.max()),
        "rel_error": check.max_rel_error,
        "condition": float(check.condition.max()),
        "ulps_of_terms": float((check.abs_error.double() / (eps * check.term_scale)).max()),
        "tolerance_used": float((check.abs_error.double() / check.tolerance()).max()),
        "holds": check.holds(),
    }


def real_feature_rows(image_size: int, encoder_name: str, weights: str | None):
    """Identity rows on real features: each of 3 paper content images against each of 3 styles."""
    from adain.encoders import DEFAULT_WEIGHTS, build_encoder
    from adain.io import load_image

    paper = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adain-paper"
    if not paper.is_dir():
        raise SystemExit(f"the AdaIN paper images were not found at {paper}; run with --no-real to skip them")
    contents = sorted((paper / "content").glob("*.jpg"))[:3]
    styles = sorted((paper / "style").glob("*.jpg"))[:3]
    encoder = build_encoder(encoder_name, weights=weights or DEFAULT_WEIGHTS)
    with torch.no_grad():
        feats = {}
        for path in contents + styles:
            # the style at a different size, so M_F != M_S at every layer
            size = image_size if path in contents else int(image_size * 1.25)
            feats[path] = encoder(load_image(path, size=size).unsqueeze(0))
    pairs = list(itertools.product(contents, styles, encoder.layer_names, DTYPES))
    for content, style, layer, dtype_name in tqdm(pairs, desc=f"identity ({encoder_name})"):
        f, s = feats[content][layer], feats[style][layer]  # [1, N, H, W] each
        check = mmd.verify_identity(f, s, dtype=DTYPES[dtype_name])
        yield _row(f"{encoder_name}:{layer}", f.shape[1], check, dtype_name)


def cancellation_rows(n: int, m: int, seeds, eps_values=CANCELLATION_EPS):
    """Accuracy of each route as F → S: ``F = S + ε·σ_S·Z`` for each ε and seed, float32 and float64.

    The reference is exact up to float64 rounding and has no cancellation: with ``E = F − S`` (computed
    in float64 from the very inputs each dtype sees), ``C_F − C_S = (S Eᵀ + E Sᵀ + E Eᵀ) / M``.
    """
    for seed, eps in tqdm(list(itertools.product(seeds, eps_values)), desc="cancellation"):
        gen = torch.Generator().manual_seed(seed)
        s64 = torch.randn(n, m, generator=gen, dtype=torch.float64) * 1.5 + 0.25
        noise = torch.randn(n, m, generator=gen, dtype=torch.float64)
        f64 = s64 + eps * s64.std() * noise
        for dtype_name, dtype in DTYPES.items():
            f, s = f64.to(dtype), s64.to(dtype)
            fd, sd = f.double(), s.double()
            e = fd - sd  # exact: both are representable in float64
            diff = (sd @ e.T + e @ sd.T + e @ e.T) / m
            reference = float(diff.pow(2).sum() / (4 * n * n))
            term_scale = float(mmd.identity.cancelling_terms(fd, sd))
            check = mmd.verify_identity(f, s, dtype=dtype)
            x, y = mmd.positions_as_samples(f), mmd.positions_as_samples(s)
            values = {
                "gram": float(mmd.gram_style_loss(f, s)),
                "moment": float(mmd.mmd2(x, y, mmd.kernels.polynomial(2), route="moment", clamp=False))
                / (4 * n * n),
                "kernel": float(check.mmd_loss),
            }
            for route, value in values.items():
                yield {
                    "eps": eps,
                    "seed": seed,
                    "N": n,
                    "M": m,
                    "dtype": dtype_name,
                    "route": route,
                    "value": value,
                    "reference": reference,
                    "rel_error": abs(value - reference) / reference,
                    "condition": term_scale / reference,
                    "negative": value < 0,
                    # the condition-aware check (kernel route against the Gram route)
                    "identity_holds": check.holds() if route == "kernel" else "",
                }


def route_rows(n: int, ms, seed: int, measure_memory: bool):
    """Time (and peak extra memory) of the kernel and moment routes of the quadratic-kernel MMD²."""
    for m in tqdm(ms, desc=f"routes (N={n})"):
        samples = work.random_samples(n, m, m, "float32", seed)
        row = {"N": n, "M": m}
        for route, fn in (("kernel", work.kernel_route), ("moment", work.moment_route)):
            repeats = 1 if route == "kernel" and m >= 8192 else 3
            row[f"{route}_seconds"] = median_time(functools.partial(fn, samples), repeats=repeats)
            if measure_memory:
                row[f"{route}_peak_bytes"] = peak_extra_memory(
                    work.random_samples, _run_no_grad(route), n, m, m, "float32", seed
                )
        yield row


def _run_no_grad(route: str):
    return work.kernel_route if route == "kernel" else work.moment_route


def plot_cancellation(rows: list[dict], path: Path) -> None:
    """Median (over seeds) relative error of each route against ε, with the guides ``u·√κ`` (grey) and
    ``u·κ`` (black): ``u`` the unit roundoff, ``κ`` = cancelling terms / value (the ``condition`` column)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = {"gram": "tab:blue", "moment": "tab:green", "kernel": "tab:red"}
    eps_values = sorted({r["eps"] for r in rows}, reverse=True)
    for dtype_name, ls in (("float32", "-"), ("float64", "--")):
        for route, colour in colours.items():
            errs = []
            for eps in eps_values:
                pts = [
                    r["rel_error"]
                    for r in rows
                    if r["eps"] == eps and r["dtype"] == dtype_name and r["route"] == route
                ]
                errs.append(max(statistics.median(pts), EXACT_FLOOR))
            ax.plot(eps_values, errs, ls, marker="o", c=colour, label=f"{route} route, {dtype_name}")
        unit = torch.finfo(DTYPES[dtype_name]).eps
        cond = [statistics.median(r["condition"] for r in rows if r["eps"] == e) for e in eps_values]
        ax.plot(eps_values, [unit * c**0.5 for c in cond], ls, c="gray", lw=0.8)
        ax.plot(eps_values, [unit * c for c in cond], ls, c="black", lw=0.8)
    ax.axhline(1.0, c="gray", ls=":")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="perturbation ε  (F = S + ε·σ_S·Z)",
        ylabel="relative error vs exact float64 reference",
        title=f"F → S (N = {rows[0]['N']}, M = {rows[0]['M']}); grey eps·√κ, black eps·κ",
    )
    ax.invert_xaxis()
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=130)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def plot_rel_error(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = {  # (dtype, real features?) -> marker, colour
        ("float32", False): ("o", "tab:blue"),
        ("float32", True): ("^", "tab:cyan"),
        ("float64", False): ("s", "tab:orange"),
        ("float64", True): ("D", "tab:red"),
    }
    for (dtype_name, real), (marker, colour) in styles.items():
        pts = [r for r in rows if r["dtype"] == dtype_name and (r["source"] != "random") == real]
        if pts:
            ax.scatter(
                [r["M_F"] for r in pts],
                [max(r["rel_error"], EXACT_FLOOR) for r in pts],
                marker=marker,
                c=colour,
                label=f"{dtype_name}, {'encoder features' if real else 'random features'}",
                alpha=0.6,
            )
    for eps, name in (
        (torch.finfo(torch.float32).eps, "float32 eps"),
        (torch.finfo(torch.float64).eps, "float64 eps"),
    ):
        ax.axhline(eps, ls=":", c="gray")
        ax.text(0.01, eps * 1.5, name, color="gray", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="positions M_F",
        ylabel="relative error (exact: plotted at 1e-18)",
        title="Gram loss vs MMD²/(4N²), k(x,y) = (xᵀy)²",
    )
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_routes(rows: list[dict], key: str, ylabel: str, path: Path, scale: float = 1.0) -> None:
    """Measured values as they are; a value of 0 (a memory peak below the resolution) cannot be drawn on
    a log axis and is left out, and the legend says how many were."""
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for route in ("kernel", "moment"):
        pts = [(r["M"], r[f"{route}_{key}"] / scale) for r in rows if r[f"{route}_{key}"] > 0]
        dropped = len(rows) - len(pts)
        label = f"{route} route" + (f" ({dropped} zero values not drawn)" if dropped else "")
        ax.plot([m for m, _ in pts], [v for _, v in pts], "o-", label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="positions M (= M_F = M_S)",
        ylabel=ylabel,
        title=f"quadratic-kernel MMD², N = {rows[0]['N']}, float32, CPU",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _save(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder for CSVs and figures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small sweep (seconds), as the tests use")
    parser.add_argument(
        "--real",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also check real encoder features of the AdaIN paper images (default: on)",
    )
    parser.add_argument(
        "--encoder", default="vgg19_caffe", help="encoder for --real (adain.encoders name; %(default)s)"
    )
    parser.add_argument(
        "--real-size",
        type=int,
        default=None,
        help="shorter side of the content images for --real (styles at 1.25×; default 128, 64 with --quick)",
    )
    parser.add_argument(
        "--encoder-weights", dest="weights", default=None, help="encoder weights file (default: its own)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --output")
    parser.add_argument(
        "--no-memory",
        dest="memory",
        action="store_false",
        help="skip the peak-memory measurements (each runs in a fresh process)",
    )
    args = parser.parse_args(argv)
    existing = [name for name in OUTPUT_NAMES if (args.output / name).exists()]
    if existing and not args.overwrite:
        parser.exit(
            2, f"error: {args.output} already holds {', '.join(existing)}; pass --overwrite to replace\n"
        )
    torch.manual_seed(args.seed)
    args.output.mkdir(parents=True, exist_ok=True)

    if args.quick:
        ns, ms, route_ms, image_size = (8, 64), (16, 256), (64, 256), 64
        cancel_n, cancel_m, cancel_seeds = 16, 128, (args.seed,)
    else:
        ns, ms, route_ms, image_size = (16, 64, 256), (64, 256, 1024, 4096), (256, 1024, 4096, 16384), 128
        cancel_n, cancel_m, cancel_seeds = 64, 1024, tuple(args.seed + i for i in range(3))
    image_size = args.real_size or image_size
    rows = list(identity_rows(ns, ms, args.seed))
    if args.real:
        rows += list(real_feature_rows(image_size, args.encoder, args.weights))
    write_csv(rows, args.output / "identity.csv")
    plot_rel_error(rows, args.output / "rel_error")

    cancellation = list(cancellation_rows(cancel_n, cancel_m, cancel_seeds))
    write_csv(cancellation, args.output / "cancellation.csv")
    plot_cancellation(cancellation, args.output / "cancellation")

    routes = list(route_rows(64, route_ms, args.seed, args.memory))
    write_csv(routes, args.output / "routes.csv")
    plot_routes(routes, "seconds", "seconds", args.output / "route_time")
    if args.memory:
        plot_routes(
            routes, "peak_bytes", "peak extra memory (MiB)", args.output / "route_memory", scale=2**20
        )

    worst = {d: max(r["rel_error"] for r in rows if r["dtype"] == d) for d in DTYPES}
    print(
        f"{len(rows)} identity checks ({sum(r['holds'] for r in rows)} hold); worst relative error: "
        + ", ".join(f"{d} {e:.2e}" for d, e in worst.items())
    )
    biggest = routes[-1]
    print(
        f"M={biggest['M']}, N=64: kernel route {biggest['kernel_seconds']:.3f}s, "
        f"moment route {biggest['moment_seconds']:.4f}s "
        f"({biggest['kernel_seconds'] / biggest['moment_seconds']:.0f}x)"
    )
    print(f"wrote {args.output}/identity.csv, routes.csv and figures")


if __name__ == "__main__":
    main()
